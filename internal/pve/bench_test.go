package pve

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/proxmoxapp/terraform-provider-proxmoxapp/internal/pvesim"
)

// benchSim starts a simulator with the client's production polling, so the
// numbers are what a user's apply sees.
func benchSim(b *testing.B, throughput int64, overhead time.Duration) (*pvesim.Sim, *Client) {
	b.Helper()
	sim, err := pvesim.Start(pvesim.Options{DataDir: b.TempDir(), Throughput: throughput, TaskOverhead: overhead})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { sim.Close() })
	c, err := NewClient(context.Background(), Config{Endpoint: sim.Endpoint(), APIToken: sim.APIToken(), CACertPEM: sim.CAPEM()})
	if err != nil {
		b.Fatal(err)
	}
	return sim, c
}

// requestsPerOp reports how many API calls one operation made, by route, so
// a change that makes the waiter chattier shows up here.
func requestsPerOp(b *testing.B, sim *pvesim.Sim) {
	total := 0
	for _, n := range sim.Counters() {
		total += n
	}
	b.ReportMetric(float64(total)/float64(b.N), "requests/op")
}

// BenchmarkCreateBackup measures one vzdump of LXC 100 end to end: node
// lookup, POST, task waiting with log streaming, volid lookup. The task takes
// ~1 s of simulated time, as a small real backup does; the interesting
// numbers are the overshoot past 1 s and requests/op.
func BenchmarkCreateBackup(b *testing.B) {
	sim, c := benchSim(b, 1<<30, time.Second)
	ctx := context.Background()
	sim.ResetCounters()
	requests := 0
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		res, err := c.CreateBackup(ctx, BackupOptions{VMID: 100, Storage: "local", Compress: "zstd"}, nil)
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		for _, n := range sim.Counters() {
			requests += n
		}
		if err := c.DeleteBackup(ctx, res.Backup.Node, res.Backup.VolID, nil); err != nil {
			b.Fatal(err)
		}
		sim.ResetCounters()
		b.StartTimer()
	}
	b.StopTimer()
	b.ReportMetric(float64(requests)/float64(b.N), "requests/op")
}

// BenchmarkRefreshBackup measures what a terraform refresh of one backup
// costs: one storage listing.
func BenchmarkRefreshBackup(b *testing.B) {
	sim, c := benchSim(b, 1<<30, 0)
	ctx := context.Background()
	res, err := c.CreateBackup(ctx, BackupOptions{VMID: 100, Storage: "local", Compress: "zstd"}, nil)
	if err != nil {
		b.Fatal(err)
	}
	sim.ResetCounters()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := c.GetBackup(ctx, "pve1", res.Backup.VolID); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	requestsPerOp(b, sim)
}

// BenchmarkListBackups lists a guest's backups spread over local, the shared
// nas and pbs, as the data source does. Besides one real backup per storage,
// older archives are cloned on disk under earlier names (vzdump itself can
// take only one backup of a guest per second).
func BenchmarkListBackups(b *testing.B) {
	for _, clones := range []int{0, 100} {
		b.Run(fmt.Sprintf("backups=%d", 3+2*clones), func(b *testing.B) {
			sim, c := benchSim(b, 1<<30, 0)
			ctx := context.Background()
			for _, st := range []string{"local", "nas", "pbs"} {
				res, err := c.CreateBackup(ctx, BackupOptions{VMID: 100, Storage: st, Compress: "zstd"}, nil)
				if err != nil {
					b.Fatal(err)
				}
				if st != "pbs" {
					cloneArchive(b, sim.StorageDumpDir("pve1", st), res.Backup, clones)
				}
			}
			want := 3 + 2*clones
			sim.ResetCounters()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				bs, err := c.ListBackups(ctx, ListOptions{VMID: 100})
				if err != nil || len(bs) != want {
					b.Fatalf("listed %d backups, want %d: %v", len(bs), want, err)
				}
			}
			b.StopTimer()
			requestsPerOp(b, sim)
		})
	}
}

// cloneArchive copies a dir-storage archive to n older, standard names.
func cloneArchive(b *testing.B, dumpDir string, bk Backup, n int) {
	b.Helper()
	data, err := os.ReadFile(filepath.Join(dumpDir, bk.Filename))
	if err != nil {
		b.Fatal(err)
	}
	ext := strings.TrimPrefix(filepath.Ext(bk.Filename), ".")
	for i := 1; i <= n; i++ {
		when := bk.CreatedAt.Add(-time.Duration(i) * time.Hour).Local()
		name := fmt.Sprintf("vzdump-lxc-%d-%s.tar.%s", bk.VMID, when.Format("2006_01_02-15_04_05"), ext)
		if err := os.WriteFile(filepath.Join(dumpDir, name), data, 0o644); err != nil {
			b.Fatal(err)
		}
	}
}
