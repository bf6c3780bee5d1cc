package provider

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	tfjson "github.com/hashicorp/terraform-json"
	"github.com/hashicorp/terraform-plugin-testing/compare"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/proxmoxapp/terraform-provider-proxmoxapp/internal/acctest"
	"github.com/proxmoxapp/terraform-provider-proxmoxapp/internal/pve"
)

const (
	restoreAddr = "proxmoxapp_restore.r"
	markerPath  = "var/lib/app/marker"
)

var (
	reRestoreUPID = regexp.MustCompile(`^UPID:pve1:[0-9A-F]{8}:[0-9A-F]{8,9}:[0-9A-F]{8}:(vzrestore|qmrestore):\d+:[^:]+:$`)
	reSafetyLXC   = func(storage string) *regexp.Regexp {
		return regexp.MustCompile(`^` + storage + `:backup/vzdump-lxc-100-\d{4}_\d\d_\d\d-\d\d_\d\d_\d\d\.tar\.zst$`)
	}
)

// restoreConfig is the provider block, a backup "b" of guest vmid on local,
// and whatever else the step needs.
func restoreConfig(env *acctest.Env, vmid int, extra string) string {
	return env.ProviderConfig() + fmt.Sprintf(`
resource "proxmoxapp_backup" "b" {
  vmid    = %d
  storage = "local"
}
`, vmid) + extra
}

// TestAccRestore_lxcRoundTrip restores a container over itself while it runs:
// its files are byte-identical to the backup afterwards, it runs again, and
// the safety backup holds what was there before (read back by restoring it
// into a new guest). A new trigger value restores again; destroying the
// restore into the new guest only forgets it.
func TestAccRestore_lxcRoundTrip(t *testing.T) {
	t.Parallel()
	env := acctest.New(t)
	env.RequireSim(t)
	root := env.Sim.GuestRootfs(100)

	var atBackup, beforeRestore map[string]string
	// the trigger's second restore is a new task with a new safety backup
	taskChanges := statecheck.CompareValue(compare.ValuesDiffer())
	safetyChanges := statecheck.CompareValue(compare.ValuesDiffer())
	restore := func(run string) string {
		return fmt.Sprintf(`
resource "proxmoxapp_restore" "r" {
  vmid     = 100
  backup   = proxmoxapp_backup.b.volid
  triggers = { run = %q }
}
`, run)
	}
	const peek = `
resource "proxmoxapp_restore" "peek" {
  vmid   = 150
  backup = proxmoxapp_restore.r.safety_backup_volid
  start  = true
}
`

	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				PreConfig:         func() { acctest.WriteGuestFile(t, root, markerPath, "v1 backed up\n") },
				Config:            restoreConfig(env, 100, ""),
				ConfigStateChecks: []statecheck.StateCheck{acctest.RecordTree(root, &atBackup)},
			},
			{
				// Change, delete and add files, then restore over the running guest.
				PreConfig: func() {
					acctest.WriteGuestFile(t, root, markerPath, "v2 changed after the backup\n")
					acctest.WriteGuestFile(t, root, "srv/junk", "not in the backup\n")
					if err := os.Remove(filepath.Join(root, "var/www/index.html")); err != nil {
						t.Fatal(err)
					}
					var err error
					if beforeRestore, err = acctest.ReadTree(root); err != nil {
						t.Fatal(err)
					}
				},
				Config: restoreConfig(env, 100, restore("1")),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(restoreAddr, tfjsonpath.New("previous_status"), knownvalue.StringExact("running")),
					statecheck.ExpectKnownValue(restoreAddr, tfjsonpath.New("node"), knownvalue.StringExact("pve1")),
					statecheck.ExpectKnownValue(restoreAddr, tfjsonpath.New("task_id"), knownvalue.StringRegexp(reRestoreUPID)),
					statecheck.CompareValuePairs(restoreAddr, tfjsonpath.New("id"), restoreAddr, tfjsonpath.New("task_id"), compare.ValuesSame()),
					statecheck.ExpectKnownValue(restoreAddr, tfjsonpath.New("safety_backup_volid"), knownvalue.StringRegexp(reSafetyLXC("local"))),
					statecheck.ExpectKnownValue(restoreAddr, tfjsonpath.New("safety_backup"), knownvalue.Bool(true)),
					statecheck.ExpectKnownValue(restoreAddr, tfjsonpath.New("shutdown_timeout"), knownvalue.StringExact("3m")),
					statecheck.ExpectKnownValue(restoreAddr, tfjsonpath.New("restored_at"), knownvalue.StringRegexp(rfc3339UTC)),
					acctest.FileTree(root, &atBackup),
					acctest.GuestPowerState(env, 100, "running"),
					acctest.VolumeOnStorage(env, restoreAddr, "safety_backup_volid", "pve1"),
					taskChanges.AddStateValue(restoreAddr, tfjsonpath.New("task_id")),
					safetyChanges.AddStateValue(restoreAddr, tfjsonpath.New("safety_backup_volid")),
				},
			},
			{
				// Nothing changed: reading keeps the restore, nothing re-runs.
				Config:           restoreConfig(env, 100, restore("1")),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
			},
			{
				// The safety backup holds the pre-restore files: restore it into
				// a new guest and look.
				Config: restoreConfig(env, 100, restore("1")+peek),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction("proxmoxapp_restore.peek", plancheck.ResourceActionCreate),
					plancheck.ExpectResourceAction(restoreAddr, plancheck.ResourceActionNoop),
				}},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("proxmoxapp_restore.peek", tfjsonpath.New("previous_status"), knownvalue.StringExact("absent")),
					statecheck.ExpectKnownValue("proxmoxapp_restore.peek", tfjsonpath.New("safety_backup_volid"), knownvalue.Null()),
					statecheck.ExpectKnownValue("proxmoxapp_restore.peek", tfjsonpath.New("node"), knownvalue.StringExact("pve1")),
					acctest.FileTree(env.Sim.GuestRootfs(150), &beforeRestore),
					acctest.GuestPowerState(env, 150, "running"),
				},
			},
			{
				// A new trigger value restores again (the files had changed
				// again); dropping "peek" only forgets it: guest 150 stays.
				PreConfig: func() { acctest.WriteGuestFile(t, root, markerPath, "v3 changed again\n") },
				Config:    restoreConfig(env, 100, restore("2")),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(restoreAddr, plancheck.ResourceActionDestroyBeforeCreate),
					plancheck.ExpectResourceAction("proxmoxapp_restore.peek", plancheck.ResourceActionDestroy),
				}},
				ConfigStateChecks: []statecheck.StateCheck{
					acctest.FileTree(root, &atBackup),
					acctest.GuestPowerState(env, 100, "running"),
					acctest.GuestPowerState(env, 150, "running"),
					acctest.FileTree(env.Sim.GuestRootfs(150), &beforeRestore),
					taskChanges.AddStateValue(restoreAddr, tfjsonpath.New("task_id")),
					safetyChanges.AddStateValue(restoreAddr, tfjsonpath.New("safety_backup_volid")),
				},
			},
		},
	})
}

// TestAccRestore_startFalse restores over a running container with
// start = false: it is left stopped. The safety backup goes to another
// storage, and the backup and restore happen in one apply. When the guest
// vanishes afterwards, the restore stays in state and is not run again.
func TestAccRestore_startFalse(t *testing.T) {
	t.Parallel()
	env := acctest.New(t)
	env.RequireSim(t)
	cfg := restoreConfig(env, 100, `
resource "proxmoxapp_restore" "r" {
  vmid                  = 100
  backup                = proxmoxapp_backup.b.volid
  start                 = false
  safety_backup_storage = "nas"
  shutdown_timeout      = "30s"
  bandwidth_limit       = 102400
  unique                = true
}
`)
	var volid string
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config: cfg,
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(restoreAddr, tfjsonpath.New("previous_status"), knownvalue.StringExact("running")),
					statecheck.ExpectKnownValue(restoreAddr, tfjsonpath.New("safety_backup_volid"), knownvalue.StringRegexp(reSafetyLXC("nas"))),
					acctest.GuestPowerState(env, 100, "stopped"),
					acctest.Remember("proxmoxapp_backup.b", "volid", &volid),
				},
			},
			{
				// Make the guest vanish (a failed restore outside Terraform
				// removes it, as PVE does): refreshing keeps the restore.
				PreConfig: func() {
					env.Sim.FailTask("vzrestore", 100, "No space left on device")
					_, err := env.Client(t).Restore(context.Background(), pve.RestoreOptions{VMID: 100, Backup: volid}, nil)
					if err == nil {
						t.Fatal("the out-of-band restore did not fail")
					}
					if _, ok := env.Sim.GuestState(100); ok {
						t.Fatalf("guest 100 still exists after a failed restore: %v", err)
					}
				},
				Config:           cfg,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(restoreAddr, tfjsonpath.New("previous_status"), knownvalue.StringExact("running")),
				},
			},
			{
				// A new timeout changes nothing that was done: updated in place.
				Config: strings.Replace(cfg, "  unique ", "  timeouts              = { create = \"1h\" }\n  unique ", 1),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(restoreAddr, plancheck.ResourceActionUpdate),
				}},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(restoreAddr, tfjsonpath.New("previous_status"), knownvalue.StringExact("running")),
					statecheck.ExpectKnownValue(restoreAddr, tfjsonpath.New("task_id"), knownvalue.StringRegexp(reRestoreUPID)),
				},
			},
		},
	})
}

// TestAccRestore_qemuRoundTrip restores a stopped VM: its disk is
// byte-identical to the backup and it stays stopped (its state before).
func TestAccRestore_qemuRoundTrip(t *testing.T) {
	t.Parallel()
	env := acctest.New(t)
	env.RequireSim(t)
	disk := env.Sim.GuestDisk(200)
	var atBackup []byte
	fill := func(seed byte) {
		b, err := os.ReadFile(disk)
		if err != nil {
			t.Fatal(err)
		}
		for i := range b {
			b[i] = byte(i*7) ^ seed
		}
		if err := os.WriteFile(disk, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				PreConfig: func() { fill(0x5a) },
				Config:    restoreConfig(env, 200, ""),
				ConfigStateChecks: []statecheck.StateCheck{acctest.Check(env, func() (err error) {
					atBackup, err = os.ReadFile(disk)
					return err
				})},
			},
			{
				PreConfig: func() { fill(0xa5) },
				Config: restoreConfig(env, 200, `
resource "proxmoxapp_restore" "r" {
  vmid   = 200
  backup = proxmoxapp_backup.b.volid
}
`),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(restoreAddr, tfjsonpath.New("previous_status"), knownvalue.StringExact("stopped")),
					statecheck.ExpectKnownValue(restoreAddr, tfjsonpath.New("task_id"), knownvalue.StringRegexp(regexp.MustCompile(`:qmrestore:200:`))),
					statecheck.ExpectKnownValue(restoreAddr, tfjsonpath.New("safety_backup_volid"),
						knownvalue.StringRegexp(regexp.MustCompile(`^local:backup/vzdump-qemu-200-\d{4}_\d\d_\d\d-\d\d_\d\d_\d\d\.vma\.zst$`))),
					acctest.GuestPowerState(env, 200, "stopped"),
					acctest.Check(env, func() error {
						got, err := os.ReadFile(disk)
						if err != nil {
							return err
						}
						if !bytes.Equal(got, atBackup) {
							return fmt.Errorf("disk of VM 200 (%d bytes) differs from the backed-up disk (%d bytes)", len(got), len(atBackup))
						}
						return nil
					}),
				},
			},
		},
	})
}

// TestAccRestore_taskFails: the restore task fails midway. The error names
// the step, PVE's message, the guest's state and the safety backup, and the
// pre-restore files come back by restoring that safety backup (found with the
// data source, as a user would).
func TestAccRestore_taskFails(t *testing.T) {
	t.Parallel()
	env := acctest.New(t)
	env.RequireSim(t)
	root := env.Sim.GuestRootfs(100)
	var precious map[string]string
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				PreConfig: func() { acctest.WriteGuestFile(t, root, markerPath, "old\n") },
				Config:    restoreConfig(env, 100, ""),
			},
			{
				PreConfig: func() {
					acctest.WriteGuestFile(t, root, markerPath, "precious, not backed up by hand\n")
					var err error
					if precious, err = acctest.ReadTree(root); err != nil {
						t.Fatal(err)
					}
					env.Sim.FailTask("vzrestore", 100, "tar: Unexpected EOF in archive")
				},
				Config: restoreConfig(env, 100, `
resource "proxmoxapp_restore" "r" {
  vmid   = 100
  backup = proxmoxapp_backup.b.volid
}
`),
				ExpectError: regexp.MustCompile(`(?s)Restore of guest 100 failed at step "restore".*Unexpected EOF in archive.*` +
					`the guest was left.*safety backup\s+local:backup/vzdump-lxc-100-\d{4}_\d\d_\d\d-\d\d_\d\d_\d\d\.tar\.zst`),
			},
			{
				// Recover: the newest backup on local is the safety backup.
				Config: restoreConfig(env, 100, `
data "proxmoxapp_backups" "app" {
  vmid    = 100
  storage = "local"
}

resource "proxmoxapp_restore" "recover" {
  vmid          = 100
  backup        = data.proxmoxapp_backups.app.latest.volid
  safety_backup = false
  start         = true
}
`),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("data.proxmoxapp_backups.app", tfjsonpath.New("backups"), knownvalue.ListSizeExact(2)),
					statecheck.CompareValuePairs("data.proxmoxapp_backups.app", tfjsonpath.New("backups").AtSliceIndex(1).AtMapKey("volid"),
						"proxmoxapp_backup.b", tfjsonpath.New("volid"), compare.ValuesSame()),
					statecheck.ExpectKnownValue("proxmoxapp_restore.recover", tfjsonpath.New("backup"), knownvalue.StringRegexp(reSafetyLXC("local"))),
					statecheck.ExpectKnownValue("proxmoxapp_restore.recover", tfjsonpath.New("safety_backup_volid"), knownvalue.Null()),
					acctest.FileTree(root, &precious),
					acctest.GuestPowerState(env, 100, "running"),
				},
			},
		},
	})
}

// TestAccRestore_wrongArchiveType: a VM backup cannot go onto a container.
// It is refused at plan time, or, while the volid is still unknown at the
// first plan, when Terraform plans again during the apply: in both cases
// before the guest is touched.
func TestAccRestore_wrongArchiveType(t *testing.T) {
	t.Parallel()
	env := acctest.New(t)
	env.RequireSim(t)
	cfg := restoreConfig(env, 200, `
resource "proxmoxapp_restore" "r" {
  vmid   = 100
  backup = proxmoxapp_backup.b.volid
}
`)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				// Unknown at the first plan; refused when Terraform plans again
				// with the volid known, before the guest is touched.
				Config:      cfg,
				ExpectError: regexp.MustCompile(`(?s)Backup does not fit the guest.*is a VM \(qemu\)\s+backup, but guest 100`),
			},
			{
				Config:      cfg,
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`(?s)Backup does not fit the guest.*is a VM \(qemu\)\s+backup,\s+but\s+guest\s+100\s+\(web\s+on\s+node\s+pve1\)\s+is\s+a\s+container`),
			},
			{
				Config: restoreConfig(env, 200, ""),
				ConfigStateChecks: []statecheck.StateCheck{
					acctest.GuestPowerState(env, 100, "running"),
					acctest.AtMostArchives(env, "pve1", "local", "vzdump-lxc-100-", 0), // no safety backup was taken
				},
			},
		},
	})
}

// TestAccRestore_lockedGuest: a guest locked by someone else is waited for
// (a quarter of the create timeout), then refused without touching it.
func TestAccRestore_lockedGuest(t *testing.T) {
	t.Parallel()
	env := acctest.New(t)
	env.RequireSim(t)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6ProviderFactories,
		Steps: []resource.TestStep{
			{Config: restoreConfig(env, 100, "")},
			{
				PreConfig: func() { env.Sim.SetGuestLock(100, "snapshot") },
				Config: restoreConfig(env, 100, `
resource "proxmoxapp_restore" "r" {
  vmid     = 100
  backup   = proxmoxapp_backup.b.volid
  timeouts = { create = "4s" }
}
`),
				ExpectError: regexp.MustCompile(`(?s)failed at step "check guest".*still\s+locked\s+\(snapshot\)\s+after\s+waiting\s+1s.*the\s+guest\s+was\s+left\s+running\s+\(locked:\s+snapshot\)`),
			},
			{
				PreConfig: func() { env.Sim.SetGuestLock(100, "") },
				Config:    restoreConfig(env, 100, ""),
				ConfigStateChecks: []statecheck.StateCheck{
					acctest.GuestPowerState(env, 100, "running"),
					acctest.AtMostArchives(env, "pve1", "local", "vzdump-lxc-100-", 1), // only b: no safety backup
				},
			},
		},
	})
}

// TestAccRestore_badInput: a backup that does not exist and malformed input
// are refused at plan time, naming the backup (the guest untouched).
func TestAccRestore_badInput(t *testing.T) {
	t.Parallel()
	env := acctest.New(t)
	env.RequireSim(t)
	restore := func(body string) string {
		return env.ProviderConfig() + "resource \"proxmoxapp_restore\" \"r\" {\n" + body + "\n}\n"
	}
	const missingDir = "local:backup/vzdump-lxc-100-2020_01_01-00_00_00.tar.zst"
	const missingPBS = "pbs:backup/ct/100/2020-01-01T00:00:00Z"
	steps := []resource.TestStep{
		{
			Config:      restore(fmt.Sprintf("  vmid = 100\n  backup = %q", missingDir)),
			ExpectError: regexp.MustCompile(`(?s)Backup not found.*` + regexp.QuoteMeta(missingDir) + `\s+does\s+not\s+exist:\s+storage\s+local\s+on\s+node\s+pve1\s+does\s+not\s+list\s+it`),
		},
		{
			Config: restore(fmt.Sprintf("  vmid = 150\n  backup = %q", missingPBS)),
			// A new guest: every online node is asked.
			ExpectError: regexp.MustCompile(`(?s)Backup not found.*` + regexp.QuoteMeta(missingPBS) + `\s+does\s+not\s+exist:\s+no\s+online\s+node\s+\(pve1,\s+pve2\)\s+lists\s+it\s+on\s+storage\s+pbs`),
		},
	}
	for _, tc := range []struct{ body, want string }{
		{`  vmid = 100` + "\n" + `  backup = "local:vzdump.tar"`, `Invalid backup volume ID.*local:vzdump\.tar`},
		{`  vmid = 100` + "\n" + `  backup = "local:backup/vzdump-qemu-100-2020_01_01-00_00_00.tar.zst"`, `Invalid backup volume ID`},
		{`  vmid = 99` + "\n" + `  backup = "` + missingDir + `"`, `vmid.*between 100 and 999999999`},
		{`  vmid = 100` + "\n" + `  backup = "` + missingDir + `"` + "\n" + `  shutdown_timeout = "soon"`, `Invalid duration.*"soon"`},
		{`  vmid = 100` + "\n" + `  backup = "` + missingDir + `"` + "\n" + `  shutdown_timeout = "10ms"`, `Duration too short`},
		{`  vmid = 100` + "\n" + `  backup = "` + missingDir + `"` + "\n" + `  bandwidth_limit = -1`, `bandwidth_limit.*at least 0`},
		{`  vmid = 100` + "\n" + `  backup = "` + missingDir + `"` + "\n" + `  node = "pve2"`, `Guest is on another node.*guest 100 is on\s+node\s+pve1`},
		{`  vmid = 100` + "\n" + `  backup = "` + missingDir + `"` + "\n" + `  safety_backup_storage = "-x"`, `safety_backup_storage.*Proxmox VE storage ID`},
	} {
		steps = append(steps, resource.TestStep{Config: restore(tc.body), PlanOnly: true, ExpectError: regexp.MustCompile(`(?s)` + tc.want)})
	}
	steps = append(steps, resource.TestStep{
		// Nothing was touched: no backup of guest 100 anywhere, guest 150 not created.
		Config: env.ProviderConfig() + `
data "proxmoxapp_backups" "app" {
  vmid = 100
}
`,
		ConfigStateChecks: []statecheck.StateCheck{
			statecheck.ExpectKnownValue("data.proxmoxapp_backups.app", tfjsonpath.New("backups"), knownvalue.ListSizeExact(0)),
			acctest.GuestPowerState(env, 100, "running"),
			acctest.GuestAbsent(env, 150), // a failed restore into it created nothing
		},
	})
	resource.Test(t, resource.TestCase{ProtoV6ProviderFactories: protoV6ProviderFactories, Steps: steps})
}

// TestAccRestore_newLatestDoesNotRestoreAgain guards the most dangerous
// pattern in the docs: backup = data.proxmoxapp_backups.x.latest.volid. A new
// backup changes "latest"; that must be recorded, with a warning, and must
// not roll the guest back. Only triggers restore again.
func TestAccRestore_newLatestDoesNotRestoreAgain(t *testing.T) {
	t.Parallel()
	env := acctest.New(t)
	env.RequireSim(t)
	root := env.Sim.GuestRootfs(100)
	cfg := func(version, run string) string {
		return env.ProviderConfig() + fmt.Sprintf(`
resource "proxmoxapp_backup" "b" {
  vmid     = 100
  storage  = "local"
  triggers = { version = %q }
}

data "proxmoxapp_backups" "app" {
  vmid       = 100
  storage    = "local"
  depends_on = [proxmoxapp_backup.b]
}

resource "proxmoxapp_restore" "r" {
  vmid     = 100
  backup   = data.proxmoxapp_backups.app.latest.volid
  triggers = { run = %q }
  # Elsewhere, so that the safety backup does not become "latest" itself.
  safety_backup_storage = "nas"
}
`, version, run)
	}
	taskStays := statecheck.CompareValue(compare.ValuesSame())
	marker := filepath.Join(root, markerPath)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				PreConfig: func() { acctest.WriteGuestFile(t, root, markerPath, "v1\n") },
				Config:    cfg("1", "a"),
				ConfigStateChecks: []statecheck.StateCheck{
					taskStays.AddStateValue(restoreAddr, tfjsonpath.New("task_id")),
				},
			},
			{
				// The app moves on and a new backup becomes "latest".
				PreConfig: func() { acctest.WriteGuestFile(t, root, markerPath, "v2 after the upgrade\n") },
				Config:    cfg("2", "a"),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction("proxmoxapp_backup.b", plancheck.ResourceActionUpdate),
					plancheck.ExpectResourceAction(restoreAddr, plancheck.ResourceActionUpdate),
				}},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.CompareValuePairs(restoreAddr, tfjsonpath.New("backup"), "proxmoxapp_backup.b", tfjsonpath.New("volid"), compare.ValuesSame()),
					// the restore did not run again: same task, guest not rolled back
					taskStays.AddStateValue(restoreAddr, tfjsonpath.New("task_id")),
					acctest.FileContent(marker, "v2 after the upgrade\n"),
				},
			},
			{
				// Asked for through triggers: now it restores the new latest.
				PreConfig: func() { acctest.WriteGuestFile(t, root, markerPath, "v3 broken\n") },
				Config:    cfg("2", "b"),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(restoreAddr, plancheck.ResourceActionDestroyBeforeCreate),
				}},
				ConfigStateChecks: []statecheck.StateCheck{acctest.FileContent(marker, "v2 after the upgrade\n")},
			},
		},
	})
}

// TestAccRestore_anyNode is the restore round trip that also runs against a
// lab node (with PROXMOXAPP_TEST_DESTRUCTIVE=1): back up the test guest,
// restore it over itself, and find the safety backup in the listing. The
// simulator-only tests above check the files themselves.
func TestAccRestore_anyNode(t *testing.T) {
	t.Parallel()
	env := acctest.New(t)
	env.RequireDestructive(t)
	client := env.Client(t)
	var safety, restored string
	t.Cleanup(func() {
		// The safety backup is deliberately not managed by Terraform.
		if safety != "" {
			if err := client.DeleteBackup(context.Background(), "", safety, nil); err != nil {
				t.Errorf("removing the safety backup %s: %v", safety, err)
			}
		}
	})
	base := env.ProviderConfig() + fmt.Sprintf(`
resource "proxmoxapp_backup" "b" {
  vmid    = %[1]d
  storage = %[2]q
  notes   = "proxmoxapp acceptance test"
}

resource "proxmoxapp_restore" "r" {
  vmid                  = %[1]d
  backup                = proxmoxapp_backup.b.volid
  safety_backup_storage = %[2]q
}
`, env.VMID, env.Storage)
	listing := fmt.Sprintf(`
data "proxmoxapp_backups" "after" {
  vmid    = %d
  storage = %q
}
`, env.VMID, env.Storage)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config: base,
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(restoreAddr, tfjsonpath.New("previous_status"), knownvalue.StringRegexp(regexp.MustCompile(`^(running|stopped)$`))),
					statecheck.ExpectKnownValue(restoreAddr, tfjsonpath.New("task_id"), knownvalue.StringRegexp(regexp.MustCompile(`^UPID:[^:]+:.*:vzrestore:\d+:[^:]+:$`))),
					// a safety backup distinct from the restored one
					acctest.Remember(restoreAddr, "safety_backup_volid", &safety),
					acctest.Remember("proxmoxapp_backup.b", "volid", &restored),
					statecheck.CompareValuePairs(restoreAddr, tfjsonpath.New("safety_backup_volid"), restoreAddr, tfjsonpath.New("backup"), compare.ValuesDiffer()),
					// the guest runs again if it ran before (also on a lab node)
					acctest.StateCheck(func(s *tfjson.State) error {
						a, err := acctest.Attrs(s, restoreAddr)
						if err != nil {
							return err
						}
						g, err := client.FindGuest(context.Background(), env.VMID)
						if err != nil {
							return err
						}
						if g.Status != a["previous_status"] {
							return fmt.Errorf("guest is %s after the restore, was %s before", g.Status, a["previous_status"])
						}
						return nil
					}),
				},
			},
			{
				// The listing shows both the backup and the safety backup,
				// the safety backup (taken later) first.
				Config: base + listing,
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.CompareValuePairs("data.proxmoxapp_backups.after", tfjsonpath.New("latest").AtMapKey("volid"),
						restoreAddr, tfjsonpath.New("safety_backup_volid"), compare.ValuesSame()),
					statecheck.ExpectKnownValue("data.proxmoxapp_backups.after", tfjsonpath.New("backups"), acctest.Lazy(func() knownvalue.Check {
						return listHas(knownvalue.ObjectPartial(map[string]knownvalue.Check{"volid": knownvalue.StringExact(restored)}))
					})),
				},
			},
		},
	})
}
