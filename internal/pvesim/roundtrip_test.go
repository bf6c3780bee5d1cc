package pvesim

import (
	"bytes"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

func snapshotTree(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(root, p)
		fi, _ := d.Info()
		switch {
		case d.IsDir():
			out[rel] = "dir " + fi.Mode().Perm().String()
		case fi.Mode()&fs.ModeSymlink != 0:
			l, _ := os.Readlink(p)
			out[rel] = "link " + l
		default:
			b, _ := os.ReadFile(p)
			out[rel] = fi.Mode().Perm().String() + " " + string(b)
		}
		return nil
	})
	return out
}

func stopGuest(t *testing.T, s *Sim, node, typ string, vmid int) {
	t.Helper()
	upid := startTask(t, s, "POST", "/nodes/"+node+"/"+typ+"/"+itoa(vmid)+"/status/stop", nil)
	if st := waitTask(t, s, upid); st["exitstatus"] != "OK" {
		t.Fatalf("stop: %v", st)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

func regexpMust(p string) *regexp.Regexp { return regexp.MustCompile(p) }

func TestRoundTripLXC(t *testing.T) {
	t.Parallel()
	for _, comp := range []string{"0", "gzip", "zstd", "lzo"} {
		t.Run(comp, func(t *testing.T) {
			t.Parallel()
			s := startSim(t)
			root := s.GuestRootfs(100)
			_ = os.MkdirAll(filepath.Join(root, "srv/data"), 0o750)
			big := bytes.Repeat([]byte("0123456789abcdef"), 40000) // 640 KB, several compressor blocks
			_ = os.WriteFile(filepath.Join(root, "srv/data/big.bin"), big, 0o600)
			_ = os.WriteFile(filepath.Join(root, "srv/data/run.sh"), []byte("#!/bin/sh\necho hi\n"), 0o755)
			_ = os.Symlink("../etc/hostname", filepath.Join(root, "srv/hostname-link"))
			before := snapshotTree(t, root)
			volid, st := backup(t, s, "pve1", 100, url.Values{"compress": {comp}})
			if st["exitstatus"] != "OK" || volid == "" {
				t.Fatalf("backup %v %q", st, volid)
			}
			wantExt := map[string]string{"0": ".tar", "gzip": ".tar.gz", "zstd": ".tar.zst", "lzo": ".tar.lzo"}[comp]
			if !strings.HasSuffix(volid, wantExt) {
				t.Fatalf("volid %s", volid)
			}
			// change, add, delete
			_ = os.WriteFile(filepath.Join(root, "etc/hostname"), []byte("changed\n"), 0o644)
			_ = os.Remove(filepath.Join(root, "var/www/index.html"))
			_ = os.WriteFile(filepath.Join(root, "new-file"), []byte("x"), 0o644)
			_ = os.RemoveAll(filepath.Join(root, "srv/data"))
			stopGuest(t, s, "pve1", "lxc", 100)
			upid := startTask(t, s, "POST", "/nodes/pve1/lxc", url.Values{"vmid": {"100"}, "ostemplate": {volid}, "restore": {"1"}, "force": {"1"}, "storage": {"local-lvm"}})
			if st := waitTask(t, s, upid); st["exitstatus"] != "OK" {
				t.Fatalf("restore %v %v", st, taskLog(t, s, upid))
			}
			after := snapshotTree(t, root)
			for k, v := range before {
				if after[k] != v {
					t.Errorf("%s: got %.60q want %.60q", k, after[k], v)
				}
			}
			for k := range after {
				if _, ok := before[k]; !ok {
					t.Errorf("extra file %s", k)
				}
			}
			if g, _ := s.GuestState(100); g.Status != "stopped" || g.Lock != "" || g.Name != "web" {
				t.Fatalf("guest %+v", g)
			}
		})
	}
}

func TestRoundTripQemuAndPBS(t *testing.T) {
	t.Parallel()
	s := startSim(t)
	disk := s.GuestDisk(200)
	orig, _ := os.ReadFile(disk)
	if len(orig) < 4096 {
		t.Fatalf("disk too small: %d", len(orig))
	}
	for _, storage := range []string{"local", "pbs"} {
		volid, st := backup(t, s, "pve1", 200, url.Values{"compress": {"zstd"}, "storage": {storage}})
		if st["exitstatus"] != "OK" {
			t.Fatalf("backup %v", st)
		}
		if storage == "pbs" && !reTestPBS.MatchString(volid) {
			t.Fatalf("pbs volid %s", volid)
		}
		if storage == "local" && !strings.HasSuffix(volid, ".vma.zst") {
			t.Fatalf("volid %s", volid)
		}
		_ = os.WriteFile(disk, []byte("garbage"), 0o644)
		// restore without force: exists
		r := call(t, s, "POST", "/nodes/pve1/qemu", s.APIToken(), url.Values{"vmid": {"200"}, "archive": {volid}})
		if r.status != "500 unable to restore VM 200 - VM 200 already exists on node 'pve1'" {
			t.Fatalf("no force: %s", r.status)
		}
		upid := startTask(t, s, "POST", "/nodes/pve1/qemu", url.Values{"vmid": {"200"}, "archive": {volid}, "force": {"1"}})
		if st := waitTask(t, s, upid); st["exitstatus"] != "OK" {
			t.Fatalf("restore %v %v", st, taskLog(t, s, upid))
		}
		got, _ := os.ReadFile(disk)
		if !bytes.Equal(got, orig) {
			t.Fatalf("%s: disk differs after restore (%d vs %d bytes)", storage, len(got), len(orig))
		}
		// wrong archive type for a CT restore
		upid = startTask(t, s, "POST", "/nodes/pve1/lxc", url.Values{"vmid": {"300"}, "ostemplate": {volid}, "restore": {"1"}, "storage": {"local-lvm"}})
		st = waitTask(t, s, upid)
		want := "unable to restore CT 300 - " + map[string]string{
			"local": "ERROR: archive contains no configuration file", // tar finds no pct.conf in a VMA
			"pbs":   "got unexpected backup format 'pbs-vm'",
		}[storage]
		if st["exitstatus"] != want {
			t.Fatalf("wrong type: %v want %s", st["exitstatus"], want)
		}
		if _, ok := s.GuestState(300); ok {
			t.Fatal("failed new CT must be removed")
		}
	}
	// PBS listing
	r := call(t, s, "GET", "/nodes/pve2/storage/pbs/content?content=backup", s.APIToken(), nil)
	l := r.data(t).([]any)
	if len(l) != 1 {
		t.Fatalf("pbs list %s", r.body)
	}
	e := l[0].(map[string]any)
	if e["format"] != "pbs-vm" || e["subtype"] != "qemu" || e["vmid"] != float64(200) {
		t.Fatalf("pbs entry %v", e)
	}
	tm, _ := time.Parse("2006-01-02T15:04:05Z", e["volid"].(string)[len("pbs:backup/vm/200/"):])
	if int64(e["ctime"].(float64)) != tm.Unix() {
		t.Fatalf("pbs ctime %v", e)
	}
}

func TestRestoreToNewVMIDAndChecks(t *testing.T) {
	t.Parallel()
	s := startSim(t, func(o *Options) { o.Throughput = 64 << 10 }) // ~0.3 s per restore of LXC 100
	tok := s.APIToken()
	_ = os.WriteFile(filepath.Join(s.GuestRootfs(100), "pad.bin"), make([]byte, 20<<10), 0o644)
	volid, _ := backup(t, s, "pve1", 100, nil)
	// storage without rootdir → 400
	r := call(t, s, "POST", "/nodes/pve1/lxc", tok, url.Values{"vmid": {"150"}, "ostemplate": {volid}, "restore": {"1"}})
	if errs, _ := r.json(t)["errors"].(map[string]any); r.code != 400 || errs["storage"] != "storage 'local' does not support container directories" {
		t.Fatalf("storage: %s", r.body)
	}
	// vmid on another node, even with force
	r = call(t, s, "POST", "/nodes/pve1/lxc", tok, url.Values{"vmid": {"101"}, "ostemplate": {volid}, "restore": {"1"}, "force": {"1"}, "storage": {"local-lvm"}})
	if r.status != "500 CT 101 already exists on node 'pve2'" {
		t.Fatalf("other node: %s", r.status)
	}
	upid := startTask(t, s, "POST", "/nodes/pve1/lxc", url.Values{"vmid": {"150"}, "ostemplate": {volid}, "restore": {"1"}, "storage": {"local-lvm"}, "hostname": {"clone"}})
	if g, ok := s.GuestState(150); !ok || g.Lock != "create" || g.Status != "stopped" {
		t.Fatalf("stub during restore: %+v %v", g, ok)
	}
	r = call(t, s, "GET", "/nodes/pve1/lxc/150/status/current", tok, nil)
	if d := r.data(t).(map[string]any); d["lock"] != "create" {
		t.Fatalf("current: %s", r.body)
	}
	// restore onto a locked CT is a sync error
	r = call(t, s, "POST", "/nodes/pve1/lxc", tok, url.Values{"vmid": {"150"}, "ostemplate": {volid}, "restore": {"1"}, "force": {"1"}, "storage": {"local-lvm"}})
	if r.status != "500 unable to restore CT 150 - CT is locked (create)" {
		t.Fatalf("locked: %s", r.status)
	}
	if st := waitTask(t, s, upid); st["exitstatus"] != "OK" {
		t.Fatalf("restore: %v", st)
	}
	g, _ := s.GuestState(150)
	if g.Name != "clone" || g.Lock != "" {
		t.Fatalf("new guest %+v", g)
	}
	if b, _ := os.ReadFile(filepath.Join(s.GuestRootfs(150), "var/www/index.html")); !strings.Contains(string(b), "hello from web") {
		t.Fatalf("restored file %q", b)
	}
	log := strings.Join(taskLog(t, s, upid), "\n")
	for _, want := range []string{"recovering backed-up configuration from '" + volid + "'", "restoring '" + volid + "' now..", "extracting archive '", "Total bytes read: ", "merging backed-up and given configuration.."} {
		if !strings.Contains(log, want) {
			t.Fatalf("log lacks %q:\n%s", want, log)
		}
	}
	// missing archive → task fails, new CT removed
	upid = startTask(t, s, "POST", "/nodes/pve1/lxc", url.Values{"vmid": {"151"}, "ostemplate": {"local:backup/vzdump-lxc-100-2020_01_01-00_00_00.tar"}, "restore": {"1"}, "storage": {"local-lvm"}})
	if st := waitTask(t, s, upid); !strings.HasPrefix(st["exitstatus"].(string), "unable to restore CT 151 - ") {
		t.Fatalf("missing: %v", st)
	}
	if _, ok := s.GuestState(151); ok {
		t.Fatal("stub left behind")
	}
}

func TestModesAndGlobalLock(t *testing.T) {
	t.Parallel()
	s := startSim(t, func(o *Options) { o.Throughput = 100 << 10 }) // LXC 100 ≈ 0.2 s
	_ = os.WriteFile(filepath.Join(s.GuestRootfs(100), "pad.bin"), make([]byte, 20<<10), 0o644)
	// stop mode: a running CT is stopped during the backup and started again
	upid := startTask(t, s, "POST", "/nodes/pve1/vzdump", url.Values{"vmid": {"100"}, "storage": {"local"}, "mode": {"stop"}})
	upid2 := startTask(t, s, "POST", "/nodes/pve1/vzdump", url.Values{"vmid": {"200"}, "storage": {"nas"}})
	// while the data is written (about 0.2 s) the CT is stopped and locked
	seen := false
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline) && !seen; time.Sleep(2 * time.Millisecond) {
		g, _ := s.GuestState(100)
		seen = g.Status == "stopped" && g.Lock == "backup"
		if _, done, _, _ := s.findTask(upid).snapshot(); done {
			break
		}
	}
	if !seen {
		g, _ := s.GuestState(100)
		t.Fatalf("never saw the CT stopped and locked during the stop-mode backup; now %+v", g)
	}
	if st := waitTask(t, s, upid); st["exitstatus"] != "OK" {
		t.Fatalf("stop mode: %v", st)
	}
	if g, _ := s.GuestState(100); g.Status != "running" || g.Lock != "" {
		t.Fatalf("after stop-mode backup: %+v", g)
	}
	log := strings.Join(taskLog(t, s, upid), "\n")
	if !strings.Contains(log, "INFO: backup mode: stop") || !strings.Contains(log, "INFO: stopping virtual guest") || !strings.Contains(log, "INFO: restarting vm") {
		t.Fatalf("stop log:\n%s", log)
	}
	if st := waitTask(t, s, upid2); st["exitstatus"] != "OK" {
		t.Fatalf("second: %v", st)
	}
	l2 := taskLog(t, s, upid2)
	if l2[0] != "INFO: trying to get global lock - waiting..." || l2[1] != "INFO: got global lock" {
		t.Fatalf("global lock log: %v", l2[:3])
	}
	// a stopped guest is always backed up in stop mode
	_, st := backup(t, s, "pve1", 200, url.Values{"mode": {"snapshot"}})
	_ = st
	// two backups in the same second do not overwrite each other
	v1, _ := backup(t, s, "pve1", 200, nil)
	v2, _ := backup(t, s, "pve1", 200, nil)
	if v1 == v2 {
		t.Fatalf("same volid twice: %s", v1)
	}
	// orphan vmid → failing task
	upid = startTask(t, s, "POST", "/nodes/pve1/vzdump", url.Values{"vmid": {"999"}, "storage": {"local"}})
	if st := waitTask(t, s, upid); st["exitstatus"] != "job errors" {
		t.Fatalf("orphan: %v", st)
	}
	if l := strings.Join(taskLog(t, s, upid), "\n"); !strings.Contains(l, "ERROR: Backup of VM 999 failed - unable to find VM '999'") {
		t.Fatalf("orphan log %s", l)
	}
	// storage without backup content → setup error
	upid = startTask(t, s, "POST", "/nodes/pve1/vzdump", url.Values{"vmid": {"100"}, "storage": {"local-lvm"}})
	if st := waitTask(t, s, upid); st["exitstatus"] != "could not get storage information for 'local-lvm': can't use storage 'local-lvm' for backups - wrong content type" {
		t.Fatalf("wrong content: %v", st)
	}
	// prune with keep-last
	for i := 0; i < 2; i++ {
		backup(t, s, "pve2", 101, url.Values{"storage": {"nas"}})
	}
	_, _ = backup(t, s, "pve2", 101, url.Values{"storage": {"nas"}, "prune-backups": {"keep-last=1"}})
	r := call(t, s, "GET", "/nodes/pve2/storage/nas/content?vmid=101", s.APIToken(), nil)
	if l := r.data(t).([]any); len(l) != 1 {
		t.Fatalf("prune: %s", r.body)
	}
}

var reTestPBS = regexpMust(`^pbs:backup/vm/200/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$`)
