//go:build bench

package bench

import (
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/proxmoxapp/terraform-provider-proxmoxapp/internal/pvesim"
)

// TestBench runs every scenario of issue 12; `-run TestBench/<Name>` runs one.
func TestBench(t *testing.T) {
	t.Run("Completion", benchCompletion)
	t.Run("Refresh", benchRefresh)
	t.Run("DataSource", benchDataSource)
	t.Run("Parallel", benchParallel)
	t.Run("Scale", benchScale)
}

// ---- 1. Completion -------------------------------------------------------

// benchCompletion: one backup per terraform apply (provider, guest 100 on
// pve1) side by side with the reference script (guest 101 on pve2), for
// tasks of about 1, 5 and 30 s. Each trial's task time is jittered by ±0.5 s,
// so that the task's end falls at a random point between two polls (of
// either client), as it does in real use.
func benchCompletion(t *testing.T) {
	sim := startSim(t, benchConfig(2, nil), time.Second)
	ref := newRefClient(sim)
	rng := rand.New(rand.NewSource(12))
	for _, c := range []struct {
		task   time.Duration
		trials int
	}{{time.Second, 9}, {5 * time.Second, 7}, {30 * time.Second, 5}} {
		var provLat, refLat []time.Duration
		provReq, refReq := 0, 0
		counted := map[string]bool{}
		for i := 0; i < c.trials; i++ {
			sim.SetTaskOverhead(c.task - 500*time.Millisecond + time.Duration(rng.Int63n(int64(time.Second))))
			tf := newTerraform(t)
			tf.setConfig(providerBlock(sim, sim.APIToken()) + "resource \"proxmoxapp_backup\" \"b\" {\n  vmid    = 100\n  storage = \"local\"\n}\n")
			sim.Requests()
			var refUPID string
			var refErr error
			var wg sync.WaitGroup
			wg.Add(1)
			go func() {
				defer wg.Done()
				refUPID, refErr = ref.backup([]int{101}, "local")
			}()
			started := time.Now().Add(-time.Second)
			tf.run("apply", "-auto-approve", "-no-color")
			wg.Wait()
			if refErr != nil {
				t.Fatal(refErr)
			}
			reqs := sim.Requests()
			provReq += countBy(reqs, providerAuthID)
			refReq += countBy(reqs, referenceAuthID)
			if i == 0 {
				t.Logf("%s task, provider: %s", c.task, routesBy(reqs, providerAuthID))
				t.Logf("%s task, reference: %s", c.task, routesBy(reqs, referenceAuthID))
			}
			for _, tt := range sim.TaskTimings() {
				if tt.Type != "vzdump" || tt.End.IsZero() || tt.Noticed.IsZero() || counted[tt.UPID] {
					continue
				}
				counted[tt.UPID] = true
				switch {
				case tt.UPID == refUPID:
					refLat = append(refLat, tt.Noticed.Sub(tt.End))
				case tt.ID == "100" && tt.Start.After(started):
					provLat = append(provLat, tt.Noticed.Sub(tt.End))
				}
			}
		}
		if len(provLat) != c.trials || len(refLat) != c.trials {
			t.Fatalf("found %d provider and %d reference task ends, want %d each", len(provLat), len(refLat), c.trials)
		}
		pm, pp, rm, rp := quantile(provLat, 0.5), quantile(provLat, 0.95), quantile(refLat, 0.5), quantile(refLat, 0.95)
		pr, rr := float64(provReq)/float64(c.trials), float64(refReq)/float64(c.trials)
		record(t, line{
			Target:    "1 Completion",
			What:      fmt.Sprintf("%.0f s task: end → noticed, median / p95 (%d trials); requests per backup", c.task.Seconds(), c.trials),
			Provider:  fmt.Sprintf("%.2f / %.2f s; %.1f req", pm.Seconds(), pp.Seconds(), pr),
			Reference: fmt.Sprintf("%.2f / %.2f s; %.1f req", rm.Seconds(), rp.Seconds(), rr),
			Limit:     "0 s; ≤ 0.25 / 0.6 s and ≤ 2 × ref req",
			VsRef:     fmt.Sprintf("%s / %s; req %s", ratio(pm.Seconds(), rm.Seconds()), ratio(pp.Seconds(), rp.Seconds()), ratio(pr, rr)),
			VsLimit:   fmt.Sprintf("+%.2f / +%.2f s", pm.Seconds(), pp.Seconds()),
			Pass:      pm <= 250*time.Millisecond && pp <= 600*time.Millisecond && pr <= 2*rr,
		})
	}
}

// ---- 2. Refresh, 5. Memory (plan) ----------------------------------------

// benchRefresh: 500 backups (two nodes; node-local "local" and shared "nas"),
// imported into the state, then `terraform plan` with and without refresh.
// The inventory has 823 guests, as in the issue.
func benchRefresh(t *testing.T) {
	const n = 500
	var guests []pvesim.GuestConfig
	for i := 0; i < 820; i++ {
		node := "pve1"
		if i%2 == 1 {
			node = "pve2"
		}
		guests = append(guests, pvesim.GuestConfig{VMID: 1000 + i, Type: "lxc", Node: node, Name: fmt.Sprintf("ct%d", 1000+i)})
	}
	sim := startSim(t, benchConfig(2, guests), 0)
	var locals, imports strings.Builder
	locals.WriteString("locals {\n  backups = [\n")
	for i := 0; i < n; i++ {
		g := guests[i]
		storage := "local"
		if i%4 >= 2 {
			storage = "nas"
		}
		name := fmt.Sprintf("vzdump-lxc-%d-2026_01_01-00_00_00.tar.zst", g.VMID)
		writeArchive(t, sim.StorageDumpDir(g.Node, storage), name, i)
		fmt.Fprintf(&locals, "    { vmid = %d, storage = %q },\n", g.VMID, storage)
		fmt.Fprintf(&imports, "import {\n  to = proxmoxapp_backup.b[%d]\n  id = \"%s/%s:backup/%s\"\n}\n", i, g.Node, storage, name)
	}
	locals.WriteString("  ]\n}\n")
	resources := "resource \"proxmoxapp_backup\" \"b\" {\n  count    = length(local.backups)\n  vmid     = local.backups[count.index].vmid\n  storage  = local.backups[count.index].storage\n  compress = \"zstd\"\n}\n"
	tf := newTerraform(t)
	tf.setConfig(providerBlock(sim, sim.APIToken()) + locals.String() + resources + imports.String())
	tf.run("apply", "-auto-approve", "-no-color", "-parallelism=10")
	tf.setConfig(providerBlock(sim, sim.APIToken()) + locals.String() + resources)

	var withRefresh, noRefresh []time.Duration
	var peak int64
	requests, changes := 0, ""
	for i := 0; i < 3; i++ {
		r := tf.run("plan", "-no-color", "-refresh=false")
		noRefresh = append(noRefresh, r.Wall)
		peak = max(peak, r.ProviderPeak)
		sim.Requests()
		t.Logf("plan -refresh=false: wall %s, Terraform CPU %s, provider CPU %s", secs(r.Wall), secs(r.TerraformCPU), secs(r.ProviderCPU))
		r = tf.run("plan", "-no-color")
		t.Logf("plan: wall %s, Terraform CPU %s, provider CPU %s", secs(r.Wall), secs(r.TerraformCPU), secs(r.ProviderCPU))
		withRefresh = append(withRefresh, r.Wall)
		peak = max(peak, r.ProviderPeak)
		reqs := sim.Requests()
		requests = countBy(reqs, providerAuthID)
		if i == 0 {
			t.Logf("refresh of %d: %s", n, routesBy(reqs, providerAuthID))
		}
		if !strings.Contains(r.Output, "No changes.") {
			changes = " (plan shows changes!)"
		}
	}
	// the reference: one listing per storage and node
	ref := newRefClient(sim)
	refStart := time.Now()
	for _, l := range [][2]string{{"pve1", "local"}, {"pve2", "local"}, {"pve1", "nas"}} {
		var list []map[string]any
		if err := ref.call("GET", "/nodes/"+l[0]+"/storage/"+l[1]+"/content", map[string][]string{"content": {"backup"}}, &list); err != nil {
			t.Fatal(err)
		}
	}
	refWall := time.Since(refStart)
	perBackup := float64(requests) / n
	record(t, line{Target: "2 Refresh", What: fmt.Sprintf("requests per proxmoxapp_backup in `plan`, N=%d, 2 nodes, 2 storages%s", n, changes),
		Provider: fmt.Sprintf("%.3f (%d requests)", perBackup, requests), Reference: fmt.Sprintf("%.3f (3 listings, %s)", 3.0/n, secs(refWall)),
		Limit: "0.002 (1 request); target ≤ 0.1", VsRef: ratio(perBackup, 3.0/n), VsLimit: ratio(perBackup, 1.0/n),
		Pass: perBackup <= 0.1 && changes == ""})
	wr, nr := quantile(withRefresh, 0.5), quantile(noRefresh, 0.5)
	record(t, line{Target: "2 Refresh", What: fmt.Sprintf("`plan` ÷ `plan -refresh=false`, N=%d (medians of 3)", n),
		Provider: fmt.Sprintf("%s ÷ %s = %.2f", secs(wr), secs(nr), wr.Seconds()/nr.Seconds()), Reference: "–",
		Limit: "1.0; target ≤ 1.2", VsRef: "–", VsLimit: fmt.Sprintf("%.2f", wr.Seconds()/nr.Seconds()),
		Pass: wr.Seconds()/nr.Seconds() <= 1.2})
	record(t, line{Target: "5 Memory", What: fmt.Sprintf("provider peak RSS (VmHWM), `plan` of %d backups", n),
		Provider: mib(peak), Reference: "–", Limit: "48 MiB", VsRef: "–", VsLimit: ratio(float64(peak), 48<<20), Pass: peak <= 48<<20})
}

// writeArchive puts a small archive file under a standard vzdump name.
func writeArchive(t *testing.T, dir, name string, seed int) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	data := []byte(fmt.Sprintf("bench archive %d\n%s", seed, strings.Repeat("x", 4096)))
	if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// ---- 3. Data source, 5. Memory (data source) ------------------------------

// benchDataSource: the proxmoxapp_backups data source over 1,000, 5,000 and
// 10,000 backups of one guest, read by `terraform plan`, against one list
// call of the reference.
func benchDataSource(t *testing.T) {
	sim := startSim(t, benchConfig(2, nil), 0)
	dir := sim.StorageDumpDir("pve1", "local")
	base := time.Date(2020, 1, 1, 0, 0, 0, 0, time.Local)
	ref := newRefClient(sim)
	tf := newTerraform(t)
	tf.setConfig(providerBlock(sim, sim.APIToken()) + "data \"proxmoxapp_backups\" \"all\" {\n  vmid = 100\n}\n\noutput \"count\" {\n  value = length(data.proxmoxapp_backups.all.backups)\n}\n")
	made := 0
	var cpuPer1k []float64
	for _, n := range []int{1000, 5000, 10000} {
		for ; made < n; made++ {
			name := fmt.Sprintf("vzdump-lxc-100-%s.tar.zst", base.Add(time.Duration(made)*time.Minute).Format("2006_01_02-15_04_05"))
			writeArchive(t, dir, name, made)
		}
		var walls []time.Duration
		var res runResult
		for i := 0; i < 3; i++ {
			res = tf.run("plan", "-no-color")
			walls = append(walls, res.Wall)
			if !strings.Contains(res.Output, fmt.Sprintf("count = %d", n)) {
				t.Fatalf("the plan does not show %d backups:\n%s", n, lastLines(res.Output, 20))
			}
		}
		wall := quantile(walls, 0.5)
		refStart := time.Now()
		var list []map[string]any
		if err := ref.call("GET", "/nodes/pve1/storage/local/content", map[string][]string{"content": {"backup"}, "vmid": {"100"}}, &list); err != nil || len(list) != n {
			t.Fatalf("reference listed %d backups: %v", len(list), err)
		}
		refWall := time.Since(refStart)
		share := res.ProviderCPU.Seconds() / (res.ProviderCPU + res.TerraformCPU).Seconds()
		cpuPer1k = append(cpuPer1k, res.ProviderCPU.Seconds()/float64(n/1000))
		// the target is at 10,000; 1,000 and 5,000 show the growth
		pass, limit := true, "(growth; target at 10,000)"
		if n == 10000 {
			pass = share < 0.25 && wall < 2*time.Second
			limit = "wall < 2 s, provider CPU share < 25%"
		}
		record(t, line{Target: "3 Data source", What: fmt.Sprintf("%d backups: `plan` wall (median of 3); provider CPU ÷ (provider + Terraform CPU)", n),
			Provider:  fmt.Sprintf("%s; %.0f%% (%s of %s)", secs(wall), 100*share, secs(res.ProviderCPU), secs(res.ProviderCPU+res.TerraformCPU)),
			Reference: fmt.Sprintf("one list call: %s", secs(refWall)), Limit: limit,
			VsRef: ratio(wall.Seconds(), refWall.Seconds()), VsLimit: ratio(wall.Seconds(), 2), Pass: pass})
		if n == 10000 {
			record(t, line{Target: "5 Memory", What: "provider peak RSS (VmHWM), data source of 10,000 backups",
				Provider: mib(res.ProviderPeak), Reference: "–", Limit: "48 MiB", VsRef: "–", VsLimit: ratio(float64(res.ProviderPeak), 48<<20),
				Pass: res.ProviderPeak <= 48<<20})
		}
	}
	growth := cpuPer1k[2] / cpuPer1k[0]
	record(t, line{Target: "3 Data source", What: "growth: provider CPU per 1,000 backups at 1k / 5k / 10k",
		Provider: fmt.Sprintf("%.3f / %.3f / %.3f s", cpuPer1k[0], cpuPer1k[1], cpuPer1k[2]), Reference: "–",
		Limit: "linear: 10k ÷ 1k per-1k cost ≤ 1.5", VsRef: "–", VsLimit: fmt.Sprintf("%.2f", growth), Pass: growth <= 1.5})
}

// ---- 4. Parallel, 6. Scale -----------------------------------------------

// nodeBusy is, per node, the time its vzdump tasks spent working: a node runs
// one vzdump at a time, so a task works from its start or the end of the
// task before it, whichever is later, to its end.
func nodeBusy(tasks []pvesim.TaskTiming) map[string]time.Duration {
	byNode := map[string][]pvesim.TaskTiming{}
	for _, tt := range tasks {
		byNode[tt.Node] = append(byNode[tt.Node], tt)
	}
	out := map[string]time.Duration{}
	for node, ts := range byNode {
		sort.Slice(ts, func(i, j int) bool { return ts[i].End.Before(ts[j].End) })
		var prev time.Time
		for _, tt := range ts {
			from := tt.Start
			if prev.After(from) {
				from = prev
			}
			out[node] += tt.End.Sub(from)
			prev = tt.End
		}
	}
	return out
}

func busiest(m map[string]time.Duration) (string, time.Duration) {
	node, d := "", time.Duration(0)
	for n, v := range m {
		if v > d {
			node, d = n, v
		}
	}
	return node, d
}

// fanOut backs up every guest with one proxmoxapp_backup each at the given
// parallelism, and returns the apply's wall time beyond a no-op apply of the
// same configuration (Terraform's own cost: starting, and walking every
// resource's plan), the busiest node's task time, and the provider's
// requests.
func fanOut(t *testing.T, sim *pvesim.Sim, guests []pvesim.GuestConfig, parallelism int) (extra, noop, busy time.Duration, busyNode string, requests int) {
	tf := newTerraform(t)
	var ids []string
	for _, g := range guests {
		ids = append(ids, fmt.Sprint(g.VMID))
	}
	tf.setConfig(providerBlock(sim, sim.APIToken()) + fmt.Sprintf("locals {\n  vmids = [%s]\n}\n\nresource \"proxmoxapp_backup\" \"b\" {\n  count   = length(local.vmids)\n  vmid    = local.vmids[count.index]\n  storage = \"local\"\n}\n", strings.Join(ids, ", ")))
	sim.Requests()
	started := time.Now()
	res := tf.run("apply", "-auto-approve", "-no-color", fmt.Sprintf("-parallelism=%d", parallelism))
	reqs := sim.Requests()
	requests = countBy(reqs, providerAuthID)
	t.Logf("%d backups: %s", len(guests), routesBy(reqs, providerAuthID))
	var tasks []pvesim.TaskTiming
	for _, tt := range sim.TaskTimings() {
		if tt.Type == "vzdump" && tt.Start.After(started.Add(-time.Second)) && !tt.End.IsZero() {
			tasks = append(tasks, tt)
		}
	}
	if len(tasks) != len(guests) {
		t.Fatalf("%d vzdump tasks ran, want %d", len(tasks), len(guests))
	}
	busyNode, busy = busiest(nodeBusy(tasks))
	var first, last time.Time
	for _, tt := range tasks {
		if tt.Node != busyNode {
			continue
		}
		if first.IsZero() || tt.Start.Before(first) {
			first = tt.Start
		}
		if tt.End.After(last) {
			last = tt.End
		}
	}
	t.Logf("busiest node %s: first task %.2f s into the apply, last end %.2f s before its end; idle between its tasks %.2f s",
		busyNode, first.Sub(res.Start).Seconds(), res.Finish.Sub(last).Seconds(), (last.Sub(first) - busy).Seconds())
	logNodes(t, tasks, res.Start, res.Finish)
	// Terraform's own share: the same apply once there is nothing to do
	// (start, provider start, the plan walk of every resource)
	noop = tf.run("apply", "-auto-approve", "-no-color", "-refresh=false", fmt.Sprintf("-parallelism=%d", parallelism)).Wall
	return res.Wall - noop, noop, busy, busyNode, requests
}

func lxcGuests(n, nodes, firstVMID int) []pvesim.GuestConfig {
	var gs []pvesim.GuestConfig
	for i := 0; i < n; i++ {
		gs = append(gs, pvesim.GuestConfig{VMID: firstVMID + i, Type: "lxc", Node: fmt.Sprintf("pve%d", i%nodes+1), Name: fmt.Sprintf("ct%d", firstVMID+i),
			Files: map[string]string{"etc/hostname": fmt.Sprintf("ct%d\n", firstVMID+i)}})
	}
	return gs
}

// benchParallel: 20 backups of 1 s over two nodes at -parallelism=20; the
// reference backs up the same guests with one vzdump call per node.
func benchParallel(t *testing.T) {
	guests := lxcGuests(20, 2, 1000)
	sim := startSim(t, benchConfig(2, guests), time.Second)
	extra, noop, busy, node, requests := fanOut(t, sim, guests, 20)

	// the reference: one vzdump call per node for all its guests
	ref := newRefClient(sim)
	sim.Requests()
	started := time.Now()
	var wg sync.WaitGroup
	for _, nd := range []string{"pve1", "pve2"} {
		var vmids []int
		for _, g := range guests {
			if g.Node == nd {
				vmids = append(vmids, g.VMID)
			}
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := ref.backup(vmids, "local"); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	refWall := time.Since(started)
	refReq := countBy(sim.Requests(), referenceAuthID)
	var refTasks []pvesim.TaskTiming
	for _, tt := range sim.TaskTimings() {
		if tt.Type == "vzdump" && tt.Start.After(started.Add(-time.Second)) {
			refTasks = append(refTasks, tt)
		}
	}
	_, refBusy := busiest(nodeBusy(refTasks))

	r := extra.Seconds() / busy.Seconds()
	record(t, line{Target: "4 Parallel", What: fmt.Sprintf("20 backups (1 s tasks), 2 nodes, -parallelism=20: apply wall beyond the same apply with nothing to do (%s) ÷ busiest node's task time", secs(noop)),
		Provider: fmt.Sprintf("%s ÷ %s (%s) = %.3f; whole apply %s", secs(extra), secs(busy), node, r, secs(extra+noop)), Reference: fmt.Sprintf("%s ÷ %s = %.3f", secs(refWall), secs(refBusy), refWall.Seconds()/refBusy.Seconds()),
		Limit: "1.0; target ≤ 1.05", VsRef: ratio(r, refWall.Seconds()/refBusy.Seconds()), VsLimit: fmt.Sprintf("%.3f", r), Pass: r <= 1.05})
	pr, rr := float64(requests)/20, float64(refReq)/20
	record(t, line{Target: "4 Parallel", What: "requests per backup (lock waits included)",
		Provider: fmt.Sprintf("%.1f", pr), Reference: fmt.Sprintf("%.1f", rr), Limit: "target ≤ 8", VsRef: ratio(pr, rr), VsLimit: ratio(pr, 8), Pass: pr <= 8})
}

// benchScale: 8 nodes, 400 guests, one 1 s backup each, -parallelism=32.
func benchScale(t *testing.T) {
	guests := lxcGuests(400, 8, 1000)
	sim := startSim(t, benchConfig(8, guests), time.Second)
	extra, noop, busy, node, requests := fanOut(t, sim, guests, 32)
	r := extra.Seconds() / busy.Seconds()
	record(t, line{Target: "6 Scale", What: fmt.Sprintf("400 backups (1 s tasks), 8 nodes, -parallelism=32: apply wall beyond the same apply with nothing to do (%s) ÷ busiest node's task time; 0 errors", secs(noop)),
		Provider: fmt.Sprintf("%s ÷ %s (%s) = %.3f; whole apply %s", secs(extra), secs(busy), node, r, secs(extra+noop)), Reference: "–",
		Limit: "1.0; target ≤ 1.1", VsRef: "–", VsLimit: fmt.Sprintf("%.3f", r), Pass: r <= 1.1})
	record(t, line{Target: "6 Scale", What: "requests per backup", Provider: fmt.Sprintf("%.1f", float64(requests)/400), Reference: "–",
		Limit: "(reported)", VsRef: "–", VsLimit: "–", Pass: true})
}

// logNodes logs, per node, when its first task started and its last ended
// (seconds into the apply), the time it idled in between, and the median
// time from a task's end to the provider noticing it.
func logNodes(t *testing.T, tasks []pvesim.TaskTiming, start, finish time.Time) {
	byNode := map[string][]pvesim.TaskTiming{}
	for _, tt := range tasks {
		byNode[tt.Node] = append(byNode[tt.Node], tt)
	}
	busy := nodeBusy(tasks)
	var nodes []string
	for n := range byNode {
		nodes = append(nodes, n)
	}
	sort.Strings(nodes)
	var parts []string
	for _, n := range nodes {
		var first, last time.Time
		var notice []time.Duration
		for _, tt := range byNode[n] {
			if first.IsZero() || tt.Start.Before(first) {
				first = tt.Start
			}
			if tt.End.After(last) {
				last = tt.End
			}
			if !tt.Noticed.IsZero() {
				notice = append(notice, tt.Noticed.Sub(tt.End))
			}
		}
		parts = append(parts, fmt.Sprintf("%s %.1f–%.1f s idle %.1f s notice %.2f s", n, first.Sub(start).Seconds(), last.Sub(start).Seconds(),
			(last.Sub(first)-busy[n]).Seconds(), quantile(notice, 0.5).Seconds()))
	}
	t.Logf("nodes (apply ended at %.1f s): %s", finish.Sub(start).Seconds(), strings.Join(parts, "; "))
}
