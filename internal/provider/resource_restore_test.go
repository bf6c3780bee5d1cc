package provider

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/compare"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
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
	var firstTask, firstSafety string
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
				PreConfig: func() { writeGuestFile(t, root, markerPath, "v1 backed up\n") },
				Config:    restoreConfig(env, 100, ""),
				Check: func(*terraform.State) (err error) {
					atBackup, err = readTree(root)
					return err
				},
			},
			{
				// Change, delete and add files, then restore over the running guest.
				PreConfig: func() {
					writeGuestFile(t, root, markerPath, "v2 changed after the backup\n")
					writeGuestFile(t, root, "srv/junk", "not in the backup\n")
					if err := os.Remove(filepath.Join(root, "var/www/index.html")); err != nil {
						t.Fatal(err)
					}
					var err error
					if beforeRestore, err = readTree(root); err != nil {
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
				},
				Check: resource.ComposeTestCheckFunc(
					resource.TestCheckResourceAttrWith(restoreAddr, "restored_at", rfc3339),
					treeIs(root, &atBackup),
					guestIs(env, 100, "running"),
					func(s *terraform.State) error {
						a := s.RootModule().Resources[restoreAddr].Primary.Attributes
						firstTask, firstSafety = a["task_id"], a["safety_backup_volid"]
						return fileExists(filepath.Join(env.Sim.StorageDumpDir("pve1", "local"), strings.TrimPrefix(firstSafety, "local:backup/")))
					},
				),
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
				},
				Check: resource.ComposeTestCheckFunc(
					treeIs(env.Sim.GuestRootfs(150), &beforeRestore),
					guestIs(env, 150, "running"),
				),
			},
			{
				// A new trigger value restores again (the files had changed
				// again); dropping "peek" only forgets it: guest 150 stays.
				PreConfig: func() { writeGuestFile(t, root, markerPath, "v3 changed again\n") },
				Config:    restoreConfig(env, 100, restore("2")),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(restoreAddr, plancheck.ResourceActionDestroyBeforeCreate),
					plancheck.ExpectResourceAction("proxmoxapp_restore.peek", plancheck.ResourceActionDestroy),
				}},
				Check: resource.ComposeTestCheckFunc(
					treeIs(root, &atBackup),
					guestIs(env, 100, "running"),
					guestIs(env, 150, "running"),
					treeIs(env.Sim.GuestRootfs(150), &beforeRestore),
					func(s *terraform.State) error {
						a := s.RootModule().Resources[restoreAddr].Primary.Attributes
						if a["task_id"] == firstTask || a["safety_backup_volid"] == firstSafety {
							return fmt.Errorf("the restore did not run again: task %s, safety backup %s", a["task_id"], a["safety_backup_volid"])
						}
						return nil
					},
				),
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
				},
				Check: resource.ComposeTestCheckFunc(
					guestIs(env, 100, "stopped"),
					func(s *terraform.State) error {
						volid = s.RootModule().Resources["proxmoxapp_backup.b"].Primary.Attributes["volid"]
						return nil
					},
				),
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
				Check: func(*terraform.State) (err error) {
					atBackup, err = os.ReadFile(disk)
					return err
				},
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
				},
				Check: resource.ComposeTestCheckFunc(
					guestIs(env, 200, "stopped"),
					func(*terraform.State) error {
						got, err := os.ReadFile(disk)
						if err != nil {
							return err
						}
						if !bytes.Equal(got, atBackup) {
							return fmt.Errorf("disk of VM 200 (%d bytes) differs from the backed-up disk (%d bytes)", len(got), len(atBackup))
						}
						return nil
					},
				),
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
				PreConfig: func() { writeGuestFile(t, root, markerPath, "old\n") },
				Config:    restoreConfig(env, 100, ""),
			},
			{
				PreConfig: func() {
					writeGuestFile(t, root, markerPath, "precious, not backed up by hand\n")
					var err error
					if precious, err = readTree(root); err != nil {
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
				},
				Check: resource.ComposeTestCheckFunc(
					treeIs(root, &precious),
					guestIs(env, 100, "running"),
				),
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
				Check: resource.ComposeTestCheckFunc(
					guestIs(env, 100, "running"),
					noArchiveOf(env, "pve1", "local", "vzdump-lxc-100-", 0), // no safety backup was taken
				),
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
				Check: resource.ComposeTestCheckFunc(
					guestIs(env, 100, "running"),
					noArchiveOf(env, "pve1", "local", "vzdump-lxc-100-", 1), // only b: no safety backup
				),
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
		},
		Check: resource.ComposeTestCheckFunc(
			guestIs(env, 100, "running"),
			func(*terraform.State) error {
				if _, ok := env.Sim.GuestState(150); ok {
					return fmt.Errorf("guest 150 exists after a failed restore into it")
				}
				return nil
			},
		),
	})
	resource.Test(t, resource.TestCase{ProtoV6ProviderFactories: protoV6ProviderFactories, Steps: steps})
}

// writeGuestFile writes one file below a container's root filesystem.
func writeGuestFile(t *testing.T, root, rel, content string) {
	t.Helper()
	p := filepath.Join(root, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// readTree maps every regular file below root to its content.
func readTree(root string) (map[string]string, error) {
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

// treeIs checks that the files below root are exactly *want.
func treeIs(root string, want *map[string]string) resource.TestCheckFunc {
	return func(*terraform.State) error {
		if len(*want) == 0 {
			return fmt.Errorf("no expected file tree was recorded for %s", root)
		}
		got, err := readTree(root)
		if err != nil {
			return err
		}
		var diffs []string
		for k, v := range *want {
			g, ok := got[k]
			switch {
			case !ok:
				diffs = append(diffs, "missing "+k)
			case g != v:
				diffs = append(diffs, fmt.Sprintf("%s holds %q, want %q", k, g, v))
			}
		}
		for k := range got {
			if _, ok := (*want)[k]; !ok {
				diffs = append(diffs, "unexpected "+k)
			}
		}
		if len(diffs) > 0 {
			sort.Strings(diffs)
			return fmt.Errorf("files below %s differ: %s", root, strings.Join(diffs, "; "))
		}
		return nil
	}
}

// guestIs checks a guest's power state and that no lock is left on it.
func guestIs(env *acctest.Env, vmid int, status string) resource.TestCheckFunc {
	return func(*terraform.State) error {
		g, ok := env.Sim.GuestState(vmid)
		if !ok {
			return fmt.Errorf("guest %d does not exist", vmid)
		}
		if g.Status != status || g.Lock != "" {
			return fmt.Errorf("guest %d is %s (lock %q), want %s and unlocked", vmid, g.Status, g.Lock, status)
		}
		return nil
	}
}

// noArchiveOf checks that at most allowed archives whose names start with
// prefix are on a dir storage.
func noArchiveOf(env *acctest.Env, node, storage, prefix string, allowed int) resource.TestCheckFunc {
	return func(*terraform.State) error {
		entries, err := os.ReadDir(env.Sim.StorageDumpDir(node, storage))
		if err != nil && !os.IsNotExist(err) {
			return err
		}
		var found []string
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), prefix) && !strings.HasSuffix(e.Name(), ".log") && !strings.HasSuffix(e.Name(), ".notes") {
				found = append(found, e.Name())
			}
		}
		if len(found) > allowed {
			return fmt.Errorf("%d archives %s* on %s, want at most %d: %v", len(found), prefix, storage, allowed, found)
		}
		return nil
	}
}

func fileExists(p string) error {
	if _, err := os.Stat(p); err != nil {
		return fmt.Errorf("expected file: %w", err)
	}
	return nil
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
	var firstTask string
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				PreConfig: func() { writeGuestFile(t, root, markerPath, "v1\n") },
				Config:    cfg("1", "a"),
				Check: func(s *terraform.State) error {
					firstTask = s.RootModule().Resources[restoreAddr].Primary.Attributes["task_id"]
					return nil
				},
			},
			{
				// The app moves on and a new backup becomes "latest".
				PreConfig: func() { writeGuestFile(t, root, markerPath, "v2 after the upgrade\n") },
				Config:    cfg("2", "a"),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction("proxmoxapp_backup.b", plancheck.ResourceActionUpdate),
					plancheck.ExpectResourceAction(restoreAddr, plancheck.ResourceActionUpdate),
				}},
				Check: resource.ComposeTestCheckFunc(
					resource.TestCheckResourceAttrPair(restoreAddr, "backup", "proxmoxapp_backup.b", "volid"),
					func(s *terraform.State) error {
						if got := s.RootModule().Resources[restoreAddr].Primary.Attributes["task_id"]; got != firstTask {
							return fmt.Errorf("the restore ran again (task %s, first was %s)", got, firstTask)
						}
						b, err := os.ReadFile(filepath.Join(root, markerPath))
						if err != nil || string(b) != "v2 after the upgrade\n" {
							return fmt.Errorf("guest 100 was rolled back without being asked: marker %q (%v)", b, err)
						}
						return nil
					},
				),
			},
			{
				// Asked for through triggers: now it restores the new latest.
				PreConfig: func() { writeGuestFile(t, root, markerPath, "v3 broken\n") },
				Config:    cfg("2", "b"),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(restoreAddr, plancheck.ResourceActionDestroyBeforeCreate),
				}},
				Check: func(*terraform.State) error {
					b, err := os.ReadFile(filepath.Join(root, markerPath))
					if err != nil || string(b) != "v2 after the upgrade\n" {
						return fmt.Errorf("marker after the asked-for restore: %q (%v)", b, err)
					}
					return nil
				},
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
	var safety string
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
				},
				Check: func(s *terraform.State) error {
					a := s.RootModule().Resources[restoreAddr].Primary.Attributes
					safety = a["safety_backup_volid"]
					if safety == "" || safety == a["backup"] {
						return fmt.Errorf("no safety backup distinct from the restored one: %q", safety)
					}
					// The guest runs again if it ran before.
					g, err := client.FindGuest(context.Background(), env.VMID)
					if err != nil {
						return err
					}
					if g.Status != a["previous_status"] {
						return fmt.Errorf("guest is %s after the restore, was %s before", g.Status, a["previous_status"])
					}
					return nil
				},
			},
			{
				// The listing shows both the backup and the safety backup,
				// the safety backup (taken later) first.
				Config: base + listing,
				Check: func(s *terraform.State) error {
					d := s.RootModule().Resources["data.proxmoxapp_backups.after"].Primary.Attributes
					if d["latest.volid"] != safety {
						return fmt.Errorf("latest is %s, want the safety backup %s", d["latest.volid"], safety)
					}
					want := s.RootModule().Resources["proxmoxapp_backup.b"].Primary.Attributes["volid"]
					for i := 0; d[fmt.Sprintf("backups.%d.volid", i)] != ""; i++ {
						if d[fmt.Sprintf("backups.%d.volid", i)] == want {
							return nil
						}
					}
					return fmt.Errorf("the restored backup %s is not listed", want)
				},
			},
		},
	})
}
