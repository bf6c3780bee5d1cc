package acctest

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	tfjson "github.com/hashicorp/terraform-json"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"

	"github.com/proxmoxapp/terraform-provider-proxmoxapp/internal/pvesim"
)

// run is a check's outcome on a state ("" when it passes).
func run(c statecheck.StateCheck, s *tfjson.State) string {
	var resp statecheck.CheckStateResponse
	c.CheckState(context.Background(), statecheck.CheckStateRequest{State: s}, &resp)
	if resp.Error == nil {
		return ""
	}
	return resp.Error.Error()
}

func backupState(attrs map[string]any) *tfjson.State {
	return &tfjson.State{Values: &tfjson.StateValues{RootModule: &tfjson.StateModule{Resources: []*tfjson.StateResource{
		{Address: "proxmoxapp_backup.t", AttributeValues: attrs},
	}}}}
}

// TestArchiveChecks: the checks of archives on the storage pass on what is
// there and fail, naming the problem, on what is not.
func TestArchiveChecks(t *testing.T) {
	t.Parallel()
	sim, err := pvesim.Start(pvesim.Options{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	env := &Env{Sim: sim}
	dir := sim.StorageDumpDir("pve1", "local")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	const name = "vzdump-lxc-100-2026_01_01-00_00_00.tar.zst"
	archive := filepath.Join(dir, name)
	for p, content := range map[string]string{archive: "0123456789", archive + ".notes": "nightly\n",
		filepath.Join(dir, "vzdump-lxc-100-2026_01_01-00_00_00.log"): "INFO: backup mode: stop\n"} {
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	state := func(size string) *tfjson.State {
		return backupState(map[string]any{"node": "pve1", "storage": "local", "filename": name, "size": json.Number(size)})
	}
	var seen string
	missing := filepath.Join(dir, "vzdump-lxc-100-2025_01_01-00_00_00.tar.zst")
	cases := []struct {
		name  string
		check statecheck.StateCheck
		size  string
		want  string // "" passes
	}{
		{"on storage", ArchiveOnStorage(env, "proxmoxapp_backup.t", &seen), "10", ""},
		{"size differs", ArchiveOnStorage(env, "proxmoxapp_backup.t", nil), "11", "state says size 11"},
		{"not in state", ArchiveOnStorage(env, "proxmoxapp_backup.other", nil), "10", "not in the state"},
		{"notes", ArchiveSidecar(env, "proxmoxapp_backup.t", ".notes", "nightly"), "10", ""},
		{"notes differ", ArchiveSidecar(env, "proxmoxapp_backup.t", ".notes", "weekly"), "10", `want "weekly"`},
		{"not protected", ArchiveSidecar(env, "proxmoxapp_backup.t", ".protected", ""), "10", "expected file"},
		{"vzdump log", ArchiveLogContains(env, "proxmoxapp_backup.t", "backup mode: stop"), "10", ""},
		{"vzdump log lacks", ArchiveLogContains(env, "proxmoxapp_backup.t", "bandwidth limit"), "10", `does not contain "bandwidth limit"`},
		{"replaced", ArchiveReplaced(env, "proxmoxapp_backup.t", &missing), "10", ""},
		{"not replaced", ArchiveReplaced(env, "proxmoxapp_backup.t", &archive), "10", "still names the old archive"},
		{"is", ArchiveIs(env, "proxmoxapp_backup.t", &archive), "10", ""},
		{"is not", ArchiveIs(env, "proxmoxapp_backup.t", &missing), "10", "want the earlier archive"},
		{"at most 1", AtMostArchives(env, "pve1", "local", "vzdump-lxc-100-", 1), "10", ""},
		{"at most 0", AtMostArchives(env, "pve1", "local", "vzdump-lxc-100-", 0), "10", "1 archives vzdump-lxc-100-*"},
	}
	for _, tc := range cases {
		got := run(tc.check, state(tc.size))
		if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
	}
	if seen != archive {
		t.Errorf("ArchiveOnStorage recorded %q, want %q", seen, archive)
	}
	if err := ArchiveGone(archive); err == nil || !strings.Contains(err.Error(), name) {
		t.Errorf("ArchiveGone on a present archive: %v", err)
	}
	if err := os.Remove(archive); err != nil {
		t.Fatal(err)
	}
	if err := ArchiveGone(archive); err == nil || !strings.Contains(err.Error(), ".notes") {
		t.Errorf("ArchiveGone with the .notes left: %v", err)
	}
	// a real node's disks are not looked at
	if got := run(ArchiveOnStorage(&Env{}, "proxmoxapp_backup.t", nil), state("10")); got != "" {
		t.Errorf("against a real node: %q", got)
	}
}

// TestTreeIs names every difference between two file trees.
func TestTreeIs(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	WriteGuestFile(t, root, "etc/hostname", "web\n")
	WriteGuestFile(t, root, "srv/junk", "x")
	err := TreeIs(root, map[string]string{"etc/hostname": "db\n", "var/marker": "v1"})
	for _, want := range []string{`etc/hostname holds "web\n", want "db\n"`, "missing var/marker", "unexpected srv/junk"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("TreeIs: %v, want it to say %s", err, want)
		}
	}
	if err := TreeIs(root, map[string]string{"etc/hostname": "web\n", "srv/junk": "x"}); err != nil {
		t.Errorf("same tree: %v", err)
	}
	if err := TreeIs(root, nil); err == nil {
		t.Error("an unrecorded tree passed")
	}
}

// TestLazy builds the check when it runs, from values recorded after the
// test step was written.
func TestLazy(t *testing.T) {
	t.Parallel()
	var volid string
	check := Lazy(func() knownvalue.Check { return knownvalue.StringExact(volid) })
	volid = "local:backup/x.tar.zst"
	if err := check.CheckValue("local:backup/x.tar.zst"); err != nil {
		t.Errorf("recorded value: %v", err)
	}
	if err := check.CheckValue("local:backup/y.tar.zst"); err == nil {
		t.Error("another value passed")
	}
	if got := run(Remember("proxmoxapp_backup.t", "volid", &volid), backupState(map[string]any{"volid": "nas:backup/z"})); got != "" || volid != "nas:backup/z" {
		t.Errorf("Remember: %q, recorded %q", got, volid)
	}
	if got := run(Remember("proxmoxapp_backup.t", "volid", &volid), backupState(map[string]any{})); got == "" {
		t.Error("Remember of a missing attribute passed")
	}
}
