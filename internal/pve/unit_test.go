package pve

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// writeRaw answers with a PVE-style status line (custom reason phrase), which
// net/http cannot do without hijacking.
func writeRaw(t *testing.T, w http.ResponseWriter, code int, reason, body string) {
	t.Helper()
	hj, ok := w.(http.Hijacker)
	if !ok {
		t.Fatal("no hijacker")
	}
	conn, buf, err := hj.Hijack()
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(buf, "HTTP/1.1 %d %s\r\nContent-Type: application/json;charset=UTF-8\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", code, reason, len(body), body)
	buf.Flush()
}

func writeData(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"data": v})
}

const testToken = "root@pam!tf=0b8b5f2c-1111-2222-3333-444455556666"

func newUnitClient(t *testing.T, h http.Handler) *Client {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	c, err := NewClient(context.Background(), Config{Endpoint: srv.URL + "/", APIToken: testToken})
	if err != nil {
		t.Fatal(err)
	}
	c.pollMin, c.pollMax = 5*time.Millisecond, 20*time.Millisecond
	c.logReadInterval = 0
	return c
}

func TestParseVolID(t *testing.T) {
	t.Parallel()
	s, v, err := ParseVolID("local:backup/vzdump-lxc-100-2025_10_04-12_00_00.tar.zst")
	if err != nil || s != "local" || v != "backup/vzdump-lxc-100-2025_10_04-12_00_00.tar.zst" {
		t.Fatalf("got %q %q %v", s, v, err)
	}
	for _, bad := range []string{"", "local", ":x", "1abc:x", "local:"} {
		if _, _, err := ParseVolID(bad); err == nil {
			t.Errorf("%q: expected an error", bad)
		}
	}
}

func TestParseBackupVolID(t *testing.T) {
	t.Parallel()
	bn, err := ParseBackupVolID("local:backup/vzdump-lxc-100-2025_10_04-12_00_00.tar.zst")
	if err != nil {
		t.Fatal(err)
	}
	want := time.Date(2025, 10, 4, 12, 0, 0, 0, time.Local)
	if bn.Storage != "local" || bn.VMID != 100 || bn.GuestType != "lxc" || bn.Format != "tar.zst" || !bn.CreatedAt.Equal(want) ||
		bn.Filename != "vzdump-lxc-100-2025_10_04-12_00_00.tar.zst" || bn.PBS {
		t.Fatalf("dir: %+v", bn)
	}
	bn, err = ParseBackupVolID("nas:backup/vzdump-qemu-200-2025_01_02-03_04_05.vma")
	if err != nil || bn.GuestType != "qemu" || bn.Format != "vma" || bn.VMID != 200 {
		t.Fatalf("vma: %+v %v", bn, err)
	}
	bn, err = ParseBackupVolID("pbs:backup/ct/100/2025-10-04T12:00:00Z")
	if err != nil {
		t.Fatal(err)
	}
	if bn.Storage != "pbs" || bn.VMID != 100 || bn.GuestType != "lxc" || bn.Format != "pbs-ct" || !bn.PBS ||
		!bn.CreatedAt.Equal(time.Date(2025, 10, 4, 12, 0, 0, 0, time.UTC)) || bn.Filename != "ct/100/2025-10-04T12:00:00Z" {
		t.Fatalf("pbs: %+v", bn)
	}
	bn, err = ParseBackupVolID("pbs:backup/vm/931/2023-12-14T04:34:34Z")
	if err != nil || bn.GuestType != "qemu" || bn.Format != "pbs-vm" || bn.VMID != 931 {
		t.Fatalf("pbs vm: %+v %v", bn, err)
	}
	for _, bad := range []string{
		"local:iso/debian.iso",
		"local:backup/vzdump-qemu-100-2025_10_04-12_00_00.tar.zst", // qemu with tar
		"local:backup/vzdump-lxc-100-2025_10_04-12_00_00.zip",
		"pbs:backup/host/x/2025-10-04T12:00:00Z",
		"nonsense",
	} {
		if _, err := ParseBackupVolID(bad); err == nil {
			t.Errorf("%q: expected an error", bad)
		}
	}
}

func TestArchiveVolIDFromLog(t *testing.T) {
	t.Parallel()
	v, ok := archiveVolID("local", "INFO: creating vzdump archive '/var/lib/vz/dump/vzdump-lxc-100-2025_10_04-12_00_00.tar.zst'")
	if !ok || v != "local:backup/vzdump-lxc-100-2025_10_04-12_00_00.tar.zst" {
		t.Fatalf("dir: %q %v", v, ok)
	}
	v, ok = archiveVolID("pbs", "INFO: creating Proxmox Backup Server archive 'ct/100/2025-10-04T12:00:00Z'")
	if !ok || v != "pbs:backup/ct/100/2025-10-04T12:00:00Z" {
		t.Fatalf("pbs: %q %v", v, ok)
	}
	if _, ok := archiveVolID("local", "INFO: Starting Backup of VM 100 (lxc)"); ok {
		t.Fatal("unexpected match")
	}
	m := reLogStorage.FindStringSubmatch("INFO: starting new backup job: vzdump 100 --mode snapshot --node pve1 --storage nas --compress zstd")
	if m == nil || m[1] != "nas" {
		t.Fatalf("storage from log: %v", m)
	}
}

func TestParseUPID(t *testing.T) {
	t.Parallel()
	u, err := ParseUPID("UPID:pve1:000A1B2C:0123ABCD:68E10C40:vzdump:100:root@pam!tf:")
	if err != nil {
		t.Fatal(err)
	}
	if u.Node != "pve1" || u.Type != "vzdump" || u.ID != "100" || u.User != "root@pam!tf" || u.StartTime.Unix() != 1759579200 {
		t.Fatalf("%+v", u)
	}
	for _, bad := range []string{"OK", "", "UPID:pve1:000A1B2C:0123ABCD:68E10C40:vzdump:100:root@pam"} {
		if _, err := ParseUPID(bad); err == nil {
			t.Errorf("%q: expected error", bad)
		}
	}
}

func TestNewClientValidation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	secret := "0b8b5f2c-aaaa-bbbb-cccc-ddddeeeeffff"
	cases := []Config{
		{Endpoint: "", APIToken: testToken},
		{Endpoint: "pve.example.com:8006", APIToken: testToken},
		{Endpoint: "ftp://pve", APIToken: testToken},
		{Endpoint: "https://pve:8006/"},
		{Endpoint: "https://pve:8006/", APIToken: "root@pam=" + secret},
		{Endpoint: "https://pve:8006/", APIToken: "root@pam!tf"},
		{Endpoint: "https://pve:8006/", APIToken: "rootpam!tf=" + secret},
		{Endpoint: "https://pve:8006/", APIToken: "root@pam!tf=" + secret, Username: "root@pam", Password: secret},
		{Endpoint: "https://pve:8006/", Username: "root@pam"},
		{Endpoint: "https://pve:8006/", APIToken: "root@pam!tf=" + secret, CACertPEM: []byte("not pem " + secret)},
	}
	for i, cfg := range cases {
		_, err := NewClient(ctx, cfg)
		if err == nil {
			t.Errorf("case %d: expected an error", i)
			continue
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("case %d: the error shows the secret: %v", i, err)
		}
	}
	c, err := NewClient(ctx, Config{Endpoint: "https://pve.example.com:8006/api2/json/", APIToken: testToken})
	if err != nil {
		t.Fatal(err)
	}
	if c.base != "https://pve.example.com:8006/api2/json" {
		t.Fatalf("base %q", c.base)
	}
}

func TestAPIErrorMapping(t *testing.T) {
	t.Parallel()
	mux := http.NewServeMux()
	mux.HandleFunc("/api2/json/nodes/pve1/lxc", func(w http.ResponseWriter, r *http.Request) {
		writeRaw(t, w, 500, "unable to restore CT 100 - CT is locked (backup)", `{"data":null,"message":"unable to restore CT 100 - CT is locked (backup)\n"}`)
	})
	mux.HandleFunc("/api2/json/nodes/pve1/vzdump", func(w http.ResponseWriter, r *http.Request) {
		writeRaw(t, w, 400, "Parameter verification failed.", `{"data":null,"errors":{"storage":"missing property required by 'notes-template'"},"message":"Parameter verification failed.\n"}`)
	})
	mux.HandleFunc("/api2/json/nodes/pve1/storage", func(w http.ResponseWriter, r *http.Request) {
		// old server: no message, text only in the reason phrase
		writeRaw(t, w, 403, "Permission check failed (/storage/local, Datastore.Audit|Datastore.AllocateSpace", `{"data":null}`)
	})
	mux.HandleFunc("/api2/json/nodes/pve2/storage", func(w http.ResponseWriter, r *http.Request) {
		writeRaw(t, w, 595, "Errors during connection establishment, proxy handshake: Connection refused", ``)
	})
	mux.HandleFunc("/api2/json/nodes/pve1/lxc/999/status/current", func(w http.ResponseWriter, r *http.Request) {
		writeRaw(t, w, 500, "Configuration file 'nodes/pve1/lxc/999.conf' does not exist", `{"data":null,"message":"Configuration file 'nodes/pve1/lxc/999.conf' does not exist\n"}`)
	})
	c := newUnitClient(t, mux)
	ctx := context.Background()

	err := c.post(ctx, "/nodes/pve1/lxc", map[string]any{"vmid": 100}, nil)
	var ae *APIError
	if !errors.As(err, &ae) || ae.StatusCode != 500 || ae.Status != "500 unable to restore CT 100 - CT is locked (backup)" || ae.Message != "unable to restore CT 100 - CT is locked (backup)" {
		t.Fatalf("500: %#v", err)
	}
	if got := err.Error(); got != "POST /nodes/pve1/lxc: HTTP 500 unable to restore CT 100 - CT is locked (backup)" {
		t.Fatalf("500 text: %q", got)
	}
	if !errors.Is(err, ErrLocked) || IsNotFound(err) || IsForbidden(err) {
		t.Fatal("500 classification")
	}

	err = c.post(ctx, "/nodes/pve1/vzdump", map[string]any{"vmid": "100"}, nil)
	if !errors.As(err, &ae) || ae.StatusCode != 400 || ae.Errors["storage"] == "" {
		t.Fatalf("400: %#v", err)
	}
	if !strings.Contains(err.Error(), "HTTP 400 Parameter verification failed.") || !strings.Contains(err.Error(), "storage: missing property required by 'notes-template'") {
		t.Fatalf("400 text: %q", err.Error())
	}

	err = c.get(ctx, "/nodes/pve1/storage", nil, nil)
	if !IsForbidden(err) || !strings.Contains(err.Error(), "Permission check failed (/storage/local") {
		t.Fatalf("403: %v", err)
	}
	err = c.get(ctx, "/nodes/pve2/storage", nil, nil)
	if !errors.Is(err, ErrOffline) || !strings.Contains(err.Error(), "HTTP 595 Errors during connection establishment") {
		t.Fatalf("595: %v", err)
	}
	_, err = c.GuestStatus(ctx, "pve1", 999, "lxc")
	if !IsNotFound(err) {
		t.Fatalf("not found: %v", err)
	}
	for _, e := range []error{nil, errors.New("x")} {
		if IsNotFound(e) || errors.Is(e, ErrLocked) || IsForbidden(e) || errors.Is(e, ErrOffline) || IsProtected(e) {
			t.Fatal("plain error classified")
		}
	}
}

func TestGetRetriesButPostDoesNot(t *testing.T) {
	t.Parallel()
	var gets, posts atomic.Int32
	mux := http.NewServeMux()
	mux.HandleFunc("/api2/json/version", func(w http.ResponseWriter, r *http.Request) {
		if gets.Add(1) < 3 {
			w.WriteHeader(503)
			return
		}
		writeData(w, map[string]any{"version": "9.2.11", "release": "9.2", "repoid": "abcdef12"})
	})
	mux.HandleFunc("/api2/json/nodes/pve1/vzdump", func(w http.ResponseWriter, r *http.Request) {
		posts.Add(1)
		w.WriteHeader(503)
	})
	c := newUnitClient(t, mux)
	v, err := c.Version(context.Background())
	if err != nil || v != "9.2.11" || gets.Load() != 3 {
		t.Fatalf("version %q %v after %d GETs", v, err, gets.Load())
	}
	if err := c.post(context.Background(), "/nodes/pve1/vzdump", map[string]any{}, nil); err == nil || posts.Load() != 1 {
		t.Fatalf("post: %v, %d sends", err, posts.Load())
	}
}

// fakeTask serves one task's status and log; lines appear over time.
type fakeTask struct {
	mu       sync.Mutex
	lines    []string
	exit     string // "" while running
	logCalls []string
}

func (f *fakeTask) handler(upid string) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/api2/json/nodes/pve1/tasks/"+upid+"/status", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		st := map[string]any{"status": "running", "upid": upid, "node": "pve1", "type": "vzdump", "id": "100"}
		if f.exit != "" {
			st["status"], st["exitstatus"] = "stopped", f.exit
		}
		writeData(w, st)
	})
	mux.HandleFunc("/api2/json/nodes/pve1/tasks/"+upid+"/log", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.logCalls = append(f.logCalls, r.URL.RawQuery)
		start := 0
		fmt.Sscan(r.URL.Query().Get("start"), &start)
		if len(f.lines) == 0 {
			// PVE counts its placeholder line in "total".
			json.NewEncoder(w).Encode(map[string]any{"data": []any{map[string]any{"n": 1, "t": "no content"}}, "total": 1})
			return
		}
		var out []any
		for i := start; i < len(f.lines); i++ {
			out = append(out, map[string]any{"n": i + 1, "t": f.lines[i]})
		}
		json.NewEncoder(w).Encode(map[string]any{"data": out, "total": len(f.lines)})
	})
	return mux
}

const unitUPID = "UPID:pve1:000A1B2C:0123ABCD:68E10C40:vzdump:100:root@pam!tf:"

func TestWaitTaskClassification(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		lines   []string
		exit    string
		ok      bool
		warns   int
		tailHas string
	}{
		{"ok", []string{"INFO: a", "INFO: b", "TASK OK"}, "OK", true, 0, ""},
		{"warnings", []string{"INFO: a", "WARN: unable to add notes - x", "INFO: b", "TASK WARNINGS: 1"}, "WARNINGS: 1", true, 1, ""},
		{"job errors", append(manyLines(30), "ERROR: Backup of VM 100 failed - CT is locked (snapshot)", "INFO: Backup job finished with errors", "TASK ERROR: job errors"), "job errors", false, 0, "CT is locked (snapshot)"},
		{"unexpected", []string{"INFO: x"}, "unexpected status", false, 0, "INFO: x"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := &fakeTask{}
			c := newUnitClient(t, f.handler(unitUPID))
			go func() {
				for i, l := range tc.lines {
					time.Sleep(3 * time.Millisecond)
					f.mu.Lock()
					f.lines = append(f.lines, l)
					if i == len(tc.lines)-1 {
						f.exit = tc.exit
					}
					f.mu.Unlock()
				}
			}()
			var got []string
			res, err := c.waitTask(context.Background(), unitUPID, func(l string) { got = append(got, l) })
			if strings.Join(got, "\n") != strings.Join(tc.lines, "\n") {
				t.Fatalf("progress lines out of order or missing:\n%q\nwant\n%q", got, tc.lines)
			}
			if tc.ok {
				if err != nil || res.ExitStatus != tc.exit || len(res.Warnings) != tc.warns {
					t.Fatalf("res %+v err %v", res, err)
				}
				return
			}
			var te *TaskError
			if !errors.As(err, &te) || te.ExitStatus != tc.exit || te.UPID != unitUPID || te.Node != "pve1" || te.Type != "vzdump" {
				t.Fatalf("err %#v", err)
			}
			if len(te.LogTail) > logTailLines || !strings.Contains(err.Error(), tc.tailHas) || !strings.Contains(err.Error(), tc.exit) {
				t.Fatalf("tail %q / %v", te.LogTail, err)
			}
			// incremental reads: start grows
			f.mu.Lock()
			defer f.mu.Unlock()
			if len(f.logCalls) > 1 && f.logCalls[len(f.logCalls)-1] == f.logCalls[0] && len(tc.lines) > 5 {
				t.Fatalf("log always read from the start: %v", f.logCalls)
			}
		})
	}
}

func manyLines(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("INFO: line %d", i)
	}
	return out
}

func TestWaitTaskQuickAndCancel(t *testing.T) {
	t.Parallel()
	f := &fakeTask{lines: []string{"TASK OK"}, exit: "OK"}
	srv := httptest.NewServer(f.handler(unitUPID))
	defer srv.Close()
	c, err := NewClient(context.Background(), Config{Endpoint: srv.URL, APIToken: testToken})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := c.waitTask(context.Background(), unitUPID, nil); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 300*time.Millisecond {
		t.Fatalf("finished task noticed after %s", d)
	}

	running := &fakeTask{lines: []string{"INFO: working"}}
	c2 := newUnitClient(t, running.handler(unitUPID))
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err = c2.waitTask(ctx, unitUPID, nil)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), unitUPID) {
		t.Fatalf("cancel: %v", err)
	}
}

func TestWaitTaskToleratesTransientErrors(t *testing.T) {
	t.Parallel()
	f := &fakeTask{lines: []string{"INFO: x", "TASK OK"}, exit: "OK"}
	inner := f.handler(unitUPID)
	var n atomic.Int32
	c := newUnitClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/status") && n.Add(1) <= 2 {
			writeRaw(t, w, 500, "temporary failure", `{"data":null}`)
			return
		}
		inner.ServeHTTP(w, r)
	}))
	if _, err := c.waitTask(context.Background(), unitUPID, nil); err != nil {
		t.Fatal(err)
	}
}

func TestVzdumpOKReplyIsAnError(t *testing.T) {
	t.Parallel()
	var body map[string]any
	mux := http.NewServeMux()
	mux.HandleFunc("/api2/json/cluster/resources", func(w http.ResponseWriter, r *http.Request) {
		writeData(w, []any{map[string]any{"id": "lxc/100", "type": "lxc", "vmid": 100, "node": "pve1", "status": "running", "name": "web"}})
	})
	mux.HandleFunc("/api2/json/nodes/pve1/vzdump", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		json.Unmarshal(b, &body)
		writeData(w, "OK")
	})
	c := newUnitClient(t, mux)
	threads := int64(2)
	_, err := c.CreateBackup(context.Background(), BackupOptions{
		VMID: 100, Storage: "local", Compress: "none", Protected: true, NotesTemplate: "{{guestname}}",
		ExcludePaths: []string{"/tmp/*", "/var/cache/*"}, ZstdThreads: &threads, BandwidthLimitKiB: 1024,
	}, nil)
	if err == nil || !strings.Contains(err.Error(), `"OK"`) || !strings.Contains(err.Error(), "not on node pve1") {
		t.Fatalf("err %v", err)
	}
	want := map[string]any{"vmid": "100", "storage": "local", "compress": "0", "protected": true, "notes-template": "{{guestname}}",
		"exclude-path": []any{"/tmp/*", "/var/cache/*"}, "zstd": float64(2), "bwlimit": float64(1024)}
	if fmt.Sprint(body) != fmt.Sprint(want) {
		t.Fatalf("body %v\nwant %v", body, want)
	}
	// fleecing on a container is refused before anything is sent
	body = nil
	if _, err := c.CreateBackup(context.Background(), BackupOptions{VMID: 100, FleecingStorage: "local-lvm"}, nil); err == nil || body != nil {
		t.Fatalf("fleecing on lxc: %v", err)
	}
}

func TestTicketLoginAndCSRF(t *testing.T) {
	t.Parallel()
	const password = "s3cr3t-pass"
	var logins atomic.Int32
	var sawCSRF, sawCookie atomic.Bool
	mux := http.NewServeMux()
	mux.HandleFunc("/api2/json/access/ticket", func(w http.ResponseWriter, r *http.Request) {
		var creds map[string]string
		json.NewDecoder(r.Body).Decode(&creds)
		if creds["username"] != "root@pam" || (creds["password"] != password && !strings.HasPrefix(creds["password"], "PVE:")) {
			writeRaw(t, w, 401, "authentication failure", `{"data":null,"message":"authentication failure\n"}`)
			return
		}
		n := logins.Add(1)
		writeData(w, map[string]any{"username": "root@pam", "ticket": fmt.Sprintf("PVE:root@pam:%08X::sig", n), "CSRFPreventionToken": fmt.Sprintf("%08X:csrf", n)})
	})
	mux.HandleFunc("/api2/json/nodes/pve1/storage/local/content/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api2/json/nodes/pve1/storage/local/content/local:backup/x.tar" {
			http.NotFound(w, r)
			return
		}
		ck, err := r.Cookie("PVEAuthCookie")
		sawCookie.Store(err == nil && strings.HasPrefix(ck.Value, "PVE"))
		sawCSRF.Store(strings.HasSuffix(r.Header.Get("CSRFPreventionToken"), ":csrf"))
		writeData(w, nil)
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	if _, err := NewClient(context.Background(), Config{Endpoint: srv.URL, Username: "root@pam", Password: "wrong-" + password}); err == nil || strings.Contains(err.Error(), password) {
		t.Fatalf("bad login: %v", err)
	}
	c, err := NewClient(context.Background(), Config{Endpoint: srv.URL, Username: "root@pam", Password: password})
	if err != nil {
		t.Fatal(err)
	}
	notes := "n"
	if err := c.UpdateBackup(context.Background(), "pve1", "local:backup/x.tar", &notes, nil); err != nil {
		t.Fatal(err)
	}
	if !sawCookie.Load() || !sawCSRF.Load() {
		t.Fatalf("cookie %v csrf %v", sawCookie.Load(), sawCSRF.Load())
	}
	// renewal before the 2h expiry
	c.now = func() time.Time { return time.Now().Add(100 * time.Minute) }
	if err := c.UpdateBackup(context.Background(), "pve1", "local:backup/x.tar", &notes, nil); err != nil {
		t.Fatal(err)
	}
	if logins.Load() != 2 {
		t.Fatalf("logins %d", logins.Load())
	}
}

func TestContentListingAndListBackups(t *testing.T) {
	t.Parallel()
	mux := http.NewServeMux()
	mux.HandleFunc("/api2/json/cluster/resources", func(w http.ResponseWriter, r *http.Request) {
		writeData(w, []any{map[string]any{"id": "lxc/100", "type": "lxc", "vmid": 100, "node": "pve1", "status": "running"}})
	})
	mux.HandleFunc("/api2/json/nodes", func(w http.ResponseWriter, r *http.Request) {
		writeData(w, []any{map[string]any{"node": "pve2", "status": "online"}, map[string]any{"node": "pve1", "status": "online"}, map[string]any{"node": "pve3", "status": "offline"}})
	})
	storages := func(broken bool) []any {
		out := []any{
			map[string]any{"storage": "local", "type": "dir", "content": "iso,backup,vztmpl", "shared": 0, "enabled": 1, "active": 1},
			map[string]any{"storage": "nas", "type": "nfs", "content": "backup", "shared": 1, "enabled": 1, "active": 1},
			map[string]any{"storage": "pbs", "type": "pbs", "content": "backup", "shared": 1, "enabled": 1, "active": 1},
			map[string]any{"storage": "old", "type": "dir", "content": "backup", "shared": 0, "enabled": 0, "active": 0},
		}
		if broken {
			out = append(out, map[string]any{"storage": "usb", "type": "dir", "content": "backup", "shared": 0, "enabled": 1, "active": 0})
		}
		return out
	}
	var broken atomic.Bool
	mux.HandleFunc("/api2/json/nodes/{node}/storage", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("content") != "backup" {
			t.Errorf("storage list without content=backup: %s", r.URL.RawQuery)
		}
		writeData(w, storages(broken.Load()))
	})
	mux.HandleFunc("/api2/json/nodes/{node}/storage/{storage}/content", func(w http.ResponseWriter, r *http.Request) {
		node, st := r.PathValue("node"), r.PathValue("storage")
		if q := r.URL.Query(); q.Get("content") != "backup" {
			t.Errorf("content query %s", r.URL.RawQuery)
		}
		switch st {
		case "local":
			if node == "pve1" {
				writeData(w, []any{
					map[string]any{"volid": "local:backup/vzdump-lxc-100-2025_10_04-12_00_00.tar.zst", "content": "backup", "format": "tar.zst", "subtype": "lxc", "vmid": 100, "size": 1000, "ctime": 1759579200, "notes": "web01\nmore", "protected": 1},
					map[string]any{"volid": "local:backup/vzdump-lxc-1000-2025_10_04-12_00_00.tar", "content": "backup", "format": "tar", "subtype": "lxc", "vmid": 1000, "size": 5, "ctime": 1759579200},
				})
			} else {
				writeData(w, []any{map[string]any{"volid": "local:backup/vzdump-lxc-100-2025_10_05-12_00_00.tar", "content": "backup", "format": "tar", "subtype": "lxc", "vmid": 100, "size": 10, "ctime": 1759665600}})
			}
		case "nas":
			writeData(w, []any{map[string]any{"volid": "nas:backup/vzdump-lxc-100-2025_10_03-12_00_00.tar.gz", "format": "tar.gz", "vmid": "100", "size": "20", "ctime": 1759492800, "protected": true}})
		case "pbs":
			writeData(w, []any{map[string]any{"volid": "pbs:backup/ct/100/2025-10-04T12:00:00Z", "content": "backup", "format": "pbs-ct", "subtype": "lxc", "vmid": 100, "size": 30, "ctime": 1759579200,
				"verification": map[string]any{"state": "ok", "upid": "x"}, "encrypted": "ab:cd"}})
		case "usb":
			writeRaw(t, w, 500, "storage 'usb' is not available on node '"+node+"'", `{"data":null}`)
		default:
			writeRaw(t, w, 500, "storage '"+st+"' does not exist", `{"data":null}`)
		}
	})
	c := newUnitClient(t, mux)
	ctx := context.Background()
	list, err := c.ListBackups(ctx, ListOptions{VMID: 100})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, b := range list {
		ids = append(ids, b.VolID)
	}
	want := []string{"local:backup/vzdump-lxc-100-2025_10_04-12_00_00.tar.zst", "pbs:backup/ct/100/2025-10-04T12:00:00Z", "nas:backup/vzdump-lxc-100-2025_10_03-12_00_00.tar.gz"}
	if strings.Join(ids, " ") != strings.Join(want, " ") {
		t.Fatalf("order:\n%v\nwant\n%v", ids, want)
	}
	l0, pbs, nas := list[0], list[1], list[2]
	if !l0.Protected || l0.Notes != "web01" || l0.Size != 1000 || l0.GuestType != "lxc" || l0.Node != "pve1" || l0.Storage != "local" || l0.Filename != "vzdump-lxc-100-2025_10_04-12_00_00.tar.zst" || l0.CreatedAt.Unix() != 1759579200 {
		t.Fatalf("local: %+v", l0)
	}
	if pbs.Verification != "ok" || !pbs.Encrypted || pbs.Format != "pbs-ct" || pbs.Filename != "ct/100/2025-10-04T12:00:00Z" {
		t.Fatalf("pbs: %+v", pbs)
	}
	if !nas.Protected || nas.VMID != 100 || nas.Size != 20 || nas.GuestType != "lxc" {
		t.Fatalf("nas: %+v", nas)
	}
	// every online node: shared storages once, local ones per node
	all, err := c.ListBackups(ctx, ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	for _, b := range all {
		count[b.VolID]++
	}
	if len(all) != 5 || count["nas:backup/vzdump-lxc-100-2025_10_03-12_00_00.tar.gz"] != 1 || all[0].Node != "pve2" {
		t.Fatalf("all: %v", count)
	}
	// an enabled storage that does not answer is an error naming it
	broken.Store(true)
	if _, err := c.ListBackups(ctx, ListOptions{VMID: 100}); err == nil || !strings.Contains(err.Error(), "usb") || !errors.Is(err, ErrOffline) {
		t.Fatalf("broken storage: %v", err)
	}
	if _, err := c.ListBackups(ctx, ListOptions{VMID: 100, Storage: "nas"}); err != nil {
		t.Fatalf("filter around the broken storage: %v", err)
	}
	b, err := c.GetBackup(ctx, "pve1", "pbs:backup/ct/100/2025-10-04T12:00:00Z")
	if err != nil || b.Verification != "ok" {
		t.Fatalf("get: %+v %v", b, err)
	}
	if _, err := c.GetBackup(ctx, "pve1", "pbs:backup/ct/100/2020-10-04T12:00:00Z"); !IsNotFound(err) {
		t.Fatalf("get missing: %v", err)
	}
}

func TestDeleteBackupProtectedInTask(t *testing.T) {
	t.Parallel()
	const upid = "UPID:pve1:000A1B2D:0123ABCD:68E10C40:imgdel:100@local:root@pam!tf:"
	volid := "local:backup/vzdump-lxc-100-2025_10_04-12_00_00.tar.zst"
	f := &fakeTask{lines: []string{"TASK ERROR: cannot remove protected volume 'backup/vzdump-lxc-100-2025_10_04-12_00_00.tar.zst' on 'local'"},
		exit: "cannot remove protected volume 'backup/vzdump-lxc-100-2025_10_04-12_00_00.tar.zst' on 'local'"}
	tasks := f.handler(upid)
	var deleted atomic.Bool
	c := newUnitClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasPrefix(r.URL.Path, "/api2/json/nodes/pve1/tasks/"):
			tasks.ServeHTTP(w, r)
		case r.URL.Path == "/api2/json/nodes/pve1/storage/local/content" && r.Method == "GET":
			// the listing does not (yet) show it protected: the task says so
			writeData(w, []any{map[string]any{"volid": volid, "content": "backup", "format": "tar.zst", "vmid": 100, "ctime": 1}})
		case r.URL.Path == "/api2/json/nodes/pve1/storage/local/content/"+volid && r.Method == "DELETE":
			if !strings.Contains(r.URL.RawPath, "local:backup%2Fvzdump") {
				t.Errorf("volume not escaped as one segment: %q", r.URL.RawPath)
			}
			deleted.Store(true)
			writeData(w, upid)
		default:
			http.NotFound(w, r)
		}
	}))
	err := c.DeleteBackup(context.Background(), "pve1", volid, nil)
	if !deleted.Load() || !IsProtected(err) || !strings.Contains(err.Error(), "set protected = false and apply first") {
		t.Fatalf("err %v", err)
	}
}
