package acctest

import (
	"strings"
	"testing"
)

// TestCleanEnv: settings that would change what Terraform does are not
// passed on; against the simulator neither are the provider's PROXMOX_VE_*.
func TestCleanEnv(t *testing.T) {
	t.Setenv("PROXMOX_VE_ENDPOINT", "")
	got := strings.Join(cleanEnv([]string{"PATH=/bin", "TF_CLI_ARGS_plan=-refresh=false", "TF_WORKSPACE=prod",
		"TF_DATA_DIR=/x", "PROXMOX_VE_API_TOKEN=root@pam!t=s", "HOME=/root"}), " ")
	if got != "PATH=/bin HOME=/root" {
		t.Errorf("against the simulator: %q", got)
	}
	t.Setenv("PROXMOX_VE_ENDPOINT", "https://lab:8006/")
	got = strings.Join(cleanEnv([]string{"TF_WORKSPACE=prod", "PROXMOX_VE_API_TOKEN=root@pam!t=s"}), " ")
	if got != "PROXMOX_VE_API_TOKEN=root@pam!t=s" {
		t.Errorf("against a lab node: %q", got)
	}
}
