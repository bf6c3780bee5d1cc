package provider

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-go/tfprotov6"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"

	"github.com/proxmoxapp/terraform-provider-proxmoxapp/internal/acctest"
	"github.com/proxmoxapp/terraform-provider-proxmoxapp/internal/pvesim"
)

// protoV6ProviderFactories runs the provider in-process for every test.
var protoV6ProviderFactories = map[string]func() (tfprotov6.ProviderServer, error){
	"proxmoxapp": func() (tfprotov6.ProviderServer, error) { return NewServer("test")(), nil },
}

func TestResolveProviderConfig(t *testing.T) {
	t.Parallel()
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	cases := []struct {
		name    string
		env     map[string]string
		wantErr string
	}{
		{"token from env", map[string]string{envEndpoint: "https://pve:8006/", envAPIToken: "root@pam!tf=abc"}, ""},
		{"login from env", map[string]string{envEndpoint: "https://pve:8006/", envUsername: "root@pam", envPassword: "x"}, ""},
		{"no endpoint", map[string]string{envAPIToken: "root@pam!tf=abc"}, "Missing Proxmox VE endpoint"},
		{"bad endpoint", map[string]string{envEndpoint: "pve:8006", envAPIToken: "root@pam!tf=abc"}, "Malformed Proxmox VE endpoint"},
		{"no credentials", map[string]string{envEndpoint: "https://pve:8006/"}, "Missing Proxmox VE credentials"},
		{"both credentials", map[string]string{envEndpoint: "https://pve:8006/", envAPIToken: "root@pam!tf=abc", envUsername: "root@pam", envPassword: "x"}, "Conflicting Proxmox VE credentials"},
		{"token without secret", map[string]string{envEndpoint: "https://pve:8006/", envAPIToken: "root@pam!tf"}, "Malformed Proxmox VE API token"},
		{"token without realm", map[string]string{envEndpoint: "https://pve:8006/", envAPIToken: "root!tf=abc"}, "Malformed Proxmox VE API token"},
		{"password without user", map[string]string{envEndpoint: "https://pve:8006/", envPassword: "x"}, "Incomplete Proxmox VE login"},
		{"user without realm", map[string]string{envEndpoint: "https://pve:8006/", envUsername: "root", envPassword: "x"}, "Malformed Proxmox VE username"},
		{"bad insecure", map[string]string{envEndpoint: "https://pve:8006/", envAPIToken: "root@pam!tf=abc", envInsecure: "maybe"}, "Invalid PROXMOX_VE_INSECURE"},
		{"ca file missing", map[string]string{envEndpoint: "https://pve:8006/", envAPIToken: "root@pam!tf=abc", envCACert: "/nonexistent/ca.pem"}, "Unreadable CA certificate"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg, diags := resolveProviderConfig(nullProviderModel(), env(tc.env))
			got := ""
			for _, d := range diags.Errors() {
				got += d.Summary() + ": " + d.Detail() + "\n"
			}
			if tc.wantErr == "" && got != "" {
				t.Fatalf("unexpected errors: %s", got)
			}
			if tc.wantErr != "" && !strings.Contains(got, tc.wantErr) {
				t.Fatalf("want error %q, got %q", tc.wantErr, got)
			}
			if secret := "abc"; strings.Contains(got, secret) && tc.env[envAPIToken] != "" {
				t.Fatalf("an error echoes the token secret: %s", got)
			}
			if tc.wantErr == "" && cfg.Endpoint != tc.env[envEndpoint] {
				t.Fatalf("endpoint %q, want %q", cfg.Endpoint, tc.env[envEndpoint])
			}
		})
	}
}

func nullProviderModel() providerModel {
	return providerModel{
		Endpoint: types.StringNull(), APIToken: types.StringNull(), Username: types.StringNull(),
		Password: types.StringNull(), OTP: types.StringNull(), Insecure: types.BoolNull(), CACert: types.StringNull(),
	}
}

// TestAccProvider_authAndTLS: a password login works like a token; TLS is
// verified by default, so an unpinned self-signed CA is refused with a clear
// error, and insecure = true is the explicit way out.
func TestAccProvider_authAndTLS(t *testing.T) {
	t.Parallel()
	env := acctest.New(t)
	env.RequireSim(t)
	const backup = `
resource "proxmoxapp_backup" "test" {
  vmid    = 100
  storage = "local"
}
`
	withProvider := func(body string) string {
		return fmt.Sprintf("provider \"proxmoxapp\" {\n  endpoint = %q\n%s\n}\n", env.Sim.Endpoint(), body) + backup
	}
	ca := fmt.Sprintf("  ca_cert = <<-EOT\n%s\n  EOT", strings.TrimSpace(string(env.Sim.CAPEM())))
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config:      withProvider(fmt.Sprintf("  api_token = %q", env.Sim.APIToken())),
				ExpectError: regexp.MustCompile(`(?s)Error: Proxmox VE TLS certificate not trusted.*certificate signed by unknown authority\s+Pin the cluster.s CA with ca_cert`),
			},
			{
				Config:      withProvider("  username = \"root@pam\"\n  password = \"wrong\"\n" + ca),
				ExpectError: regexp.MustCompile(`login as root@pam failed.*HTTP 401 authentication\s+failure`),
			},
			{
				Config:            withProvider("  username = \"root@pam\"\n  password = \"pvesim\"\n" + ca),
				ConfigStateChecks: []statecheck.StateCheck{acctest.ArchiveOnStorage(env, backupAddr, nil)},
			},
			{
				Config:           withProvider(fmt.Sprintf("  api_token = %q\n  insecure = true", env.Sim.APIToken())),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
			},
		},
	})
}

// TestAccProvider_secretsNeverLogged runs a password login and a token apply
// with TRACE logging of Terraform and the provider into one file, and checks
// that neither secret appears there while the provider's own lines (the
// vzdump task log) do. It is not parallel: the log settings are process-wide,
// and Go runs it before the parallel tests start.
func TestAccProvider_secretsNeverLogged(t *testing.T) {
	// A password no log line could hold by accident.
	password := fmt.Sprintf("pw-%d-secret", time.Now().UnixNano())
	cfg := pvesim.DefaultConfig()
	for i := range cfg.Users {
		if cfg.Users[i].ID == "root@pam" {
			cfg.Users[i].Password = password
		}
	}
	env := acctest.NewWithConfig(t, cfg)
	env.RequireSim(t)
	logFile := filepath.Join(t.TempDir(), "trace.log")
	t.Setenv("TF_ACC_LOG_PATH", logFile)
	tokenSecret := env.Sim.APIToken()[strings.LastIndex(env.Sim.APIToken(), "=")+1:]

	// Secrets come from the environment, as in CI pipelines: the test
	// framework itself logs each step's configuration verbatim.
	t.Setenv(envCACert, env.Sim.CAPath())
	providerBlock := fmt.Sprintf("provider \"proxmoxapp\" {\n  endpoint = %q\n}\n", env.Sim.Endpoint())
	backup := "\nresource \"proxmoxapp_backup\" \"test\" {\n  vmid    = 100\n  storage = \"local\"\n}\n"
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				PreConfig: func() { t.Setenv(envAPIToken, env.Sim.APIToken()) },
				Config:    providerBlock + backup,
			},
			{
				PreConfig: func() {
					t.Setenv(envAPIToken, "")
					t.Setenv(envUsername, "root@pam")
					t.Setenv(envPassword, password)
				},
				Config: providerBlock + backup,
			},
		},
	})

	b, err := os.ReadFile(logFile)
	if err != nil {
		t.Fatal(err)
	}
	log := string(b)
	if !strings.Contains(log, "creating vzdump archive") {
		t.Fatalf("the trace log (%d bytes) lacks the vzdump task lines; is provider logging captured at all?", len(b))
	}
	if i := strings.Index(log, tokenSecret); i >= 0 {
		t.Errorf("the API token secret appears in the trace log: ...%s...", log[max(0, i-300):min(len(log), i+50)])
	}
	if strings.Contains(log, password) {
		t.Errorf("the password appears in the trace log")
	}

	// Every PVE request is one DEBUG line with method, path, status and
	// duration; the login and the vzdump call among them.
	wantLine := func(parts ...string) {
		t.Helper()
		for _, line := range strings.Split(log, "\n") {
			found := true
			for _, p := range parts {
				found = found && strings.Contains(line, p)
			}
			if found {
				return
			}
		}
		t.Errorf("no log line has all of %q", parts)
	}
	wantLine("[DEBUG]", "PVE request", "method=GET", "path=/cluster/resources", "status=200", "duration_ms=")
	wantLine("[DEBUG]", "PVE request", "method=POST", "path=/access/ticket", "status=200", "duration_ms=")
	wantLine("[DEBUG]", "PVE request", "method=POST", "path=/nodes/pve1/vzdump", "status=200", "duration_ms=")
	// vzdump's start names the node it found even when the configuration leaves it out.
	wantLine("[INFO]", "starting vzdump", "node=pve1", "storage=local", "vmid=100")
	wantLine("[INFO]", "vzdump finished", "node=pve1", `upid="UPID:pve1:`, "volid=local:backup/vzdump-lxc-100-")
	// Each task-log line is logged once, at INFO, with the task that wrote it,
	// so that parallel backups can be told apart.
	wantLine("[INFO]", "creating vzdump archive", "node=pve1", "task=vzdump", "vmid=100", `upid="UPID:pve1:`)
	if n := strings.Count(log, "creating vzdump archive"); n != 1 {
		t.Errorf("the task-log line 'creating vzdump archive' is logged %d times, want once", n)
	}
}

// newTF114 drives Terraform 1.14 (actions, terraform query) against the
// provider served in-process, or skips the test saying why.
func newTF114(t *testing.T) *acctest.Terraform {
	t.Helper()
	return acctest.NewTerraform114(t, NewServer("test"))
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
