// Package acctest is the harness of the acceptance tests: it starts the PVE
// simulator in-process, or points the tests at a real lab node when
// PROXMOX_VE_ENDPOINT is set (acctest.go); it offers state checks on what a
// user would find outside Terraform's state, on the storage, in task logs
// and in the guests (statechecks.go, guest.go); and it drives a real
// Terraform binary against the provider served in-process, for what
// terraform-plugin-testing cannot do: interrupt a run, or use Terraform 1.14
// for actions and terraform query (terraform.go, ui.go).
package acctest

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/proxmoxapp/terraform-provider-proxmoxapp/internal/pve"
	"github.com/proxmoxapp/terraform-provider-proxmoxapp/internal/pvesim"
)

// Env is one test's Proxmox VE: a private simulator, or the lab node.
type Env struct {
	// Sim is nil against a real node.
	Sim *pvesim.Sim
	// VMID is the LXC guest the tests back up (simulator: 100 on pve1).
	VMID int
	// Storage is the backup storage the tests write to.
	Storage string
	// Node of VMID ("" against a real node: let the provider find it).
	Node string
	// opts started Sim (MigrateGuest starts it again).
	opts pvesim.Options
}

// liveNode serializes the tests that share the lab node's test guest.
var liveNode sync.Mutex

// Live reports whether the tests run against a real node.
func Live() bool { return os.Getenv("PROXMOX_VE_ENDPOINT") != "" }

// New returns the environment for one test. Against the simulator each test
// gets its own instance, so tests run in parallel without sharing guests or
// the node-wide vzdump lock.
func New(t *testing.T) *Env { return NewWithConfig(t, nil) }

// NewWithConfig is New with a simulator inventory of the test's own (nil:
// the default one). Against a real node the configuration is ignored.
func NewWithConfig(t *testing.T, cfg *pvesim.Config) *Env {
	t.Helper()
	return newEnv(t, cfg, 50*time.Millisecond)
}

// NewSlow is NewWithConfig with a fixed time added to every vzdump and
// restore task, for tests that act while a task runs.
func NewSlow(t *testing.T, cfg *pvesim.Config, taskTime time.Duration) *Env {
	t.Helper()
	return newEnv(t, cfg, taskTime)
}

func newEnv(t *testing.T, cfg *pvesim.Config, taskOverhead time.Duration) *Env {
	t.Helper()
	if os.Getenv("TF_ACC") == "" {
		t.Skip("acceptance tests need TF_ACC=1 (make test sets it)")
	}
	if Live() {
		vmid, err := strconv.Atoi(os.Getenv("PROXMOXAPP_TEST_VMID"))
		storage := os.Getenv("PROXMOXAPP_TEST_STORAGE")
		if err != nil || storage == "" {
			t.Fatal("against a real node set PROXMOXAPP_TEST_VMID (an LXC guest that may be backed up) and PROXMOXAPP_TEST_STORAGE (a backup storage)")
		}
		// One guest on one node: tests take turns, or a restore in one would
		// lock the guest under another's backup.
		liveNode.Lock()
		t.Cleanup(liveNode.Unlock)
		return &Env{VMID: vmid, Storage: storage}
	}
	opts := pvesim.Options{
		DataDir: t.TempDir(),
		Config:  cfg,
		// Fast enough for a quick suite, slow enough that every task is
		// really waited for.
		Throughput:   512 << 20,
		TaskOverhead: taskOverhead,
	}
	sim, err := pvesim.Start(opts)
	if err != nil {
		t.Fatalf("starting the PVE simulator: %v", err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	return &Env{Sim: sim, VMID: 100, Storage: "local", Node: "pve1", opts: opts}
}

// RequireSim skips tests that need the simulator's faults or inventory.
func (e *Env) RequireSim(t *testing.T) {
	t.Helper()
	if e.Sim == nil {
		t.Skip("needs the simulator (faults or its fixed inventory); not run against a real node")
	}
}

// RequireDestructive skips tests that would overwrite a real guest.
func (e *Env) RequireDestructive(t *testing.T) {
	t.Helper()
	if e.Sim == nil && os.Getenv("PROXMOXAPP_TEST_DESTRUCTIVE") != "1" {
		t.Skip("overwrites guest data; set PROXMOXAPP_TEST_DESTRUCTIVE=1 to run against a real node")
	}
}

// ProviderConfig is the provider block for this environment. Credentials go
// into the configuration, not the process environment, so parallel tests can
// each talk to their own simulator.
func (e *Env) ProviderConfig() string {
	if e.Sim == nil {
		return "provider \"proxmoxapp\" {}\n"
	}
	return e.providerBlock(e.Sim.APIToken())
}

// ReadOnlyProviderConfig configures the provider with the simulator's
// read-only token.
func (e *Env) ReadOnlyProviderConfig() string { return e.providerBlock(e.Sim.ReadOnlyToken()) }

func (e *Env) providerBlock(token string) string {
	return fmt.Sprintf(`provider "proxmoxapp" {
  endpoint  = %q
  api_token = %q
  ca_cert   = <<-EOT
%s
  EOT
}
`, e.Sim.Endpoint(), token, strings.TrimSpace(string(e.Sim.CAPEM())))
}

// ArchivePath is where the simulator keeps a dir-storage backup's file.
func (e *Env) ArchivePath(node, storage, filename string) string {
	return e.Sim.StorageDumpDir(node, storage) + "/" + filename
}

// Client is a PVE client for the test's own checks and clean-up, talking to
// the same simulator or node as the provider.
func (e *Env) Client(t *testing.T) *pve.Client {
	t.Helper()
	cfg := pve.Config{UserAgent: "proxmoxapp-acctest"}
	if e.Sim != nil {
		cfg.Endpoint, cfg.APIToken, cfg.CACertPEM = e.Sim.Endpoint(), e.Sim.APIToken(), e.Sim.CAPEM()
	} else {
		cfg.Endpoint = os.Getenv("PROXMOX_VE_ENDPOINT")
		cfg.APIToken = os.Getenv("PROXMOX_VE_API_TOKEN")
		cfg.Username = os.Getenv("PROXMOX_VE_USERNAME")
		cfg.Password = os.Getenv("PROXMOX_VE_PASSWORD")
		cfg.Insecure, _ = strconv.ParseBool(os.Getenv("PROXMOX_VE_INSECURE"))
		if ca := os.Getenv("PROXMOX_VE_CA_CERT"); strings.Contains(ca, "-----BEGIN") {
			cfg.CACertPEM = []byte(ca)
		} else if ca != "" {
			pem, err := os.ReadFile(ca)
			if err != nil {
				t.Fatalf("PROXMOX_VE_CA_CERT: %v", err)
			}
			cfg.CACertPEM = pem
		}
	}
	c, err := pve.NewClient(context.Background(), cfg)
	if err != nil {
		t.Fatalf("PVE client for the test: %v", err)
	}
	return c
}

// TakeBackup backs a guest up outside Terraform, as someone in the PVE GUI
// would, with client c, and waits past the archive's second so that the
// next backup of the guest gets another name.
func TakeBackup(t *testing.T, c *pve.Client, vmid int, storage, notes string, protected bool) pve.Backup {
	t.Helper()
	res, err := c.CreateBackup(context.Background(), pve.BackupOptions{
		VMID: vmid, Storage: storage, Mode: "snapshot", Compress: "zstd", NotesTemplate: notes, Protected: protected,
	}, nil)
	if err != nil {
		t.Fatalf("backup of guest %d to %s: %v", vmid, storage, err)
	}
	// Archive names have a one-second resolution.
	time.Sleep(time.Until(res.Backup.CreatedAt.Add(time.Second)))
	return res.Backup
}
