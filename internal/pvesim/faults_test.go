package pvesim

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	proxmox "github.com/luthermonson/go-proxmox"
)

func control(t *testing.T, s *Sim, method, path string, body any) map[string]any {
	t.Helper()
	var rd *strings.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = strings.NewReader(string(b))
	} else {
		rd = strings.NewReader("")
	}
	req, _ := http.NewRequest(method, s.Endpoint()+"_sim/"+path, rd)
	res, err := httpClient(t, s).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(res.Body).Decode(&m)
	if res.StatusCode != 200 {
		t.Fatalf("control %s %s: %d %v", method, path, res.StatusCode, m)
	}
	return m
}

func TestControlAPIFaults(t *testing.T) {
	t.Parallel()
	s := startSim(t)
	tok := s.APIToken()
	ctx := context.Background()
	c := gpxClient(t, s, tok)

	// HTTP error with the message in the status line, for the next N calls
	control(t, s, "POST", "faults/http", map[string]any{"method": "POST", "route": "/nodes/{node}/vzdump", "status": 500, "message": "CT is locked (backup)", "count": 1})
	_, err := (&proxmox.Node{}).New(c, "pve1").Vzdump(ctx, &proxmox.VirtualMachineBackupOptions{VMID: 100, Storage: "local"})
	if err == nil || err.Error() != "500 CT is locked (backup)" {
		t.Fatalf("http fault: %v", err)
	}
	if r := call(t, s, "POST", "/nodes/pve1/vzdump", tok, url.Values{"vmid": {"100"}, "storage": {"local"}}); r.code != 200 {
		t.Fatalf("fault not consumed: %s", r.status)
	}

	// latency
	control(t, s, "POST", "faults/latency", map[string]any{"latency_ms": 150})
	t0 := time.Now()
	call(t, s, "GET", "/version", tok, nil)
	if d := time.Since(t0); d < 150*time.Millisecond {
		t.Fatalf("latency %v", d)
	}
	control(t, s, "POST", "faults/latency", map[string]any{"latency_ms": 0})

	// dropped connection
	control(t, s, "POST", "faults/drop", map[string]any{"method": "GET", "route": "/version", "count": 1})
	if _, err := c.Version(ctx); err == nil {
		t.Fatal("dropped connection must be a client error")
	}
	if _, err := c.Version(ctx); err != nil {
		t.Fatalf("after drop: %v", err)
	}

	// task failing midway
	control(t, s, "POST", "faults/task", map[string]any{"type": "vzdump", "vmid": 100, "message": "unexpected I/O error"})
	upid := startTask(t, s, "POST", "/nodes/pve1/vzdump", url.Values{"vmid": {"100"}, "storage": {"nas"}})
	if st := waitTask(t, s, upid); st["exitstatus"] != "job errors" {
		t.Fatalf("task fault: %v", st)
	}
	if l := strings.Join(taskLog(t, s, upid), "\n"); !strings.Contains(l, "ERROR: Backup of VM 100 failed - unexpected I/O error") {
		t.Fatalf("task fault log: %s", l)
	}
	if ents, _ := os.ReadDir(s.StorageDumpDir("pve1", "nas")); len(ents) != 0 {
		t.Fatalf("failed backup left files: %v", ents)
	}

	// storage full
	control(t, s, "POST", "faults/storage-full", map[string]any{"storage": "nas", "full": true})
	upid = startTask(t, s, "POST", "/nodes/pve1/vzdump", url.Values{"vmid": {"200"}, "storage": {"nas"}})
	if st := waitTask(t, s, upid); st["exitstatus"] != "job errors" {
		t.Fatalf("full: %v", st)
	}
	if l := strings.Join(taskLog(t, s, upid), "\n"); !strings.Contains(l, "vma_queue_write: write error - No space left on device") {
		t.Fatalf("full log: %s", l)
	}
	upid = startTask(t, s, "POST", "/nodes/pve1/vzdump", url.Values{"vmid": {"100"}, "storage": {"nas"}})
	// wait first: the log is complete only once the task has ended
	if st := waitTask(t, s, upid); st["exitstatus"] != "job errors" {
		t.Fatalf("full lxc: %v", st)
	}
	if l := strings.Join(taskLog(t, s, upid), "\n"); !strings.Contains(l, "No space left on device") {
		t.Fatalf("full lxc log: %s", l)
	}

	// guest lock
	control(t, s, "POST", "faults/lock", map[string]any{"vmid": 100, "lock": "snapshot"})
	upid = startTask(t, s, "POST", "/nodes/pve1/vzdump", url.Values{"vmid": {"100"}, "storage": {"local"}})
	if st := waitTask(t, s, upid); st["exitstatus"] != "job errors" {
		t.Fatalf("lock: %v", st)
	}
	if l := strings.Join(taskLog(t, s, upid), "\n"); !strings.Contains(l, "INFO: status = running\nERROR: Backup of VM 100 failed - CT is locked (snapshot)\nINFO: Failed at ") {
		t.Fatalf("lock log: %s", l)
	}
	r := call(t, s, "GET", "/nodes/pve1/lxc/100/status/current", tok, nil)
	if r.data(t).(map[string]any)["lock"] != "snapshot" {
		t.Fatalf("lock in status: %s", r.body)
	}
	upid = startTask(t, s, "POST", "/nodes/pve1/lxc/100/status/stop", nil)
	if st := waitTask(t, s, upid); st["exitstatus"] != "CT is locked (snapshot)" {
		t.Fatalf("stop locked: %v", st)
	}
	control(t, s, "POST", "faults/lock", map[string]any{"vmid": 100, "lock": ""})

	// node offline → 595 with empty body
	control(t, s, "POST", "faults/node-offline", map[string]any{"node": "pve2"})
	r = call(t, s, "GET", "/nodes/pve2/lxc", tok, nil)
	if r.code != 595 || len(r.body) != 0 {
		t.Fatalf("offline: %s %q", r.status, r.body)
	}
	r = call(t, s, "GET", "/cluster/resources?type=vm", tok, nil)
	if !strings.Contains(string(r.body), `"node":"pve2","status":"unknown"`) && !strings.Contains(string(r.body), `"status":"unknown"`) {
		t.Fatalf("offline resources: %s", r.body)
	}

	// clear everything
	control(t, s, "DELETE", "faults", nil)
	if r := call(t, s, "GET", "/nodes/pve2/lxc", tok, nil); r.code != 200 {
		t.Fatalf("after clear: %s", r.status)
	}

	// counters
	cnt := control(t, s, "GET", "counters", nil)
	if cnt["GET /nodes/{node}/tasks/{upid}/status"].(float64) < 5 || cnt["POST /nodes/{node}/vzdump"].(float64) != 6 || cnt["GET /version"].(float64) != 3 {
		t.Fatalf("counters: %v", cnt)
	}
	control(t, s, "DELETE", "counters", nil)
	call(t, s, "GET", "/version", tok, nil)
	if c := s.Counters(); len(c) != 1 || c["GET /version"] != 1 {
		t.Fatalf("after reset: %v", c)
	}
}

func TestGoAPIFaultsAndRestoreFailure(t *testing.T) {
	t.Parallel()
	s := startSim(t)
	tok := s.APIToken()
	volid, _ := backup(t, s, "pve2", 101, nil)
	before, _ := os.ReadFile(filepath.Join(s.GuestRootfs(101), "var/lib/db/data.sql"))
	if len(before) == 0 {
		t.Fatal("no file")
	}
	// restore fails midway after the disk was touched: the CT config is gone (as on PVE)
	s.FailTask("vzrestore", 101, "tar: short read")
	upid := startTask(t, s, "POST", "/nodes/pve2/lxc", url.Values{"vmid": {"101"}, "ostemplate": {volid}, "restore": {"1"}, "force": {"1"}, "storage": {"local-lvm"}})
	if st := waitTask(t, s, upid); st["exitstatus"] != "unable to restore CT 101 - tar: short read" {
		t.Fatalf("restore fault: %v", st)
	}
	if _, ok := s.GuestState(101); ok {
		t.Fatal("CT config should be deleted after a failed overwrite")
	}
	// restore to the now-free id works
	upid = startTask(t, s, "POST", "/nodes/pve2/lxc", url.Values{"vmid": {"101"}, "ostemplate": {volid}, "restore": {"1"}, "storage": {"local-lvm"}})
	if st := waitTask(t, s, upid); st["exitstatus"] != "OK" {
		t.Fatalf("restore: %v", st)
	}
	if after, _ := os.ReadFile(filepath.Join(s.GuestRootfs(101), "var/lib/db/data.sql")); string(after) != string(before) {
		t.Fatalf("content %q", after)
	}
	s.FailRequests("GET", "/version", 503, "Service Unavailable - maintenance", 0)
	if r := call(t, s, "GET", "/version", tok, nil); r.status != "503 Service Unavailable - maintenance" {
		t.Fatalf("503: %s", r.status)
	}
	s.SetNodeOffline("pve1", true)
	if r := call(t, s, "POST", "/nodes/pve1/vzdump", tok, url.Values{"vmid": {"100"}}); r.code != 595 {
		t.Fatalf("595: %s", r.status)
	}
	s.ClearFaults()
	if r := call(t, s, "GET", "/version", tok, nil); r.code != 200 {
		t.Fatalf("clear: %s", r.status)
	}
	// restart with the same data dir keeps tokens, CA and archives
	dir := s.DataDir()
	tokBefore, ca := s.APIToken(), string(s.CAPEM())
	_ = s.Close()
	s2, err := Start(Options{DataDir: dir, Throughput: 1 << 30})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if s2.APIToken() != tokBefore || string(s2.CAPEM()) != ca {
		t.Fatal("token/CA not reused")
	}
	r := call(t, s2, "GET", "/nodes/pve2/storage/local/content?content=backup", s2.APIToken(), nil)
	if l := r.data(t).([]any); len(l) != 1 || l[0].(map[string]any)["volid"] != volid {
		t.Fatalf("after restart: %s", r.body)
	}
}
