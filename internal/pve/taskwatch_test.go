package pve

import (
	"os"
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
	sim, c := startSimWith(t, pvesim.Options{Config: cfg, Throughput: 1 << 30, TaskOverhead: 300 * time.Millisecond})
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

// looksUntil follows lookInterval from the first look (at 0.1 s) to the first
// look at or after end, and returns how many looks it took and how late the
// last one came.
func looksUntil(end, expected, base time.Duration) (looks int, late time.Duration) {
	at := 100 * time.Millisecond
	for looks = 1; at < end; looks++ {
		at += lookInterval(at, expected, base)
	}
	return looks, at - end
}

// The schedule of a task alone on its node, at the default base interval:
// young tasks are looked at every 0.3 s, then every 0.48 s; with the guest's
// last duration, the looks thin out before it and come every 0.2 s around it.
// The look counts keep within issue 12's request budget: twice a 1 s
// poller's requests (about 2 × (D + 4) for a D-second task), of which four go
// to the two configure checks, the POST and the listing; a wait without a
// useful history costs a little more, one with it much less.
func TestLookInterval(t *testing.T) {
	base := defaultTaskPollMax
	for _, c := range []struct {
		age, expected, want time.Duration
	}{
		{time.Second, 0, 300 * time.Millisecond},
		{2 * time.Second, 0, base},
		{time.Second, time.Second, 300 * time.Millisecond}, // too short to plan by
		{time.Second, 30 * time.Second, 1920 * time.Millisecond},
		{26 * time.Second, 30 * time.Second, time.Second}, // lands on the window's start
		{26900 * time.Millisecond, 30 * time.Second, 200 * time.Millisecond},
		{29 * time.Second, 30 * time.Second, 200 * time.Millisecond},
		{34 * time.Second, 30 * time.Second, base}, // longer than expected
		{time.Second, 5 * time.Second, time.Second},
		{3500 * time.Millisecond, 5 * time.Second, 500 * time.Millisecond},
		{4500 * time.Millisecond, 5 * time.Second, 200 * time.Millisecond},
		{time.Hour, 2 * time.Hour, 4 * base},
		{7100 * time.Second, 2 * time.Hour, base}, // a long window is looked at every base
	} {
		if got := lookInterval(c.age, c.expected, base); got != c.want {
			t.Errorf("age %s, expected %s: %s, want %s", c.age, c.expected, got, c.want)
		}
	}
	// what the schedule costs and how late it notices, for tasks that end
	// around their guest's last duration, and for one that ends much later
	for _, c := range []struct {
		end, expected time.Duration
		maxLooks      int
		maxLate       time.Duration
	}{
		{1300 * time.Millisecond, 0, 5, 300 * time.Millisecond},
		{5300 * time.Millisecond, 0, 14, base},
		{5300 * time.Millisecond, 5 * time.Second, 12, 200 * time.Millisecond},
		{30500 * time.Millisecond, 31 * time.Second, 30, 200 * time.Millisecond},
		{29 * time.Second, 30 * time.Second, 26, 200 * time.Millisecond},
		{30500 * time.Millisecond, 5 * time.Second, 67, base},
		{30500 * time.Millisecond, 0, 67, base},
	} {
		looks, late := looksUntil(c.end, c.expected, base)
		if looks > c.maxLooks || late > c.maxLate {
			t.Errorf("a task of %s expected to take %s: %d looks, noticed %s late; want at most %d looks and %s", c.end, c.expected, looks, late, c.maxLooks, c.maxLate)
		}
	}
}

func TestExpectedDuration(t *testing.T) {
	items := []taskListItem{
		{UPID: "own", Status: "RUNNING", StartTime: 100},
		{UPID: "failed", Status: "job errors", StartTime: 50, EndTime: 52},
		{UPID: "warned", Status: "WARNINGS: 1", StartTime: 10, EndTime: 41},
		{UPID: "ok", Status: "OK", StartTime: 1, EndTime: 5},
	}
	if d := expectedDuration(items, "own"); d != 31*time.Second {
		t.Errorf("expected %s, want 31s (the newest successful task, warnings included)", d)
	}
	if d := expectedDuration(items[:2], "own"); d != 0 {
		t.Errorf("without a successful task: %s", d)
	}
}

// The first look at a task alone on its node asks the node's task list for
// the guest's tasks of that type, and reads the last one's duration.
func TestTaskWatchReadsTheGuestsHistory(t *testing.T) {
	t.Parallel()
	sim, c := startSimWith(t, pvesim.Options{Throughput: 1 << 30, TaskOverhead: 2200 * time.Millisecond})
	ctx := testCtx(t)
	first := mustBackup(t, c, BackupOptions{VMID: 100, Storage: "local"})
	time.Sleep(time.Until(first.Backup.CreatedAt.Add(time.Second)))
	sim.Observe(true)
	second := mustBackup(t, c, BackupOptions{VMID: 100, Storage: "local"})
	var history []string
	for _, r := range sim.Requests() {
		if r.Route == "/nodes/{node}/tasks" && strings.Contains(r.Query, "vmid=100") && strings.Contains(r.Query, "typefilter=vzdump") {
			history = append(history, r.Query)
		}
	}
	if len(history) != 1 {
		t.Fatalf("history looks during the second backup: %v, want one", history)
	}
	upid, err := ParseUPID(second.UPID)
	if err != nil {
		t.Fatal(err)
	}
	items, err := c.taskHistory(ctx, "pve1", upid)
	if err != nil {
		t.Fatal(err)
	}
	if d := expectedDuration(items, second.UPID); d < 2*time.Second || d > 4*time.Second {
		t.Fatalf("the second backup's history gives %s, want about the first's 2.2 s: %+v", d, items)
	}
}

// A first look that fails costs the wait its history, not its result. An
// answer of 500 makes the wait ask for its task's status instead; a dropped
// connection is retried by the client. Either way the backup is recorded.
func TestTaskWatchHistoryLookFails(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		fault string
		want  map[string]int // at least these requests
	}{
		{"500", map[string]int{"GET /nodes/{node}/tasks": 1, "GET /nodes/{node}/tasks/{upid}/status": 1}},
		{"drop", map[string]int{"GET /nodes/{node}/tasks": 2}},
	} {
		sim, client := startSimWith(t, pvesim.Options{Throughput: 1 << 30, TaskOverhead: 500 * time.Millisecond})
		if c.fault == "500" {
			sim.FailRequests("GET", "/nodes/{node}/tasks", 500, "task index unreadable", 1)
		} else {
			sim.DropConnections("GET", "/nodes/{node}/tasks", 1)
		}
		sim.ResetCounters()
		res := mustBackup(t, client, BackupOptions{VMID: 100, Storage: "local"})
		got := sim.Counters()
		for route, n := range c.want {
			if got[route] < n {
				t.Errorf("%s: %d × %s, want at least %d (all: %v)", c.fault, got[route], route, n, got)
			}
		}
		if names, _ := os.ReadDir(sim.StorageDumpDir("pve1", "local")); !containsName(names, res.Backup.Filename) {
			t.Errorf("%s: %s is not on the storage", c.fault, res.Backup.Filename)
		}
	}
}

func containsName(entries []os.DirEntry, name string) bool {
	for _, e := range entries {
		if e.Name() == name {
			return true
		}
	}
	return false
}
