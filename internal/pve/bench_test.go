package pve

import (
	"context"
	"fmt"
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

// BenchmarkListBackups lists N backups of one guest spread over three
// storages (local, shared nas, pbs), as the data source does.
func BenchmarkListBackups(b *testing.B) {
	for _, n := range []int{3, 30} {
		b.Run(fmt.Sprintf("backups=%d", n), func(b *testing.B) {
			sim, c := benchSim(b, 1<<30, 0)
			ctx := context.Background()
			storages := []string{"local", "nas", "pbs"}
			for i := 0; i < n; i++ {
				if _, err := c.CreateBackup(ctx, BackupOptions{VMID: 100, Storage: storages[i%3], Compress: "zstd"}, nil); err != nil {
					b.Fatal(err)
				}
			}
			sim.ResetCounters()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				bs, err := c.ListBackups(ctx, ListOptions{VMID: 100})
				if err != nil || len(bs) != n {
					b.Fatalf("listed %d backups, want %d: %v", len(bs), n, err)
				}
			}
			b.StopTimer()
			requestsPerOp(b, sim)
		})
	}
}
