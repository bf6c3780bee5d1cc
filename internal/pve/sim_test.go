package pve

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/proxmoxapp/terraform-provider-proxmoxapp/internal/pvesim"
)

// startSim runs a simulator of its own for one test and a client for it.
func startSim(t *testing.T) (*pvesim.Sim, *Client) {
	t.Helper()
	sim, c := startSimWith(t, pvesim.Options{Throughput: 1 << 30})
	c.pollMin, c.pollMax = 20*time.Millisecond, 200*time.Millisecond
	return sim, c
}

// startSimWith starts a simulator with opts (in a temporary directory) and a
// client with the provider's default polling, as root's API token.
func startSimWith(t *testing.T, opts pvesim.Options) (*pvesim.Sim, *Client) {
	t.Helper()
	opts.DataDir = t.TempDir()
	sim, err := pvesim.Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	c, err := NewClient(context.Background(), Config{Endpoint: sim.Endpoint(), APIToken: sim.APIToken(), CACertPEM: sim.CAPEM()})
	if err != nil {
		t.Fatal(err)
	}
	return sim, c
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func mustBackup(t *testing.T, c *Client, opts BackupOptions) *BackupResult {
	t.Helper()
	res, err := c.CreateBackup(testCtx(t), opts, nil)
	if err != nil {
		t.Fatalf("backup %+v: %v", opts, err)
	}
	return res
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func TestSimVersionAndGuests(t *testing.T) {
	t.Parallel()
	_, c := startSim(t)
	ctx := testCtx(t)
	v, err := c.Version(ctx)
	if err != nil || v == "" {
		t.Fatalf("version %q %v", v, err)
	}
	g, err := c.FindGuest(ctx, 101)
	if err != nil || g.Node != "pve2" || g.Type != GuestTypeLXC || g.Status != "stopped" || g.Name != "db" {
		t.Fatalf("101: %+v %v", g, err)
	}
	g, err = c.FindGuest(ctx, 200)
	if err != nil || g.Node != "pve1" || g.Type != GuestTypeQEMU {
		t.Fatalf("200: %+v %v", g, err)
	}
	if _, err := c.FindGuest(ctx, 999); !IsNotFound(err) {
		t.Fatalf("999: %v", err)
	}
	st, err := c.GuestStatus(ctx, "pve1", 100, GuestTypeLXC)
	if err != nil || st.Status != "running" {
		t.Fatalf("status 100: %+v %v", st, err)
	}
	if _, err := c.GuestStatus(ctx, "pve1", 101, GuestTypeLXC); !IsNotFound(err) {
		t.Fatalf("101 on the wrong node: %v", err)
	}
	// the CA is pinned: without it, TLS verification fails
	c2, err := NewClient(ctx, Config{Endpoint: c.base, APIToken: testToken})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c2.Version(ctx); err == nil || strings.Contains(err.Error(), "0b8b5f2c-1111") {
		t.Fatalf("unpinned: %v", err)
	}
}

func TestSimBackupLXCToStorages(t *testing.T) {
	t.Parallel()
	sim, c := startSim(t)
	for _, storage := range []string{"local", "nas", "pbs"} {
		var lines []string
		res, err := c.CreateBackup(testCtx(t), BackupOptions{VMID: 100, Storage: storage, Compress: "zstd", NotesTemplate: "{{guestname}} backup"}, func(l string) { lines = append(lines, l) })
		if err != nil {
			t.Fatalf("%s: %v", storage, err)
		}
		b := res.Backup
		if b.Storage != storage || b.VMID != 100 || b.GuestType != GuestTypeLXC || b.Node != "pve1" || b.Size <= 0 || b.Notes != "web backup" || !strings.HasPrefix(res.UPID, "UPID:pve1:") {
			t.Fatalf("%s: %+v", storage, res)
		}
		if len(lines) == 0 || lines[len(lines)-1] != "TASK OK" {
			t.Fatalf("%s: progress %q", storage, lines)
		}
		bn, err := ParseBackupVolID(b.VolID)
		if err != nil {
			t.Fatal(err)
		}
		if storage == "pbs" {
			if b.Format != "pbs-ct" || !bn.PBS {
				t.Fatalf("pbs: %+v", b)
			}
		} else {
			if b.Format != "tar.zst" {
				t.Fatalf("%s format %q", storage, b.Format)
			}
			if !exists(filepath.Join(sim.StorageDumpDir("pve1", storage), b.Filename)) {
				t.Fatalf("%s: archive %s not on disk", storage, b.Filename)
			}
		}
		if d := b.CreatedAt.Sub(bn.CreatedAt); d != 0 {
			t.Fatalf("%s: created %s vs name %s", storage, b.CreatedAt, bn.CreatedAt)
		}
		got, err := c.GetBackup(testCtx(t), "pve1", b.VolID)
		if err != nil || got.VolID != b.VolID || got.Size != b.Size {
			t.Fatalf("%s get: %+v %v", storage, got, err)
		}
	}
}

func TestSimBackupQEMUAndOtherNode(t *testing.T) {
	t.Parallel()
	sim, c := startSim(t)
	res := mustBackup(t, c, BackupOptions{VMID: 200, Storage: "local", Mode: "snapshot"})
	if res.Backup.GuestType != GuestTypeQEMU || res.Backup.Format != "vma" {
		t.Fatalf("qemu: %+v", res.Backup)
	}
	if !exists(filepath.Join(sim.StorageDumpDir("pve1", "local"), res.Backup.Filename)) {
		t.Fatal("vma not on disk")
	}
	// 101 lives on pve2: found without naming the node
	res = mustBackup(t, c, BackupOptions{VMID: 101, Storage: "nas", Compress: "gzip"})
	if res.Backup.Node != "pve2" || res.Backup.Format != "tar.gz" || !strings.HasPrefix(res.UPID, "UPID:pve2:") {
		t.Fatalf("101: %+v", res)
	}
	if _, err := c.CreateBackup(testCtx(t), BackupOptions{VMID: 101, Node: "pve1", Storage: "nas"}, nil); err == nil || !strings.Contains(err.Error(), "pve2") {
		t.Fatalf("wrong node: %v", err)
	}
	if _, err := c.CreateBackup(testCtx(t), BackupOptions{VMID: 999, Storage: "local"}, nil); !IsNotFound(err) {
		t.Fatalf("missing guest: %v", err)
	}
	// default storage
	res = mustBackup(t, c, BackupOptions{VMID: 100})
	if res.Backup.Storage != "local" {
		t.Fatalf("default storage: %+v", res.Backup)
	}
}

func TestSimListOrdering(t *testing.T) {
	t.Parallel()
	_, c := startSim(t)
	var made []string
	for _, st := range []string{"local", "nas", "pbs", "local"} {
		made = append(made, mustBackup(t, c, BackupOptions{VMID: 100, Storage: st}).Backup.VolID)
		time.Sleep(1100 * time.Millisecond) // names have one-second resolution
	}
	nasOf101 := mustBackup(t, c, BackupOptions{VMID: 101, Storage: "nas"}).Backup.VolID
	ctx := testCtx(t)
	list, err := c.ListBackups(ctx, ListOptions{VMID: 100})
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 4 {
		t.Fatalf("got %d backups: %+v", len(list), list)
	}
	for i, b := range list {
		if b.VolID != made[len(made)-1-i] {
			t.Fatalf("order: position %d is %s, want %s", i, b.VolID, made[len(made)-1-i])
		}
		if i > 0 && b.CreatedAt.After(list[i-1].CreatedAt) {
			t.Fatal("not newest first")
		}
	}
	list, err = c.ListBackups(ctx, ListOptions{VMID: 100, Storage: "nas"})
	if err != nil || len(list) != 1 || list[0].VolID != made[1] {
		t.Fatalf("storage filter: %+v %v", list, err)
	}
	// every node: the shared nas is read once
	all, err := c.ListBackups(ctx, ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, b := range all {
		seen[b.VolID]++
	}
	if seen[made[1]] != 1 || seen[nasOf101] != 1 || len(all) != 5 {
		t.Fatalf("all: %v", seen)
	}
	if _, err := c.ListBackups(ctx, ListOptions{VMID: 100, Storage: "nosuch"}); err == nil {
		t.Fatal("unknown storage: no error")
	}
	// a guest that no longer exists: every online node is searched
	if l, err := c.ListBackups(ctx, ListOptions{VMID: 555}); err != nil || len(l) != 0 {
		t.Fatalf("absent guest: %+v %v", l, err)
	}
}

func TestSimUpdateAndDelete(t *testing.T) {
	t.Parallel()
	sim, c := startSim(t)
	ctx := testCtx(t)
	b := mustBackup(t, c, BackupOptions{VMID: 100, Storage: "local", Compress: "zstd", NotesTemplate: "first", Protected: true}).Backup
	if !b.Protected || b.Notes != "first" {
		t.Fatalf("created: %+v", b)
	}
	notes := "changed\nsecond line"
	if err := c.UpdateBackup(ctx, "pve1", b.VolID, &notes, nil); err != nil {
		t.Fatal(err)
	}
	got, err := c.GetBackup(ctx, "pve1", b.VolID)
	if err != nil || got.Notes != "changed" || !got.Protected {
		t.Fatalf("after notes: %+v %v", got, err)
	}
	err = c.DeleteBackup(ctx, "pve1", b.VolID, nil)
	if !IsProtected(err) || !strings.Contains(err.Error(), "protected = false") {
		t.Fatalf("delete protected: %v", err)
	}
	dir := sim.StorageDumpDir("pve1", "local")
	archive := filepath.Join(dir, b.Filename)
	if !exists(archive) {
		t.Fatal("protected archive was removed")
	}
	empty, no := "", false
	if err := c.UpdateBackup(ctx, "pve1", b.VolID, &empty, &no); err != nil {
		t.Fatal(err)
	}
	got, err = c.GetBackup(ctx, "", b.VolID)
	if err != nil || got.Notes != "" || got.Protected {
		t.Fatalf("after clear: %+v %v", got, err)
	}
	if err := c.DeleteBackup(ctx, "pve1", b.VolID, nil); err != nil {
		t.Fatal(err)
	}
	base := strings.TrimSuffix(b.Filename, ".tar.zst")
	for _, p := range []string{archive, archive + ".notes", archive + ".protected", filepath.Join(dir, base+".log")} {
		if exists(p) {
			t.Fatalf("%s still exists", p)
		}
	}
	if _, err := c.GetBackup(ctx, "pve1", b.VolID); !IsNotFound(err) {
		t.Fatalf("get deleted: %v", err)
	}
	if err := c.DeleteBackup(ctx, "pve1", b.VolID, nil); err != nil {
		t.Fatalf("delete missing: %v", err)
	}
	// PBS: protect, refuse, unprotect, delete
	p := mustBackup(t, c, BackupOptions{VMID: 100, Storage: "pbs", Protected: true}).Backup
	if err := c.DeleteBackup(ctx, "pve1", p.VolID, nil); !IsProtected(err) {
		t.Fatalf("pbs protected: %v", err)
	}
	if err := c.UpdateBackup(ctx, "pve1", p.VolID, nil, &no); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteBackup(ctx, "pve1", p.VolID, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetBackup(ctx, "pve1", p.VolID); !IsNotFound(err) {
		t.Fatalf("pbs get deleted: %v", err)
	}
}

func TestSimFailedAndLockedBackup(t *testing.T) {
	t.Parallel()
	sim, c := startSim(t)
	sim.FailTask("vzdump", 100, "simulated disk failure")
	_, err := c.CreateBackup(testCtx(t), BackupOptions{VMID: 100, Storage: "local"}, nil)
	var te *TaskError
	if !errors.As(err, &te) || te.Node != "pve1" || te.Type != "vzdump" || len(te.LogTail) == 0 {
		t.Fatalf("failed vzdump: %#v", err)
	}
	if !strings.Contains(err.Error(), "simulated disk failure") || !strings.Contains(err.Error(), te.ExitStatus) {
		t.Fatalf("text: %v", err)
	}

	sim.SetGuestLock(100, "snapshot")
	_, err = c.CreateBackup(testCtx(t), BackupOptions{VMID: 100, Storage: "local"}, nil)
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("locked: %v", err)
	}
	// restore refuses a guest locked by someone else after waiting
	b := mustBackup(t, c, BackupOptions{VMID: 200, Storage: "local"}).Backup
	sim.SetGuestLock(200, "migrate")
	_, err = c.Restore(testCtx(t), RestoreOptions{VMID: 200, Backup: b.VolID, LockWaitTimeout: 300 * time.Millisecond, SafetyBackup: true}, nil)
	var re *RestoreError
	if !errors.As(err, &re) || !errors.Is(err, ErrLocked) || re.Step != "check guest" || re.SafetyBackupVolID != "" {
		t.Fatalf("restore locked: %v", err)
	}
	// the lock goes away while we wait
	go func() {
		time.Sleep(300 * time.Millisecond)
		sim.SetGuestLock(200, "")
	}()
	if _, err := c.Restore(testCtx(t), RestoreOptions{VMID: 200, Backup: b.VolID, LockWaitTimeout: 10 * time.Second}, nil); err != nil {
		t.Fatalf("restore after the lock went: %v", err)
	}
}

func readFile(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSimRestoreLXCRoundTrip(t *testing.T) {
	t.Parallel()
	sim, c := startSim(t)
	ctx := testCtx(t)
	marker := filepath.Join(sim.GuestRootfs(100), "marker.txt")
	if err := os.WriteFile(marker, []byte("version 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	b := mustBackup(t, c, BackupOptions{VMID: 100, Storage: "local", Compress: "zstd"}).Backup
	if err := os.WriteFile(marker, []byte("version 2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond) // the safety backup gets a new name
	var lines []string
	res, err := c.Restore(ctx, RestoreOptions{VMID: 100, Backup: b.VolID, SafetyBackup: true, ShutdownTimeout: 5 * time.Second}, func(l string) { lines = append(lines, l) })
	if err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, marker); string(got) != "version 1\n" {
		t.Fatalf("marker after restore: %q", got)
	}
	if res.PreviousStatus != "running" || res.FinalStatus != "running" || res.Node != "pve1" || res.GuestType != GuestTypeLXC || res.SafetyBackupVolID == "" || res.UPID == "" || res.RestoredAt.IsZero() {
		t.Fatalf("result %+v", res)
	}
	if st, _ := sim.GuestState(100); st.Status != "running" || st.Lock != "" {
		t.Fatalf("sim state %+v", st)
	}
	sb, err := c.GetBackup(ctx, "pve1", res.SafetyBackupVolID)
	if err != nil || sb.Notes != "proxmoxapp safety backup before restoring "+b.VolID+" (guest was running); restore ended" || sb.Format != "tar.zst" {
		t.Fatalf("safety backup %+v %v", sb, err)
	}
	if len(lines) == 0 {
		t.Fatal("no progress")
	}
	// the safety backup holds the pre-restore files: restore it into a new
	// vmid, stopped
	no := false
	res2, err := c.Restore(ctx, RestoreOptions{VMID: 300, Backup: res.SafetyBackupVolID, SafetyBackup: true, Start: &no}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res2.PreviousStatus != "absent" || res2.SafetyBackupVolID != "" || res2.FinalStatus != "stopped" {
		t.Fatalf("new vmid: %+v", res2)
	}
	if got := readFile(t, filepath.Join(sim.GuestRootfs(300), "marker.txt")); string(got) != "version 2\n" {
		t.Fatalf("safety backup marker: %q", got)
	}
	g, err := c.FindGuest(ctx, 300)
	if err != nil || g.Type != GuestTypeLXC || g.Node != "pve1" {
		t.Fatalf("300: %+v %v", g, err)
	}
}

func TestSimRestoreQEMURoundTrip(t *testing.T) {
	t.Parallel()
	sim, c := startSim(t)
	ctx := testCtx(t)
	disk := sim.GuestDisk(200)
	before := readFile(t, disk)
	b := mustBackup(t, c, BackupOptions{VMID: 200, Storage: "nas", Compress: "zstd"}).Backup
	if err := os.WriteFile(disk, bytes.Repeat([]byte{0xAB}, len(before)), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := c.Restore(ctx, RestoreOptions{VMID: 200, Backup: b.VolID, SafetyBackup: true, SafetyBackupStorage: "local"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(readFile(t, disk), before) {
		t.Fatal("disk differs from the backup after the restore")
	}
	if !strings.HasPrefix(res.SafetyBackupVolID, "local:backup/vzdump-qemu-200-") {
		t.Fatalf("safety %q", res.SafetyBackupVolID)
	}
	st, _ := sim.GuestState(200)
	if res.PreviousStatus != st.Status || res.FinalStatus != st.Status {
		t.Fatalf("result %+v, sim %+v", res, st)
	}
	// explicit start
	yes := true
	res, err = c.Restore(ctx, RestoreOptions{VMID: 200, Backup: b.VolID, Start: &yes}, nil)
	if err != nil || res.FinalStatus != "running" {
		t.Fatalf("start: %+v %v", res, err)
	}
	// and a PBS VM backup restores too
	p := mustBackup(t, c, BackupOptions{VMID: 200, Storage: "pbs"}).Backup
	if _, err := c.Restore(ctx, RestoreOptions{VMID: 200, Backup: p.VolID}, nil); err != nil {
		t.Fatalf("pbs: %v", err)
	}
	if !bytes.Equal(readFile(t, disk), before) {
		t.Fatal("disk differs after the PBS restore")
	}
}

func TestSimRestoreFailures(t *testing.T) {
	t.Parallel()
	sim, c := startSim(t)
	ctx := testCtx(t)
	lxc := mustBackup(t, c, BackupOptions{VMID: 100, Storage: "local"}).Backup

	// wrong type: an LXC backup onto the VM
	_, err := c.Restore(ctx, RestoreOptions{VMID: 200, Backup: lxc.VolID}, nil)
	var re *RestoreError
	if !errors.As(err, &re) || re.Step != "check backup" || re.GuestState != "stopped" || !strings.Contains(err.Error(), "container") {
		t.Fatalf("wrong type: %v", err)
	}
	// a backup that does not exist
	missing := "local:backup/vzdump-lxc-100-2020_01_01-00_00_00.tar.zst"
	_, err = c.Restore(ctx, RestoreOptions{VMID: 100, Backup: missing}, nil)
	if !errors.As(err, &re) || re.Step != "check backup" || !strings.Contains(err.Error(), missing) || !IsNotFound(err) {
		t.Fatalf("missing: %v", err)
	}
	// storages that cannot hold the guest or the safety backup: refused
	// before the safety backup and the shutdown
	for _, tc := range []struct {
		opts RestoreOptions
		want string
	}{
		{RestoreOptions{VMID: 100, Backup: lxc.VolID, Storage: "nas", SafetyBackup: true},
			`storage "nas" on node pve1 cannot hold container root filesystems (its content types are backup)`},
		{RestoreOptions{VMID: 100, Backup: lxc.VolID, SafetyBackup: true, SafetyBackupStorage: "local-lvm"},
			`safety_backup_storage "local-lvm" on node pve1 cannot hold backups`},
		{RestoreOptions{VMID: 100, Backup: lxc.VolID, Storage: "nowhere"}, `storage "nowhere" does not exist on node pve1`},
	} {
		_, err = c.Restore(ctx, tc.opts, nil)
		if !errors.As(err, &re) || re.Step != "check storage" || !strings.Contains(err.Error(), tc.want) || re.SafetyBackupVolID != "" {
			t.Fatalf("storage check: %v", err)
		}
	}
	if st, _ := sim.GuestState(100); st.Status != "running" {
		t.Fatalf("guest touched: %+v", st)
	}
	if n := len(sim.Tasks()); n != 1 {
		t.Fatalf("%d tasks: something ran before the checks refused", n)
	}

	// the restore task fails midway
	marker := filepath.Join(sim.GuestRootfs(100), "marker.txt")
	if err := os.WriteFile(marker, []byte("precious\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond)
	sim.FailTask("vzrestore", 100, "simulated restore failure")
	_, err = c.Restore(ctx, RestoreOptions{VMID: 100, Backup: lxc.VolID, SafetyBackup: true, ShutdownTimeout: 5 * time.Second}, nil)
	if !errors.As(err, &re) || re.Step != "restore" || re.SafetyBackupVolID == "" || re.GuestState == "" {
		t.Fatalf("midway: %v", err)
	}
	for _, want := range []string{`"restore"`, "simulated restore failure", re.SafetyBackupVolID, "left " + strings.SplitN(re.GuestState, " ", 2)[0]} {
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("error text lacks %q:\n%v", want, err)
		}
	}
	// recover from the safety backup
	if _, err := c.Restore(ctx, RestoreOptions{VMID: 100, Backup: re.SafetyBackupVolID, SafetyBackup: false, Start: new(bool)}, nil); err != nil {
		t.Fatalf("recovery: %v", err)
	}
	if got := readFile(t, marker); string(got) != "precious\n" {
		t.Fatalf("recovered marker %q", got)
	}
}

func TestSimTicketAuth(t *testing.T) {
	t.Parallel()
	sim, _ := startSim(t)
	ctx := testCtx(t)
	if _, err := NewClient(ctx, Config{Endpoint: sim.Endpoint(), Username: "root@pam", Password: "wrong", CACertPEM: sim.CAPEM()}); err == nil {
		t.Fatal("bad password accepted")
	}
	c, err := NewClient(ctx, Config{Endpoint: sim.Endpoint(), Username: "root@pam", Password: "pvesim", CACertPEM: sim.CAPEM()})
	if err != nil {
		t.Fatal(err)
	}
	c.pollMin, c.pollMax = 20*time.Millisecond, 200*time.Millisecond
	b := mustBackup(t, c, BackupOptions{VMID: 100, Storage: "local"}).Backup // POST: CSRF
	yes := true
	if err := c.UpdateBackup(ctx, "pve1", b.VolID, nil, &yes); err != nil {
		t.Fatal(err)
	}
	// renewal before expiry (re-posting the ticket)
	c.now = func() time.Time { return time.Now().Add(95 * time.Minute) }
	no := false
	if err := c.UpdateBackup(ctx, "pve1", b.VolID, nil, &no); err != nil {
		t.Fatal(err)
	}
	// an expired ticket: a 401 logs in again
	c.now = time.Now
	sim.SetTicketLifetime(time.Millisecond)
	time.Sleep(1100 * time.Millisecond)
	sim.SetTicketLifetime(2 * time.Hour)
	if _, err := c.Version(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteBackup(ctx, "pve1", b.VolID, nil); err != nil {
		t.Fatal(err)
	}
}

func TestSimPermissionsAndFaults(t *testing.T) {
	t.Parallel()
	sim, c := startSim(t)
	ctx := testCtx(t)
	mustBackup(t, c, BackupOptions{VMID: 100, Storage: "local"})
	ro, err := NewClient(ctx, Config{Endpoint: sim.Endpoint(), APIToken: sim.ReadOnlyToken(), CACertPEM: sim.CAPEM()})
	if err != nil {
		t.Fatal(err)
	}
	// Datastore.Audit alone: PVE hides the backups, it is not an error
	if l, err := ro.ListBackups(ctx, ListOptions{VMID: 100}); err != nil || len(l) != 0 {
		t.Fatalf("read-only list: %+v %v", l, err)
	}
	_, err = ro.CreateBackup(ctx, BackupOptions{VMID: 100, Storage: "local"}, nil)
	if !IsForbidden(err) || !strings.Contains(err.Error(), "Permission check failed") {
		t.Fatalf("read-only backup: %v", err)
	}
	if strings.Contains(err.Error(), strings.SplitN(sim.ReadOnlyToken(), "=", 2)[1]) {
		t.Fatal("the error shows the token secret")
	}

	// transient failures while polling are tolerated
	sim.FailRequests("GET", "/nodes/{node}/tasks/{upid}/status", 503, "Service Unavailable", 2)
	mustBackup(t, c, BackupOptions{VMID: 200, Storage: "local"})

	// a POST vzdump that fails is not re-sent
	sim.FailRequests("POST", "/nodes/{node}/vzdump", 503, "temporarily busy", 1)
	before := sim.Counters()["POST /nodes/{node}/vzdump"]
	if _, err := c.CreateBackup(ctx, BackupOptions{VMID: 200, Storage: "nas"}, nil); err == nil || !strings.Contains(err.Error(), "HTTP 503 temporarily busy") {
		t.Fatalf("failed POST: %v", err)
	}
	if n := sim.Counters()["POST /nodes/{node}/vzdump"] - before; n != 1 {
		t.Fatalf("vzdump sent %d times", n)
	}

	// a full storage fails the task
	sim.SetStorageFull("nas", true)
	var te *TaskError
	if _, err := c.CreateBackup(ctx, BackupOptions{VMID: 100, Storage: "nas"}, nil); !errors.As(err, &te) {
		t.Fatalf("full storage: %v", err)
	}
	sim.SetStorageFull("nas", false)

	// an offline node
	sim.SetNodeOffline("pve2", true)
	if _, err := c.CreateBackup(ctx, BackupOptions{VMID: 101, Storage: "nas"}, nil); !errors.Is(err, ErrOffline) {
		t.Fatalf("offline node: %v", err)
	}
	if _, err := c.ListBackups(ctx, ListOptions{VMID: 101}); !errors.Is(err, ErrOffline) {
		t.Fatalf("offline list: %v", err)
	}
}

// TestSimRestoreStopsAGuestThatIgnoresShutdown: when the graceful shutdown
// does not finish, the restore stops the guest hard and goes on.
func TestSimRestoreStopsAGuestThatIgnoresShutdown(t *testing.T) {
	t.Parallel()
	sim, c := startSim(t)
	ctx := testCtx(t)
	b := mustBackup(t, c, BackupOptions{VMID: 100, Storage: "local", Compress: "zstd"}).Backup
	sim.FailTask("vzshutdown", 100, "container did not stop")
	var lines []string
	res, err := c.Restore(ctx, RestoreOptions{VMID: 100, Backup: b.VolID, ShutdownTimeout: time.Second},
		func(l string) { lines = append(lines, l) })
	if err != nil {
		t.Fatal(err)
	}
	log := strings.Join(lines, "\n")
	if !strings.Contains(log, "graceful shutdown did not finish") || !strings.Contains(log, "container did not stop") {
		t.Fatalf("no word of the failed shutdown and the hard stop in the progress:\n%s", log)
	}
	if res.PreviousStatus != "running" || res.FinalStatus != "running" {
		t.Fatalf("result %+v", res)
	}
	if n := sim.Counters()["POST /nodes/{node}/lxc/{vmid}/status/stop"]; n != 1 {
		t.Fatalf("%d hard stops, want 1 (counters %v)", n, sim.Counters())
	}
}

func TestSimClusterName(t *testing.T) {
	t.Parallel()
	_, c := startSim(t)
	if name, err := c.ClusterName(testCtx(t)); err != nil || name != "pvesim" {
		t.Fatalf("cluster name %q %v", name, err)
	}
	cfg := pvesim.DefaultConfig()
	cfg.ClusterName = ""
	_, c2 := startSimWith(t, pvesim.Options{Config: cfg})
	if name, err := c2.ClusterName(testCtx(t)); err != nil || name != "standalone node" {
		t.Fatalf("standalone: %q %v", name, err)
	}
}

// TestSimRestoreQEMUFailureLeavesNoDisks: PVE does not clean up a failed VM
// restore; the VM keeps a temporary config and its old disk is gone. The
// error says so and names the safety backup; the re-run takes no safety
// backup of the diskless VM, keeps the first one, restores the data and
// brings the VM to its power state from before the first attempt.
func TestSimRestoreQEMUFailureLeavesNoDisks(t *testing.T) {
	t.Parallel()
	sim, c := startSim(t)
	ctx := testCtx(t)
	disk := sim.GuestDisk(200)
	before := readFile(t, disk)
	b := mustBackup(t, c, BackupOptions{VMID: 200, Storage: "nas"}).Backup
	yes := true
	if _, err := c.Restore(ctx, RestoreOptions{VMID: 200, Backup: b.VolID, Start: &yes}, nil); err != nil {
		t.Fatal(err) // the VM runs now
	}
	if err := os.WriteFile(disk, bytes.Repeat([]byte{0xCD}, len(before)), 0o644); err != nil {
		t.Fatal(err)
	}
	changed := readFile(t, disk)
	sim.FailTask("qmrestore", 200, "vma: restore failed - short read")
	opts := RestoreOptions{VMID: 200, Backup: b.VolID, SafetyBackup: true, SafetyBackupStorage: "local", ShutdownTimeout: 5 * time.Second}
	_, err := c.Restore(ctx, opts, nil)
	var re *RestoreError
	if !errors.As(err, &re) || re.Step != "restore" || re.GuestState != stateNoDisks || re.SafetyBackupVolID == "" || re.PreviousStatus != "running" {
		t.Fatalf("failed restore: %#v", err)
	}
	for _, want := range []string{"short read", "with a temporary config and no disks", "safety backup " + re.SafetyBackupVolID} {
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("error lacks %q:\n%v", want, err)
		}
	}
	vzdumps := func() int {
		n := 0
		for _, tk := range sim.Tasks() {
			if tk.Type == "vzdump" {
				n++
			}
		}
		return n
	}
	n := vzdumps()
	res, err := c.Restore(ctx, opts, nil)
	if err != nil {
		t.Fatalf("re-run: %v", err)
	}
	if vzdumps() != n || res.SafetyBackupVolID != re.SafetyBackupVolID || res.PreviousStatus != "running" || res.FinalStatus != "running" {
		t.Fatalf("re-run %+v (vzdump tasks %d -> %d)", res, n, vzdumps())
	}
	if !bytes.Equal(readFile(t, disk), before) {
		t.Fatal("disk differs from the backup after the re-run")
	}
	// the safety backup holds the data from before the first attempt
	if _, err := c.Restore(ctx, RestoreOptions{VMID: 200, Backup: re.SafetyBackupVolID}, nil); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(readFile(t, disk), changed) {
		t.Fatal("the safety backup does not hold the VM's data from before the failed restore")
	}
}
