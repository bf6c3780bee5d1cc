package acctest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	tfjson "github.com/hashicorp/terraform-json"
	"github.com/hashicorp/terraform-plugin-go/tfprotov6"
	"github.com/hashicorp/terraform-plugin-go/tfprotov6/tf6server"
)

// ProviderAddress is the provider's registry address in the configurations
// the Terraform driver writes.
const ProviderAddress = "registry.terraform.io/proxmoxapp/proxmoxapp"

// Terraform drives the real Terraform binary in a working directory of its
// own, against a provider served from the test process (Terraform's
// reattach mode). Unlike terraform-plugin-testing it can interrupt a run at
// a chosen moment, as a user's Ctrl-C does, and look at what is left.
type Terraform struct {
	t   *testing.T
	dir string
	bin string
	env []string
}

// EnvTerraform names the Terraform binary of the suite (1.5.7), and
// EnvTerraform114 the Terraform 1.14 that actions (`terraform apply
// -invoke`, action_trigger) and `terraform query` need; terraform-plugin-
// testing reads one Terraform per process and has no -invoke, so the tests
// of those drive 1.14 through NewTerraform114.
const (
	EnvTerraform    = "TF_ACC_TERRAFORM_PATH"
	EnvTerraform114 = "TF_ACC_TERRAFORM_1_14_PATH"
)

// NewTerraform serves the provider and prepares a working directory for
// the suite's Terraform (TF_ACC_TERRAFORM_PATH).
func NewTerraform(t *testing.T, server func() tfprotov6.ProviderServer) *Terraform {
	t.Helper()
	bin := os.Getenv(EnvTerraform)
	if bin == "" {
		t.Fatal(EnvTerraform + " must name the Terraform binary (make test sets it)")
	}
	return NewTerraformWith(t, bin, server)
}

// NewTerraform114 is NewTerraform for Terraform 1.14
// (TF_ACC_TERRAFORM_1_14_PATH). Without that binary the test is skipped,
// saying why.
func NewTerraform114(t *testing.T, server func() tfprotov6.ProviderServer) *Terraform {
	t.Helper()
	if os.Getenv("TF_ACC") == "" {
		t.Skip("acceptance tests need TF_ACC=1 (make test sets it)")
	}
	bin := os.Getenv(EnvTerraform114)
	if bin == "" {
		t.Skipf("needs Terraform 1.14 for actions and terraform query: set %s (make test builds .bin/terraform-1.14.0 and sets it)", EnvTerraform114)
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("%s=%s: %v", EnvTerraform114, bin, err)
	}
	return NewTerraformWith(t, bin, server)
}

// NewTerraformWith serves the provider in-process (Terraform's reattach
// mode) for the Terraform binary bin, for as long as the test runs, and
// prepares a working directory.
func NewTerraformWith(t *testing.T, bin string, server func() tfprotov6.ProviderServer) *Terraform {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	reattach := make(chan *plugin.ReattachConfig, 1)
	closed := make(chan struct{})
	go func() {
		err := tf6server.Serve(ProviderAddress, server,
			tf6server.WithDebug(ctx, reattach, closed),
			tf6server.WithGoPluginLogger(hclog.NewNullLogger()),
			tf6server.WithLoggingSink(t),
			tf6server.WithoutLogStderrOverride())
		if err != nil {
			t.Errorf("serving the provider: %v", err)
		}
	}()
	var cfg *plugin.ReattachConfig
	select {
	case cfg = <-reattach:
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatal("the provider server did not start")
	}
	t.Cleanup(func() {
		cancel()
		<-closed
	})
	info, _ := json.Marshal(map[string]any{ProviderAddress: map[string]any{
		"Protocol": cfg.Protocol, "ProtocolVersion": cfg.ProtocolVersion, "Pid": cfg.Pid, "Test": true,
		"Addr": map[string]string{"Network": cfg.Addr.Network(), "String": cfg.Addr.String()},
	}})
	return &Terraform{t: t, dir: t.TempDir(), bin: bin, env: append(cleanEnv(os.Environ()),
		"TF_REATTACH_PROVIDERS="+string(info), "TF_CLI_CONFIG_FILE=/dev/null", "CHECKPOINT_DISABLE=1",
		"TF_IN_AUTOMATION=1", "TF_INPUT=0", "NO_COLOR=1")}
}

// cleanEnv drops the variables that would change what a terraform command
// does (extra arguments, another workspace or data directory) from the
// test's environment, and the provider's PROXMOX_VE_* settings unless they
// name the lab node the tests run against (against the simulator the
// configuration names it, and a stray setting would conflict).
func cleanEnv(env []string) []string {
	out := env[:0:0]
	live := Live()
	for _, kv := range env {
		name, _, _ := strings.Cut(kv, "=")
		switch {
		case strings.HasPrefix(name, "TF_CLI_ARGS"), name == "TF_WORKSPACE", name == "TF_DATA_DIR",
			name == "TF_REATTACH_PROVIDERS", name == "TF_CLI_CONFIG_FILE", name == "TF_APPEND_USER_AGENT",
			strings.HasPrefix(name, "PROXMOX_VE_") && !live:
			continue
		}
		out = append(out, kv)
	}
	return out
}

// Dir is the working directory.
func (tf *Terraform) Dir() string { return tf.dir }

// WriteFile puts a file into the working directory as it is.
func (tf *Terraform) WriteFile(name, content string) {
	tf.t.Helper()
	if err := os.WriteFile(filepath.Join(tf.dir, name), []byte(content), 0o644); err != nil {
		tf.t.Fatal(err)
	}
}

// SetConfig writes main.tf, with the required_providers block added.
func (tf *Terraform) SetConfig(config string) {
	tf.t.Helper()
	full := fmt.Sprintf("terraform {\n  required_providers {\n    proxmoxapp = { source = %q }\n  }\n}\n\n%s", "proxmoxapp/proxmoxapp", config)
	if err := os.WriteFile(filepath.Join(tf.dir, "main.tf"), []byte(full), 0o644); err != nil {
		tf.t.Fatal(err)
	}
}

// Result is one finished Terraform command.
type Result struct {
	Args     []string
	ExitCode int
	Stdout   string
	Stderr   string
}

// Output is stdout and stderr together.
func (r Result) Output() string { return r.Stdout + r.Stderr }

// String is the command, its exit code and its output, for failure messages.
func (r Result) String() string {
	return fmt.Sprintf("terraform %s (exit %d)\n--- stdout\n%s\n--- stderr\n%s", strings.Join(r.Args, " "), r.ExitCode, r.Stdout, r.Stderr)
}

// Run runs a Terraform command to its end.
func (tf *Terraform) Run(args ...string) Result {
	tf.t.Helper()
	return tf.RunActing(nil, nil, nil, args...)
}

// Ok runs a command that must succeed.
func (tf *Terraform) Ok(args ...string) Result {
	tf.t.Helper()
	r := tf.Run(args...)
	if r.ExitCode != 0 {
		tf.t.Fatalf("unexpected failure: %s", r)
	}
	return r
}

// Fails runs a command that must fail.
func (tf *Terraform) Fails(args ...string) Result {
	tf.t.Helper()
	r := tf.Run(args...)
	if r.ExitCode == 0 {
		tf.t.Fatalf("expected a failure: %s", r)
	}
	return r
}

// Plan writes a saved plan (tfplan) and returns it as JSON.
func (tf *Terraform) Plan(extra ...string) *tfjson.Plan {
	tf.t.Helper()
	tf.Ok(append([]string{"plan", "-no-color", "-input=false", "-out=tfplan"}, extra...)...)
	r := tf.Ok("show", "-json", "-no-color", "tfplan")
	var p tfjson.Plan
	if err := json.Unmarshal([]byte(r.Stdout), &p); err != nil {
		tf.t.Fatalf("terraform show -json tfplan: %v\n%s", err, r.Stdout)
	}
	return &p
}

// Init runs terraform init once the configuration is written.
func (tf *Terraform) Init() {
	tf.t.Helper()
	if r := tf.Run("init", "-no-color"); r.ExitCode != 0 {
		tf.t.Fatalf("terraform init failed:\n%s", r.Output())
	}
}

// RunInterrupted runs a Terraform command and sends it SIGINT (a user's
// Ctrl-C) as soon as interruptWhen reports true; it is asked every 10 ms.
// Terraform then asks the provider to stop and waits for it, as in real use.
func (tf *Terraform) RunInterrupted(interruptWhen func() bool, args ...string) Result {
	tf.t.Helper()
	var cmd *exec.Cmd
	return tf.RunActing(interruptWhen, func() { _ = cmd.Process.Signal(syscall.SIGINT) }, &cmd, args...)
}

// RunActing runs a Terraform command and calls act once, as soon as when
// reports true (asked every 10 ms): to interrupt it, restart the node under
// it, and so on. The test fails if the command ends before that moment.
func (tf *Terraform) RunActing(when func() bool, act func(), cmdOut **exec.Cmd, args ...string) Result {
	tf.t.Helper()
	cmd := exec.Command(tf.bin, args...)
	cmd.Dir, cmd.Env = tf.dir, tf.env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if cmdOut != nil {
		*cmdOut = cmd
	}
	if err := cmd.Start(); err != nil {
		tf.t.Fatalf("starting terraform: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	acted := false
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	limit := time.After(5 * time.Minute)
	var err error
wait:
	for {
		select {
		case err = <-done:
			break wait
		case <-tick.C:
			if when != nil && !acted && when() {
				acted = true
				act()
			}
		case <-limit:
			_ = cmd.Process.Kill()
			tf.t.Fatalf("terraform %s did not end within 5 minutes:\n%s%s", strings.Join(args, " "), stdout.String(), stderr.String())
		}
	}
	if when != nil && !acted {
		tf.t.Fatalf("terraform %s ended before the moment to act came:\n%s%s", strings.Join(args, " "), stdout.String(), stderr.String())
	}
	res := Result{Args: args, Stdout: stdout.String(), Stderr: stderr.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		res.ExitCode = ee.ExitCode()
	} else if err != nil {
		tf.t.Fatalf("terraform %s: %v", strings.Join(args, " "), err)
	}
	return res
}

// Apply runs terraform apply -auto-approve with extra arguments.
func (tf *Terraform) Apply(extra ...string) Result {
	tf.t.Helper()
	return tf.Run(append([]string{"apply", "-auto-approve", "-no-color"}, extra...)...)
}

// State is the current state, as terraform show -json reads it.
func (tf *Terraform) State() *tfjson.State {
	tf.t.Helper()
	r := tf.Run("show", "-json")
	if r.ExitCode != 0 {
		tf.t.Fatalf("terraform show -json failed:\n%s", r.Output())
	}
	var st tfjson.State
	if err := json.Unmarshal([]byte(r.Stdout), &st); err != nil {
		tf.t.Fatalf("decoding the state: %v\n%s", err, r.Stdout)
	}
	return &st
}

// Resources are the state's resources by address ("" values map to nil).
func (tf *Terraform) Resources() map[string]*tfjson.StateResource {
	out := map[string]*tfjson.StateResource{}
	st := tf.State()
	if st.Values == nil || st.Values.RootModule == nil {
		return out
	}
	for _, r := range st.Values.RootModule.Resources {
		out[r.Address] = r
	}
	return out
}
