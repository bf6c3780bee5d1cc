package pvesim

import (
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"
)

// Conformance tests for REFERENCE.md section 10: the prune marks of
// prune_mark_backup_group, the dry run and the prune worker of the
// prunebackups API, guest destruction and nextid.

// history builds guest 100's backups on local@pve1 at the given node-local
// times (one real vzdump archive, copied), and returns their volids by label.
func history(t *testing.T, s *Sim, at map[string]time.Time) map[string]string {
	t.Helper()
	orig, st := backup(t, s, "pve1", 100, url.Values{"compress": {"zstd"}})
	if st["exitstatus"] != "OK" {
		t.Fatalf("vzdump: %v", st)
	}
	out := map[string]string{}
	for label, when := range at {
		v, err := s.CopyBackup("pve1", orig, when)
		if err != nil {
			t.Fatal(err)
		}
		out[label] = v
	}
	// the original (taken now) is not part of the history
	p := filepath.Join(s.StorageDumpDir("pve1", "local"), strings.TrimPrefix(orig, "local:backup/"))
	if err := removeArchive(p); err != nil {
		t.Fatal(err)
	}
	_ = os.Remove(strings.TrimSuffix(p, ".tar.zst") + ".log")
	return out
}

func marks(t *testing.T, r *resp) map[string]string {
	t.Helper()
	if r.code != 200 {
		t.Fatalf("dry run: %s %s", r.status, r.body)
	}
	out := map[string]string{}
	for _, x := range r.data(t).([]any) {
		e := x.(map[string]any)
		out[e["volid"].(string)] = e["mark"].(string)
	}
	return out
}

// retentionFixture: ten backups of CT 100 spanning hours, days, weeks and
// months (Europe/Berlin), one protected, one renamed, and one VM backup.
func retentionFixture(t *testing.T) (*Sim, map[string]string, *time.Location) {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Timezone = "Europe/Berlin"
	s := startSim(t, func(o *Options) { o.Config = cfg })
	loc, _ := time.LoadLocation("Europe/Berlin")
	d := func(y int, m time.Month, day, h, mi int) time.Time { return time.Date(y, m, day, h, mi, 0, 0, loc) }
	v := history(t, s, map[string]time.Time{
		"A": d(2026, 3, 10, 12, 30), // Tue, ISO week 11
		"B": d(2026, 3, 10, 12, 10), // same hour as A
		"C": d(2026, 3, 10, 9, 0),
		"D": d(2026, 3, 9, 18, 0), // protected below
		"E": d(2026, 3, 8, 8, 0),  // Sun, week 10
		"F": d(2026, 3, 2, 8, 0),  // Mon, week 10
		"G": d(2026, 2, 25, 8, 0), // week 9
		"H": d(2026, 2, 10, 8, 0), // week 7
		"I": d(2026, 1, 15, 8, 0),
		"J": d(2025, 12, 20, 8, 0),
	})
	r := call(t, s, "PUT", "/nodes/pve1/storage/local/content/"+v["D"], s.APIToken(), url.Values{"protected": {"1"}})
	if r.code != 200 {
		t.Fatalf("protect D: %s %s", r.status, r.body)
	}
	dump := s.StorageDumpDir("pve1", "local")
	if err := os.WriteFile(filepath.Join(dump, "vzdump-lxc-100-manual.tar.zst"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	v["renamed"] = "local:backup/vzdump-lxc-100-manual.tar.zst"
	if err := os.WriteFile(filepath.Join(dump, "vzdump-qemu-200-2026_03_01-00_00_00.vma.zst"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	v["vm"] = "local:backup/vzdump-qemu-200-2026_03_01-00_00_00.vma.zst"
	return s, v, loc
}

const fixturePolicy = "keep-last=1,keep-hourly=1,keep-daily=2,keep-weekly=1,keep-monthly=1"

// fixtureMarks is worked out by hand from prune_mark_backup_group: keep-last
// keeps A; keep-hourly C (B shares A's hour); keep-daily E and F (D is
// protected, so it covers no day); keep-weekly G (weeks 11 and 10 are
// covered); keep-monthly I (March and February are covered). B, H and J are
// left over.
func fixtureMarks(v map[string]string) map[string]string {
	return map[string]string{
		v["A"]: "keep", v["B"]: "remove", v["C"]: "keep", v["D"]: "protected", v["E"]: "keep",
		v["F"]: "keep", v["G"]: "keep", v["H"]: "remove", v["I"]: "keep", v["J"]: "remove",
		v["renamed"]: "renamed", v["vm"]: "keep",
	}
}

func TestPruneDryRunMarks(t *testing.T) {
	t.Parallel()
	s, v, loc := retentionFixture(t)
	r := call(t, s, "GET", "/nodes/pve1/storage/local/prunebackups", s.APIToken(), url.Values{"prune-backups": {fixturePolicy}})
	got := marks(t, r)
	if want := fixtureMarks(v); !reflect.DeepEqual(got, want) {
		t.Errorf("marks:\n got %v\nwant %v", got, want)
	}
	// Wire shape: sorted by volid (the listing is a glob); ctime from the
	// name in node-local time; vmid and type as parsed.
	list := r.data(t).([]any)
	var volids []string
	for _, x := range list {
		e := x.(map[string]any)
		volids = append(volids, e["volid"].(string))
		switch e["volid"] {
		case v["J"]:
			if e["ctime"].(float64) != float64(time.Date(2025, 12, 20, 8, 0, 0, 0, loc).Unix()) || e["type"] != "lxc" || e["vmid"].(float64) != 100 {
				t.Errorf("J entry %v", e)
			}
		case v["renamed"]:
			if e["type"] != "lxc" || e["vmid"].(float64) != 100 {
				t.Errorf("renamed entry %v", e)
			}
		case v["vm"]:
			if e["type"] != "qemu" || e["vmid"].(float64) != 200 {
				t.Errorf("vm entry %v", e)
			}
		}
	}
	if !sort.StringsAreSorted(volids) || len(volids) != 12 {
		t.Errorf("order/count: %v", volids)
	}

	// filters: vmid and type
	got = marks(t, call(t, s, "GET", "/nodes/pve1/storage/local/prunebackups", s.APIToken(),
		url.Values{"prune-backups": {"keep-last=1"}, "vmid": {"200"}}))
	if !reflect.DeepEqual(got, map[string]string{v["vm"]: "keep"}) {
		t.Errorf("vmid=200: %v", got)
	}
	got = marks(t, call(t, s, "GET", "/nodes/pve1/storage/local/prunebackups", s.APIToken(),
		url.Values{"prune-backups": {"keep-last=3"}, "type": {"lxc"}}))
	if len(got) != 11 || got[v["C"]] != "keep" || got[v["E"]] != "remove" || got[v["D"]] != "protected" || got[v["vm"]] != "" {
		t.Errorf("type=lxc keep-last=3: %v", got)
	}
	// keep-all, or no positive option, keeps everything unprotected and standard
	for _, pol := range []string{"keep-all=1", "keep-last=0"} {
		got = marks(t, call(t, s, "GET", "/nodes/pve1/storage/local/prunebackups", s.APIToken(), url.Values{"prune-backups": {pol}}))
		if got[v["J"]] != "keep" || got[v["D"]] != "protected" || got[v["renamed"]] != "renamed" {
			t.Errorf("%s: %v", pol, got)
		}
	}
	// nothing was deleted by the dry runs
	for _, id := range v {
		if _, err := os.Stat(filepath.Join(s.StorageDumpDir("pve1", "local"), strings.TrimPrefix(id, "local:backup/"))); err != nil {
			t.Errorf("dry run removed %s", id)
		}
	}
}

// Two backups in the same second count once for keep-last (its id is ctime).
func TestPruneMarkSameCtime(t *testing.T) {
	t.Parallel()
	g := []*pruneEntry{{volid: "a", ctime: 100}, {volid: "b", ctime: 100}, {volid: "c", ctime: 50}}
	r, _ := parseRetention("keep-last=1")
	pruneMarkGroup(g, r, time.UTC)
	if g[0].mark != "keep" || g[1].mark != "remove" || g[2].mark != "remove" {
		t.Errorf("marks %s %s %s", g[0].mark, g[1].mark, g[2].mark)
	}
}

func TestPruneDeleteRemovesExactlyTheDryRun(t *testing.T) {
	t.Parallel()
	s, v, _ := retentionFixture(t)
	dump := s.StorageDumpDir("pve1", "local")
	file := func(id string) string { return filepath.Join(dump, strings.TrimPrefix(id, "local:backup/")) }
	// a notes sidecar that must go with H
	if err := os.WriteFile(file(v["H"])+".notes", []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	upid := startTask(t, s, "DELETE", "/nodes/pve1/storage/local/prunebackups",
		url.Values{"prune-backups": {fixturePolicy}, "vmid": {"100"}, "type": {"lxc"}})
	if !strings.Contains(upid, ":prunebackups:100@local:root@pam!terraform:") {
		t.Errorf("UPID %s", upid)
	}
	if st := waitTask(t, s, upid); st["exitstatus"] != "OK" {
		t.Fatalf("prune: %v %v", st, taskLog(t, s, upid))
	}
	wantLog := []string{}
	for _, id := range []string{v["B"], v["H"], v["J"]} {
		wantLog = append(wantLog, "removing backup '"+id+"'")
	}
	sort.Strings(wantLog)
	if got := taskLog(t, s, upid); !reflect.DeepEqual(got, append(wantLog, "TASK OK")) {
		t.Errorf("log %q, want %q", got, wantLog)
	}
	for label, id := range v {
		_, err := os.Stat(file(id))
		gone := label == "B" || label == "H" || label == "J"
		if gone != os.IsNotExist(err) {
			t.Errorf("%s (%s): gone=%v, stat err %v", label, id, gone, err)
		}
	}
	if _, err := os.Stat(file(v["H"]) + ".notes"); !os.IsNotExist(err) {
		t.Error("H's notes stayed behind")
	}
	if _, err := os.Stat(file(v["D"]) + ".protected"); err != nil {
		t.Error("D lost its protection")
	}
	// pruning again removes nothing
	got := marks(t, call(t, s, "GET", "/nodes/pve1/storage/local/prunebackups", s.APIToken(), url.Values{"prune-backups": {fixturePolicy}}))
	for id, m := range got {
		if m == "remove" {
			t.Errorf("after prune, %s still marked remove", id)
		}
	}
}

func TestPruneErrors(t *testing.T) {
	t.Parallel()
	cfg := DefaultConfig()
	cfg.Storages = append(cfg.Storages, StorageConfig{ID: "kept", Type: "dir", Content: []string{"backup"}, Shared: true, PruneBackups: "keep-last=2"})
	s := startSim(t, func(o *Options) { o.Config = cfg })
	for _, c := range []struct {
		method, storage string
		body            url.Values
		token           string
		status          string
		errKey, errMsg  string
	}{
		{"GET", "local", nil, s.APIToken(), "500 no prune-backups options configured for storage 'local'", "", ""},
		{"GET", "local-lvm", url.Values{"prune-backups": {"keep-last=1"}}, s.APIToken(), "500 storage 'local-lvm' does not support backups", "", ""},
		{"GET", "nope", url.Values{"prune-backups": {"keep-last=1"}}, s.APIToken(), "500 storage 'nope' does not exist", "", ""},
		{"GET", "local", url.Values{"prune-backups": {"keep-all=1,keep-last=2"}}, s.APIToken(), "400 Parameter verification failed.", "prune-backups", "keep-all cannot be set together with other options."},
		{"GET", "local", url.Values{"prune-backups": {"keep-often=2"}}, s.APIToken(), "400 Parameter verification failed.", "prune-backups", "invalid format - unknown property 'keep-often'"},
		{"GET", "local", url.Values{"prune-backups": {"keep-last=1"}, "type": {"openvz"}}, s.APIToken(), "400 Parameter verification failed.", "type", ""},
		{"DELETE", "local", url.Values{"prune-backups": {"keep-last=1"}}, s.ReadOnlyToken(), "403 Permission check failed (/storage/local, Datastore.Allocate)", "", ""},
		{"DELETE", "local", url.Values{"prune-backups": {"keep-last=1"}, "vmid": {"100"}}, s.ReadOnlyToken(), "403 Permission check failed (/storage/local, Datastore.AllocateSpace)", "", ""},
	} {
		r := call(t, s, c.method, "/nodes/pve1/storage/"+c.storage+"/prunebackups", c.token, c.body)
		if r.status != c.status {
			t.Errorf("%s %s %v: %s %s, want %s", c.method, c.storage, c.body, r.status, r.body, c.status)
			continue
		}
		if c.errKey != "" {
			e := errsOf(t, r)
			if msg, ok := e[c.errKey].(string); !ok || (c.errMsg != "" && strings.TrimSpace(msg) != c.errMsg) {
				t.Errorf("%v: errors %v", c.body, e)
			}
		}
	}
	// the read-only token may run the dry run (Datastore.Audit), and the
	// storage's own prune-backups applies when none is given
	r := call(t, s, "GET", "/nodes/pve1/storage/kept/prunebackups", s.ReadOnlyToken(), nil)
	if r.code != 200 || string(r.body) != `{"data":[]}` {
		t.Errorf("dry run on kept: %s %s", r.status, r.body)
	}
}

// Destroy as pve-container and qemu-server do it.
func TestGuestDestroy(t *testing.T) {
	t.Parallel()
	s := startSim(t)
	tok := s.APIToken()
	// a running container needs force
	r := call(t, s, "DELETE", "/nodes/pve1/lxc/100", tok, url.Values{"purge": {"1"}})
	if r.status != "500 unable to destroy CT 100 - container is running" {
		t.Errorf("running CT: %s %s", r.status, r.body)
	}
	// VMs take no force, containers no skiplock
	if r := call(t, s, "DELETE", "/nodes/pve1/qemu/200", tok, url.Values{"force": {"1"}}); r.code != 400 || errsOf(t, r)["force"] == nil {
		t.Errorf("qemu force: %s %s", r.status, r.body)
	}
	if r := call(t, s, "DELETE", "/nodes/pve1/lxc/100", tok, url.Values{"skiplock": {"1"}}); r.code != 400 || errsOf(t, r)["skiplock"] == nil {
		t.Errorf("lxc skiplock: %s %s", r.status, r.body)
	}
	// protection
	s.mu.Lock()
	s.guests[200].conf.set("protection", "1")
	s.mu.Unlock()
	if r := call(t, s, "DELETE", "/nodes/pve1/qemu/200", tok, nil); r.status != "500 can't remove VM 200 - protection mode enabled" {
		t.Errorf("protected VM: %s %s", r.status, r.body)
	}
	s.mu.Lock()
	s.guests[200].conf.del("protection")
	s.mu.Unlock()
	// a locked container is refused at once
	s.SetGuestLock(100, "backup")
	if r := call(t, s, "DELETE", "/nodes/pve1/lxc/100", tok, url.Values{"force": {"1"}}); r.status != "500 CT is locked (backup)" {
		t.Errorf("locked CT: %s %s", r.status, r.body)
	}
	s.SetGuestLock(100, "")
	// force stops it first (a warning), purge says so, the disk is gone
	upid := startTask(t, s, "DELETE", "/nodes/pve1/lxc/100", url.Values{"force": {"1"}, "purge": {"1"}, "destroy-unreferenced-disks": {"1"}})
	if st := waitTask(t, s, upid); st["exitstatus"] != "WARNINGS: 1" {
		t.Errorf("exit %v", st["exitstatus"])
	}
	want := []string{"WARN: forced to stop CT 100 before destroying!", `  Logical volume "vm-100-disk-0" successfully removed.`,
		"purging CT 100 from related configurations..", "TASK WARNINGS: 1"}
	if got := taskLog(t, s, upid); !reflect.DeepEqual(got, want) {
		t.Errorf("log %q", got)
	}
	if _, ok := s.GuestState(100); ok {
		t.Error("CT 100 still exists")
	}
	if _, err := os.Stat(s.GuestRootfs(100)); !os.IsNotExist(err) {
		t.Error("CT 100's rootfs is still there")
	}
	// a running VM is refused at once; a stopped one goes
	s.mu.Lock()
	s.guests[200].status = "running"
	s.mu.Unlock()
	if r := call(t, s, "DELETE", "/nodes/pve1/qemu/200", tok, nil); r.status != "500 VM 200 is running - destroy failed" {
		t.Errorf("running VM: %s %s", r.status, r.body)
	}
	s.mu.Lock()
	s.guests[200].status = "stopped"
	s.mu.Unlock()
	upid = startTask(t, s, "DELETE", "/nodes/pve1/qemu/200", url.Values{"purge": {"1"}})
	if st := waitTask(t, s, upid); st["exitstatus"] != "OK" || !strings.Contains(upid, ":qmdestroy:200:") {
		t.Errorf("qmdestroy %v %s", st, upid)
	}
	if _, err := os.Stat(s.GuestDisk(200)); !os.IsNotExist(err) {
		t.Error("VM 200's disk is still there")
	}
	// gone: the config file error
	if r := call(t, s, "DELETE", "/nodes/pve1/qemu/200", tok, nil); r.status != "500 Configuration file 'nodes/pve1/qemu-server/200.conf' does not exist" {
		t.Errorf("gone VM: %s", r.status)
	}
}

// PBS: the same marks per group (no "renamed"); the prune runs per group.
func TestPrunePBS(t *testing.T) {
	t.Parallel()
	s := startSim(t)
	volid, st := backup(t, s, "pve1", 100, url.Values{"storage": {"pbs"}})
	if st["exitstatus"] != "OK" {
		t.Fatalf("vzdump: %v", st)
	}
	snap := filepath.Join(s.StorageDumpDir("pve1", "pbs"), strings.TrimPrefix(volid, "pbs:backup/"))
	older := func(d time.Duration) string {
		ts := time.Now().UTC().Add(-d).Format("2006-01-02T15:04:05Z")
		dst := filepath.Join(filepath.Dir(snap), ts)
		if err := os.CopyFS(dst, os.DirFS(snap)); err != nil {
			t.Fatal(err)
		}
		return "pbs:backup/ct/100/" + ts
	}
	day, week := older(24*time.Hour), older(7*24*time.Hour)
	if r := call(t, s, "PUT", "/nodes/pve1/storage/pbs/content/"+week, s.APIToken(), url.Values{"protected": {"1"}}); r.code != 200 {
		t.Fatalf("protect: %s", r.status)
	}
	got := marks(t, call(t, s, "GET", "/nodes/pve1/storage/pbs/prunebackups", s.APIToken(), url.Values{"prune-backups": {"keep-last=1"}, "type": {"lxc"}}))
	if want := map[string]string{volid: "keep", day: "remove", week: "protected"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("marks %v, want %v", got, want)
	}
	upid := startTask(t, s, "DELETE", "/nodes/pve1/storage/pbs/prunebackups", url.Values{"prune-backups": {"keep-last=1"}})
	if st := waitTask(t, s, upid); st["exitstatus"] != "OK" {
		t.Fatalf("prune %v", st)
	}
	if log := taskLog(t, s, upid); !reflect.DeepEqual(log, []string{"running 'proxmox-backup-client prune' for 'ct/100'", "TASK OK"}) {
		t.Errorf("log %q", log)
	}
	for id, want := range map[string]bool{volid: true, day: false, week: true} {
		_, err := os.Stat(filepath.Join(s.StorageDumpDir("pve1", "pbs"), strings.TrimPrefix(id, "pbs:backup/")))
		if (err == nil) != want {
			t.Errorf("%s present=%v want %v", id, err == nil, want)
		}
	}
}

// nextid (REFERENCE.md 10.6): the lowest free vmid from 100, as a string;
// a given vmid is echoed when free and refused when taken.
func TestNextID(t *testing.T) {
	t.Parallel()
	s := startSim(t)
	tok := s.ReadOnlyToken() // any authenticated user
	if r := call(t, s, "GET", "/cluster/nextid", tok, nil); r.code != 200 || string(r.body) != `{"data":"102"}` {
		t.Errorf("nextid: %s %s", r.status, r.body)
	}
	if r := call(t, s, "GET", "/cluster/nextid", tok, url.Values{"vmid": {"555"}}); r.code != 200 || string(r.body) != `{"data":"555"}` {
		t.Errorf("nextid 555: %s %s", r.status, r.body)
	}
	r := call(t, s, "GET", "/cluster/nextid", tok, url.Values{"vmid": {"100"}})
	if msg, _ := errsOf(t, r)["vmid"].(string); r.code != 400 || strings.TrimSpace(msg) != "VM 100 already exists" {
		t.Errorf("nextid 100: %s %s", r.status, r.body)
	}
}
