package pve

import (
	"testing"
)

// TestLookupsShared: the plan checks and the backup that follows them read
// the cluster's layout (guests and storages) once; a restore (which can create a guest) makes the next
// lookup ask again; a guest's status is never answered from the shared copy.
func TestLookupsShared(t *testing.T) {
	t.Parallel()
	sim, c := startSim(t)
	ctx := testCtx(t)
	sim.ResetCounters()
	if _, err := c.CheckGuest(ctx, 100, ""); err != nil {
		t.Fatal(err)
	}
	if err := c.CheckStorage(ctx, "pve1", "local", "backup", "storage"); err != nil {
		t.Fatal(err)
	}
	if err := c.CheckStorage(ctx, "pve1", "local", "backup", "storage"); err != nil {
		t.Fatal(err)
	}
	b := mustBackup(t, c, BackupOptions{VMID: 100, Storage: "local"}).Backup
	got := sim.Counters()
	if got["GET /cluster/resources"] != 1 || got["GET /nodes/{node}/storage"] != 0 {
		t.Fatalf("lookups not shared: %v", got)
	}
	if _, err := c.Restore(ctx, RestoreOptions{VMID: 300, Backup: b.VolID}, nil); err != nil {
		t.Fatal(err)
	}
	sim.ResetCounters()
	g, err := c.CheckGuest(ctx, 300, "")
	if err != nil || g.Node != "pve1" {
		t.Fatalf("the restored guest 300: %+v %v", g, err)
	}
	if n := sim.Counters()["GET /cluster/resources"]; n != 1 {
		t.Fatalf("after a restore the guest list was not asked again (%d requests)", n)
	}
}
