package provider

import (
	"context"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/knownvalue"

	"github.com/proxmoxapp/terraform-provider-proxmoxapp/internal/acctest"
	"github.com/proxmoxapp/terraform-provider-proxmoxapp/internal/pve"
)

// reActionBackupDone is the last progress message of the backup action.
var reActionBackupDone = regexp.MustCompile(`backup of guest (\d+) done: ((\S+):backup/(vzdump-\S+)) \((\S+), (\d+) bytes, node (\S+)\)`)

// actionBackupDone finds the backup the action reported in its output and
// checks that it is on the simulator's storage with the reported size.
func actionBackupDone(t *testing.T, env *acctest.Env, out string) *pve.Backup {
	t.Helper()
	m := reActionBackupDone.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no \"backup of guest N done: <volid>\" progress message in:\n%s", out)
	}
	size, _ := strconv.ParseInt(m[6], 10, 64)
	fi, err := os.Stat(env.ArchivePath(m[7], m[3], m[4]))
	if err != nil {
		t.Fatalf("the action reported %s, but it is not on the storage: %v", m[2], err)
	}
	if fi.Size() != size || size <= 0 {
		t.Fatalf("the action reported %s with %d bytes, the archive has %d", m[2], size, fi.Size())
	}
	b, err := env.Client(t).GetBackup(context.Background(), m[7], m[2])
	if err != nil {
		t.Fatalf("the action reported %s, but PVE does not list it: %v", m[2], err)
	}
	return b
}

// inOrder checks that the lines appear in out in this order.
func inOrder(t *testing.T, out string, lines ...string) {
	t.Helper()
	rest := out
	for _, l := range lines {
		i := strings.Index(rest, l)
		if i < 0 {
			t.Fatalf("expected %q (after the previous expected lines) in:\n%s", l, out)
		}
		rest = rest[i+len(l):]
	}
}

// TestAccActionBackup_invoke: `terraform apply -invoke` takes a backup now,
// shows vzdump's log as progress while it runs, and ends with the volid.
// Nothing lands in state; the archive is on the storage with the arguments
// given (stop mode, gzip, protected, notes) and the guest runs again.
func TestAccActionBackup_invoke(t *testing.T) {
	t.Parallel()
	env := acctest.New(t)
	env.RequireSim(t)
	tf := newTF114(t)
	tf.WriteFile("main.tf", tf114Config(env)+`
action "proxmoxapp_backup" "now" {
  config {
    vmid    = 100
    storage = "local"
  }
}

action "proxmoxapp_backup" "wrong_node" {
  config {
    vmid = 100
    node = "pve2"
  }
}

action "proxmoxapp_backup" "before_v2" {
  config {
    vmid      = 100
    storage   = "nas"
    mode      = "stop"
    compress  = "gzip"
    protected = true
    notes     = "{{guestname}} ({{vmid}}) before v2"
  }
}
`)
	tf.Init()

	res := tf.Ok("apply", "-no-color", "-auto-approve", "-invoke=action.proxmoxapp_backup.now")
	const prefix = "Action action.proxmoxapp_backup.now (triggered by CLI): "
	inOrder(t, res.Stdout,
		"Action started: action.proxmoxapp_backup.now (triggered by CLI)",
		prefix+"backing up guest 100 to storage local (mode snapshot)",
		prefix+"INFO: starting new backup job: vzdump 100",
		prefix+"INFO: Starting Backup of VM 100 (lxc)",
		prefix+"INFO: Backup job finished successfully",
		prefix+"backup of guest 100 done: local:backup/vzdump-lxc-100-",
		"Action complete: action.proxmoxapp_backup.now (triggered by CLI)",
		"Apply complete! Resources: 0 added, 0 changed, 0 destroyed. Actions: 1 invoked.",
	)
	b := actionBackupDone(t, env, res.Stdout)
	if b.Format != "tar.zst" || b.Protected || b.Notes != "web: taken by the proxmoxapp_backup action" {
		t.Errorf("default backup: format %s, protected %v, notes %q; want tar.zst, unprotected, the action's default notes", b.Format, b.Protected, b.Notes)
	}
	if got := env.ArchiveNames(t, "pve1", "local", "vzdump-"); len(got) != 1 {
		t.Errorf("archives on local after one invocation: %v, want exactly one", got)
	}
	if st := tf.State(); st.Values != nil && len(st.Values.RootModule.Resources) > 0 {
		t.Errorf("an action must leave no state, found %d resources", len(st.Values.RootModule.Resources))
	}

	res = tf.Ok("apply", "-no-color", "-auto-approve", "-invoke=action.proxmoxapp_backup.before_v2")
	b = actionBackupDone(t, env, res.Stdout)
	for what, check := range map[string]struct {
		got   any
		value knownvalue.Check
	}{
		"storage":   {b.Storage, knownvalue.StringExact("nas")},
		"format":    {b.Format, knownvalue.StringExact("tar.gz")},
		"protected": {b.Protected, knownvalue.Bool(true)},
		"notes":     {b.Notes, knownvalue.StringExact("web (100) before v2")},
	} {
		if err := check.value.CheckValue(check.got); err != nil {
			t.Errorf("%s: %v", what, err)
		}
	}
	if !strings.Contains(res.Stdout, "INFO: backup mode: stop") {
		t.Errorf("the stop-mode backup's log does not say so:\n%s", res.Stdout)
	}
	env.ExpectGuest(t, 100, "running")

	// A node the guest is not on is refused when planned: nothing runs.
	res = tf.Fails("apply", "-no-color", "-auto-approve", "-invoke=action.proxmoxapp_backup.wrong_node")
	if out := acctest.Flat(res.Stdout + res.Stderr); !strings.Contains(out, "Error: Guest is on another node") ||
		!strings.Contains(out, "guest 100 is on node pve1, not on node pve2") || strings.Contains(out, "Action started") {
		t.Errorf("a backup on the wrong node was not refused at plan time:\n%s", out)
	}
	if got := env.ArchiveNames(t, "pve1", "local", "vzdump-"); len(got) != 1 {
		t.Errorf("archives on local after the refused backup: %v, want only the first one", got)
	}
}

// TestAccActionBackup_beforeUpdate is the intended use: an action_trigger on
// the resource that changes the app backs it up right before the change. It
// does not run on create or when nothing changes; it runs, and completes,
// before the update starts. When the backup fails the update is not made and
// no archive is left behind.
func TestAccActionBackup_beforeUpdate(t *testing.T) {
	t.Parallel()
	env := acctest.New(t)
	env.RequireSim(t)
	tf := newTF114(t)
	tf.WriteFile("main.tf", tf114Config(env)+`
variable "app_version" {
  type = string
}

action "proxmoxapp_backup" "pre_upgrade" {
  config {
    vmid    = 100
    storage = "local"
    notes   = "before app ${var.app_version}"
  }
}

# Stands for whatever changes the app (a config push, a package upgrade...).
resource "terraform_data" "app" {
  input = var.app_version

  lifecycle {
    action_trigger {
      events  = [before_update]
      actions = [action.proxmoxapp_backup.pre_upgrade]
    }
  }
}
`)
	tf.Init()

	// Create: before_update does not fire.
	tf.Ok("apply", "-no-color", "-auto-approve", "-var=app_version=1.0")
	if got := env.ArchiveNames(t, "pve1", "local", "vzdump-"); len(got) != 0 {
		t.Fatalf("the action ran on create: %v", got)
	}

	// Update: the backup runs first and finishes before the change starts.
	res := tf.Ok("apply", "-json", "-auto-approve", "-var=app_version=2.0")
	var started, completed, updating, progress int
	for i, m := range acctest.UIMessages(t, res.Stdout) {
		switch {
		case m.Type == "action_start" && m.ActionAddr() == "action.proxmoxapp_backup.pre_upgrade":
			if m.Hook.Lifecycle == nil || m.Hook.Lifecycle.Resource.Addr != "terraform_data.app" || m.Hook.Lifecycle.TriggerEvent != "BeforeUpdate" {
				t.Errorf("action started by %+v, want terraform_data.app before_update", m.Hook.Lifecycle)
			}
			started = i
		case m.Type == "action_progress" && strings.Contains(m.Hook.Message, "INFO: Starting Backup of VM 100"):
			progress = i
		case m.Type == "action_complete" && m.ActionAddr() == "action.proxmoxapp_backup.pre_upgrade":
			completed = i
		case m.Type == "apply_start" && m.Hook.Resource.Addr == "terraform_data.app":
			updating = i
		}
	}
	if started == 0 || progress == 0 || completed == 0 || updating == 0 || started >= progress || progress >= completed || completed >= updating {
		t.Fatalf("want action start < progress < action complete < update of terraform_data.app, got %d < %d < %d < %d:\n%s",
			started, progress, completed, updating, res.Stdout)
	}
	b := actionBackupDone(t, env, res.Stdout)
	if b.Notes != "before app 2.0" {
		t.Errorf("notes %q, want %q", b.Notes, "before app 2.0")
	}

	// No change: no backup.
	tf.Ok("apply", "-no-color", "-auto-approve", "-var=app_version=2.0")
	if got := env.ArchiveNames(t, "pve1", "local", "vzdump-"); len(got) != 1 {
		t.Fatalf("archives after an apply without changes: %v, want the one from the update", got)
	}

	// The backup fails: the change is not made, nothing is left behind.
	env.Sim.FailTask("vzdump", 100, "vma_queue_write: write error - No space left on device")
	res = tf.Fails("apply", "-no-color", "-auto-approve", "-var=app_version=3.0")
	out := acctest.Flat(res.Stdout + res.Stderr)
	for _, want := range []string{
		"Action failed: action.proxmoxapp_backup.pre_upgrade (triggered by terraform_data.app)",
		"Error: Error when invoking action",
		`Backup failed: vzdump of guest 100 to storage "local" did not produce a backup`,
		`No space left on device`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the failure does not say %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "terraform_data.app: Modifying") {
		t.Errorf("the update went ahead although the backup before it failed:\n%s", out)
	}
	if got := env.ArchiveNames(t, "pve1", "local", "vzdump-"); len(got) != 1 {
		t.Errorf("archives after the failed backup: %v, want only the earlier one", got)
	}
	st := tf.State()
	attrs, err := acctest.Attrs(st, "terraform_data.app")
	if err != nil {
		t.Fatal(err)
	}
	if err := knownvalue.StringExact("2.0").CheckValue(attrs["output"]); err != nil {
		t.Errorf("terraform_data.app output after the failed backup: %v", err)
	}
	env.ExpectGuest(t, 100, "running")
}
