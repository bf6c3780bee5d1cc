package acctest

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	tfjson "github.com/hashicorp/terraform-json"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"

	"github.com/proxmoxapp/terraform-provider-proxmoxapp/internal/pvesim"
)

// WriteGuestFile writes one file below a container's root filesystem.
func WriteGuestFile(t *testing.T, root, rel, content string) {
	t.Helper()
	p := filepath.Join(root, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// ReadTree maps every regular file below root to its content.
func ReadTree(root string) (map[string]string, error) {
	out := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		out[filepath.ToSlash(rel)] = string(b)
		return nil
	})
	return out, err
}

// FileTree asserts that the files below root are exactly *want (read when
// the check runs, so an earlier step may record it).
func FileTree(root string, want *map[string]string) statecheck.StateCheck {
	return checkFunc(func(*tfjson.State) error { return TreeIs(root, *want) })
}

// TreeIs is FileTree's assertion.
func TreeIs(root string, want map[string]string) error {
	if len(want) == 0 {
		return fmt.Errorf("no expected file tree was recorded for %s", root)
	}
	got, err := ReadTree(root)
	if err != nil {
		return err
	}
	var diffs []string
	for k, v := range want {
		g, ok := got[k]
		switch {
		case !ok:
			diffs = append(diffs, "missing "+k)
		case g != v:
			diffs = append(diffs, fmt.Sprintf("%s holds %q, want %q", k, g, v))
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			diffs = append(diffs, "unexpected "+k)
		}
	}
	if len(diffs) > 0 {
		sort.Strings(diffs)
		return fmt.Errorf("files below %s differ: %s", root, strings.Join(diffs, "; "))
	}
	return nil
}

// Archives lists the archives (not their .log, .notes, .protected
// sidecars) on a dir storage of a node whose names start with prefix.
func (e *Env) Archives(node, storage, prefix string) ([]string, error) {
	entries, err := os.ReadDir(e.Sim.StorageDumpDir(node, storage))
	if err != nil && !os.IsNotExist(err) {
		return nil, err
	}
	var found []string
	for _, x := range entries {
		n := x.Name()
		if strings.HasPrefix(n, prefix) && !strings.HasSuffix(n, ".log") && !strings.HasSuffix(n, ".notes") && !strings.HasSuffix(n, ".protected") {
			found = append(found, n)
		}
	}
	return found, nil
}

// AtMostArchives asserts that at most allowed archives whose names start
// with prefix are on a dir storage.
func AtMostArchives(e *Env, node, storage, prefix string, allowed int) statecheck.StateCheck {
	return e.simOnly(func(*tfjson.State) error {
		found, err := e.Archives(node, storage, prefix)
		if err != nil {
			return err
		}
		if len(found) > allowed {
			return fmt.Errorf("%d archives %s* on %s, want at most %d: %v", len(found), prefix, storage, allowed, found)
		}
		return nil
	})
}

// MigrateGuest moves a guest to another node, as `pct migrate` of a
// stopped guest would: the simulator is stopped and started again on the
// same address and data directory with the guest on node. Only for
// environments made by New or NewWithConfig.
func (e *Env) MigrateGuest(t *testing.T, vmid int, node string) {
	t.Helper()
	e.RequireSim(t)
	cfg := e.opts.Config
	if cfg == nil {
		cfg = pvesim.DefaultConfig()
	}
	moved := *cfg
	moved.Guests = append([]pvesim.GuestConfig(nil), cfg.Guests...)
	found := false
	for i := range moved.Guests {
		if moved.Guests[i].VMID == vmid {
			moved.Guests[i].Node, found = node, true
		}
	}
	if !found {
		t.Fatalf("no guest %d to migrate", vmid)
	}
	opts := e.opts
	opts.Config, opts.Listen = &moved, strings.TrimPrefix(strings.TrimSuffix(e.Sim.Endpoint(), "/"), "https://")
	if err := e.Sim.Close(); err != nil {
		t.Fatalf("stopping the simulator: %v", err)
	}
	sim, err := pvesim.Start(opts)
	if err != nil {
		t.Fatalf("starting the simulator with guest %d on %s: %v", vmid, node, err)
	}
	e.Sim, e.opts = sim, opts
	t.Cleanup(func() { _ = sim.Close() })
}

// ArchiveNames is Archives for a test's own assertions: a listing error
// fails the test.
func (e *Env) ArchiveNames(t *testing.T, node, storage, prefix string) []string {
	t.Helper()
	names, err := e.Archives(node, storage, prefix)
	if err != nil {
		t.Fatal(err)
	}
	return names
}

// ExpectGuest reports an error unless the guest is in status and unlocked.
func (e *Env) ExpectGuest(t *testing.T, vmid int, status string) {
	t.Helper()
	if err := e.GuestIs(vmid, status); err != nil {
		t.Error(err)
	}
}
