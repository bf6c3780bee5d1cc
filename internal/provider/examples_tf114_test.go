package provider

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/proxmoxapp/terraform-provider-proxmoxapp/internal/acctest"
)

// TestAccExample_backupBeforeChange applies the guide's configuration
// (examples/guides/backup-before-change) as written, against the simulator:
// every change of app_version is backed up first, a failed change leaves the
// app as it was and no backup missing, the rollback restores the newest
// backup and keeps its safety backup off that listing, the query lists the
// backups, and destroy leaves the guest and the backups alone.
func TestAccExample_backupBeforeChange(t *testing.T) {
	t.Parallel()
	env := acctest.New(t)
	env.RequireSim(t)
	root := env.Sim.GuestRootfs(100)
	tf := newTF114(t)
	// The example reads its credentials from PROXMOX_VE_*; the provider runs
	// in this (parallel) test process, so they come in through Terraform's
	// override file instead, leaving the example's files as written.
	tf.WriteFile("provider_override.tf", env.ProviderConfig())
	for _, name := range []string{"main.tf", "backups.tfquery.hcl"} {
		b, err := os.ReadFile(filepath.Join("..", "..", "examples", "guides", "backup-before-change", name))
		if err != nil {
			t.Fatal(err)
		}
		tf.WriteFile(name, string(b))
	}
	tf.Init()
	// The "upgrade" writes the version into the app, as a real one would.
	marker := filepath.Join(root, markerPath)
	upgrade := `-var=upgrade_command=mkdir -p "$(dirname '` + marker + `')" && echo "app $APP_VERSION" > '` + marker + `'`

	res := tf.Ok("apply", "-no-color", "-auto-approve", "-var=app_version=1.0", upgrade)
	inOrder(t, res.Stdout, "Action complete: action.proxmoxapp_backup.pre_change", "terraform_data.app: Creating...")
	if got := env.ArchiveNames(t, "pve1", "local", "vzdump-"); len(got) != 1 {
		t.Fatalf("backups before the first change: %v, want one", got)
	}
	atV1, err := acctest.ReadTree(root)
	if err != nil {
		t.Fatal(err)
	}
	if atV1[markerPath] != "app 1.0\n" {
		t.Fatalf("the change did not run: marker %q", atV1[markerPath])
	}

	// Version 2.0: backed up first, then changed.
	res = tf.Ok("apply", "-no-color", "-auto-approve", "-var=app_version=2.0", upgrade)
	inOrder(t, res.Stdout,
		"Plan: 1 to add, 0 to change, 1 to destroy. Actions: 1 to invoke.",
		"Action action.proxmoxapp_backup.pre_change (triggered by terraform_data.app): backup of guest 100 done: local:backup/",
		"terraform_data.app: Creating...")
	if got := env.ArchiveNames(t, "pve1", "local", "vzdump-"); len(got) != 2 {
		t.Fatalf("backups after the second change: %v, want two", got)
	}

	// Version 3.0 fails halfway, leaving the app broken.
	res = tf.Fails("apply", "-no-color", "-auto-approve", "-var=app_version=3.0",
		`-var=upgrade_command=echo "app half-upgraded" > '`+marker+`'; exit 1`)
	if !strings.Contains(res.Stdout, "backup of guest 100 done") {
		t.Fatalf("no backup before the failing change:\n%s", res)
	}
	// Roll back to the newest backup: the one taken right before 3.0.
	res = tf.Ok("apply", "-no-color", "-auto-approve", "-var=app_version=3.0", "-invoke=action.proxmoxapp_restore.rollback")
	if !strings.Contains(res.Stdout, "taking a safety backup of guest 100 to storage nas") {
		t.Errorf("the safety backup did not go to nas:\n%s", res.Stdout)
	}
	if got, err := os.ReadFile(marker); err != nil || string(got) != "app 2.0\n" {
		t.Errorf("after the rollback the app holds %q (%v), want version 2.0", got, err)
	}
	env.ExpectGuest(t, 100, "running")
	if got := env.ArchiveNames(t, "pve1", "local", "vzdump-"); len(got) != 3 {
		t.Errorf("backups on local after the rollback: %v, want the three pre-change ones", got)
	}
	if got := env.ArchiveNames(t, "pve1", "nas", "vzdump-"); len(got) != 1 {
		t.Errorf("backups on nas after the rollback: %v, want the safety backup", got)
	}

	res = tf.Ok("query", "-no-color", "-var=app_version=3.0")
	if n := strings.Count(res.Stdout, "list.proxmoxapp_backup.app "); n != 3 {
		t.Errorf("terraform query shows %d backups on local, want 3:\n%s", n, res.Stdout)
	}

	// The configuration the query generates for them is complete and valid.
	tf.Ok("query", "-no-color", "-var=app_version=3.0", "-generate-config-out=backups.tf")
	generated, err := os.ReadFile(filepath.Join(tf.Dir(), "backups.tf"))
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(generated), "vmid            = 100"); n != 3 {
		t.Errorf("backups.tf has %d resource blocks with vmid = 100, want 3:\n%s", n, generated)
	}
	tf.Ok("validate", "-no-color")
	if err := os.Remove(filepath.Join(tf.Dir(), "backups.tf")); err != nil {
		t.Fatal(err)
	}

	tf.Ok("destroy", "-no-color", "-auto-approve", "-var=app_version=3.0")
	if got := env.ArchiveNames(t, "pve1", "local", "vzdump-"); len(got) != 3 {
		t.Errorf("destroy touched the backups: %v", got)
	}
	env.ExpectGuest(t, 100, "running")
}
