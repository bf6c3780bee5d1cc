package pve

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/proxmoxapp/terraform-provider-proxmoxapp/internal/pvesim"
)

// Several backups waiting on one node share the node's task-list polls: no
// per-task status poll, and far fewer looks than waits × polls.
func TestTaskWatchSharesOneListPerNode(t *testing.T) {
	cfg := pvesim.DefaultConfig()
	for i := 0; i < 6; i++ {
		cfg.Guests = append(cfg.Guests, pvesim.GuestConfig{VMID: 300 + i, Type: "lxc", Node: "pve1", Name: "ct", Files: map[string]string{"etc/hostname": "ct\n"}})
	}
	sim, err := pvesim.Start(pvesim.Options{DataDir: t.TempDir(), Config: cfg, Throughput: 1 << 30, TaskOverhead: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	c, err := NewClient(context.Background(), Config{Endpoint: sim.Endpoint(), APIToken: sim.APIToken(), CACertPEM: sim.CAPEM()})
	if err != nil {
		t.Fatal(err)
	}
	sim.ResetCounters()
	var wg sync.WaitGroup
	errs := make(chan error, 6)
	for i := 0; i < 6; i++ {
		wg.Add(1)
		go func(vmid int) {
			defer wg.Done()
			if _, err := c.CreateBackup(testCtx(t), BackupOptions{VMID: vmid, Storage: "local"}, nil); err != nil {
				errs <- err
			}
		}(300 + i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	n := sim.Counters()
	// six 0.3 s tasks run one after another on the node (its vzdump lock):
	// about 2 s of waiting, looked at every 0.48 s by one poller
	if s := n["GET /nodes/{node}/tasks/{upid}/status"]; s != 0 {
		t.Errorf("%d per-task status polls, want 0 (the node's task list answers for all)", s)
	}
	if l := n["GET /nodes/{node}/tasks"]; l == 0 || l > 12 {
		t.Errorf("%d task-list looks for six waits of ~2 s, want 1–12", l)
	}
}

// A node whose task list cannot be read (here: not implemented, as on a
// proxy that filters it) leaves each wait to poll its own task's status.
func TestTaskWatchFallsBackToStatusPolls(t *testing.T) {
	sim, c := startSim(t)
	sim.FailRequests("GET", "/nodes/{node}/tasks", 501, "Method not implemented", 1000)
	sim.SetTaskOverhead(2500 * time.Millisecond) // past the first list look, whatever the log says
	res := mustBackup(t, c, BackupOptions{VMID: 100, Storage: "local"})
	if !strings.HasPrefix(res.Backup.VolID, "local:backup/vzdump-lxc-100-") {
		t.Fatalf("backup %q", res.Backup.VolID)
	}
	if s := sim.Counters()["GET /nodes/{node}/tasks/{upid}/status"]; s == 0 {
		t.Errorf("no status polls: the wait did not fall back to them")
	}
}

// A task alone on its node is watched through its log; its TASK line ends
// the wait, with the same result as the status would give.
func TestTaskWatchEndsOnTaskLine(t *testing.T) {
	sim, c := startSim(t)
	sim.FailTask("vzdump", 100, "tar: unexpected end of archive")
	_, err := c.CreateBackup(testCtx(t), BackupOptions{VMID: 100, Storage: "local"}, nil)
	var te *TaskError
	if !asTaskError(err, &te) || te.ExitStatus != "job errors" || !strings.Contains(strings.Join(te.LogTail, "\n"), "unexpected end of archive") {
		t.Fatalf("got %v, want the task's failure", err)
	}
}

func asTaskError(err error, te **TaskError) bool {
	for err != nil {
		if e, ok := err.(*TaskError); ok {
			*te = e
			return true
		}
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return false
		}
		err = u.Unwrap()
	}
	return false
}
