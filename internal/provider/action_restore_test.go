package provider

import (
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/proxmoxapp/terraform-provider-proxmoxapp/internal/acctest"
)

// reActionSafety finds the safety backup in the restore action's output.
var reActionSafety = regexp.MustCompile(`safety backup: (local:backup/(vzdump-lxc-100-\d{4}_\d\d_\d\d-\d\d_\d\d_\d\d\.tar\.zst))`)

// restoreActionConfig is a backup resource "b" of guest 100 and restore
// actions onto guest 100 ("rollback", from b) and into a new guest 150
// ("peek", from var.peek), plus extra.
func restoreActionConfig(env *acctest.Env, extra string) string {
	return tf114Config(env) + `
variable "peek" {
  type    = string
  default = null
}

resource "proxmoxapp_backup" "b" {
  vmid    = 100
  storage = "local"
}

action "proxmoxapp_restore" "rollback" {
  config {
    vmid   = 100
    backup = proxmoxapp_backup.b.volid
  }
}

action "proxmoxapp_restore" "peek" {
  config {
    vmid   = 150
    backup = var.peek
    start  = true
  }
}
` + extra
}

// TestAccActionRestore_invoke: a normal apply never restores; `-invoke`
// runs the whole restore with a progress message per step, in order, and
// ends naming the safety backup. The guest's files are the backup's
// afterwards and it runs again; the safety backup holds what was there
// before (read back by restoring it into a new guest with the same action).
func TestAccActionRestore_invoke(t *testing.T) {
	t.Parallel()
	env := acctest.New(t)
	env.RequireSim(t)
	root := env.Sim.GuestRootfs(100)
	tf := newTF114(t)
	tf.WriteFile("main.tf", restoreActionConfig(env, ""))
	tf.Init()

	acctest.WriteGuestFile(t, root, markerPath, "v1 backed up\n")
	tf.Ok("apply", "-no-color", "-auto-approve")
	atBackup, err := acctest.ReadTree(root)
	if err != nil {
		t.Fatal(err)
	}

	// The app changes; a plain apply has nothing to do and restores nothing.
	acctest.WriteGuestFile(t, root, markerPath, "v2 changed after the backup\n")
	acctest.WriteGuestFile(t, root, "srv/junk", "not in the backup\n")
	beforeRestore, err := acctest.ReadTree(root)
	if err != nil {
		t.Fatal(err)
	}
	res := tf.Ok("apply", "-no-color", "-auto-approve")
	if !strings.Contains(res.Stdout, "Apply complete! Resources: 0 added, 0 changed, 0 destroyed.") || strings.Contains(res.Stdout, "Action started") {
		t.Fatalf("a plain apply did something:\n%s", res.Stdout)
	}
	if err := acctest.TreeIs(root, beforeRestore); err != nil {
		t.Fatalf("a plain apply touched the guest: %v", err)
	}

	res = tf.Ok("apply", "-no-color", "-auto-approve", "-invoke=action.proxmoxapp_restore.rollback")
	const prefix = "Action action.proxmoxapp_restore.rollback (triggered by CLI): "
	inOrder(t, res.Stdout,
		"Action started: action.proxmoxapp_restore.rollback (triggered by CLI)",
		prefix+"restoring local:backup/vzdump-lxc-100-",
		prefix+"taking a safety backup of guest 100 to storage local",
		prefix+"INFO: Starting Backup of VM 100 (lxc)",
		prefix+"safety backup: local:backup/vzdump-lxc-100-",
		prefix+"shutting guest 100 down",
		prefix+"restoring local:backup/vzdump-lxc-100-",
		prefix+"starting guest 100",
		prefix+"restore of guest 100 done: ",
		"was running and is running; safety backup local:backup/vzdump-lxc-100-",
		"Action complete: action.proxmoxapp_restore.rollback (triggered by CLI)",
		"Apply complete! Resources: 0 added, 0 changed, 0 destroyed. Actions: 1 invoked.",
	)
	if err := acctest.TreeIs(root, atBackup); err != nil {
		t.Errorf("after the restore: %v", err)
	}
	env.ExpectGuest(t, 100, "running")
	m := reActionSafety.FindStringSubmatch(res.Stdout)
	if m == nil {
		t.Fatalf("no safety backup named in:\n%s", res.Stdout)
	}
	if err := acctest.FileExists(filepath.Join(env.Sim.StorageDumpDir("pve1", "local"), m[2])); err != nil {
		t.Fatalf("safety backup %s: %v", m[1], err)
	}
	if st := tf.State(); len(st.Values.RootModule.Resources) != 1 {
		t.Errorf("the restore action changed the state: %d resources, want only proxmoxapp_backup.b", len(st.Values.RootModule.Resources))
	}

	// The safety backup holds the files from before the restore.
	res = tf.Ok("apply", "-no-color", "-auto-approve", "-invoke=action.proxmoxapp_restore.peek", "-var=peek="+m[1])
	if !strings.Contains(res.Stdout, "guest was absent and is running; no safety backup taken") {
		t.Errorf("restoring into a new guest:\n%s", res.Stdout)
	}
	if err := acctest.TreeIs(env.Sim.GuestRootfs(150), beforeRestore); err != nil {
		t.Errorf("the safety backup does not hold the pre-restore files: %v", err)
	}
	env.ExpectGuest(t, 150, "running")
}

// TestAccActionRestore_failure: a restore task that fails midway fails the
// action with the step, PVE's message, the state the guest was left in and
// the safety backup, whose progress was shown up to the failure. Nothing is
// lost: restoring the safety backup brings the pre-restore files back.
func TestAccActionRestore_failure(t *testing.T) {
	t.Parallel()
	env := acctest.New(t)
	env.RequireSim(t)
	root := env.Sim.GuestRootfs(100)
	tf := newTF114(t)
	tf.WriteFile("main.tf", restoreActionConfig(env, `
action "proxmoxapp_restore" "recover" {
  config {
    vmid          = 100
    backup        = var.peek
    safety_backup = false
    start         = true
  }
}
`))
	tf.Init()
	acctest.WriteGuestFile(t, root, markerPath, "old\n")
	tf.Ok("apply", "-no-color", "-auto-approve")

	acctest.WriteGuestFile(t, root, markerPath, "precious, not backed up by hand\n")
	precious, err := acctest.ReadTree(root)
	if err != nil {
		t.Fatal(err)
	}
	env.Sim.FailTask("vzrestore", 100, "tar: Unexpected EOF in archive")
	res := tf.Fails("apply", "-no-color", "-auto-approve", "-invoke=action.proxmoxapp_restore.rollback")
	out := acctest.Flat(res.Stdout + res.Stderr)
	inOrder(t, out,
		"Action action.proxmoxapp_restore.rollback (triggered by CLI): safety backup: local:backup/vzdump-lxc-100-",
		"Action action.proxmoxapp_restore.rollback (triggered by CLI): shutting guest 100 down",
		"Unexpected EOF in archive",
		"Action failed: action.proxmoxapp_restore.rollback (triggered by CLI)",
	)
	if !regexp.MustCompile(`Error: Error when invoking action.*Restore of guest 100 failed at step "restore".*Unexpected EOF in archive.*` +
		`the guest was left.*safety backup\s+local:backup/vzdump-lxc-100-\d{4}_\d\d_\d\d-\d\d_\d\d_\d\d\.tar\.zst`).MatchString(out) {
		t.Fatalf("the failure does not name the step, PVE's message, the guest's state and the safety backup:\n%s", out)
	}
	m := reActionSafety.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no safety backup named in:\n%s", out)
	}

	// Recover from the safety backup the error named.
	res = tf.Ok("apply", "-no-color", "-auto-approve", "-invoke=action.proxmoxapp_restore.recover", "-var=peek="+m[1])
	if strings.Contains(res.Stdout, "taking a safety backup") {
		t.Errorf("safety_backup = false still took one:\n%s", res.Stdout)
	}
	if err := acctest.TreeIs(root, precious); err != nil {
		t.Errorf("after recovering from the safety backup: %v", err)
	}
	env.ExpectGuest(t, 100, "running")
}

// TestAccActionRestore_beforeUpdate: the restore can also hang off another
// resource's change, e.g. a rollback request recorded in terraform_data:
// changing it restores, leaving it alone does not.
func TestAccActionRestore_beforeUpdate(t *testing.T) {
	t.Parallel()
	env := acctest.New(t)
	env.RequireSim(t)
	root := env.Sim.GuestRootfs(100)
	tf := newTF114(t)
	tf.WriteFile("main.tf", restoreActionConfig(env, `
variable "rollback_request" {
  type = string
}

resource "terraform_data" "rollback_request" {
  input = var.rollback_request

  lifecycle {
    action_trigger {
      events  = [before_update]
      actions = [action.proxmoxapp_restore.rollback]
    }
  }
}
`))
	tf.Init()
	acctest.WriteGuestFile(t, root, markerPath, "v1\n")
	tf.Ok("apply", "-no-color", "-auto-approve", "-var=rollback_request=none")
	atBackup, err := acctest.ReadTree(root)
	if err != nil {
		t.Fatal(err)
	}

	acctest.WriteGuestFile(t, root, markerPath, "v2 broken\n")
	res := tf.Ok("apply", "-no-color", "-auto-approve", "-var=rollback_request=none")
	if strings.Contains(res.Stdout, "Action started") {
		t.Fatalf("restored without a changed request:\n%s", res.Stdout)
	}
	res = tf.Ok("apply", "-no-color", "-auto-approve", "-var=rollback_request=ticket-42")
	inOrder(t, res.Stdout,
		"Action started: action.proxmoxapp_restore.rollback (triggered by terraform_data.rollback_request)",
		"Action action.proxmoxapp_restore.rollback (triggered by terraform_data.rollback_request): shutting guest 100 down",
		"Action complete: action.proxmoxapp_restore.rollback (triggered by terraform_data.rollback_request)",
		"terraform_data.rollback_request: Modifying...",
	)
	if err := acctest.TreeIs(root, atBackup); err != nil {
		t.Errorf("after the triggered restore: %v", err)
	}
	env.ExpectGuest(t, 100, "running")
}

// TestAccActionRestore_wrongGuestType: a VM backup cannot go onto a
// container. Invoking such a restore fails when it is planned, naming both,
// before anything happens to the guest: no safety backup, still running.
func TestAccActionRestore_wrongGuestType(t *testing.T) {
	t.Parallel()
	env := acctest.New(t)
	env.RequireSim(t)
	vm := acctest.TakeBackup(t, env.Client(t), 200, "local", "", false)
	tf := newTF114(t)
	tf.WriteFile("main.tf", tf114Config(env)+`
variable "backup" {
  type = string
}

action "proxmoxapp_restore" "wrong" {
  config {
    vmid   = 100
    backup = var.backup
  }
}

action "proxmoxapp_restore" "elsewhere" {
  config {
    vmid   = 100
    node   = "pve2"
    backup = var.backup
  }
}
`)
	tf.Init()
	res := tf.Fails("apply", "-no-color", "-auto-approve", "-invoke=action.proxmoxapp_restore.wrong", "-var=backup="+vm.VolID)
	out := acctest.Flat(res.Stdout + res.Stderr)
	for _, want := range []string{
		"Error: Backup does not fit the guest",
		vm.VolID + " is a VM (qemu) backup, but guest 100 (web on node pve1) is a container (lxc).",
		"Nothing was changed.",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the refusal does not say %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "Action started") {
		t.Errorf("the action started although the plan refused it:\n%s", out)
	}

	ct := acctest.TakeBackup(t, env.Client(t), 100, "local", "", false)
	res = tf.Fails("apply", "-no-color", "-auto-approve", "-invoke=action.proxmoxapp_restore.elsewhere", "-var=backup="+ct.VolID)
	if out := acctest.Flat(res.Stdout + res.Stderr); !strings.Contains(out, "guest 100 is on node pve1, not on node pve2") || strings.Contains(out, "Action started") {
		t.Errorf("a restore onto the wrong node was not refused at plan time:\n%s", out)
	}
	if got := env.ArchiveNames(t, "pve1", "local", "vzdump-"); len(got) != 2 {
		t.Errorf("archives on local: %v, want only the two taken by the test (no safety backup)", got)
	}
	env.ExpectGuest(t, 100, "running")
}
