package pve

import (
	"github.com/proxmoxapp/terraform-provider-proxmoxapp/internal/pvesim"

	"context"
	"errors"
	"strings"
	"testing"
)

// TestConfigValidate: the one set of rules for the provider configuration;
// each problem names its field and never the secret.
func TestConfigValidate(t *testing.T) {
	t.Parallel()
	const secret = "s3cret-0b8b5f2c"
	cases := []struct {
		cfg            Config
		field, summary string
	}{
		{Config{Endpoint: "https://pve:8006/", APIToken: "root@pam!a=" + secret}, FieldAPIToken, "Malformed Proxmox VE API token"},
		{Config{Endpoint: "https://pve:8006/", APIToken: "root!tf=" + secret}, FieldAPIToken, "Malformed Proxmox VE API token"},
		{Config{Endpoint: "https://pve:8006/"}, FieldAPIToken, "Missing Proxmox VE credentials"},
		{Config{Endpoint: "https://pve:8006/", APIToken: "root@pam!tf=" + secret, Password: secret}, FieldAPIToken, "Conflicting Proxmox VE credentials"},
		{Config{Endpoint: "https://pve:8006/", Password: secret}, FieldUsername, "Incomplete Proxmox VE login"},
		{Config{Endpoint: "https://pve:8006/", Username: "root@pam"}, FieldPassword, "Incomplete Proxmox VE login"},
		{Config{Endpoint: "https://pve:8006/", Username: "root", Password: secret}, FieldUsername, "Malformed Proxmox VE username"},
		{Config{APIToken: "root@pam!tf=" + secret}, FieldEndpoint, "Missing Proxmox VE endpoint"},
		{Config{Endpoint: "pve:8006", APIToken: "root@pam!tf=" + secret}, FieldEndpoint, "Malformed Proxmox VE endpoint"},
		{Config{Endpoint: "https://pve:8006/", APIToken: "root@pam!tf=" + secret, CACertPEM: []byte("nope")}, FieldCACert, "Invalid CA certificate"},
	}
	for _, tc := range cases {
		errs := tc.cfg.Validate()
		if len(errs) != 1 || errs[0].Field != tc.field || errs[0].Summary != tc.summary {
			t.Errorf("%+v: got %v, want one %s error %q", tc.cfg, errs, tc.field, tc.summary)
			continue
		}
		if strings.Contains(errs[0].Detail, secret) {
			t.Errorf("%s: the detail shows the secret: %s", tc.summary, errs[0].Detail)
		}
		// NewClient refuses the same configuration with the same error.
		if _, err := NewClient(context.Background(), tc.cfg); err == nil || err.Error() != errs[0].Error() {
			t.Errorf("%s: NewClient says %v", tc.summary, err)
		}
	}
	ok := Config{Endpoint: "https://pve:8006/", APIToken: "terraform@pve!ci=" + secret}
	if errs := ok.Validate(); len(errs) != 0 {
		t.Fatalf("valid configuration refused: %v", errs)
	}
	if id := ok.Identity(); id != "terraform@pve!ci" {
		t.Fatalf("identity %q", id)
	}
}

// TestCheckAccess classifies what goes wrong on the first request.
func TestCheckAccess(t *testing.T) {
	t.Parallel()
	sim, c := startSim(t)
	ctx := testCtx(t)
	sim.Observe(true)
	if err := c.CheckAccess(ctx); err != nil {
		t.Fatal(err)
	}
	// its answer serves the plan checks of the run
	if g, err := c.CheckGuest(ctx, 100, ""); err != nil || g.Node != "pve1" {
		t.Fatalf("guest 100: %v %v", g, err)
	}
	if err := c.CheckStorage(ctx, "pve1", "local", "backup", "storage"); err != nil {
		t.Fatal(err)
	}
	if reqs := sim.Requests(); len(reqs) != 1 || reqs[0].Route != "/cluster/resources" {
		t.Fatalf("access check and plan checks sent %d requests (%v), want one GET /cluster/resources", len(reqs), reqs)
	}
	kind := func(cfg Config) (*AccessError, string) {
		t.Helper()
		c, err := NewClient(ctx, cfg)
		if err == nil {
			err = c.CheckAccess(ctx)
		}
		var ae *AccessError
		if !errors.As(err, &ae) {
			t.Fatalf("%+v: want an *AccessError, got %v", cfg, err)
		}
		return ae, err.Error()
	}
	token := sim.APIToken()
	wrong := token[:strings.LastIndex(token, "=")+1] + "00000000-0000-0000-0000-000000000000"
	if ae, msg := kind(Config{Endpoint: sim.Endpoint(), APIToken: wrong, CACertPEM: sim.CAPEM()}); ae.Kind != AccessAuthentication ||
		!ae.Token || strings.Contains(msg, "00000000-0000") || !strings.Contains(msg, "as API token root@pam!terraform failed") {
		t.Errorf("wrong token secret: %s: %s", ae.Kind, msg)
	}
	if ae, msg := kind(Config{Endpoint: sim.Endpoint(), Username: "root@pam", Password: "wrong", CACertPEM: sim.CAPEM()}); ae.Kind != AccessAuthentication ||
		ae.Token || strings.Contains(msg, "wrong") || !strings.Contains(msg, "as user root@pam failed") {
		t.Errorf("wrong password: %s: %s", ae.Kind, msg)
	}
	if ae, msg := kind(Config{Endpoint: sim.Endpoint(), APIToken: token}); ae.Kind != AccessTLS ||
		!strings.Contains(msg, "Pin the cluster's CA with ca_cert") || strings.Count(msg, "ca_cert") != 1 {
		t.Errorf("unpinned CA: %s: %s", ae.Kind, msg)
	}
	if ae, msg := kind(Config{Endpoint: "https://127.0.0.1:1/", APIToken: token}); ae.Kind != AccessConnection ||
		!strings.Contains(msg, "connection refused") {
		t.Errorf("unreachable: %s: %s", ae.Kind, msg)
	}
	httpEndpoint := "http://" + strings.TrimPrefix(sim.Endpoint(), "https://")
	if ae, msg := kind(Config{Endpoint: httpEndpoint, APIToken: token}); ae.Kind != AccessEndpoint ||
		!strings.Contains(msg, "serves its API over HTTPS only") {
		t.Errorf("http endpoint: %s: %s", ae.Kind, msg)
	}
}

// TestPreflightChecks: certain answers are *PreflightErrors naming the
// argument; a node that is down is a plain error (the answer is unknown).
func TestPreflightChecks(t *testing.T) {
	t.Parallel()
	sim, c := startSim(t)
	ctx := testCtx(t)
	field := func(err error) string {
		if pe := AsPreflight(err); pe != nil {
			return pe.Field
		}
		return ""
	}
	if g, err := c.CheckGuest(ctx, 100, ""); err != nil || g.Node != "pve1" {
		t.Fatalf("guest 100: %v %v", g, err)
	}
	if _, err := c.CheckGuest(ctx, 4242, ""); field(err) != "vmid" {
		t.Errorf("unknown vmid: %v", err)
	}
	if _, err := c.CheckGuest(ctx, 100, "pve2"); field(err) != "node" {
		t.Errorf("wrong node: %v", err)
	}
	for _, tc := range []struct{ storage, content, want string }{
		{"local", "backup", ""},
		{"nas", "backup", ""},
		{"local-lvm", "rootdir", ""},
		{"local-lvm", "images", ""},
		{"local-lvm", "backup", `cannot hold backups: its content types are rootdir,images`},
		{"local", "rootdir", `cannot hold container root filesystems`},
		{"usb", "backup", `storage "usb" does not exist on node pve1`},
	} {
		err := c.CheckStorage(ctx, "pve1", tc.storage, tc.content, "storage")
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s/%s: %v", tc.storage, tc.content, err)
		case tc.want != "" && (field(err) != "storage" || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s/%s: %v, want %q", tc.storage, tc.content, err, tc.want)
		}
	}

	b := mustBackup(t, c, BackupOptions{VMID: 101, Storage: "nas", Compress: "zstd"})
	// Shared storage: any online node sees it; "" finds the first one.
	if node, got, err := c.CheckBackup(ctx, "", b.Backup.VolID, "backup"); err != nil || node != "pve1" || got.VolID != b.Backup.VolID {
		t.Fatalf("CheckBackup: %s %v %v", node, got, err)
	}
	if _, _, err := c.CheckBackup(ctx, "pve1", "nas:backup/vzdump-lxc-101-2020_01_01-00_00_00.tar.zst", "backup"); field(err) != "backup" {
		t.Errorf("missing backup: %v", err)
	}

	sim.SetNodeOffline("pve2", true)
	err := c.CheckStorage(ctx, "pve2", "usb", "backup", "storage")
	if err == nil || AsPreflight(err) != nil {
		t.Errorf("node down: want a plain error (unknown answer), got %v", err)
	}
}

// A token that may write backups to a storage without auditing it does not
// see the storage in /cluster/resources; CheckStorage must then ask the
// node's storage list instead of calling the storage absent.
func TestCheckStorageWithoutDatastoreAudit(t *testing.T) {
	t.Parallel()
	cfg := pvesim.DefaultConfig()
	cfg.Users = append(cfg.Users, pvesim.UserConfig{ID: "writer@pve",
		ACL:    []pvesim.ACLEntry{{Path: "/storage/local", Privs: []string{"Datastore.AllocateSpace"}}, {Path: "/vms/100", Privs: []string{"VM.Audit", "VM.Backup"}}},
		Tokens: []pvesim.TokenConfig{{ID: "wr", Secret: "0b8b5f2c-2222-4c4c-9d9d-000000000001"}}})
	sim, err := pvesim.Start(pvesim.Options{DataDir: t.TempDir(), Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	ctx := testCtx(t)
	c, err := NewClient(ctx, Config{Endpoint: sim.Endpoint(), APIToken: "writer@pve!wr=0b8b5f2c-2222-4c4c-9d9d-000000000001", CACertPEM: sim.CAPEM()})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.CheckAccess(ctx); err != nil {
		t.Fatal(err)
	}
	layout, err := c.clusterLayout(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if layout.storageHolds("pve1", "local", "backup") {
		t.Fatal("the simulator shows storage local in /cluster/resources without Datastore.Audit")
	}
	if err := c.CheckStorage(ctx, "pve1", "local", "backup", "storage"); err != nil {
		t.Fatalf("a storage the token may write backups to: %v", err)
	}
	if err := c.CheckStorage(ctx, "pve1", "nas", "backup", "storage"); AsPreflight(err) == nil {
		t.Fatalf("a storage the token may not see: %v", err)
	}
}
