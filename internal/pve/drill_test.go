package pve

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/proxmoxapp/terraform-provider-proxmoxapp/internal/pvesim"
)

// guestIDs lists the vmids the simulator has.
func guestIDs(t *testing.T, c *Client) map[int]string {
	t.Helper()
	var res []drillGuest
	if err := c.get(testCtx(t), "/cluster/resources", nil, &res); err != nil {
		t.Fatal(err)
	}
	out := map[int]string{}
	for _, g := range res {
		if g.Type == GuestTypeLXC || g.Type == GuestTypeQEMU {
			out[int(g.VMID)] = g.Status
		}
	}
	return out
}

func assertOnlyDefaultGuests(t *testing.T, sim *pvesim.Sim, c *Client) {
	t.Helper()
	ids := guestIDs(t, c)
	if len(ids) != 3 || ids[100] != "running" || ids[101] != "stopped" || ids[200] != "stopped" {
		t.Errorf("guests after the drill: %v", ids)
	}
	if _, err := os.Stat(sim.GuestRootfs(102)); !os.IsNotExist(err) {
		t.Errorf("the scratch guest's rootfs is still there: %v", err)
	}
}

// lineWatcher calls f once for the first progress line containing sub.
func lineWatcher(sub string, f func()) ProgressFunc {
	var once sync.Once
	return func(l string) {
		if strings.Contains(l, sub) {
			once.Do(f)
		}
	}
}

func TestDrillPasses(t *testing.T) {
	t.Parallel()
	sim, c := startSim(t)
	ctx := testCtx(t)
	b := mustBackup(t, c, BackupOptions{VMID: 100, Storage: "local", Compress: "zstd"})
	confBefore, _ := sim.GuestConfigText(100)
	var during string
	res, err := c.Drill(ctx, DrillOptions{Backup: b.Backup.VolID, Settle: 300 * time.Millisecond},
		lineWatcher("is running; watching", func() { during, _ = sim.GuestConfigText(102) }))
	if err != nil {
		t.Fatal(err)
	}
	if !res.Passed || res.FailedStep != "" || res.VMID != 102 || res.Node != "pve1" || res.GuestType != GuestTypeLXC {
		t.Fatalf("result %+v", res)
	}
	if res.RestoreDuration <= 0 || res.TimeToRunning < res.RestoreDuration || res.RestoredBytes <= 0 {
		t.Errorf("timings/size %+v", res)
	}
	if !strings.Contains(res.TaskID, ":vzrestore:102:") {
		t.Errorf("task %s", res.TaskID)
	}
	// while it ran: tagged, marked, NIC down, a new MAC
	if !strings.Contains(during, "tags: "+DrillTag) || !strings.Contains(during, drillMarker+b.Backup.VolID) ||
		!strings.Contains(during, "link_down=1") {
		t.Errorf("scratch config during the drill:\n%s", during)
	}
	if confAfter, _ := sim.GuestConfigText(100); confAfter != confBefore {
		t.Errorf("the original changed:\n%s\n---\n%s", confBefore, confAfter)
	}
	assertOnlyDefaultGuests(t, sim, c)
}

func TestDrillConnectNetworkKeepsNIC(t *testing.T) {
	t.Parallel()
	sim, c := startSim(t)
	b := mustBackup(t, c, BackupOptions{VMID: 100, Storage: "local"})
	var during string
	res, err := c.Drill(testCtx(t), DrillOptions{Backup: b.Backup.VolID, VMID: 555, ConnectNetwork: true, Settle: 50 * time.Millisecond},
		lineWatcher("is running; watching", func() { during, _ = sim.GuestConfigText(555) }))
	if err != nil || !res.Passed || res.VMID != 555 {
		t.Fatalf("%+v %v", res, err)
	}
	if strings.Contains(during, "link_down") || !strings.Contains(during, "net0: ") {
		t.Errorf("config:\n%s", during)
	}
	if _, ok := sim.GuestState(555); ok {
		t.Error("scratch guest 555 left behind")
	}
}

func TestDrillStartFails(t *testing.T) {
	t.Parallel()
	sim, c := startSim(t)
	b := mustBackup(t, c, BackupOptions{VMID: 100, Storage: "local"})
	sim.FailTask("vzstart", 0, "startup for container '102' failed")
	res, err := c.Drill(testCtx(t), DrillOptions{Backup: b.Backup.VolID, Settle: time.Second}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Passed || res.FailedStep != DrillStepStart || !strings.Contains(res.Reason, "startup for container '102' failed") {
		t.Errorf("result %+v", res)
	}
	if res.TimeToRunning != 0 || res.RestoreDuration <= 0 {
		t.Errorf("timings %+v", res)
	}
	assertOnlyDefaultGuests(t, sim, c)
}

func TestDrillGuestStopsWhileSettling(t *testing.T) {
	t.Parallel()
	sim, c := startSim(t)
	b := mustBackup(t, c, BackupOptions{VMID: 100, Storage: "local"})
	crash := func() {
		go func() { _ = c.powerAction(context.Background(), "pve1", 102, GuestTypeLXC, "stop", nil, nil) }()
	}
	res, err := c.Drill(testCtx(t), DrillOptions{Backup: b.Backup.VolID, Settle: 3 * time.Second}, lineWatcher("is running; watching", crash))
	if err != nil {
		t.Fatal(err)
	}
	if res.Passed || res.FailedStep != DrillStepSettle || !strings.Contains(res.Reason, "scratch guest 102 was stopped") {
		t.Errorf("result %+v", res)
	}
	assertOnlyDefaultGuests(t, sim, c)
}

func TestDrillRestoreFails(t *testing.T) {
	t.Parallel()
	sim, c := startSim(t)
	b := mustBackup(t, c, BackupOptions{VMID: 100, Storage: "local"})
	sim.FailTask("vzrestore", 0, "short read")
	res, err := c.Drill(testCtx(t), DrillOptions{Backup: b.Backup.VolID}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Passed || res.FailedStep != DrillStepRestore || !strings.Contains(res.Reason, "unable to restore CT 102 - short read") {
		t.Errorf("result %+v", res)
	}
	assertOnlyDefaultGuests(t, sim, c)
	// a backup that is gone is a failed drill too
	res, err = c.Drill(testCtx(t), DrillOptions{Backup: "local:backup/vzdump-lxc-100-2020_01_01-00_00_00.tar.zst", Node: "pve1"}, nil)
	if err != nil || res.Passed || res.FailedStep != DrillStepCheckBackup || res.VMID != 0 {
		t.Errorf("missing backup: %+v %v", res, err)
	}
}

func TestDrillRefusesExistingOrOriginalVMID(t *testing.T) {
	t.Parallel()
	sim, c := startSim(t)
	b := mustBackup(t, c, BackupOptions{VMID: 100, Storage: "local"})
	confBefore, _ := sim.GuestConfigText(101)
	_, err := c.Drill(testCtx(t), DrillOptions{Backup: b.Backup.VolID, VMID: 101}, nil)
	if !IsDrillRefused(err) || !strings.Contains(err.Error(), "guest 101 already exists (lxc on node pve2, stopped)") {
		t.Errorf("existing vmid: %v", err)
	}
	_, err = c.Drill(testCtx(t), DrillOptions{Backup: b.Backup.VolID, VMID: 100}, nil)
	if !IsDrillRefused(err) || !strings.Contains(err.Error(), "vmid 100 is the guest the backup was taken of") {
		t.Errorf("original vmid: %v", err)
	}
	if after, _ := sim.GuestConfigText(101); after != confBefore {
		t.Error("guest 101 was touched")
	}
	assertOnlyDefaultGuests(t, sim, c)
}

// An apply interrupted while the restore runs stops the restore and leaves no guest.
func TestDrillCancelledDuringRestore(t *testing.T) {
	t.Parallel()
	sim, c := startSim(t)
	b := mustBackup(t, c, BackupOptions{VMID: 100, Storage: "local"})
	sim.SetThroughput(2 << 10) // a slow restore
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	res, err := c.Drill(ctx, DrillOptions{Backup: b.Backup.VolID}, lineWatcher("restoring '", cancel))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("%+v %v", res, err)
	}
	assertOnlyDefaultGuests(t, sim, c)
}

// The scratch guest cannot be destroyed: an error naming it; a later
// drill on the same vmid removes it first.
func TestDrillCleanupFailsThenRerunCleansUp(t *testing.T) {
	t.Parallel()
	sim, c := startSim(t)
	b := mustBackup(t, c, BackupOptions{VMID: 100, Storage: "local"})
	sim.FailTask("vzdestroy", 0, "zfs error: dataset is busy")
	res, err := c.Drill(testCtx(t), DrillOptions{Backup: b.Backup.VolID, VMID: 900, Settle: 50 * time.Millisecond}, nil)
	var ce *DrillCleanupError
	if !errors.As(err, &ce) || ce.VMID != 900 || !strings.Contains(err.Error(), "dataset is busy") || res == nil || !res.Passed {
		t.Fatalf("%+v %v", res, err)
	}
	if g, ok := sim.GuestState(900); !ok || g.Status != "stopped" {
		t.Fatalf("left behind: %+v %v", g, ok)
	}
	res, err = c.Drill(testCtx(t), DrillOptions{Backup: b.Backup.VolID, VMID: 900, Settle: 50 * time.Millisecond}, nil)
	if err != nil || !res.Passed || len(res.LeftoversRemoved) != 1 || res.LeftoversRemoved[0] != 900 {
		t.Fatalf("rerun %+v %v", res, err)
	}
	if _, ok := sim.GuestState(900); ok {
		t.Error("900 still there")
	}
}

// Leftovers: a marked guest past its deadline goes; one within its deadline
// (a drill running now) and a tagged guest without the marker stay.
func TestDrillRemovesOnlyExpiredLeftovers(t *testing.T) {
	t.Parallel()
	sim, c := startSim(t)
	ctx := testCtx(t)
	b := mustBackup(t, c, BackupOptions{VMID: 100, Storage: "local"})
	plant := func(vmid int, desc string) {
		var upid string
		err := c.post(ctx, "/nodes/pve1/lxc", map[string]any{"vmid": vmid, "ostemplate": b.Backup.VolID, "restore": true,
			"storage": "local-lvm", "tags": DrillTag, "description": desc}, &upid)
		if err == nil {
			_, err = c.waitTask(ctx, upid, nil)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	past := time.Now().Add(-time.Minute).UTC().Format(time.RFC3339)
	future := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	plant(700, drillMarker+b.Backup.VolID+drillDeadlineMarker+past)
	plant(701, drillMarker+b.Backup.VolID+drillDeadlineMarker+future)
	plant(702, "my own guest that happens to carry the tag")
	res, err := c.Drill(ctx, DrillOptions{Backup: b.Backup.VolID, Settle: 50 * time.Millisecond}, nil)
	if err != nil || !res.Passed || fmt.Sprint(res.LeftoversRemoved) != "[700]" {
		t.Fatalf("%+v %v", res, err)
	}
	for vmid, want := range map[int]bool{700: false, 701: true, 702: true} {
		if _, ok := sim.GuestState(vmid); ok != want {
			t.Errorf("guest %d present=%v, want %v", vmid, ok, want)
		}
	}
	// the resource's delete path refuses a guest that is not a scratch guest
	if err := c.DestroyDrillScratch(ctx, 702, nil); err == nil || !strings.Contains(err.Error(), "is not a restore drill's scratch guest") {
		t.Errorf("702: %v", err)
	}
	if err := c.DestroyDrillScratch(ctx, 701, nil); err != nil {
		t.Errorf("701: %v", err)
	}
	if _, ok := sim.GuestState(701); ok {
		t.Error("701 still there")
	}
}

func TestDrillQemu(t *testing.T) {
	t.Parallel()
	sim, c := startSim(t)
	b := mustBackup(t, c, BackupOptions{VMID: 200, Storage: "local"})
	res, err := c.Drill(testCtx(t), DrillOptions{Backup: b.Backup.VolID, Settle: 50 * time.Millisecond}, nil)
	if err != nil || !res.Passed || res.GuestType != GuestTypeQEMU || res.RestoredBytes != 16*1024 {
		t.Fatalf("%+v %v", res, err)
	}
	if _, err := os.Stat(sim.GuestDisk(102)); !os.IsNotExist(err) {
		t.Error("scratch disk left behind")
	}
	if g, _ := sim.GuestState(200); g.Status != "stopped" {
		t.Errorf("original VM is %s", g.Status)
	}
}

// With the original guest gone, nextid offers its vmid; the drill skips it.
func TestDrillNeverUsesTheOriginalVMID(t *testing.T) {
	t.Parallel()
	sim, c := startSim(t)
	ctx := testCtx(t)
	b := mustBackup(t, c, BackupOptions{VMID: 100, Storage: "local"})
	if err := c.powerAction(ctx, "pve1", 100, GuestTypeLXC, "stop", nil, nil); err != nil {
		t.Fatal(err)
	}
	if err := c.destroyScratch(ctx, "pve1", 100, GuestTypeLXC, nil); err != nil {
		t.Fatal(err)
	}
	if id, _ := c.NextVMID(ctx); id != 100 {
		t.Fatalf("nextid %d", id)
	}
	res, err := c.Drill(ctx, DrillOptions{Backup: b.Backup.VolID, Settle: 10 * time.Millisecond}, nil)
	if err != nil || !res.Passed || res.VMID != 102 {
		t.Fatalf("%+v %v", res, err)
	}
	if _, ok := sim.GuestState(100); ok {
		t.Error("the drill created guest 100")
	}
}

// A guest that is not running within start_timeout fails the drill at "start".
func TestDrillStartTimeout(t *testing.T) {
	t.Parallel()
	sim, c := startSim(t)
	b := mustBackup(t, c, BackupOptions{VMID: 100, Storage: "local"})
	res, err := c.Drill(testCtx(t), DrillOptions{Backup: b.Backup.VolID, StartTimeout: 5 * time.Millisecond}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Passed || res.FailedStep != DrillStepStart || !strings.Contains(res.Reason, "scratch guest 102 was not running 5ms after the start request (start_timeout)") {
		t.Errorf("%+v", res)
	}
	assertOnlyDefaultGuests(t, sim, c)
}
