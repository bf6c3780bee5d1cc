package provider

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	tfjson "github.com/hashicorp/terraform-json"
	"github.com/hashicorp/terraform-plugin-framework/providerserver"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-go/tfprotov6"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"

	"github.com/proxmoxapp/terraform-provider-proxmoxapp/internal/acctest"
)

// protoV6ProviderFactories runs the provider in-process for every test.
var protoV6ProviderFactories = map[string]func() (tfprotov6.ProviderServer, error){
	"proxmoxapp": providerserver.NewProtocol6WithError(New("test")()),
}

// resourceAttrs returns the attribute values of one resource in a state.
func resourceAttrs(state *tfjson.State, address string) (map[string]any, error) {
	if state == nil || state.Values == nil || state.Values.RootModule == nil {
		return nil, fmt.Errorf("no state")
	}
	for _, r := range state.Values.RootModule.Resources {
		if r.Address == address {
			return r.AttributeValues, nil
		}
	}
	return nil, fmt.Errorf("%s is not in the state", address)
}

// archiveCheck asserts that the archive a backup resource names is really on
// the simulator's storage, with the size the state reports.
type archiveCheck struct {
	env     *acctest.Env
	address string
	// seen receives the archive's path, for later checks (e.g. after destroy).
	seen *string
}

func (c archiveCheck) CheckState(_ context.Context, req statecheck.CheckStateRequest, resp *statecheck.CheckStateResponse) {
	if c.env.Sim == nil {
		return // the lab node's disks are not ours to look at
	}
	attrs, err := resourceAttrs(req.State, c.address)
	if err != nil {
		resp.Error = err
		return
	}
	node, _ := attrs["node"].(string)
	storage, _ := attrs["storage"].(string)
	filename, _ := attrs["filename"].(string)
	size := toInt64(attrs["size"])
	p := c.env.ArchivePath(node, storage, filename)
	fi, err := os.Stat(p)
	if err != nil {
		resp.Error = fmt.Errorf("%s: archive not on the storage: %w", c.address, err)
		return
	}
	if want := size; fi.Size() != want || want <= 0 {
		resp.Error = fmt.Errorf("%s: state says size %d, the archive %s has %d bytes", c.address, size, filepath.Base(p), fi.Size())
		return
	}
	if c.seen != nil {
		*c.seen = p
	}
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

// toInt64 reads a number from tfjson attribute values, which may be decoded
// as float64 or json.Number.
func toInt64(v any) int64 {
	switch n := v.(type) {
	case json.Number:
		i, _ := n.Int64()
		return i
	case float64:
		return int64(n)
	}
	return -1
}
