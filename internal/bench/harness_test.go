//go:build bench

package bench

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/proxmoxapp/terraform-provider-proxmoxapp/internal/pvesim"
)

const (
	providerAuthID  = "root@pam!terraform"
	referenceAuthID = "bench@pve!ref"
	providerAddr    = "registry.terraform.io/proxmoxapp/proxmoxapp"
)

// ---- the report --------------------------------------------------------

// line is one row of the results table.
type line struct {
	Target, What, Provider, Reference, Limit, VsRef, VsLimit string
	Pass                                                     bool
}

var (
	reportMu sync.Mutex
	report   []line
)

func record(t *testing.T, l line) {
	reportMu.Lock()
	report = append(report, l)
	reportMu.Unlock()
	verdict := "PASS"
	if !l.Pass {
		verdict = "FAIL"
	}
	t.Logf("%s | %s | provider %s | reference %s | limit %s | ÷ref %s | ÷limit %s | %s",
		l.Target, l.What, l.Provider, l.Reference, l.Limit, l.VsRef, l.VsLimit, verdict)
}

func TestMain(m *testing.M) {
	var err error
	if buildDir, err = os.MkdirTemp("", "proxmoxapp-bench-"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	code := m.Run()
	_ = os.RemoveAll(buildDir)
	var b strings.Builder
	load, _ := os.ReadFile("/proc/loadavg")
	fmt.Fprintf(&b, "\nmachine: %d CPUs (nproc), load average at the end: %s, %s/%s, %s\n\n",
		runtime.NumCPU(), strings.Join(strings.Fields(string(load))[:3], " "), runtime.GOOS, runtime.GOARCH, runtime.Version())
	b.WriteString("| target | what | provider | reference | limit | provider ÷ reference | provider ÷ limit | result |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|\n")
	for _, l := range report {
		verdict := "PASS"
		if !l.Pass {
			verdict = "**FAIL**"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s |\n", l.Target, l.What, l.Provider, l.Reference, l.Limit, l.VsRef, l.VsLimit, verdict)
	}
	fmt.Print(b.String())
	if out := os.Getenv("BENCH_OUT"); out != "" {
		_ = os.WriteFile(out, []byte(b.String()), 0o644)
	}
	os.Exit(code)
}

// ---- the simulator -----------------------------------------------------

// benchConfig is the default inventory plus the reference client's user and
// extra guests.
func benchConfig(nodes int, guests []pvesim.GuestConfig) *pvesim.Config {
	cfg := pvesim.DefaultConfig()
	cfg.Users = append(cfg.Users, pvesim.UserConfig{ID: "bench@pve", ACL: []pvesim.ACLEntry{{Path: "/", Roles: []string{"Administrator"}}},
		Tokens: []pvesim.TokenConfig{{ID: "ref"}}})
	for i := len(cfg.Nodes); i < nodes; i++ {
		cfg.Nodes = append(cfg.Nodes, pvesim.NodeConfig{Name: fmt.Sprintf("pve%d", i+1)})
	}
	cfg.Guests = append(cfg.Guests, guests...)
	return cfg
}

func startSim(t *testing.T, cfg *pvesim.Config, overhead time.Duration) *pvesim.Sim {
	t.Helper()
	sim, err := pvesim.Start(pvesim.Options{DataDir: t.TempDir(), Config: cfg, Throughput: 1 << 30, TaskOverhead: overhead})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	sim.Observe(true)
	return sim
}

// countBy counts requests by client.
func countBy(reqs []pvesim.RequestRecord, authID string) int {
	n := 0
	for _, r := range reqs {
		if r.AuthID == authID {
			n++
		}
	}
	return n
}

func routesBy(reqs []pvesim.RequestRecord, authID string) string {
	m := map[string]int{}
	for _, r := range reqs {
		if r.AuthID == authID {
			m[r.Method+" "+r.Route]++
		}
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s ×%d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

// ---- Terraform with the provider as a separate, measured process -------

var (
	buildOnce sync.Once
	buildDir  string
	buildErr  error
)

// buildProvider builds the provider and the rusage wrapper once per run, into
// buildDir (made and removed by TestMain).
func buildProvider(t *testing.T) string {
	buildOnce.Do(func() {
		root := repoRoot()
		for _, b := range [][2]string{
			{filepath.Join(buildDir, "real", "terraform-provider-proxmoxapp"), "."},
			{filepath.Join(buildDir, "plugin", "terraform-provider-proxmoxapp"), "./internal/bench/rusagewrap"},
		} {
			cmd := exec.Command("go", "build", "-o", b[0], b[1])
			cmd.Dir = root
			if out, err := cmd.CombinedOutput(); err != nil {
				buildErr = fmt.Errorf("go build %s: %v\n%s", b[1], err, out)
				return
			}
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildDir
}

func repoRoot() string {
	wd, _ := os.Getwd()
	return filepath.Clean(filepath.Join(wd, "..", ".."))
}

type terraform struct {
	t      *testing.T
	dir    string
	bin    string
	env    []string
	rusage string
}

func newTerraform(t *testing.T) *terraform {
	t.Helper()
	bd := buildProvider(t)
	bin := os.Getenv("TF_ACC_TERRAFORM_PATH")
	if bin == "" {
		bin = filepath.Join(repoRoot(), ".bin", "terraform")
	}
	dir := t.TempDir()
	cli := filepath.Join(dir, ".terraformrc")
	_ = os.WriteFile(cli, []byte(fmt.Sprintf("provider_installation {\n  dev_overrides {\n    %q = %q\n  }\n  direct {}\n}\n", providerAddr, filepath.Join(bd, "plugin"))), 0o644)
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "TF_LOG") || strings.HasPrefix(kv, "TF_CLI_CONFIG_FILE=") || strings.HasPrefix(kv, "TF_REATTACH") {
			continue
		}
		env = append(env, kv)
	}
	rusage := filepath.Join(dir, "rusage")
	env = append(env, "TF_CLI_CONFIG_FILE="+cli, "CHECKPOINT_DISABLE=1", "TF_IN_AUTOMATION=1", "TF_INPUT=0",
		"PROXMOXAPP_BENCH_PROVIDER="+filepath.Join(bd, "real", "terraform-provider-proxmoxapp"), "PROXMOXAPP_BENCH_RUSAGE="+rusage)
	return &terraform{t: t, dir: dir, bin: bin, env: env, rusage: rusage}
}

func providerBlock(sim *pvesim.Sim, token string) string {
	return fmt.Sprintf(`terraform {
  required_providers {
    proxmoxapp = { source = "proxmoxapp/proxmoxapp" }
  }
}

provider "proxmoxapp" {
  endpoint  = %q
  api_token = %q
  ca_cert   = <<-EOT
%s
  EOT
}
`, sim.Endpoint(), token, strings.TrimSpace(string(sim.CAPEM())))
}

func (tf *terraform) setConfig(body string) {
	if err := os.WriteFile(filepath.Join(tf.dir, "main.tf"), []byte(body), 0o644); err != nil {
		tf.t.Fatal(err)
	}
}

// runResult is one Terraform command: its wall time, Terraform's own CPU,
// and the provider processes' peak memory and CPU.
type runResult struct {
	Wall          time.Duration
	TerraformCPU  time.Duration
	ProviderCPU   time.Duration
	ProviderPeak  int64 // bytes
	Output        string
	Start, Finish time.Time
}

func (tf *terraform) run(args ...string) runResult {
	tf.t.Helper()
	_ = os.Remove(tf.rusage)
	cmd := exec.Command(tf.bin, args...)
	cmd.Dir, cmd.Env = tf.dir, tf.env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	res := runResult{Wall: time.Since(start), Output: out.String(), Start: start, Finish: time.Now()}
	if err != nil {
		tf.t.Fatalf("terraform %s: %v\n%s", strings.Join(args, " "), err, lastLines(out.String(), 40))
	}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		res.TerraformCPU = time.Duration(syscall.TimevalToNsec(ru.Utime) + syscall.TimevalToNsec(ru.Stime))
	}
	raw, _ := os.ReadFile(tf.rusage)
	for _, l := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		f := strings.Fields(l)
		if len(f) != 3 {
			continue
		}
		rss, _ := strconv.ParseInt(f[0], 10, 64)
		u, _ := strconv.ParseInt(f[1], 10, 64)
		s, _ := strconv.ParseInt(f[2], 10, 64)
		res.ProviderPeak = max(res.ProviderPeak, rss*1024)
		res.ProviderCPU += time.Duration(u + s)
	}
	// Terraform's CPU above includes its children's only when reaped by it;
	// subtract nothing: rusage of a process covers itself, not the provider.
	return res
}

func lastLines(s string, n int) string {
	l := strings.Split(s, "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}

// ---- the reference client: what a script does ---------------------------

// refClient is a plain PVE API client, as a script would use: fixed 1 s
// polling of a task's status, one listing per lookup.
type refClient struct {
	base, token string
	hc          *http.Client
}

func newRefClient(sim *pvesim.Sim) *refClient {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(sim.CAPEM())
	return &refClient{base: strings.TrimRight(sim.Endpoint(), "/") + "/api2/json", token: sim.Token(referenceAuthID),
		hc: &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}}
}

func (c *refClient) call(method, path string, form url.Values, out any) error {
	var body io.Reader
	u := c.base + path
	if method == http.MethodGet && form != nil {
		u += "?" + form.Encode()
	} else if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "PVEAPIToken="+c.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != 200 {
		return fmt.Errorf("%s %s: %s", method, path, resp.Status)
	}
	var env struct {
		Data json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(raw, &env); err != nil {
		return err
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(env.Data, out)
}

// backup does what the script does for one guest: find its node, POST
// vzdump, poll the task every second, read its log once and list the storage
// to find the archive. It returns the UPID.
func (c *refClient) backup(vmids []int, storage string) (string, error) {
	var res []struct {
		VMID int    `json:"vmid"`
		Node string `json:"node"`
	}
	if err := c.call("GET", "/cluster/resources", url.Values{"type": {"vm"}}, &res); err != nil {
		return "", err
	}
	node := ""
	for _, r := range res {
		if r.VMID == vmids[0] {
			node = r.Node
		}
	}
	ids := make([]string, len(vmids))
	for i, v := range vmids {
		ids[i] = strconv.Itoa(v)
	}
	var upid string
	if err := c.call("POST", "/nodes/"+node+"/vzdump", url.Values{"vmid": {strings.Join(ids, ",")}, "storage": {storage}, "compress": {"zstd"}}, &upid); err != nil {
		return "", err
	}
	for {
		time.Sleep(time.Second)
		var st struct {
			Status string `json:"status"`
		}
		if err := c.call("GET", "/nodes/"+node+"/tasks/"+url.PathEscape(upid)+"/status", nil, &st); err != nil {
			return "", err
		}
		if st.Status != "running" {
			break
		}
	}
	var logLines []map[string]any
	if err := c.call("GET", "/nodes/"+node+"/tasks/"+url.PathEscape(upid)+"/log", url.Values{"limit": {"100000"}}, &logLines); err != nil {
		return "", err
	}
	q := url.Values{"content": {"backup"}}
	if len(vmids) == 1 {
		q.Set("vmid", ids[0])
	}
	var list []map[string]any
	return upid, c.call("GET", "/nodes/"+node+"/storage/"+storage+"/content", q, &list)
}

// ---- statistics ----------------------------------------------------------

func quantile(ds []time.Duration, q float64) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	if len(s) == 0 {
		return 0
	}
	// nearest rank
	i := int(q*float64(len(s))+0.999999) - 1
	if i < 0 {
		i = 0
	}
	if i >= len(s) {
		i = len(s) - 1
	}
	return s[i]
}

func secs(d time.Duration) string { return fmt.Sprintf("%.2f s", d.Seconds()) }

func ratio(a, b float64) string {
	if b == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f", a/b)
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }
