package provider

import (
	"fmt"
	"os"
	"regexp"
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
)

const backupAddr = "proxmoxapp_backup.test"

// backupConfig is the provider block plus one backup of the environment's guest.
func backupConfig(env *acctest.Env, body string) string {
	return env.ProviderConfig() + fmt.Sprintf(`
resource "proxmoxapp_backup" "test" {
  vmid    = %d
  storage = %q
%s
}
`, env.VMID, env.Storage, body)
}

// TestAccBackup_lifecycle walks one backup through everything a user does with
// it: create, re-plan, change notes and protected in place, re-take it through
// triggers, import it, and destroy it (archive and sidecars gone).
func TestAccBackup_lifecycle(t *testing.T) {
	t.Parallel()
	env := acctest.New(t)
	var firstArchive, secondArchive string
	volidChanges := statecheck.CompareValue(compare.ValuesDiffer())

	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6ProviderFactories,
		CheckDestroy: func(*terraform.State) error {
			if env.Sim == nil {
				return nil
			}
			return acctest.ArchiveGone(secondArchive)
		},
		Steps: []resource.TestStep{
			{
				Config: backupConfig(env, `  notes = "before upgrade"
  triggers = { app_version = "1.0" }`),
				ConfigStateChecks: []statecheck.StateCheck{
					acctest.ArchiveOnStorage(env, backupAddr, &firstArchive),
					volidChanges.AddStateValue(backupAddr, tfjsonpath.New("volid")),
					statecheck.CompareValuePairs(backupAddr, tfjsonpath.New("id"), backupAddr, tfjsonpath.New("volid"), compare.ValuesSame()),
					statecheck.ExpectKnownValue(backupAddr, tfjsonpath.New("created_at"), knownvalue.StringRegexp(rfc3339UTC)),
					statecheck.ExpectKnownValue(backupAddr, tfjsonpath.New("vmid"), knownvalue.Int64Exact(int64(env.VMID))),
					statecheck.ExpectKnownValue(backupAddr, tfjsonpath.New("guest_type"), knownvalue.StringExact("lxc")),
					statecheck.ExpectKnownValue(backupAddr, tfjsonpath.New("format"), knownvalue.StringExact("tar.zst")),
					statecheck.ExpectKnownValue(backupAddr, tfjsonpath.New("status"), knownvalue.StringExact("available")),
					statecheck.ExpectKnownValue(backupAddr, tfjsonpath.New("notes"), knownvalue.StringExact("before upgrade")),
					statecheck.ExpectKnownValue(backupAddr, tfjsonpath.New("protected"), knownvalue.Bool(false)),
					statecheck.ExpectKnownValue(backupAddr, tfjsonpath.New("volid"),
						knownvalue.StringRegexp(regexp.MustCompile(fmt.Sprintf(`^%s:backup/vzdump-lxc-%d-\d{4}_\d\d_\d\d-\d\d_\d\d_\d\d\.tar\.zst$`, env.Storage, env.VMID)))),
					statecheck.ExpectKnownValue(backupAddr, tfjsonpath.New("task_id"),
						knownvalue.StringRegexp(regexp.MustCompile(`^UPID:[^:]+:[0-9A-F]{8}:[0-9A-F]{8,9}:[0-9A-F]{8}:vzdump:\d+:[^:]+:$`))),
				},
			},
			{
				// Same configuration: nothing to do.
				Config: backupConfig(env, `  notes = "before upgrade"
  triggers = { app_version = "1.0" }`),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
			},
			{
				// Notes and protected change in place: same archive.
				Config: backupConfig(env, `  notes = "kept for the audit"
  protected = true
  triggers = { app_version = "1.0" }`),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(backupAddr, plancheck.ResourceActionUpdate),
				}},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(backupAddr, tfjsonpath.New("notes"), knownvalue.StringExact("kept for the audit")),
					statecheck.ExpectKnownValue(backupAddr, tfjsonpath.New("protected"), knownvalue.Bool(true)),
					acctest.ArchiveIs(env, backupAddr, &firstArchive),
					acctest.ArchiveSidecar(env, backupAddr, ".notes", "kept for the audit"),
					acctest.ArchiveSidecar(env, backupAddr, ".protected", ""),
				},
			},
			{
				// Unprotect, then a new trigger value takes a new backup.
				Config: backupConfig(env, `  notes = "kept for the audit"
  triggers = { app_version = "1.0" }`),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(backupAddr, plancheck.ResourceActionUpdate),
				}},
			},
			{
				Config: backupConfig(env, `  notes = "kept for the audit"
  triggers = { app_version = "2.0" }`),
				// A rotation: the new archive first, then the old one goes.
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(backupAddr, plancheck.ResourceActionUpdate),
					plancheck.ExpectUnknownValue(backupAddr, tfjsonpath.New("volid")),
				}},
				ConfigStateChecks: []statecheck.StateCheck{
					acctest.ArchiveOnStorage(env, backupAddr, &secondArchive),
					acctest.ArchiveReplaced(env, backupAddr, &firstArchive),
					volidChanges.AddStateValue(backupAddr, tfjsonpath.New("volid")),
				},
			},
			{
				ResourceName:      backupAddr,
				ImportState:       true,
				ImportStateVerify: true,
				// Arguments vzdump does not record; they are adopted from the
				// configuration after import without a new backup.
				ImportStateVerifyIgnore: []string{"mode", "triggers", "task_id", "timeouts"},
			},
		},
	})
}

// TestAccBackup_notesTemplate checks that a notes template is rendered by PVE
// and still gives an empty plan.
func TestAccBackup_notesTemplate(t *testing.T) {
	t.Parallel()
	env := acctest.New(t)
	env.RequireSim(t)
	cfg := backupConfig(env, `  notes = "{{guestname}} ({{vmid}}) on {{node}}"`)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config: cfg,
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(backupAddr, tfjsonpath.New("notes"), knownvalue.StringExact("{{guestname}} ({{vmid}}) on {{node}}")),
					acctest.ArchiveSidecar(env, backupAddr, ".notes", "web (100) on pve1"),
				},
			},
			{Config: cfg, ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}}},
			{
				// Edited in place: the provider renders the template itself.
				Config: backupConfig(env, `  notes = "{{guestname}} in {{cluster}} after edit"`),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(backupAddr, plancheck.ResourceActionUpdate),
				}},
				ConfigStateChecks: []statecheck.StateCheck{
					acctest.ArchiveSidecar(env, backupAddr, ".notes", "web in pvesim after edit"),
				},
			},
			{Config: backupConfig(env, `  notes = "{{guestname}} in {{cluster}} after edit"`), PlanOnly: true},
		},
	})
}

// TestAccBackup_removedOutOfBand: an archive deleted behind Terraform's back is
// noticed, and the next apply takes a new one.
func TestAccBackup_removedOutOfBand(t *testing.T) {
	t.Parallel()
	env := acctest.New(t)
	env.RequireSim(t)
	var archive string
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config:            backupConfig(env, ""),
				ConfigStateChecks: []statecheck.StateCheck{acctest.ArchiveOnStorage(env, backupAddr, &archive)},
			},
			{
				PreConfig: func() {
					if err := os.Remove(archive); err != nil {
						t.Fatal(err)
					}
				},
				Config: backupConfig(env, ""),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(backupAddr, plancheck.ResourceActionCreate),
				}},
				ConfigStateChecks: []statecheck.StateCheck{acctest.ArchiveOnStorage(env, backupAddr, nil)},
			},
		},
	})
}

// TestAccBackup_protectedDestroy: PVE refuses to delete a protected backup and
// the user is told what to do.
func TestAccBackup_protectedDestroy(t *testing.T) {
	t.Parallel()
	env := acctest.New(t)
	var archive string
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config:            backupConfig(env, "  protected = true"),
				ConfigStateChecks: []statecheck.StateCheck{acctest.ArchiveOnStorage(env, backupAddr, &archive)},
			},
			{
				Config:      backupConfig(env, "  protected = true"),
				Destroy:     true,
				ExpectError: regexp.MustCompile(`(?s)is protected.*Set protected = false and apply first`),
			},
			{
				Config: backupConfig(env, "  protected = false"),
				// still there after the refused destroy
				ConfigStateChecks: []statecheck.StateCheck{
					acctest.ArchiveIs(env, backupAddr, &archive),
					acctest.ArchiveOnStorage(env, backupAddr, nil),
				},
			},
		},
	})
}

// TestAccBackup_guestKinds covers QEMU, Proxmox Backup Server, a shared NAS
// storage, compression choices and a guest on the second node with node
// omitted.
func TestAccBackup_guestKinds(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, body   string
		format, node string
		volid        string
	}{
		{"qemu on local", `vmid = 200
  storage = "local"`, "vma.zst", "pve1", `^local:backup/vzdump-qemu-200-.*\.vma\.zst$`},
		{"lxc on pbs", `vmid = 100
  storage = "pbs"`, "pbs-ct", "pve1", `^pbs:backup/ct/100/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$`},
		{"second node, shared nas, gzip", `vmid = 101
  storage = "nas"
  compress = "gzip"`, "tar.gz", "pve2", `^nas:backup/vzdump-lxc-101-.*\.tar\.gz$`},
		{"default storage with notes", `vmid = 100
  notes = "taken where PVE's default says"`, "tar.zst", "pve1", `^local:backup/vzdump-lxc-100-.*\.tar\.zst$`},
		{"uncompressed stop mode", `vmid = 100
  storage = "local"
  compress = "none"
  mode = "stop"`, "tar", "pve1", `^local:backup/vzdump-lxc-100-.*\.tar$`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env := acctest.New(t)
			env.RequireSim(t)
			checks := []statecheck.StateCheck{
				statecheck.ExpectKnownValue(backupAddr, tfjsonpath.New("format"), knownvalue.StringExact(tc.format)),
				statecheck.ExpectKnownValue(backupAddr, tfjsonpath.New("node"), knownvalue.StringExact(tc.node)),
				statecheck.ExpectKnownValue(backupAddr, tfjsonpath.New("volid"), knownvalue.StringRegexp(regexp.MustCompile(tc.volid))),
				statecheck.ExpectKnownValue(backupAddr, tfjsonpath.New("size"), knownvalue.Int64Func(func(v int64) error {
					if v <= 0 {
						return fmt.Errorf("size %d", v)
					}
					return nil
				})),
			}
			ignore := []string{"mode", "task_id", "timeouts"}
			if strings.HasPrefix(tc.format, "pbs") {
				// PBS compresses on its own; vzdump's compress is not recorded.
				ignore = append(ignore, "compress")
			} else {
				checks = append(checks, acctest.ArchiveOnStorage(env, backupAddr, nil))
			}
			resource.Test(t, resource.TestCase{
				ProtoV6ProviderFactories: protoV6ProviderFactories,
				Steps: []resource.TestStep{
					{
						Config:            env.ProviderConfig() + "resource \"proxmoxapp_backup\" \"test\" {\n  " + tc.body + "\n}\n",
						ConfigStateChecks: checks,
					},
					{
						ResourceName:            backupAddr,
						ImportState:             true,
						ImportStateVerify:       true,
						ImportStateVerifyIgnore: ignore,
					},
				},
			})
		})
	}
}

// TestAccBackup_vzdumpFails: a task that fails midway is reported with its
// exit status and log, and nothing lands in state.
func TestAccBackup_vzdumpFails(t *testing.T) {
	t.Parallel()
	env := acctest.New(t)
	env.RequireSim(t)
	env.Sim.FailTask("vzdump", 100, "vma_queue_write: write error - No space left on device")
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config:      backupConfig(env, ""),
				ExpectError: regexp.MustCompile(`(?s)vzdump of guest 100 to storage "local" did not produce a backup.*job errors.*No space left on device`),
			},
			{
				// Nothing in state (a failed backup there would be planned for
				// destruction) and no archive left on the storage.
				Config:           env.ProviderConfig(),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
				ConfigStateChecks: []statecheck.StateCheck{
					acctest.AtMostArchives(env, "pve1", "local", "vzdump-lxc-100-", 0),
				},
			},
		},
	})
}

// TestAccBackup_lockedGuest: a guest someone else holds locked is not backed
// up, and the error says why.
func TestAccBackup_lockedGuest(t *testing.T) {
	t.Parallel()
	env := acctest.New(t)
	env.RequireSim(t)
	env.Sim.SetGuestLock(100, "snapshot")
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6ProviderFactories,
		Steps: []resource.TestStep{{
			Config:      backupConfig(env, ""),
			ExpectError: regexp.MustCompile(`CT is locked \(snapshot\)`),
		}},
	})
}

// TestAccBackup_validation: bad input is refused at plan time, naming the
// attribute and the allowed values.
func TestAccBackup_validation(t *testing.T) {
	t.Parallel()
	env := acctest.New(t)
	cases := []struct{ body, want string }{
		{`vmid = 99`, `vmid.*between 100 and 999999999`},
		{"vmid = 100\n  mode = \"fast\"", `mode.*value must be one of.*"snapshot".*"suspend".*"stop"`},
		{"vmid = 100\n  compress = \"bzip2\"", `compress.*value must be one of.*"zstd".*"gzip".*"lzo".*"none"`},
		{"vmid = 100\n  storage = \"-bad\"", `storage.*Proxmox VE storage ID`},
		{"vmid = 100\n  node = \"pve_1\"", `node.*Proxmox VE node name`},
		{"vmid = 100\n  storage = \"local\"\n  notes = \"{{hostname}}\"", `Unknown notes variable.*\{\{hostname\}\}`},
		{"vmid = 100\n  storage = \"local\"\n  notes = \"a\\nb\"", `Notes must be one line`},
		{"vmid = 100\n  storage = \"local\"\n  notes = \"" + strings.Repeat("x", 1025) + "\"", `at most 1024 bytes.*got 1025 bytes`},
		{"vmid = 100\n  bandwidth_limit = -1", `bandwidth_limit.*at least 0`},
		{"vmid = 100\n  zstd_threads = 1000", `zstd_threads.*between 0 and 256`},
	}
	steps := make([]resource.TestStep, 0, len(cases))
	for _, tc := range cases {
		steps = append(steps, resource.TestStep{
			Config:      env.ProviderConfig() + "resource \"proxmoxapp_backup\" \"test\" {\n  " + tc.body + "\n}\n",
			PlanOnly:    true,
			ExpectError: regexp.MustCompile(`(?s)` + tc.want),
		})
	}
	resource.Test(t, resource.TestCase{ProtoV6ProviderFactories: protoV6ProviderFactories, Steps: steps})
}

// rfc3339UTC is how created_at is written: RFC 3339, UTC, whole seconds.
var rfc3339UTC = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$`)

// TestAccBackup_rotationKeepsOldOnFailure: a triggers change takes the new
// backup before it deletes the old one, without create_before_destroy and
// with the old backup protected, so a failing vzdump never leaves the app
// without a backup, and a protected backup never blocks its own rotation.
func TestAccBackup_rotationKeepsOldOnFailure(t *testing.T) {
	t.Parallel()
	env := acctest.New(t)
	env.RequireSim(t)
	cfg := func(version string) string {
		return backupConfig(env, fmt.Sprintf("  protected = true\n  triggers = { app_version = %q }", version))
	}
	var first string
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config:            cfg("1"),
				ConfigStateChecks: []statecheck.StateCheck{acctest.ArchiveOnStorage(env, backupAddr, &first)},
			},
			{
				PreConfig:   func() { env.Sim.FailTask("vzdump", 100, "vma_queue_write: write error - No space left on device") },
				Config:      cfg("2"),
				ExpectError: regexp.MustCompile(`(?s)Backup failed.*No space left on device`),
			},
			{
				// Still the first archive, on disk and in state; a retry works.
				Config:           cfg("1"),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
				ConfigStateChecks: []statecheck.StateCheck{
					acctest.ArchiveOnStorage(env, backupAddr, nil),
					acctest.ArchiveIs(env, backupAddr, &first),
				},
			},
			{
				// protected old archive: unprotected and deleted after the new one exists
				Config: cfg("2"),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(backupAddr, plancheck.ResourceActionUpdate),
				}},
				ConfigStateChecks: []statecheck.StateCheck{
					acctest.ArchiveOnStorage(env, backupAddr, nil),
					statecheck.ExpectKnownValue(backupAddr, tfjsonpath.New("protected"), knownvalue.Bool(true)),
					// the new archive is protected on the storage; the old one is gone
					acctest.ArchiveSidecar(env, backupAddr, ".protected", ""),
					acctest.ArchiveReplaced(env, backupAddr, &first),
				},
			},
			{
				// unprotect in place, so that the test's destroy may delete it
				Config: backupConfig(env, "  protected = false\n  triggers = { app_version = \"2\" }"),
			},
		},
	})
}
