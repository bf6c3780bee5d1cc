package pvesim

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestReasonPhrasesAndErrors(t *testing.T) {
	t.Parallel()
	s := startSim(t)
	tok := s.APIToken()
	// raw status line for a 500
	req := "POST /api2/json/nodes/pve1/lxc/100/status/start HTTP/1.1\r\nHost: x\r\nAuthorization: PVEAPIToken=" + tok + "\r\nContent-Length: 0\r\n\r\n"
	if got := rawStatusLine(t, s, req); got != "HTTP/1.1 500 CT 100 already running" {
		t.Fatalf("status line %q", got)
	}
	r := call(t, s, "POST", "/nodes/pve1/lxc/100/status/start", tok, nil)
	if r.code != 500 || string(r.body) != `{"data":null,"message":"CT 100 already running\n"}` {
		t.Fatalf("500: %s %v %s", r.status, r.header, r.body)
	}
	// 400 with errors map
	r = call(t, s, "POST", "/nodes/pve1/vzdump", tok, url.Values{"vmid": {"100"}, "protected": {"true"}, "bogus": {"1"}, "mode": {"x"}})
	m := r.json(t)
	errs, _ := m["errors"].(map[string]any)
	if r.status != "400 Parameter verification failed." || m["message"] != "Parameter verification failed.\n" ||
		errs["protected"] != "type check ('boolean') failed - got 'true'" ||
		errs["bogus"] != "property is not defined in schema and the schema does not allow additional properties" ||
		errs["mode"] != "value 'x' does not have a value in the enumeration 'snapshot, suspend, stop'" {
		t.Fatalf("400: %s %s", r.status, r.body)
	}
	// requires
	r = call(t, s, "POST", "/nodes/pve1/vzdump", tok, map[string]any{"vmid": 100, "notes-template": "x", "protected": true})
	errs, _ = r.json(t)["errors"].(map[string]any)
	if r.code != 400 || errs["storage"] != "missing property required by 'notes-template'" && errs["storage"] != "missing property required by 'protected'" {
		t.Fatalf("requires: %s", r.body)
	}
	r = call(t, s, "POST", "/nodes/pve1/vzdump", tok, url.Values{"storage": {"local"}})
	if errs, _ := r.json(t)["errors"].(map[string]any); r.code != 400 || errs["vmid"] != "property is missing" {
		t.Fatalf("missing vmid: %s", r.body)
	}
	r = call(t, s, "POST", "/nodes/pve1/vzdump", tok, url.Values{"vmid": {"100"}, "storage": {"local"}, "notes-template": {"{{foo}}"}})
	if errs, _ := r.json(t)["errors"].(map[string]any); r.code != 400 || errs["notes-template"] != "found unknown: variable 'foo' at char 4" {
		t.Fatalf("template: %s", r.body)
	}
	r = call(t, s, "POST", "/nodes/pve1/vzdump", tok, url.Values{"vmid": {"100"}, "node": {"pve2"}})
	if errs, _ := r.json(t)["errors"].(map[string]any); r.code != 400 || errs["node"] != "duplicate parameter (already defined in URI) with conflicting values!" {
		t.Fatalf("dup node: %s", r.body)
	}
	// JSON booleans and digit-string integers are accepted
	r = call(t, s, "GET", "/nodes/pve1/tasks?limit=5&errors=0", tok, nil)
	if r.code != 200 {
		t.Fatalf("tasks: %s", r.status)
	}
	// 501
	r = call(t, s, "GET", "/nodes/pve1/nope", tok, nil)
	if r.status != "501 Method 'GET /nodes/pve1/nope' not implemented" {
		t.Fatalf("501: %s", r.status)
	}
	// unknown node
	r = call(t, s, "GET", "/nodes/pve9/lxc", tok, nil)
	if r.code != 500 || !strings.Contains(r.status, "pve9") {
		t.Fatalf("unknown node: %s", r.status)
	}
	// missing backup volume → 500 volume_size_info
	r = call(t, s, "GET", "/nodes/pve1/storage/local/content/local:backup/vzdump-lxc-100-2020_01_01-00_00_00.tar", tok, nil)
	if r.status != "500 volume_size_info on 'local:backup/vzdump-lxc-100-2020_01_01-00_00_00.tar' failed - no format" {
		t.Fatalf("missing volume: %s", r.status)
	}
	r = call(t, s, "GET", "/nodes/pve1/storage/local/content/nas:backup/x.tar", tok, nil)
	if errs, _ := r.json(t)["errors"].(map[string]any); r.code != 400 || errs["volume"] != "storage ID mismatch (nas != local)" {
		t.Fatalf("mismatch: %s", r.body)
	}
	r = call(t, s, "GET", "/nodes/pve1/storage/nope/content", tok, nil)
	if r.status != "500 storage 'nope' does not exist" {
		t.Fatalf("no storage: %s", r.status)
	}
}

func TestAuth(t *testing.T) {
	t.Parallel()
	s := startSim(t)
	r := call(t, s, "GET", "/version", "", nil)
	if r.status != "401 No ticket" || len(r.body) != 0 {
		t.Fatalf("no auth: %s %q", r.status, r.body)
	}
	r = call(t, s, "GET", "/version", "root@pam!terraform=wrong", nil)
	if r.code != 401 || len(r.body) != 0 {
		t.Fatalf("bad token: %s %q", r.status, r.body)
	}
	// space form of the token header
	req, _ := http.NewRequest("GET", s.Endpoint()+"api2/json/version", nil)
	req.Header.Set("Authorization", "PVEAPIToken "+s.APIToken())
	res, err := httpClient(t, s).Do(req)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("space form: %v %v", res, err)
	}
	res.Body.Close()

	// tickets
	r = call(t, s, "POST", "/access/ticket", "", url.Values{"username": {"root@pam"}, "password": {"bad"}})
	if r.status != "401 authentication failure" {
		t.Fatalf("bad login: %s", r.status)
	}
	r = call(t, s, "POST", "/access/ticket", "", map[string]any{"username": "root", "realm": "pam", "password": "pvesim"})
	if r.code != 200 {
		t.Fatalf("login: %s %s", r.status, r.body)
	}
	d := r.data(t).(map[string]any)
	ticket, csrf := d["ticket"].(string), d["CSRFPreventionToken"].(string)
	if !strings.HasPrefix(ticket, "PVE:root@pam:") || d["username"] != "root@pam" {
		t.Fatalf("ticket: %v", d)
	}
	do := func(method, path, csrfHdr string) *http.Response {
		req, _ := http.NewRequest(method, s.Endpoint()+"api2/json"+path, nil)
		req.AddCookie(&http.Cookie{Name: "PVEAuthCookie", Value: url.QueryEscape(ticket)})
		if csrfHdr != "" {
			req.Header.Set("CSRFPreventionToken", csrfHdr)
		}
		res, err := httpClient(t, s).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res
	}
	if res := do("GET", "/version", ""); res.StatusCode != 200 {
		t.Fatalf("ticket GET: %s", res.Status)
	}
	if res := do("POST", "/nodes/pve1/lxc/101/status/start", ""); res.Status != "401 Permission denied - invalid csrf token" {
		t.Fatalf("csrf: %s", res.Status)
	}
	if res := do("POST", "/nodes/pve2/lxc/101/status/start", csrf); res.StatusCode != 200 {
		t.Fatalf("with csrf: %s", res.Status)
	}
	// renewal: the ticket as password
	r = call(t, s, "POST", "/access/ticket", "", url.Values{"username": {"root@pam"}, "password": {ticket}})
	if r.code != 200 {
		t.Fatalf("renew: %s", r.status)
	}
	s.SetTicketLifetime(time.Nanosecond)
	if res := do("GET", "/version", ""); res.StatusCode != 401 {
		t.Fatalf("expired ticket: %s", res.Status)
	}
	s.SetTicketLifetime(2 * time.Hour)

	// read-only token
	ro := s.ReadOnlyToken()
	r = call(t, s, "POST", "/nodes/pve1/vzdump", ro, url.Values{"vmid": {"100"}})
	if r.status != "403 Permission check failed (/storage/local, Datastore.AllocateSpace)" ||
		r.json(t)["message"] != "Permission check failed (/storage/local, Datastore.AllocateSpace)\n" {
		t.Fatalf("ro vzdump: %s %s", r.status, r.body)
	}
	r = call(t, s, "POST", "/nodes/pve1/lxc/100/status/stop", ro, nil)
	if r.status != "403 Permission check failed (/vms/100, VM.PowerMgmt)" {
		t.Fatalf("ro stop: %s", r.status)
	}
	// ro sees guests, but backups are hidden without Datastore.Allocate
	volid, _ := backup(t, s, "pve1", 100, nil)
	r = call(t, s, "GET", "/nodes/pve1/storage/local/content?content=backup", ro, nil)
	if r.code != 200 || string(r.body) != `{"data":[]}` {
		t.Fatalf("ro listing: %s %s", r.status, r.body)
	}
	r = call(t, s, "GET", "/nodes/pve1/storage/local/content?content=backup", s.APIToken(), nil)
	if l := r.data(t).([]any); len(l) != 1 || l[0].(map[string]any)["volid"] != volid {
		t.Fatalf("root listing: %s", r.body)
	}
	r = call(t, s, "GET", "/cluster/resources?type=vm", ro, nil)
	if l := r.data(t).([]any); len(l) != 3 {
		t.Fatalf("ro resources: %s", r.body)
	}
}

func TestVMBackupCheckedInTask(t *testing.T) {
	t.Parallel()
	cfg := DefaultConfig()
	cfg.Users = append(cfg.Users, UserConfig{ID: "backup@pve", ACL: []ACLEntry{{Path: "/storage", Roles: []string{"PVEDatastoreUser"}}, {Path: "/vms/101", Privs: []string{"VM.Backup", "VM.Audit"}}},
		Tokens: []TokenConfig{{ID: "b", Secret: "sec"}}})
	s := startSim(t, func(o *Options) { o.Config = cfg })
	r := call(t, s, "POST", "/nodes/pve1/vzdump", "backup@pve!b=sec", url.Values{"vmid": {"100"}, "storage": {"nas"}})
	if r.code != 200 {
		t.Fatalf("vzdump: %s", r.status)
	}
	upid := r.data(t).(string)
	if !strings.HasSuffix(upid, ":vzdump:100:backup@pve!b:") {
		t.Fatalf("upid %s", upid)
	}
	// the owner token can read its own task
	var st map[string]any
	for i := 0; i < 200; i++ {
		r = call(t, s, "GET", "/nodes/pve1/tasks/"+upid+"/status", "backup@pve!b=sec", nil)
		st = r.data(t).(map[string]any)
		if st["status"] == "stopped" {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if st["exitstatus"] != "403 Permission check failed (/vms/100, VM.Backup)" || st["user"] != "backup@pve" || st["tokenid"] != "b" {
		t.Fatalf("status: %v", st)
	}
	// allowed guest works; its backup is visible (AllocateSpace + VM.Backup)
	upid = startTask(t, s, "POST", "/nodes/pve2/vzdump", url.Values{"vmid": {"101"}, "storage": {"nas"}})
	_ = upid
	r = call(t, s, "POST", "/nodes/pve2/vzdump", "backup@pve!b=sec", url.Values{"vmid": {"101"}, "storage": {"nas"}})
	u2 := r.data(t).(string)
	if st := waitTask(t, s, u2); st["exitstatus"] != "OK" {
		t.Fatalf("allowed: %v", st)
	}
	r = call(t, s, "GET", "/nodes/pve2/storage/nas/content", "backup@pve!b=sec", nil)
	if l := r.data(t).([]any); len(l) != 2 {
		t.Fatalf("listing: %s", r.body)
	}
}

func TestTaskShapes(t *testing.T) {
	t.Parallel()
	s := startSim(t)
	tok := s.APIToken()
	upid := startTask(t, s, "POST", "/nodes/pve1/vzdump", url.Values{"vmid": {"100"}, "storage": {"local"}})
	m := reUPIDTest.FindStringSubmatch(upid)
	if m[1] != "pve1" || m[6] != "vzdump" || m[7] != "100" || m[8] != "root@pam!terraform" {
		t.Fatalf("upid fields %v", m)
	}
	r := call(t, s, "GET", "/nodes/pve1/tasks/"+upid+"/status", tok, nil)
	d := r.data(t).(map[string]any)
	if _, ok := d["endtime"]; ok {
		t.Fatal("endtime in status")
	}
	st := waitTask(t, s, upid)
	if st["exitstatus"] != "OK" || st["type"] != "vzdump" || st["id"] != "100" || st["upid"] != upid || st["node"] != "pve1" {
		t.Fatalf("status %v", st)
	}
	var start int64
	fmt.Sscanf(m[5], "%X", &start)
	if int64(st["starttime"].(float64)) != start {
		t.Fatalf("starttime %v vs %d", st["starttime"], start)
	}
	// log paging
	all := taskLog(t, s, upid)
	r = call(t, s, "GET", "/nodes/pve1/tasks/"+upid+"/log?start=2&limit=3", tok, nil)
	j := r.json(t)
	lines := j["data"].([]any)
	if len(lines) != 3 || lines[0].(map[string]any)["n"].(float64) != 3 || lines[0].(map[string]any)["t"] != all[2] || int(j["total"].(float64)) != len(all) {
		t.Fatalf("paging: %s", r.body)
	}
	r = call(t, s, "GET", "/nodes/pve1/tasks/"+upid+"/log", tok, nil)
	if n := len(r.data(t).([]any)); n != min(50, len(all)) {
		t.Fatalf("default limit: %d", n)
	}
	if all[len(all)-1] != "TASK OK" || !strings.HasPrefix(all[0], "INFO: starting new backup job: vzdump 100 ") || !strings.Contains(all[0], "--node pve1") {
		t.Fatalf("log: %v", all)
	}
	// task list
	r = call(t, s, "GET", "/nodes/pve1/tasks?typefilter=vzdump", tok, nil)
	j = r.json(t)
	if l := j["data"].([]any); len(l) != 1 || l[0].(map[string]any)["status"] != "OK" || l[0].(map[string]any)["endtime"] == nil {
		t.Fatalf("list: %s", r.body)
	}
	// status errors
	r = call(t, s, "GET", "/nodes/pve1/tasks/garbage/status", tok, nil)
	if errs, _ := r.json(t)["errors"].(map[string]any); errs["upid"] != "unable to parse worker upid" {
		t.Fatalf("garbage: %s", r.body)
	}
	r = call(t, s, "GET", "/nodes/pve2/tasks/"+upid+"/status", tok, nil)
	if errs, _ := r.json(t)["errors"].(map[string]any); errs["upid"] != "no such task" {
		t.Fatalf("other node: %s", r.body)
	}
	// stop a running task
	_ = os.WriteFile(filepath.Join(s.GuestRootfs(100), "pad.bin"), make([]byte, 20<<10), 0o644)
	s.SetThroughput(1 << 10) // 1 KiB/s: a 20 KiB rootfs takes ~20 s
	upid = startTask(t, s, "POST", "/nodes/pve1/vzdump", url.Values{"vmid": {"100"}, "storage": {"local"}})
	time.Sleep(100 * time.Millisecond)
	if r := call(t, s, "GET", "/nodes/pve1/tasks/"+upid+"/status", tok, nil); r.data(t).(map[string]any)["status"] != "running" {
		t.Fatalf("not running: %s", r.body)
	}
	if g, _ := s.GuestState(100); g.Lock != "backup" {
		t.Fatalf("lock during backup: %+v", g)
	}
	r = call(t, s, "GET", "/cluster/resources?type=vm", tok, nil)
	if !strings.Contains(string(r.body), `"lock":"backup"`) {
		t.Fatalf("resources lock: %s", r.body)
	}
	r = call(t, s, "DELETE", "/nodes/pve1/tasks/"+upid, tok, nil)
	if r.code != 200 || string(r.body) != `{"data":null}` {
		t.Fatalf("stop: %s %s", r.status, r.body)
	}
	if st := waitTask(t, s, upid); st["exitstatus"] != "interrupted by signal" {
		t.Fatalf("stopped: %v", st)
	}
	if g, _ := s.GuestState(100); g.Lock != "" {
		t.Fatalf("lock after stop: %+v", g)
	}
	ents, _ := os.ReadDir(s.StorageDumpDir("pve1", "local"))
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".dat") {
			t.Fatalf("leftover %s", e.Name())
		}
	}
}

func TestContentFieldsAndSidecars(t *testing.T) {
	t.Parallel()
	s := startSim(t)
	tok := s.APIToken()
	v1, _ := backup(t, s, "pve1", 100, url.Values{"compress": {"zstd"}, "notes-template": {`{{guestname}}\n{{cluster}} {{vmid}}`}, "protected": {"1"}})
	v2, _ := backup(t, s, "pve1", 200, nil)
	r := call(t, s, "GET", "/nodes/pve1/storage/local/content?content=backup", tok, nil)
	var list []map[string]any
	_ = json.Unmarshal(mustJSON(r.data(t)), &list)
	if len(list) != 2 {
		t.Fatalf("list %s", r.body)
	}
	a, b := list[0], list[1]
	if a["volid"] != v1 || b["volid"] != v2 {
		t.Fatalf("order/volids: %v %v vs %s %s", a["volid"], b["volid"], v1, v2)
	}
	if a["protected"] != float64(1) || a["notes"] != "web" || a["format"] != "tar.zst" || a["subtype"] != "lxc" || a["content"] != "backup" || a["vmid"] != float64(100) {
		t.Fatalf("lxc entry %v", a)
	}
	if _, ok := b["protected"]; ok {
		t.Fatalf("protected present when false: %v", b)
	}
	if _, ok := b["notes"]; ok || b["format"] != "vma" || b["subtype"] != "qemu" {
		t.Fatalf("qemu entry %v", b)
	}
	// ctime from the file name in local time
	name := strings.TrimPrefix(v1, "local:backup/")
	ts := name[len("vzdump-lxc-100-") : len("vzdump-lxc-100-")+19]
	want, _ := time.ParseInLocation("2006_01_02-15_04_05", ts, time.Local)
	if int64(a["ctime"].(float64)) != want.Unix() {
		t.Fatalf("ctime %v want %d", a["ctime"], want.Unix())
	}
	dump := s.StorageDumpDir("pve1", "local")
	for _, f := range []string{name, name + ".notes", name + ".protected", strings.TrimSuffix(name, ".tar.zst") + ".log"} {
		if _, err := os.Stat(filepath.Join(dump, f)); err != nil {
			t.Fatalf("missing %s", f)
		}
	}
	if nb, _ := os.ReadFile(filepath.Join(dump, name+".notes")); string(nb) != "web\npvesim 100" {
		t.Fatalf("notes %q", nb)
	}
	lb, _ := os.ReadFile(filepath.Join(dump, strings.TrimSuffix(name, ".tar.zst")+".log"))
	if !strings.Contains(string(lb), " INFO: creating vzdump archive '") || !strings.HasPrefix(string(lb), ts[:4]+"-") {
		t.Fatalf("log sidecar %q", lb)
	}
	// vmid filter
	r = call(t, s, "GET", "/nodes/pve1/storage/local/content?content=backup&vmid=200", tok, nil)
	if l := r.data(t).([]any); len(l) != 1 {
		t.Fatalf("vmid filter: %s", r.body)
	}
	// info: whole notes, protected 0/1
	r = call(t, s, "GET", "/nodes/pve1/storage/local/content/"+url.PathEscape(v1), tok, nil)
	info := r.data(t).(map[string]any)
	if info["notes"] != "web\npvesim 100" || info["protected"] != float64(1) || info["format"] != "raw" {
		t.Fatalf("info %v", info)
	}
	r = call(t, s, "GET", "/nodes/pve1/storage/local/content/"+v2, tok, nil)
	if info := r.data(t).(map[string]any); info["notes"] != "" || info["protected"] != float64(0) {
		t.Fatalf("info2 %v", info)
	}
	// PUT notes / protected, with the limit
	if r := call(t, s, "PUT", "/nodes/pve1/storage/local/content/"+v2, tok, url.Values{"notes": {"hello\nworld"}, "protected": {"1"}}); r.code != 200 || string(r.body) != `{"data":null}` {
		t.Fatalf("put: %s %s", r.status, r.body)
	}
	r = call(t, s, "GET", "/nodes/pve1/storage/local/content?content=backup&vmid=200", tok, nil)
	if e := r.data(t).([]any)[0].(map[string]any); e["notes"] != "hello" || e["protected"] != float64(1) {
		t.Fatalf("after put %v", e)
	}
	call(t, s, "PUT", "/nodes/pve1/storage/local/content/"+v2, tok, url.Values{"notes": {""}, "protected": {"0"}})
	if _, err := os.Stat(filepath.Join(dump, strings.TrimPrefix(v2, "local:backup/")+".notes")); !os.IsNotExist(err) {
		t.Fatal("empty notes must delete the sidecar")
	}
	// DELETE: protected fails in the task; with delay it is a 500
	r = call(t, s, "DELETE", "/nodes/pve1/storage/local/content/"+v1, tok, url.Values{"delay": {"5"}})
	if r.status != "500 cannot remove protected volume 'backup/"+name+"' on 'local'" {
		t.Fatalf("delete protected: %s", r.status)
	}
	upid := startTask(t, s, "DELETE", "/nodes/pve1/storage/local/content/"+v2, nil)
	if !strings.Contains(upid, ":imgdel:200@local:") {
		t.Fatalf("imgdel upid %s", upid)
	}
	if st := waitTask(t, s, upid); st["exitstatus"] != "OK" {
		t.Fatalf("delete: %v", st)
	}
	if l := taskLog(t, s, upid); l[len(l)-2] != "Removed volume '"+v2+"'" {
		t.Fatalf("delete log %v", l)
	}
	ents, _ := os.ReadDir(dump)
	for _, e := range ents {
		if strings.Contains(e.Name(), "qemu-200") {
			t.Fatalf("leftover %s", e.Name())
		}
	}
	// missing: idempotent
	upid = startTask(t, s, "DELETE", "/nodes/pve1/storage/local/content/"+v2, nil)
	if st := waitTask(t, s, upid); st["exitstatus"] != "OK" {
		t.Fatalf("delete missing: %v", st)
	}
	if r := call(t, s, "DELETE", "/nodes/pve1/storage/local/content/"+v2, tok, url.Values{"delay": {"5"}}); string(r.body) != `{"data":null}` {
		t.Fatalf("delete delay ok: %s", r.body)
	}
}

func mustJSON(v any) []byte { b, _ := json.Marshal(v); return b }

func TestStorageIndex(t *testing.T) {
	t.Parallel()
	s := startSim(t)
	r := call(t, s, "GET", "/nodes/pve1/storage?content=backup&enabled=1", s.APIToken(), nil)
	var ids []string
	for _, x := range r.data(t).([]any) {
		e := x.(map[string]any)
		ids = append(ids, e["storage"].(string))
		if e["active"] != float64(1) || e["total"].(float64) <= 0 {
			t.Fatalf("entry %v", e)
		}
	}
	if strings.Join(ids, ",") != "local,nas,pbs" {
		t.Fatalf("ids %v", ids)
	}
	r = call(t, s, "GET", "/nodes/pve1/storage?storage=zzz", s.APIToken(), nil)
	if errs, _ := r.json(t)["errors"].(map[string]any); errs["storage"] != "No such storage." {
		t.Fatalf("no such: %s", r.body)
	}
}

// GET /cluster/resources lists a storage once per node it is enabled on, to
// callers with Datastore.Audit on it; AllocateSpace alone (enough for the
// node's storage index and for writing backups) does not show it.
func TestClusterResourcesStorages(t *testing.T) {
	t.Parallel()
	cfg := DefaultConfig()
	cfg.Storages = append(cfg.Storages,
		StorageConfig{ID: "offsite", Type: "dir", Content: []string{"backup"}, Disabled: true},
		StorageConfig{ID: "fast", Type: "dir", Content: []string{"backup", "images"}, Nodes: []string{"pve2"}})
	cfg.Users = append(cfg.Users, UserConfig{ID: "writer@pve",
		ACL:    []ACLEntry{{Path: "/storage/local", Privs: []string{"Datastore.AllocateSpace"}}, {Path: "/storage/nas", Privs: []string{"Datastore.Audit"}}},
		Tokens: []TokenConfig{{ID: "wr", Secret: "0b8b5f2c-3333-4c4c-9d9d-000000000001"}}})
	s := startSim(t, func(o *Options) { o.Config = cfg })
	ids := func(token string) []string {
		r := call(t, s, "GET", "/cluster/resources?type=storage", token, nil)
		var out []string
		for _, e := range r.data(t).([]any) {
			m := e.(map[string]any)
			out = append(out, fmt.Sprintf("%v %v", m["id"], m["content"]))
		}
		return out
	}
	want := []string{"storage/pve1/local backup,iso,vztmpl", "storage/pve2/local backup,iso,vztmpl",
		"storage/pve1/local-lvm rootdir,images", "storage/pve2/local-lvm rootdir,images",
		"storage/pve1/nas backup", "storage/pve2/nas backup", "storage/pve1/pbs backup", "storage/pve2/pbs backup",
		"storage/pve2/fast backup,images"}
	if got := ids(s.APIToken()); !reflect.DeepEqual(got, want) {
		t.Errorf("root sees\n%v\nwant\n%v", got, want)
	}
	if got := ids("writer@pve!wr=0b8b5f2c-3333-4c4c-9d9d-000000000001"); !reflect.DeepEqual(got, []string{"storage/pve1/nas backup", "storage/pve2/nas backup"}) {
		t.Errorf("a token with AllocateSpace on local and Audit on nas sees %v", got)
	}
	r := call(t, s, "GET", "/nodes/pve1/storage", "writer@pve!wr=0b8b5f2c-3333-4c4c-9d9d-000000000001", nil)
	if l := r.data(t).([]any); len(l) != 2 {
		t.Errorf("the node's storage index shows the token %d storages, want local and nas: %s", len(l), r.body)
	}
}
