package provider

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	tfjson "github.com/hashicorp/terraform-json"
	"github.com/hashicorp/terraform-plugin-framework/providerserver"
	"github.com/hashicorp/terraform-plugin-go/tfprotov6/tf6server"

	"github.com/proxmoxapp/terraform-provider-proxmoxapp/internal/acctest"
)

// Actions (`terraform apply -invoke`, action_trigger) and `terraform query`
// need Terraform 1.14, while the rest of the suite runs Terraform 1.5.7
// through terraform-plugin-testing, which reads one Terraform per process
// (TF_ACC_TERRAFORM_PATH) and has no -invoke. These tests therefore drive the
// binary named by TF_ACC_TERRAFORM_1_14_PATH (make test builds it into
// .bin/terraform-1.14.0) themselves, against the provider served in-process
// as terraform-plugin-testing serves it (reattach), so they run in parallel
// with the rest.

const envTerraform114 = "TF_ACC_TERRAFORM_1_14_PATH"

// providerSource is the address the tests' configurations use.
const providerSource = "registry.terraform.io/proxmoxapp/proxmoxapp"

// tf114 is one working directory driven by Terraform 1.14.
type tf114 struct {
	t   *testing.T
	bin string
	dir string
}

// newTF114 returns a working directory for Terraform 1.14, or skips the test
// (saying why) when the acceptance tests are off or there is no such binary.
func newTF114(t *testing.T) *tf114 {
	t.Helper()
	bin := os.Getenv(envTerraform114)
	if bin == "" {
		t.Skipf("needs Terraform 1.14 for actions and terraform query: set %s (make test builds .bin/terraform-1.14.0 and sets it)", envTerraform114)
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("%s=%s: %v", envTerraform114, bin, err)
	}
	return &tf114{t: t, bin: bin, dir: t.TempDir()}
}

// write puts a file into the working directory.
func (tf *tf114) write(name, content string) {
	tf.t.Helper()
	if err := os.WriteFile(filepath.Join(tf.dir, name), []byte(content), 0o644); err != nil {
		tf.t.Fatal(err)
	}
}

// tfResult is what one terraform command printed.
type tfResult struct {
	args   []string
	stdout string
	stderr string
	code   int
}

func (r tfResult) String() string {
	return fmt.Sprintf("terraform %s (exit %d)\n--- stdout\n%s\n--- stderr\n%s", strings.Join(r.args, " "), r.code, r.stdout, r.stderr)
}

// run runs one terraform command with the provider served in-process. A
// command that cannot start or does not finish in time fails the test; its
// exit code is for the caller to judge.
func (tf *tf114) run(args ...string) tfResult {
	tf.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	reattach, stop := serveProvider(tf.t)
	defer stop()

	cmd := exec.CommandContext(ctx, tf.bin, args...)
	cmd.Dir = tf.dir
	cmd.Env = append(cleanTerraformEnv(os.Environ()),
		"TF_REATTACH_PROVIDERS="+reattach,
		"TF_CLI_CONFIG_FILE=/dev/null",
		"CHECKPOINT_DISABLE=1",
		"TF_IN_AUTOMATION=1",
		"TF_INPUT=0",
		"NO_COLOR=1",
	)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	res := tfResult{args: args, stdout: stdout.String(), stderr: stderr.String()}
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		res.code = exit.ExitCode()
	case err != nil:
		tf.t.Fatalf("terraform %s: %v", strings.Join(args, " "), err)
	}
	if ctx.Err() != nil {
		tf.t.Fatalf("terraform %s did not finish in time\n%s", strings.Join(args, " "), res)
	}
	return res
}

// ok runs a command that must succeed.
func (tf *tf114) ok(args ...string) tfResult {
	tf.t.Helper()
	res := tf.run(args...)
	if res.code != 0 {
		tf.t.Fatalf("unexpected failure: %s", res)
	}
	return res
}

// fails runs a command that must fail.
func (tf *tf114) fails(args ...string) tfResult {
	tf.t.Helper()
	res := tf.run(args...)
	if res.code == 0 {
		tf.t.Fatalf("expected a failure: %s", res)
	}
	return res
}

// init runs terraform init (offline: the provider is reattached, the only
// other one is the built-in terraform_data).
func (tf *tf114) init() {
	tf.t.Helper()
	tf.ok("init", "-no-color", "-input=false")
}

// state reads the state as JSON.
func (tf *tf114) state() *tfjson.State {
	tf.t.Helper()
	res := tf.ok("show", "-json", "-no-color")
	var st tfjson.State
	if err := json.Unmarshal([]byte(res.stdout), &st); err != nil {
		tf.t.Fatalf("terraform show -json: %v\n%s", err, res.stdout)
	}
	return &st
}

// plan writes a saved plan and returns it as JSON.
func (tf *tf114) plan(extra ...string) *tfjson.Plan {
	tf.t.Helper()
	tf.ok(append([]string{"plan", "-no-color", "-input=false", "-out=tfplan"}, extra...)...)
	res := tf.ok("show", "-json", "-no-color", "tfplan")
	var p tfjson.Plan
	if err := json.Unmarshal([]byte(res.stdout), &p); err != nil {
		tf.t.Fatalf("terraform show -json tfplan: %v\n%s", err, res.stdout)
	}
	return &p
}

// uiMessage is one line of Terraform's machine-readable UI (-json).
type uiMessage struct {
	Level      string `json:"@level"`
	Message    string `json:"@message"`
	Type       string `json:"type"`
	Diagnostic *struct {
		Severity string `json:"severity"`
		Summary  string `json:"summary"`
		Detail   string `json:"detail"`
	} `json:"diagnostic,omitempty"`
	Hook struct {
		// Action is an action's address object in action hooks, and the
		// change ("create", "update", ...) in resource hooks.
		Action   json.RawMessage `json:"action"`
		Resource struct {
			Addr string `json:"addr"`
		} `json:"resource"`
		Message   string `json:"message"`
		Lifecycle *struct {
			Resource struct {
				Addr string `json:"addr"`
			} `json:"resource"`
			TriggerEvent string `json:"trigger_event"`
		} `json:"lifecycle,omitempty"`
	} `json:"hook"`
}

// actionAddr is the action's address of an action hook message.
func (m uiMessage) actionAddr() string {
	var a struct {
		Addr string `json:"addr"`
	}
	if len(m.Hook.Action) == 0 || m.Hook.Action[0] != '{' || json.Unmarshal(m.Hook.Action, &a) != nil {
		return ""
	}
	return a.Addr
}

// uiMessages parses the output of a -json command.
func uiMessages(t *testing.T, out string) []uiMessage {
	t.Helper()
	var msgs []uiMessage
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		var m uiMessage
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("not a JSON UI message: %q: %v", line, err)
		}
		msgs = append(msgs, m)
	}
	return msgs
}

// flat joins Terraform's word-wrapped output into single-spaced text.
func flat(out string) string { return strings.Join(strings.Fields(out), " ") }

// cleanTerraformEnv drops the variables that would change what a terraform
// command does from the test's environment.
func cleanTerraformEnv(env []string) []string {
	out := env[:0:0]
	for _, kv := range env {
		name, _, _ := strings.Cut(kv, "=")
		switch {
		case strings.HasPrefix(name, "TF_CLI_ARGS"), name == "TF_WORKSPACE", name == "TF_DATA_DIR",
			name == "TF_REATTACH_PROVIDERS", name == "TF_CLI_CONFIG_FILE", name == "TF_APPEND_USER_AGENT",
			strings.HasPrefix(name, "PROXMOX_VE_"):
			continue
		}
		out = append(out, kv)
	}
	return out
}

// serveProvider serves the provider in-process for one terraform command and
// returns its TF_REATTACH_PROVIDERS value.
func serveProvider(t *testing.T) (string, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	configCh := make(chan *plugin.ReattachConfig, 1)
	closeCh := make(chan struct{})
	server := providerserver.NewProtocol6(New("test")())
	errCh := make(chan error, 1)
	go func() {
		errCh <- tf6server.Serve(providerSource, server,
			tf6server.WithDebug(ctx, configCh, closeCh),
			tf6server.WithGoPluginLogger(hclog.New(&hclog.LoggerOptions{Name: "plugintest", Level: hclog.Error, Output: io.Discard})),
			tf6server.WithoutLogStderrOverride(),
			tf6server.WithLoggingSink(t),
		)
	}()
	var cfg *plugin.ReattachConfig
	select {
	case cfg = <-configCh:
	case err := <-errCh:
		cancel()
		t.Fatalf("serving the provider: %v", err)
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatal("serving the provider: no reattach configuration within 30s")
	}
	type addr struct{ Network, String string }
	type reattach struct {
		Protocol        string
		ProtocolVersion int
		Pid             int
		Test            bool
		Addr            addr
	}
	raw, err := json.Marshal(map[string]reattach{providerSource: {
		Protocol: string(cfg.Protocol), ProtocolVersion: cfg.ProtocolVersion, Pid: cfg.Pid, Test: cfg.Test,
		Addr: addr{Network: cfg.Addr.Network(), String: cfg.Addr.String()},
	}})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	return string(raw), func() {
		cancel()
		select {
		case <-closeCh:
		case <-time.After(10 * time.Second):
			t.Error("the provider server did not stop within 10s")
		}
	}
}

// tf114Config is the terraform block and provider configuration for env.
func tf114Config(env *acctest.Env) string {
	return `terraform {
  required_providers {
    proxmoxapp = { source = "proxmoxapp/proxmoxapp" }
  }
}

` + env.ProviderConfig()
}
