package acctest

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"

	tfjson "github.com/hashicorp/terraform-json"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
)

// The checks below look past Terraform's state at what a user would find on
// the simulator: archives on the storage, task logs, the guest's power
// state. They are statecheck.StateCheck values, so a test step lists them in
// ConfigStateChecks next to the statecheck/knownvalue checks of the state.
// Against a real node they pass without looking (its disks are not ours).

// Attrs returns the attribute values of one resource in a state.
func Attrs(state *tfjson.State, address string) (map[string]any, error) {
	if state == nil || state.Values == nil || state.Values.RootModule == nil {
		return nil, fmt.Errorf("no state")
	}
	for _, r := range state.Values.RootModule.Resources {
		if r.Address == address {
			return r.AttributeValues, nil
		}
	}
	return nil, fmt.Errorf("%s is not in the state", address)
}

// Int64 reads a number from tfjson attribute values, which may be decoded
// as float64 or json.Number (-1 if it is neither).
func Int64(v any) int64 {
	switch n := v.(type) {
	case json.Number:
		i, _ := n.Int64()
		return i
	case float64:
		return int64(n)
	}
	return -1
}

// Float64 reads a number from tfjson attribute values (NaN if it is none).
func Float64(v any) float64 {
	switch n := v.(type) {
	case json.Number:
		f, err := n.Float64()
		if err != nil {
			return math.NaN()
		}
		return f
	case float64:
		return n
	}
	return math.NaN()
}

// checkFunc is a StateCheck from a function of the state.
type checkFunc func(*tfjson.State) error

func (f checkFunc) CheckState(_ context.Context, req statecheck.CheckStateRequest, resp *statecheck.CheckStateResponse) {
	resp.Error = f(req.State)
}

// simOnly is a check that looks at the simulator's disks: a real node's
// are not ours to look at.
func (e *Env) simOnly(f func(*tfjson.State) error) statecheck.StateCheck {
	return checkFunc(func(s *tfjson.State) error {
		if e.Sim == nil {
			return nil
		}
		return f(s)
	})
}

// ArchiveOf is the path of the archive a backup resource in the state names.
func (e *Env) ArchiveOf(state *tfjson.State, address string) (string, error) {
	attrs, err := Attrs(state, address)
	if err != nil {
		return "", err
	}
	node, _ := attrs["node"].(string)
	storage, _ := attrs["storage"].(string)
	filename, _ := attrs["filename"].(string)
	if filename == "" {
		return "", fmt.Errorf("%s has no filename in the state", address)
	}
	return e.ArchivePath(node, storage, filename), nil
}

// ArchiveOnStorage asserts that the archive a backup resource names is on
// the simulator's storage, with the size the state reports. seen (if not
// nil) receives its path, for later steps (after a rotation, a destroy).
func ArchiveOnStorage(e *Env, address string, seen *string) statecheck.StateCheck {
	return e.simOnly(func(s *tfjson.State) error {
		p, err := e.ArchiveOf(s, address)
		if err != nil {
			return err
		}
		attrs, _ := Attrs(s, address)
		size := Int64(attrs["size"])
		fi, err := os.Stat(p)
		if err != nil {
			return fmt.Errorf("%s: archive not on the storage: %w", address, err)
		}
		if fi.Size() != size || size <= 0 {
			return fmt.Errorf("%s: state says size %d, the archive %s has %d bytes", address, size, filepath.Base(p), fi.Size())
		}
		if seen != nil {
			*seen = p
		}
		return nil
	})
}

// ArchiveIs asserts that a backup resource still names the archive recorded
// in *path by an earlier step.
func ArchiveIs(e *Env, address string, path *string) statecheck.StateCheck {
	return e.simOnly(func(s *tfjson.State) error {
		got, err := e.ArchiveOf(s, address)
		if err != nil {
			return err
		}
		if *path == "" || got != *path {
			return fmt.Errorf("%s names %s, want the earlier archive %q", address, got, *path)
		}
		return nil
	})
}

// ArchiveReplaced asserts that a backup resource names a new archive, not
// the one recorded in *old, and that the old one is gone from the storage
// with its sidecars (a rotation's outcome).
func ArchiveReplaced(e *Env, address string, old *string) statecheck.StateCheck {
	return e.simOnly(func(s *tfjson.State) error {
		got, err := e.ArchiveOf(s, address)
		if err != nil {
			return err
		}
		if got == *old {
			return fmt.Errorf("%s still names the old archive %s", address, got)
		}
		return ArchiveGone(*old)
	})
}

// ArchiveGone asserts that an archive and its .log and .notes sidecars are
// gone from the storage.
func ArchiveGone(archive string) error {
	if archive == "" {
		return fmt.Errorf("no archive was recorded")
	}
	paths := []string{archive, archive + ".notes", archive + ".protected"}
	if i := strings.Index(archive, ".tar"); i > 0 {
		paths = append(paths, archive[:i]+".log")
	} else if i := strings.Index(archive, ".vma"); i > 0 {
		paths = append(paths, archive[:i]+".log")
	}
	for _, p := range paths {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			return fmt.Errorf("%s still exists (err=%v)", p, err)
		}
	}
	return nil
}

// ArchiveSidecar asserts the content of one of the archive's sidecar files
// (".notes" holds the notes PVE shows; ".protected" exists when protected).
// want "" only asks that the file exists.
func ArchiveSidecar(e *Env, address, suffix, want string) statecheck.StateCheck {
	return e.simOnly(func(s *tfjson.State) error {
		p, err := e.ArchiveOf(s, address)
		if err != nil {
			return err
		}
		if want == "" {
			return FileExists(p + suffix)
		}
		return FileHas(p+suffix, want)
	})
}

// ArchiveLogContains asserts that the vzdump log kept next to the archive
// (the .log sidecar, as PVE writes it) has every one of the lines' texts.
func ArchiveLogContains(e *Env, address string, texts ...string) statecheck.StateCheck {
	return e.simOnly(func(s *tfjson.State) error {
		p, err := e.ArchiveOf(s, address)
		if err != nil {
			return err
		}
		i := strings.Index(p, ".tar")
		if i < 0 {
			i = strings.Index(p, ".vma")
		}
		if i < 0 {
			return fmt.Errorf("%s: no vzdump log for %s", address, p)
		}
		return contains(p[:i]+".log", texts)
	})
}

// TaskLogContains asserts that the log of the task a resource records in
// task_id (as the node keeps it on disk) has every one of the texts.
func TaskLogContains(e *Env, address string, texts ...string) statecheck.StateCheck {
	return e.simOnly(func(s *tfjson.State) error {
		attrs, err := Attrs(s, address)
		if err != nil {
			return err
		}
		upid, _ := attrs["task_id"].(string)
		if upid == "" {
			return fmt.Errorf("%s records no task_id", address)
		}
		logs, _ := filepath.Glob(filepath.Join(e.Sim.DataDir(), "nodes", "*", "tasks", "*", upid))
		if len(logs) != 1 {
			return fmt.Errorf("%s: %d task logs for %s, want 1", address, len(logs), upid)
		}
		return contains(logs[0], texts)
	})
}

func contains(path string, texts []string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	for _, t := range texts {
		if !strings.Contains(string(b), t) {
			return fmt.Errorf("%s does not contain %q:\n%s", filepath.Base(path), t, b)
		}
	}
	return nil
}

// GuestPowerState asserts a guest's power state and that no lock is left on
// it.
func GuestPowerState(e *Env, vmid int, status string) statecheck.StateCheck {
	return e.simOnly(func(*tfjson.State) error { return e.GuestIs(vmid, status) })
}

// GuestIs is GuestPowerState's assertion, for use outside a test step.
func (e *Env) GuestIs(vmid int, status string) error {
	g, ok := e.Sim.GuestState(vmid)
	if !ok {
		return fmt.Errorf("guest %d does not exist", vmid)
	}
	if g.Status != status || g.Lock != "" {
		return fmt.Errorf("guest %d is %s (lock %q), want %s and unlocked", vmid, g.Status, g.Lock, status)
	}
	return nil
}

// FileContent asserts a file's exact content.
func FileContent(path, want string) statecheck.StateCheck {
	return checkFunc(func(*tfjson.State) error {
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if string(b) != want {
			return fmt.Errorf("%s holds %q, want %q", path, b, want)
		}
		return nil
	})
}

// FileHas asserts a file's content, a trailing newline aside.
func FileHas(path, want string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if strings.TrimRight(string(b), "\n") != want {
		return fmt.Errorf("%s holds %q, want %q", path, b, want)
	}
	return nil
}

// FileExists asserts that a file exists.
func FileExists(p string) error {
	if _, err := os.Stat(p); err != nil {
		return fmt.Errorf("expected file: %w", err)
	}
	return nil
}

// Check wraps an assertion about the simulator that fits none of the
// checks above (counts of tasks, jobs on the node); it runs against the
// simulator only.
func Check(e *Env, f func() error) statecheck.StateCheck {
	return e.simOnly(func(*tfjson.State) error { return f() })
}

// StateCheck wraps an assertion that needs the state itself, for values
// that must be compared with something outside it.
func StateCheck(f func(*tfjson.State) error) statecheck.StateCheck { return checkFunc(f) }

// ArchiveMembers asserts which files a gzip-compressed container archive
// holds: every path in present, none in absent (paths relative to the
// guest's root, e.g. "var/www/index.html").
func ArchiveMembers(e *Env, address string, present, absent []string) statecheck.StateCheck {
	return e.simOnly(func(s *tfjson.State) error {
		p, err := e.ArchiveOf(s, address)
		if err != nil {
			return err
		}
		members, err := tarGzMembers(p)
		if err != nil {
			return err
		}
		for _, m := range present {
			if !members[m] {
				return fmt.Errorf("%s: %s is not in the archive %s", address, m, filepath.Base(p))
			}
		}
		for _, m := range absent {
			if members[m] {
				return fmt.Errorf("%s: %s is in the archive %s, want it excluded", address, m, filepath.Base(p))
			}
		}
		return nil
	})
}

func tarGzMembers(path string) (map[string]bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w (ArchiveMembers reads gzip archives only)", filepath.Base(path), err)
	}
	tr := tar.NewReader(zr)
	out := map[string]bool{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", filepath.Base(path), err)
		}
		out[strings.TrimPrefix(strings.TrimPrefix(h.Name, "./"), "/")] = true
	}
}

// Remember stores a string attribute of a resource in *into, for a later
// step's PreConfig or checks.
func Remember(address, attribute string, into *string) statecheck.StateCheck {
	return checkFunc(func(s *tfjson.State) error {
		attrs, err := Attrs(s, address)
		if err != nil {
			return err
		}
		v, ok := attrs[attribute].(string)
		if !ok || v == "" {
			return fmt.Errorf("%s has no %s in the state", address, attribute)
		}
		*into = v
		return nil
	})
}

// Lazy is a knownvalue.Check built when it runs, for values an earlier
// step or PreConfig records (volids of backups taken outside Terraform).
func Lazy(build func() knownvalue.Check) knownvalue.Check { return lazyCheck(build) }

type lazyCheck func() knownvalue.Check

func (l lazyCheck) CheckValue(v any) error { return l().CheckValue(v) }
func (l lazyCheck) String() string         { return l().String() }

// VolumeOnStorage asserts that the backup volume whose volid a resource
// records in attribute (e.g. a restore's safety_backup_volid) is on the
// simulator's dir storage of node.
func VolumeOnStorage(e *Env, address, attribute, node string) statecheck.StateCheck {
	return e.simOnly(func(s *tfjson.State) error {
		attrs, err := Attrs(s, address)
		if err != nil {
			return err
		}
		volid, _ := attrs[attribute].(string)
		storage, name, ok := strings.Cut(volid, ":backup/")
		if !ok {
			return fmt.Errorf("%s.%s = %q is not a dir storage backup", address, attribute, volid)
		}
		return FileExists(e.ArchivePath(node, storage, name))
	})
}

// GuestAbsent asserts that a guest does not exist.
func GuestAbsent(e *Env, vmid int) statecheck.StateCheck {
	return e.simOnly(func(*tfjson.State) error {
		if _, ok := e.Sim.GuestState(vmid); ok {
			return fmt.Errorf("guest %d exists", vmid)
		}
		return nil
	})
}

// RecordTree stores the files below root (as ReadTree maps them) in *into
// when the check runs, for a later step to compare with.
func RecordTree(root string, into *map[string]string) statecheck.StateCheck {
	return checkFunc(func(*tfjson.State) (err error) {
		*into, err = ReadTree(root)
		return err
	})
}
