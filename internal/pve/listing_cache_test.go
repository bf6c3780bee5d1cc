package pve

import (
	"sync"
	"testing"
)

// Refreshes share one listing per storage, and the client's own writes are
// seen at once: notes set, protection changed, archive deleted.
func TestRefreshBackupSharesListingAndSeesOwnWrites(t *testing.T) {
	sim, c := startSim(t)
	ctx := testCtx(t)
	a := mustBackup(t, c, BackupOptions{VMID: 100, Storage: "local"}).Backup
	b := mustBackup(t, c, BackupOptions{VMID: 100, Storage: "local"}).Backup

	sim.ResetCounters()
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func(volid string) {
			defer wg.Done()
			if _, err := c.RefreshBackup(ctx, "pve1", volid); err != nil {
				t.Error(err)
			}
		}([]string{a.VolID, b.VolID}[i%2])
	}
	wg.Wait()
	if n := sim.Counters()["GET /nodes/{node}/storage/{storage}/content"]; n != 1 {
		t.Fatalf("20 refreshes of 2 backups on one storage listed it %d times, want 1", n)
	}

	notes := "edited by terraform"
	if err := c.UpdateBackup(ctx, "pve1", a.VolID, &notes, ptr(true)); err != nil {
		t.Fatal(err)
	}
	got, err := c.RefreshBackup(ctx, "pve1", a.VolID)
	if err != nil || got.Notes != notes || !got.Protected {
		t.Fatalf("after the update: %+v, %v; want the new notes and protected", got, err)
	}
	if err := c.DeleteBackup(ctx, "pve1", b.VolID, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := c.RefreshBackup(ctx, "pve1", b.VolID); !IsNotFound(err) {
		t.Fatalf("after the delete: %v, want not found", err)
	}
}
