package pve

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

// pruneHistory: guest 100's backups on local at 1..n days ago (label "dN"),
// without the backup they were copied from.
func pruneHistory(t *testing.T, n int) (*Client, func(days int) string, map[string]string) {
	t.Helper()
	sim, c := startSim(t)
	b := mustBackup(t, c, BackupOptions{VMID: 100, Storage: "local"})
	v := map[string]string{}
	src := b.Backup.VolID
	add := func(days int) string {
		id, err := sim.CopyBackup("pve1", src, time.Now().Add(-time.Duration(days)*24*time.Hour).Truncate(time.Second))
		if err != nil {
			t.Fatal(err)
		}
		v[fmt.Sprintf("d%d", days)] = id
		return id
	}
	for i := 1; i <= n; i++ {
		add(i)
	}
	src = v["d1"]
	if err := c.DeleteBackup(testCtx(t), "pve1", b.Backup.VolID, nil); err != nil {
		t.Fatal(err)
	}
	return c, add, v
}

func TestPruneExactlyRefusesWhenTheDryRunChanged(t *testing.T) {
	t.Parallel()
	c, add, v := pruneHistory(t, 3)
	ctx := testCtx(t)
	o := PruneOptions{Node: "pve1", Storage: "local", VMID: 100, Policy: Retention{Keep: map[string]int{"keep-last": 2}}}
	entries, err := c.PruneDryRun(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	planned, held := PruneDeletions(entries, nil)
	if !reflect.DeepEqual(planned, []string{v["d3"]}) || held != nil {
		t.Fatalf("planned %v held %v", planned, held)
	}
	// a newer backup appears: d2 would go too
	newest := add(0)
	_, err = c.PruneExactly(ctx, o, planned, nil, nil)
	var chg *PruneChangedError
	if !errors.As(err, &chg) || !reflect.DeepEqual(chg.Extra, []string{v["d2"]}) || len(chg.NowKept) != 0 {
		t.Fatalf("err %v", err)
	}
	if _, err := c.GetBackup(ctx, "pve1", v["d3"]); err != nil {
		t.Errorf("d3 was deleted although the prune was refused: %v", err)
	}
	// the two newest vanish: d3 is kept now
	for _, id := range []string{newest, v["d1"]} {
		if err := c.DeleteBackup(ctx, "pve1", id, nil); err != nil {
			t.Fatal(err)
		}
	}
	_, err = c.PruneExactly(ctx, o, planned, nil, nil)
	if !errors.As(err, &chg) || !reflect.DeepEqual(chg.NowKept, []string{v["d3"]}) {
		t.Fatalf("err %v", err)
	}
}

func TestPruneExactlyDeletesThePlanAndHoldsManaged(t *testing.T) {
	t.Parallel()
	c, _, v := pruneHistory(t, 5)
	ctx := testCtx(t)
	o := PruneOptions{Node: "pve1", Storage: "local", VMID: 100, Policy: Retention{Keep: map[string]int{"keep-last": 2}}}
	held := map[string]bool{v["d4"]: true}
	entries, err := c.PruneDryRun(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	planned, heldBack := PruneDeletions(entries, held)
	if !reflect.DeepEqual(planned, sorted(v["d3"], v["d5"])) || !reflect.DeepEqual(heldBack, []string{v["d4"]}) {
		t.Fatalf("planned %v held %v", planned, heldBack)
	}
	var log []string
	got, err := c.PruneExactly(ctx, o, planned, held, func(l string) { log = append(log, l) })
	if err != nil || !reflect.DeepEqual(got, planned) {
		t.Fatalf("%v %v", got, err)
	}
	for label, want := range map[string]bool{"d1": true, "d2": true, "d3": false, "d4": true, "d5": false} {
		_, err := c.GetBackup(ctx, "pve1", v[label])
		if (err == nil) != want {
			t.Errorf("%s present=%v want %v", label, err == nil, want)
		}
	}
	// nothing held: PVE prunes, and its log names what went
	removed, err := c.Prune(ctx, o, nil)
	if err != nil || !reflect.DeepEqual(removed, []string{v["d4"]}) {
		t.Errorf("prune: %v %v", removed, err)
	}
}

func sorted(s ...string) []string {
	out := append([]string(nil), s...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

func TestDrillAndPruneLogParsing(t *testing.T) {
	t.Parallel()
	for lines, want := range map[string]int64{
		"extracting archive\nTotal bytes read: 20480 (20KiB, 15MiB/s)\nmerging":                            20480,
		"progress 100% (read 16384 bytes, duplicate 0 bytes)\ntotal bytes read 16384, sparse bytes 0 (0%)": 16384,
		"restore image complete (bytes=4194304, duration=0.01s)":                                           0,
	} {
		if got := restoredBytes(strings.Split(lines, "\n")); got != want {
			t.Errorf("%q: %d, want %d", lines, got, want)
		}
	}
	got := removedVolIDs([]string{"INFO: removing backup 'local:backup/b.tar'", "removing backup 'local:backup/a.tar'", "TASK OK"})
	if !reflect.DeepEqual(got, []string{"local:backup/a.tar", "local:backup/b.tar"}) {
		t.Errorf("removed %v", got)
	}
	for tags, want := range map[string]bool{"proxmoxapp-drill": true, "web;proxmoxapp-drill": true, "proxmoxapp-drill-old": false, "": false} {
		if hasTag(tags, DrillTag) != want {
			t.Errorf("hasTag(%q)", tags)
		}
	}
	if s := (Retention{Keep: map[string]int{"keep-weekly": 4, "keep-last": 1}}).String(); s != "keep-last=1,keep-weekly=4" {
		t.Errorf("policy %q", s)
	}
}
