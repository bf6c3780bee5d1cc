//go:build bench

package bench

import (
	"container/heap"
	"math"
	"math/rand"
	"testing"
)

// TestScaleQueueModel models line 6 without Terraform or a simulator: 400
// one-second backups on 8 nodes (one at a time per node), 32 slots given out
// in a random order, and a slot freed `dead` seconds after its backup ends
// (the provider noticing, Terraform moving on). It logs the wall ÷ the
// busiest node's work, mean and standard deviation over 400 orders, to show
// how much of line 6 the provider's share can move.
//
//	go test -tags bench -run TestScaleQueueModel -v ./internal/bench/
func TestScaleQueueModel(t *testing.T) {
	for _, dead := range []float64{0.4, 0.2, 0.05} {
		var sum, sq float64
		const runs = 400
		for seed := int64(0); seed < runs; seed++ {
			r := scaleModel(rand.New(rand.NewSource(seed)), dead)
			sum += r
			sq += r * r
		}
		mean := sum / runs
		t.Logf("slot freed %.2f s after a backup ends: wall ÷ busiest node %.3f (standard deviation %.3f)", dead, mean, math.Sqrt(sq/runs-mean*mean))
	}
}

func scaleModel(rng *rand.Rand, dead float64) float64 {
	const backups, nodes, slots = 400, 8, 32
	order := make([]int, backups)
	for i := range order {
		order[i] = i % nodes
	}
	rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
	nodeFree := make([]float64, nodes)
	work := make([]float64, nodes)
	var frees slotFrees
	next := 0
	dispatch := func(now float64) {
		for len(frees) < slots && next < backups {
			n := order[next]
			next++
			d := 0.98 + 0.04*rng.Float64()
			end := math.Max(now, nodeFree[n]) + d
			nodeFree[n], work[n] = end, work[n]+d
			heap.Push(&frees, end+dead)
		}
	}
	dispatch(0)
	last := 0.0
	for len(frees) > 0 {
		at := heap.Pop(&frees).(float64)
		last = math.Max(last, at-dead)
		dispatch(at)
	}
	busiest := 0.0
	for _, w := range work {
		busiest = math.Max(busiest, w)
	}
	return last / busiest
}

// slotFrees is a min-heap of the times slots come free.
type slotFrees []float64

func (h slotFrees) Len() int           { return len(h) }
func (h slotFrees) Less(i, j int) bool { return h[i] < h[j] }
func (h slotFrees) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *slotFrees) Push(x any)        { *h = append(*h, x.(float64)) }
func (h *slotFrees) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
