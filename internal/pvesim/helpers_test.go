package pvesim

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// startSim starts a fast simulator in t.TempDir().
func startSim(t *testing.T, mod ...func(*Options)) *Sim {
	t.Helper()
	opts := Options{DataDir: t.TempDir(), Throughput: 1 << 30}
	for _, m := range mod {
		m(&opts)
	}
	s, err := Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func httpClient(t *testing.T, s *Sim) *http.Client {
	t.Helper()
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(s.CAPEM()) {
		t.Fatal("bad CA PEM")
	}
	return &http.Client{
		Timeout:   30 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}},
	}
}

type resp struct {
	code   int
	status string // full status line after the protocol, e.g. "500 CT is locked (backup)"
	header http.Header
	body   []byte
}

func (r *resp) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("bad JSON %q: %v", r.body, err)
	}
	return m
}

func (r *resp) data(t *testing.T) any { return r.json(t)["data"] }

// call does an API request with the given auth header value (token form
// "user@realm!id=secret"; "" = none). body: url.Values or JSON-able map.
func call(t *testing.T, s *Sim, method, path, token string, body any) *resp {
	t.Helper()
	var rd io.Reader
	ct := ""
	switch b := body.(type) {
	case nil:
	case url.Values:
		if method == "GET" || method == "DELETE" {
			path += "?" + b.Encode()
		} else {
			rd, ct = strings.NewReader(b.Encode()), "application/x-www-form-urlencoded"
		}
	case string:
		rd, ct = strings.NewReader(b), "application/json"
	default:
		j, _ := json.Marshal(b)
		rd, ct = strings.NewReader(string(j)), "application/json"
	}
	req, err := http.NewRequest(method, s.Endpoint()+"api2/json"+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	if token != "" {
		req.Header.Set("Authorization", "PVEAPIToken="+token)
	}
	res, err := httpClient(t, s).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return &resp{code: res.StatusCode, status: res.Status, header: res.Header, body: b}
}

func waitTask(t *testing.T, s *Sim, upid string) map[string]any {
	t.Helper()
	node := strings.Split(upid, ":")[1]
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		r := call(t, s, "GET", "/nodes/"+node+"/tasks/"+upid+"/status", s.APIToken(), nil)
		if r.code != 200 {
			t.Fatalf("task status: %s %s", r.status, r.body)
		}
		d := r.data(t).(map[string]any)
		if d["status"] == "stopped" {
			return d
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("task %s did not finish", upid)
	return nil
}

func taskLog(t *testing.T, s *Sim, upid string) []string {
	t.Helper()
	node := strings.Split(upid, ":")[1]
	r := call(t, s, "GET", "/nodes/"+node+"/tasks/"+upid+"/log?limit=0", s.APIToken(), nil)
	var out []string
	for _, x := range r.data(t).([]any) {
		out = append(out, x.(map[string]any)["t"].(string))
	}
	return out
}

func startTask(t *testing.T, s *Sim, method, path string, body url.Values) string {
	t.Helper()
	r := call(t, s, method, path, s.APIToken(), body)
	if r.code != 200 {
		t.Fatalf("%s %s: %s %s", method, path, r.status, r.body)
	}
	upid, _ := r.data(t).(string)
	if !reUPIDTest.MatchString(upid) {
		t.Fatalf("%s %s: not a UPID: %q", method, path, upid)
	}
	return upid
}

// backup runs vzdump for vmid on node and returns the new volid.
func backup(t *testing.T, s *Sim, node string, vmid int, extra url.Values) (string, map[string]any) {
	t.Helper()
	v := url.Values{"vmid": {fmt.Sprint(vmid)}}
	for k, x := range extra {
		v[k] = x
	}
	if v.Get("storage") == "" {
		v.Set("storage", "local")
	}
	upid := startTask(t, s, "POST", "/nodes/"+node+"/vzdump", v)
	st := waitTask(t, s, upid)
	return volidFromLog(v.Get("storage"), taskLog(t, s, upid)), st
}

func volidFromLog(storage string, lines []string) string {
	for _, l := range lines {
		if i := strings.Index(l, "creating vzdump archive '"); i >= 0 {
			p := strings.TrimSuffix(l[i+len("creating vzdump archive '"):], "'")
			return storage + ":backup/" + p[strings.LastIndex(p, "/")+1:]
		}
		if i := strings.Index(l, "creating Proxmox Backup Server archive '"); i >= 0 {
			return storage + ":backup/" + strings.TrimSuffix(l[i+len("creating Proxmox Backup Server archive '"):], "'")
		}
	}
	return ""
}

// rawStatusLine reads the literal status line with a raw TLS connection.
func rawStatusLine(t *testing.T, s *Sim, req string) string {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(s.CAPEM())
	u, _ := url.Parse(s.Endpoint())
	c, err := tls.Dial("tcp", u.Host, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprint(c, req)
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimRight(line, "\r\n")
}
