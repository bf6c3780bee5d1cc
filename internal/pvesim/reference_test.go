package pvesim

// Conformance tests for the behaviours listed in REFERENCE.md (this
// directory); each test names the REFERENCE.md rows it pins. They use raw
// HTTP so that the exact wire shape (status line, body, field presence) is
// asserted.

import (
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// refConfig is the default inventory plus a non-Allocate backup user, a
// privilege-separated token, a disabled storage and a storage limited to pve1.
func refConfig() *Config {
	cfg := DefaultConfig()
	cfg.Users = append(cfg.Users,
		UserConfig{ID: "backup@pve", ACL: []ACLEntry{
			{Path: "/storage", Roles: []string{"PVEDatastoreUser"}},
			{Path: "/vms", Roles: []string{"PVEVMUser"}},
		}, Tokens: []TokenConfig{{ID: "b", Secret: "sec"}}},
		UserConfig{ID: "limited@pve", ACL: []ACLEntry{{Path: "/vms/100", Privs: []string{"VM.Audit"}}},
			Tokens: []TokenConfig{
				{ID: "sep", Secret: "sep", Privsep: true, ACL: []ACLEntry{{Path: "/", Roles: []string{"Administrator"}}}},
				{ID: "nosep", Secret: "nosep"},
			}},
	)
	cfg.Storages = append(cfg.Storages,
		StorageConfig{ID: "off", Type: "dir", Content: []string{"backup"}, Disabled: true},
		StorageConfig{ID: "only1", Type: "dir", Content: []string{"backup"}, Nodes: []string{"pve1"}},
	)
	return cfg
}

func errsOf(t *testing.T, r *resp) map[string]any {
	t.Helper()
	e, _ := r.json(t)["errors"].(map[string]any)
	return e
}

// REFERENCE.md 2.1–2.3: parameter verification.
func TestRefVzdumpParamErrors(t *testing.T) {
	t.Parallel()
	s := startSim(t, func(o *Options) { o.Config = refConfig() })
	tok := s.APIToken()
	for _, c := range []struct {
		body url.Values
		key  string
		msg  string
	}{
		{url.Values{"vmid": {"100"}, "all": {"1"}}, "all", "option conflicts with option 'vmid'"},
		{url.Values{"vmid": {"100"}, "exclude": {"101"}}, "exclude", "option conflicts with option 'vmid'"},
		{url.Values{"vmid": {"100"}, "pool": {"p"}}, "pool", "option conflicts with option 'vmid'"},
		{url.Values{"vmid": {"100"}, "stdout": {"1"}}, "stdout", "option is only allowed on the command line interface."},
		{url.Values{"vmid": {"100"}, "frobnicate": {"1"}}, "frobnicate", "property is not defined in schema and the schema does not allow additional properties"},
		{url.Values{"vmid": {"100"}, "compress": {"xz"}}, "compress", "value 'xz' does not have a value in the enumeration '0, 1, gzip, lzo, zstd'"},
		// verify_vzdump_parameters checks the template before the missing vmid
		{url.Values{"storage": {"local"}, "notes-template": {"{{foo}}"}}, "notes-template", "found unknown: variable 'foo' at char 4"},
	} {
		r := call(t, s, "POST", "/nodes/pve1/vzdump", tok, c.body)
		if r.status != "400 Parameter verification failed." || errsOf(t, r)[c.key] != c.msg {
			t.Errorf("%v: %s %s", c.body, r.status, r.body)
		}
	}
	// all=0 together with vmid is not a conflict
	if r := call(t, s, "POST", "/nodes/pve1/vzdump", tok, url.Values{"vmid": {"100"}, "all": {"0"}, "storage": {"local"}}); r.code != 200 {
		t.Errorf("all=0: %s %s", r.status, r.body)
	}
	// unknown escape in the template
	r := call(t, s, "POST", "/nodes/pve1/vzdump", tok, url.Values{"vmid": {"100"}, "storage": {"local"}, "notes-template": {`a\tb`}})
	if m, _ := errsOf(t, r)["notes-template"].(string); r.code != 400 || !strings.HasPrefix(m, "found unknown: escape") {
		t.Errorf("escape: %s", r.body)
	}
	// root-only options for other users
	r = call(t, s, "POST", "/nodes/pve1/vzdump", "backup@pve!b=sec", url.Values{"vmid": {"100"}, "dumpdir": {"/tmp"}})
	if errsOf(t, r)["dumpdir"] != "Only root may set this option." {
		t.Errorf("dumpdir: %s", r.body)
	}
	// Sys.Modify params (REFERENCE.md 2.2)
	r = call(t, s, "POST", "/nodes/pve1/vzdump", "backup@pve!b=sec", url.Values{"vmid": {"100"}, "storage": {"local"}, "bwlimit": {"100"}})
	if r.status != "403 Permission check failed (/, Sys.Modify)" {
		t.Errorf("bwlimit: %s", r.status)
	}
	r = call(t, s, "POST", "/nodes/pve1/vzdump", "backup@pve!b=sec", url.Values{"vmid": {"100"}, "storage": {"local"}, "prune-backups": {"keep-last=1"}})
	if r.status != "403 Permission check failed (/storage/local, Datastore.Allocate)" {
		t.Errorf("prune-backups: %s", r.status)
	}
}

// REFERENCE.md 2.6: "OK" only when no local guest is selected and all is not set.
func TestRefVzdumpOKAndAll(t *testing.T) {
	t.Parallel()
	s := startSim(t)
	tok := s.APIToken()
	r := call(t, s, "POST", "/nodes/pve1/vzdump", tok, url.Values{"vmid": {"101"}, "storage": {"nas"}})
	if string(r.body) != `{"data":"OK"}` {
		t.Fatalf("other node: %s", r.body)
	}
	// all=1 always starts a job (here: no guest left after exclude); the id is empty
	r = call(t, s, "POST", "/nodes/pve2/vzdump", tok, url.Values{"exclude": {"101"}, "storage": {"nas"}})
	upid, _ := r.data(t).(string)
	if !reUPIDTest.MatchString(upid) || !strings.Contains(upid, ":vzdump::") {
		t.Fatalf("all without local guests: %s", r.body)
	}
	if st := waitTask(t, s, upid); st["exitstatus"] != "OK" {
		t.Fatalf("empty job: %v", st)
	}
	// a job for two guests: empty task id, guests in vmid order, the
	// "starting new backup job" line is the first one
	r = call(t, s, "POST", "/nodes/pve1/vzdump", tok, url.Values{"vmid": {"200,100"}, "storage": {"nas"}})
	upid, _ = r.data(t).(string)
	if !strings.Contains(upid, ":vzdump::") {
		t.Fatalf("two guests: %s", upid)
	}
	waitTask(t, s, upid)
	l := taskLog(t, s, upid)
	if !strings.HasPrefix(l[0], "INFO: starting new backup job: vzdump 200 100 ") {
		t.Fatalf("first line: %q", l[0])
	}
	i100 := indexOf(l, "INFO: Starting Backup of VM 100 (lxc)")
	i200 := indexOf(l, "INFO: Starting Backup of VM 200 (qemu)")
	if i100 < 0 || i200 < 0 || i100 > i200 {
		t.Fatalf("order: %d %d\n%s", i100, i200, strings.Join(l, "\n"))
	}
}

func indexOf(l []string, s string) int {
	for i, x := range l {
		if x == s {
			return i
		}
	}
	return -1
}

// REFERENCE.md 2.1, 2.5, 3.7: compress default, extensions, notes-template expansion.
func TestRefVzdumpDefaultsAndNotes(t *testing.T) {
	t.Parallel()
	cfg := DefaultConfig()
	cfg.ClusterName = ""
	s := startSim(t, func(o *Options) { o.Config = cfg })
	v, st := backup(t, s, "pve1", 100, url.Values{"notes-template": {`{{cluster}}|{{guestname}}|{{node}}|{{vmid}}\\x\ny`}})
	if st["exitstatus"] != "OK" || !strings.HasSuffix(v, ".tar") {
		t.Fatalf("default compress: %s %v", v, st)
	}
	name := strings.TrimPrefix(v, "local:backup/")
	nb, _ := os.ReadFile(filepath.Join(s.StorageDumpDir("pve1", "local"), name+".notes"))
	if string(nb) != "standalone node|web|pve1|100\\x\ny" {
		t.Fatalf("notes %q", nb)
	}
	v2, _ := backup(t, s, "pve1", 200, url.Values{"compress": {"1"}})
	if !strings.HasSuffix(v2, ".vma.lzo") {
		t.Fatalf("compress=1: %s", v2)
	}
}

// REFERENCE.md 2.13–2.14: pruning only with a finite retention; with
// remove=0 the max backup limit is enforced (per guest, protected ones not counted).
func TestRefVzdumpRemoveAndLimit(t *testing.T) {
	t.Parallel()
	s := startSim(t)
	dump := s.StorageDumpDir("pve2", "nas")
	for i := 1; i <= 2; i++ {
		_ = os.WriteFile(filepath.Join(dump, fmt.Sprintf("vzdump-lxc-101-2020_01_0%d-00_00_00.tar", i)), []byte("x"), 0o644)
	}
	// keep-all (default): no prune lines, nothing removed
	_, st := backup(t, s, "pve2", 101, url.Values{"storage": {"nas"}})
	upid := latestTask(t, s, "pve2")
	if l := strings.Join(taskLog(t, s, upid), "\n"); st["exitstatus"] != "OK" || strings.Contains(l, "prune older backups") {
		t.Fatalf("keep-all: %v\n%s", st, l)
	}
	// remove=0 with keep-last=3: 3 backups exist → limit reached
	r := call(t, s, "POST", "/nodes/pve2/vzdump", s.APIToken(), url.Values{"vmid": {"101"}, "storage": {"nas"}, "prune-backups": {"keep-last=3"}, "remove": {"0"}})
	upid = r.data(t).(string)
	if st := waitTask(t, s, upid); st["exitstatus"] != "job errors" {
		t.Fatalf("limit: %v", st)
	}
	want := "ERROR: Backup of VM 101 failed - There is a max backup limit of 3 enforced by the target storage or the vzdump parameters. Either increase the limit or delete old backups."
	if l := taskLog(t, s, upid); indexOf(l, want) < 0 {
		t.Fatalf("limit log:\n%s", strings.Join(l, "\n"))
	}
	// protected backups do not count
	_ = os.WriteFile(filepath.Join(dump, "vzdump-lxc-101-2020_01_01-00_00_00.tar.protected"), nil, 0o644)
	_, st = backup(t, s, "pve2", 101, url.Values{"storage": {"nas"}, "prune-backups": {"keep-last=3"}, "remove": {"0"}})
	if st["exitstatus"] != "OK" {
		t.Fatalf("protected not counted: %v", st)
	}
}

func latestTask(t *testing.T, s *Sim, node string) string {
	t.Helper()
	r := call(t, s, "GET", "/nodes/"+node+"/tasks?limit=1", s.APIToken(), nil)
	return r.data(t).([]any)[0].(map[string]any)["upid"].(string)
}

// REFERENCE.md 2.13, 3.5: protected limit of 5 per guest without Datastore.Allocate.
func TestRefProtectedLimit(t *testing.T) {
	t.Parallel()
	s := startSim(t, func(o *Options) { o.Config = refConfig() })
	dump := s.StorageDumpDir("pve1", "local")
	for i := 1; i <= 6; i++ {
		n := fmt.Sprintf("vzdump-lxc-100-2020_01_0%d-00_00_00.tar", i)
		_ = os.WriteFile(filepath.Join(dump, n), []byte("x"), 0o644)
		if i <= 5 {
			_ = os.WriteFile(filepath.Join(dump, n+".protected"), nil, 0o644)
		}
	}
	vol := "local:backup/vzdump-lxc-100-2020_01_06-00_00_00.tar"
	r := call(t, s, "PUT", "/nodes/pve1/storage/local/content/"+vol, "backup@pve!b=sec", url.Values{"protected": {"1"}})
	if r.status != "500 The number of protected backups per guest is limited to 5 on storage 'local'" {
		t.Fatalf("put limit: %s %s", r.status, r.body)
	}
	// vzdump protected=1 by the same user: the guest's backup fails
	r = call(t, s, "POST", "/nodes/pve1/vzdump", "backup@pve!b=sec", url.Values{"vmid": {"100"}, "storage": {"local"}, "protected": {"1"}})
	upid := r.data(t).(string)
	if st := waitTask(t, s, upid); st["exitstatus"] != "job errors" {
		t.Fatalf("vzdump limit: %v", st)
	}
	if l := taskLog(t, s, upid); indexOf(l, "ERROR: Backup of VM 100 failed - The number of protected backups per guest is limited to 5 on storage 'local'") < 0 {
		t.Fatalf("vzdump limit log:\n%s", strings.Join(l, "\n"))
	}
	// Datastore.Allocate (root): unlimited
	if r := call(t, s, "PUT", "/nodes/pve1/storage/local/content/"+vol, s.APIToken(), url.Values{"protected": {"1"}}); r.code != 200 {
		t.Fatalf("root put: %s", r.status)
	}
}

// REFERENCE.md 4.3, 4.4, 4.6: task list, log edge cases, stop of a finished task.
func TestRefTaskEdges(t *testing.T) {
	t.Parallel()
	// A running task that has logged nothing yet: an LXC restore worker
	// waits TaskOverhead before its first line (and then fails: the archive
	// is missing, which only the worker notices).
	s := startSim(t, func(o *Options) { o.TaskOverhead = 1500 * time.Millisecond })
	tok := s.APIToken()
	missing := "local:backup/vzdump-lxc-100-2020_01_01-00_00_00.tar.zst"
	upid := startTask(t, s, "POST", "/nodes/pve1/lxc", url.Values{"vmid": {"150"}, "ostemplate": {missing}, "restore": {"1"}, "storage": {"local-lvm"}})
	r := call(t, s, "GET", "/nodes/pve1/tasks/"+upid+"/log", tok, nil)
	if string(r.body) != `{"data":[{"n":1,"t":"no content"}],"total":1}` {
		t.Fatalf("empty log: %s", r.body)
	}
	r = call(t, s, "GET", "/nodes/pve1/tasks?source=active", tok, nil)
	items := r.data(t).([]any)
	if len(items) != 1 {
		t.Fatalf("active: %s", r.body)
	}
	if it := items[0].(map[string]any); it["status"] != "RUNNING" || it["endtime"] != nil || it["upid"] != upid {
		t.Fatalf("running item: %v", it)
	}
	waitTask(t, s, upid)
	r = call(t, s, "GET", "/nodes/pve1/tasks?typefilter=vzrestore", tok, nil)
	if it := r.data(t).([]any)[0].(map[string]any); it["status"] != "unable to restore CT 150 - can't find file '"+missing+"'" || it["endtime"] == nil {
		t.Fatalf("finished item: %v", it)
	}
	// stopping a finished task is a no-op
	if r := call(t, s, "DELETE", "/nodes/pve1/tasks/"+upid, tok, nil); string(r.body) != `{"data":null}` {
		t.Fatalf("stop finished: %s %s", r.status, r.body)
	}
	// log beyond the end: empty list, total still the line count
	r = call(t, s, "GET", "/nodes/pve1/tasks/"+upid+"/log?start=1000", tok, nil)
	if j := r.json(t); len(j["data"].([]any)) != 0 || j["total"] == nil {
		t.Fatalf("beyond end: %s", r.body)
	}
	// a well-formed UPID without a log file (unknown, or of another node):
	// the log endpoint answers 200 with one line, the status endpoint 400
	unknown := "UPID:pve1:00001234:00ABCDEF:68E10C40:vzdump:100:root@pam!terraform:"
	want := `{"data":[{"n":1,"t":"unable to open file - No such file or directory"}],"total":1}`
	for _, p := range []string{"/nodes/pve1/tasks/" + unknown + "/log", "/nodes/pve2/tasks/" + upid + "/log"} {
		if r := call(t, s, "GET", p, tok, nil); r.code != 200 || string(r.body) != want {
			t.Fatalf("%s: %s %s", p, r.status, r.body)
		}
	}
	if r := call(t, s, "GET", "/nodes/pve1/tasks/"+unknown+"/status", tok, nil); errsOf(t, r)["upid"] != "no such task" {
		t.Fatalf("unknown status: %s", r.body)
	}
}

// REFERENCE.md 3.1–3.7: listing edge cases, storage errors, PUT on non-backups.
func TestRefStorageContentEdges(t *testing.T) {
	t.Parallel()
	s := startSim(t, func(o *Options) { o.Config = refConfig() })
	tok := s.APIToken()
	dump := s.StorageDumpDir("pve1", "local")
	for _, n := range []string{"b.tar", "A.tar", "vzdump-lxc-100-2020_01_01-00_00_00.tar"} {
		_ = os.WriteFile(filepath.Join(dump, n), []byte("x"), 0o644)
	}
	r := call(t, s, "GET", "/nodes/pve1/storage/local/content?content=backup", tok, nil)
	var ids []string
	for _, x := range r.data(t).([]any) {
		ids = append(ids, x.(map[string]any)["volid"].(string))
	}
	if strings.Join(ids, " ") != "local:backup/A.tar local:backup/b.tar local:backup/vzdump-lxc-100-2020_01_01-00_00_00.tar" {
		t.Fatalf("lc order: %v", ids)
	}
	// content type the storage does not have → []
	if r := call(t, s, "GET", "/nodes/pve1/storage/local/content?content=images", tok, nil); string(r.body) != `{"data":[]}` {
		t.Fatalf("images on local: %s", r.body)
	}
	for p, want := range map[string]string{
		"/nodes/pve1/storage/off/content":   "500 storage 'off' is disabled",
		"/nodes/pve2/storage/only1/content": "500 storage 'only1' is not available on node 'pve2'",
		"/nodes/pve1/storage/zz/content":    "500 storage 'zz' does not exist",
	} {
		if r := call(t, s, "GET", p, tok, nil); r.status != want {
			t.Errorf("%s: %s", p, r.status)
		}
	}
	// storage list: disabled / not-on-node storages are listed with enabled 0, active 0, zero sizes
	r = call(t, s, "GET", "/nodes/pve2/storage", tok, nil)
	seen := map[string]map[string]any{}
	for _, x := range r.data(t).([]any) {
		e := x.(map[string]any)
		seen[e["storage"].(string)] = e
	}
	for _, id := range []string{"off", "only1"} {
		e := seen[id]
		if e == nil || e["enabled"] != float64(0) || e["active"] != float64(0) || e["total"] != float64(0) || e["used_fraction"] != nil {
			t.Errorf("%s entry: %v", id, e)
		}
	}
	if _, ok := seen["nas"]["used_fraction"]; !ok {
		t.Errorf("nas without used_fraction: %v", seen["nas"])
	}
	r = call(t, s, "GET", "/nodes/pve2/storage?enabled=1", tok, nil)
	if strings.Contains(string(r.body), `"off"`) || strings.Contains(string(r.body), `"only1"`) {
		t.Errorf("enabled=1: %s", r.body)
	}
	// volume GET: no volid/vmid/ctime
	r = call(t, s, "GET", "/nodes/pve1/storage/local/content/local:backup/vzdump-lxc-100-2020_01_01-00_00_00.tar", tok, nil)
	info := r.data(t).(map[string]any)
	for _, k := range []string{"volid", "vmid", "ctime"} {
		if _, ok := info[k]; ok {
			t.Errorf("info has %s: %v", k, info)
		}
	}
	// bare volname works too
	if r := call(t, s, "GET", "/nodes/pve1/storage/local/content/backup/vzdump-lxc-100-2020_01_01-00_00_00.tar", tok, nil); r.code != 200 {
		t.Errorf("bare volname: %s", r.status)
	}
	// PUT on a non-backup volume
	_ = os.MkdirAll(filepath.Join(s.storagePath(s.storages["local"], "pve1"), "template", "iso"), 0o755)
	_ = os.WriteFile(filepath.Join(s.storagePath(s.storages["local"], "pve1"), "template", "iso", "x.iso"), []byte("iso"), 0o644)
	if r := call(t, s, "PUT", "/nodes/pve1/storage/local/content/local:iso/x.iso", tok, url.Values{"notes": {"n"}}); r.status != "500 only backups can have notes" {
		t.Errorf("notes on iso: %s", r.status)
	}
	if r := call(t, s, "PUT", "/nodes/pve1/storage/local/content/local:iso/x.iso", tok, url.Values{"protected": {"1"}}); r.status != "500 only backups support attribute 'protected'" {
		t.Errorf("protected on iso: %s", r.status)
	}
}

// REFERENCE.md 5.2–5.5: power semantics.
func TestRefGuestPower(t *testing.T) {
	t.Parallel()
	s := startSim(t)
	tok := s.APIToken()
	// QEMU stop of a stopped VM: a no-op task
	upid := startTask(t, s, "POST", "/nodes/pve1/qemu/200/status/stop", nil)
	if st := waitTask(t, s, upid); st["exitstatus"] != "OK" || !strings.Contains(upid, ":qmstop:200:") {
		t.Fatalf("qm stop stopped: %v", st)
	}
	upid = startTask(t, s, "POST", "/nodes/pve1/qemu/200/status/start", nil)
	waitTask(t, s, upid)
	// QEMU start of a running VM: no sync error, the task fails
	upid = startTask(t, s, "POST", "/nodes/pve1/qemu/200/status/start", nil)
	if st := waitTask(t, s, upid); st["exitstatus"] != "VM 200 already running" {
		t.Fatalf("qm start running: %v", st)
	}
	// LXC stop / shutdown of a stopped CT: sync 500
	for _, a := range []string{"stop", "shutdown"} {
		if r := call(t, s, "POST", "/nodes/pve2/lxc/101/status/"+a, tok, nil); r.status != "500 CT 101 not running" {
			t.Fatalf("lxc %s stopped: %s", a, r.status)
		}
	}
	// LXC shutdown without timeout (default 60) and with forceStop
	upid = startTask(t, s, "POST", "/nodes/pve1/lxc/100/status/shutdown", url.Values{"forceStop": {"1"}})
	if st := waitTask(t, s, upid); st["exitstatus"] != "OK" || !strings.Contains(upid, ":vzshutdown:100:") {
		t.Fatalf("lxc shutdown: %v", st)
	}
}

// REFERENCE.md 5.4, 2.12: QEMU start while a backup holds the lock and the VM runs = resume.
func TestRefQemuStartDuringBackup(t *testing.T) {
	t.Parallel()
	s := startSim(t)
	tok := s.APIToken()
	waitTask(t, s, startTask(t, s, "POST", "/nodes/pve1/qemu/200/status/start", nil))
	s.SetThroughput(1 << 10) // 16 KiB disk → ~16 s
	bk := startTask(t, s, "POST", "/nodes/pve1/vzdump", url.Values{"vmid": {"200"}, "storage": {"local"}})
	deadline := time.Now().Add(5 * time.Second)
	for {
		if g, _ := s.GuestState(200); g.Lock == "backup" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no backup lock")
		}
		time.Sleep(5 * time.Millisecond)
	}
	upid := startTask(t, s, "POST", "/nodes/pve1/qemu/200/status/start", nil)
	if st := waitTask(t, s, upid); st["exitstatus"] != "OK" {
		t.Fatalf("start during backup: %v", st)
	}
	// other power actions still fail on the lock
	upid = startTask(t, s, "POST", "/nodes/pve1/qemu/200/status/stop", nil)
	if st := waitTask(t, s, upid); st["exitstatus"] != "VM is locked (backup)" {
		t.Fatalf("stop during backup: %v", st)
	}
	call(t, s, "DELETE", "/nodes/pve1/tasks/"+bk, tok, nil)
	waitTask(t, s, bk)
}

// REFERENCE.md 6.2–6.5, 7.5–7.6: restore checks and cluster resources.
func TestRefRestoreChecks(t *testing.T) {
	t.Parallel()
	s := startSim(t)
	tok := s.APIToken()
	volCT, _ := backup(t, s, "pve1", 100, nil)
	volVM, _ := backup(t, s, "pve1", 200, nil)
	r := call(t, s, "POST", "/nodes/pve1/lxc", tok, url.Values{"vmid": {"150"}, "ostemplate": {volCT}, "unique": {"1"}, "storage": {"local-lvm"}})
	if r.code != 400 || errsOf(t, r)["restore"] != "missing property required by 'unique'" {
		t.Fatalf("lxc unique: %s", r.body)
	}
	r = call(t, s, "POST", "/nodes/pve1/qemu", tok, url.Values{"vmid": {"250"}, "unique": {"1"}})
	if r.code != 400 || errsOf(t, r)["archive"] != "missing property required by 'unique'" {
		t.Fatalf("qemu unique: %s", r.body)
	}
	r = call(t, s, "POST", "/nodes/pve1/lxc", tok, url.Values{"vmid": {"150"}, "ostemplate": {volCT}, "restore": {"1"}, "storage": {"nas"}})
	if r.status != "400 Parameter verification failed." || errsOf(t, r)["storage"] != "storage 'nas' does not support container directories" {
		t.Fatalf("nas rootdir: %s %s", r.status, r.body)
	}
	// running CT + force: sync 500
	r = call(t, s, "POST", "/nodes/pve1/lxc", tok, url.Values{"vmid": {"100"}, "ostemplate": {volCT}, "restore": {"1"}, "force": {"1"}, "storage": {"local-lvm"}})
	if r.status != "500 can't overwrite running container" {
		t.Fatalf("running CT: %s", r.status)
	}
	// existing VM without force: sync 500
	r = call(t, s, "POST", "/nodes/pve1/qemu", tok, url.Values{"vmid": {"200"}, "archive": {volVM}})
	if r.status != "500 unable to restore VM 200 - VM 200 already exists on node 'pve1'" {
		t.Fatalf("existing VM: %s", r.status)
	}
	// running VM + force: the task fails
	waitTask(t, s, startTask(t, s, "POST", "/nodes/pve1/qemu/200/status/start", nil))
	upid := startTask(t, s, "POST", "/nodes/pve1/qemu", url.Values{"vmid": {"200"}, "archive": {volVM}, "force": {"1"}})
	if st := waitTask(t, s, upid); st["exitstatus"] != "unable to restore VM 200 - vm is running" {
		t.Fatalf("running VM: %v", st)
	}
	if g, _ := s.GuestState(200); g.Lock != "" || g.Status != "running" {
		t.Fatalf("VM after failed restore: %+v", g)
	}
	// a non-backup volume as ostemplate
	r = call(t, s, "POST", "/nodes/pve1/lxc", tok, url.Values{"vmid": {"150"}, "ostemplate": {"local:iso/x.iso"}, "restore": {"1"}, "storage": {"local-lvm"}})
	if r.status != "500 unable to use volume local:iso/x.iso - content type needs to be 'backup'" {
		t.Fatalf("iso: %s", r.status)
	}
	// guests on an offline node are still listed, with status unknown
	s.SetNodeOffline("pve2", true)
	r = call(t, s, "GET", "/cluster/resources?type=vm", tok, nil)
	found := false
	for _, x := range r.data(t).([]any) {
		e := x.(map[string]any)
		if e["vmid"] == float64(101) {
			found = e["status"] == "unknown" && e["node"] == "pve2" && e["id"] == "lxc/101"
		}
	}
	if !found {
		t.Fatalf("offline guest: %s", r.body)
	}
}

// REFERENCE.md 1.3, 1.6, 1.7, 4.2: auth details.
func TestRefAuthDetails(t *testing.T) {
	t.Parallel()
	s := startSim(t, func(o *Options) { o.Config = refConfig() })
	// a ticket whose signature contains '+' works raw and URI-escaped (uri_unescape keeps '+')
	var ticket, csrf string
	for i := 0; i < 1000; i++ {
		ticket, csrf = s.makeTicket("root@pam", time.Now().Add(-time.Duration(i)*time.Second))
		if strings.Contains(ticket, "+") {
			break
		}
	}
	if !strings.Contains(ticket, "+") {
		t.Skip("no ticket with '+'")
	}
	get := func(cookie string, hdr map[string]string, method string) *http.Response {
		req, _ := http.NewRequest(method, s.Endpoint()+"api2/json/version", nil)
		if cookie != "" {
			req.Header.Set("Cookie", "PVEAuthCookie="+cookie)
		}
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		res, err := httpClient(t, s).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res
	}
	for _, c := range []string{ticket, url.PathEscape(ticket), url.QueryEscape(ticket)} {
		if res := get(c, nil, "GET"); res.StatusCode != 200 {
			t.Errorf("cookie %q: %s", c, res.Status)
		}
	}
	if res := get("", map[string]string{"Authorization": "PVEAuthCookie=" + ticket}, "GET"); res.StatusCode != 200 {
		t.Errorf("Authorization cookie: %s", res.Status)
	}
	// a wrong CSRF token → 401, empty body
	req, _ := http.NewRequest("POST", s.Endpoint()+"api2/json/nodes/pve2/lxc/101/status/start", nil)
	req.Header.Set("Cookie", "PVEAuthCookie="+url.QueryEscape(ticket))
	req.Header.Set("CSRFPreventionToken", strings.Split(csrf, ":")[0]+":AAAA")
	res, err := httpClient(t, s).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.Status != "401 Permission denied - invalid csrf token" || res.ContentLength != 0 {
		t.Errorf("bad csrf: %s %d", res.Status, res.ContentLength)
	}
	// GET /version shape
	r := call(t, s, "GET", "/version", s.ReadOnlyToken(), nil)
	d := r.data(t).(map[string]any)
	if len(d) != 3 || d["version"] != "9.2.11" || d["release"] != "9.2" || d["repoid"] == "" {
		t.Errorf("version: %s", r.body)
	}
	// 501
	if r := call(t, s, "PUT", "/version", s.APIToken(), nil); r.status != "501 Method 'PUT /version' not implemented" {
		t.Errorf("501: %s", r.status)
	}
	// token privilege separation: the token's ACL ∩ the user's privileges
	if r := call(t, s, "GET", "/nodes/pve1/lxc/100/status/current", "limited@pve!sep=sep", nil); r.code != 200 {
		t.Errorf("privsep audit: %s", r.status)
	}
	if r := call(t, s, "POST", "/nodes/pve1/lxc/100/status/stop", "limited@pve!sep=sep", nil); r.status != "403 Permission check failed (/vms/100, VM.PowerMgmt)" {
		t.Errorf("privsep power: %s", r.status)
	}
	if r := call(t, s, "GET", "/nodes/pve1/qemu/200/status/current", "limited@pve!sep=sep", nil); r.status != "403 Permission check failed (/vms/200, VM.Audit)" {
		t.Errorf("privsep other vm: %s", r.status)
	}
	if r := call(t, s, "GET", "/nodes/pve1/lxc/100/status/current", "limited@pve!nosep=nosep", nil); r.code != 200 {
		t.Errorf("nosep: %s", r.status)
	}
	// REFERENCE.md 4.2: a task of another user needs Sys.Audit
	upid := startTask(t, s, "POST", "/nodes/pve2/lxc/101/status/start", nil)
	if r := call(t, s, "GET", "/nodes/pve2/tasks/"+upid+"/status", "limited@pve!nosep=nosep", nil); r.status != "403 Permission check failed (/nodes/pve2, Sys.Audit)" {
		t.Errorf("foreign task: %s", r.status)
	}
}
