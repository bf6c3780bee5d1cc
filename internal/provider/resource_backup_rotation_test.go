package provider

import (
	"fmt"
	"regexp"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/compare"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/proxmoxapp/terraform-provider-proxmoxapp/internal/acctest"
)

// rotationCase changes one argument of an existing backup.
type rotationCase struct {
	name string
	// before and after are the resource's bodies.
	before, after string
	// prepare runs before the changed configuration is applied.
	prepare func(t *testing.T, env *acctest.Env)
	// checks are the changed argument's effect on the state and on the
	// simulator (what vzdump was asked for, what the archive holds).
	checks func(env *acctest.Env) []statecheck.StateCheck
}

func rotationCases() []rotationCase {
	expect := func(attr string, v knownvalue.Check) statecheck.StateCheck {
		return statecheck.ExpectKnownValue(backupAddr, tfjsonpath.New(attr), v)
	}
	return []rotationCase{
		{
			name:   "vmid",
			before: "vmid = 100\n  storage = \"nas\"",
			after:  "vmid = 101\n  storage = \"nas\"",
			checks: func(env *acctest.Env) []statecheck.StateCheck {
				return []statecheck.StateCheck{
					expect("vmid", knownvalue.Int64Exact(101)),
					// node omitted: the new guest's node, found again
					expect("node", knownvalue.StringExact("pve2")),
					expect("volid", knownvalue.StringRegexp(regexp.MustCompile(`^nas:backup/vzdump-lxc-101-`))),
					acctest.ArchiveLogContains(env, backupAddr, "CT Name: db"),
				}
			},
		},
		{
			// the guest moved to pve2: its backups are taken there
			name:    "node",
			before:  "vmid = 100\n  node = \"pve1\"\n  storage = \"local\"",
			after:   "vmid = 100\n  node = \"pve2\"\n  storage = \"local\"",
			prepare: func(t *testing.T, env *acctest.Env) { env.MigrateGuest(t, 100, "pve2") },
			checks: func(env *acctest.Env) []statecheck.StateCheck {
				return []statecheck.StateCheck{
					expect("node", knownvalue.StringExact("pve2")),
					acctest.Check(env, func() error {
						// the new archive on pve2's own local storage, none left on pve1's
						if got, _ := env.Archives("pve2", "local", "vzdump-lxc-100-"); len(got) != 1 {
							return fmt.Errorf("archives of guest 100 on pve2/local: %v, want 1", got)
						}
						if got, _ := env.Archives("pve1", "local", "vzdump-lxc-100-"); len(got) != 0 {
							return fmt.Errorf("archives of guest 100 left on pve1/local: %v", got)
						}
						return nil
					}),
				}
			},
		},
		{
			name:   "storage",
			before: "vmid = 100\n  storage = \"local\"",
			after:  "vmid = 100\n  storage = \"nas\"",
			checks: func(env *acctest.Env) []statecheck.StateCheck {
				return []statecheck.StateCheck{
					expect("storage", knownvalue.StringExact("nas")),
					expect("volid", knownvalue.StringRegexp(regexp.MustCompile(`^nas:backup/vzdump-lxc-100-.*\.tar\.zst$`))),
				}
			},
		},
		{
			name:   "mode",
			before: "vmid = 100\n  storage = \"local\"\n  mode = \"snapshot\"",
			after:  "vmid = 100\n  storage = \"local\"\n  mode = \"stop\"",
			checks: func(env *acctest.Env) []statecheck.StateCheck {
				return []statecheck.StateCheck{
					expect("mode", knownvalue.StringExact("stop")),
					acctest.ArchiveLogContains(env, backupAddr, "backup mode: stop", "stopping virtual guest"),
					// stop mode starts the guest again afterwards
					acctest.GuestPowerState(env, 100, "running"),
				}
			},
		},
		{
			name:   "compress",
			before: "vmid = 100\n  storage = \"local\"\n  compress = \"zstd\"",
			after:  "vmid = 100\n  storage = \"local\"\n  compress = \"gzip\"",
			checks: func(env *acctest.Env) []statecheck.StateCheck {
				return []statecheck.StateCheck{
					expect("compress", knownvalue.StringExact("gzip")),
					expect("format", knownvalue.StringExact("tar.gz")),
					acctest.ArchiveMembers(env, backupAddr, []string{"var/www/index.html", "etc/hostname"}, nil),
				}
			},
		},
		{
			name:   "bandwidth_limit",
			before: "vmid = 100\n  storage = \"local\"\n  bandwidth_limit = 1024",
			after:  "vmid = 100\n  storage = \"local\"\n  bandwidth_limit = 2048",
			checks: func(env *acctest.Env) []statecheck.StateCheck {
				return []statecheck.StateCheck{
					expect("bandwidth_limit", knownvalue.Int64Exact(2048)),
					acctest.ArchiveLogContains(env, backupAddr, "bandwidth limit: 2048 KiB/s"),
					acctest.TaskLogContains(env, backupAddr, "--bwlimit 2048"),
				}
			},
		},
		{
			name:   "exclude_paths",
			before: "vmid = 100\n  storage = \"local\"\n  compress = \"gzip\"\n  exclude_paths = [\"/var/www/**\"]",
			after:  "vmid = 100\n  storage = \"local\"\n  compress = \"gzip\"\n  exclude_paths = [\"/var/lib/app/**\"]",
			checks: func(env *acctest.Env) []statecheck.StateCheck {
				return []statecheck.StateCheck{
					expect("exclude_paths", knownvalue.ListExact([]knownvalue.Check{knownvalue.StringExact("/var/lib/app/**")})),
					acctest.TaskLogContains(env, backupAddr, "--exclude-path '/var/lib/app/**'"),
					// the new archive follows the new exclusions
					acctest.ArchiveMembers(env, backupAddr, []string{"var/www/index.html"}, []string{"var/lib/app/version"}),
				}
			},
		},
		{
			// added to a backup the resource created (not imported): the
			// archive must follow, not keep the files now excluded
			name:   "exclude_paths added",
			before: "vmid = 100\n  storage = \"local\"\n  compress = \"gzip\"",
			after:  "vmid = 100\n  storage = \"local\"\n  compress = \"gzip\"\n  exclude_paths = [\"/var/lib/app/**\"]",
			checks: func(env *acctest.Env) []statecheck.StateCheck {
				return []statecheck.StateCheck{
					acctest.TaskLogContains(env, backupAddr, "--exclude-path '/var/lib/app/**'"),
					acctest.ArchiveMembers(env, backupAddr, []string{"var/www/index.html"}, []string{"var/lib/app/version"}),
				}
			},
		},
		{
			name:   "triggers added",
			before: "vmid = 100\n  storage = \"local\"",
			after:  "vmid = 100\n  storage = \"local\"\n  triggers = { v = \"1\" }",
			checks: func(env *acctest.Env) []statecheck.StateCheck {
				return []statecheck.StateCheck{expect("triggers", knownvalue.MapExact(map[string]knownvalue.Check{"v": knownvalue.StringExact("1")}))}
			},
		},
		{
			name:   "zstd_threads",
			before: "vmid = 100\n  storage = \"local\"\n  zstd_threads = 1",
			after:  "vmid = 100\n  storage = \"local\"\n  zstd_threads = 4",
			checks: func(env *acctest.Env) []statecheck.StateCheck {
				return []statecheck.StateCheck{
					expect("zstd_threads", knownvalue.Int64Exact(4)),
					acctest.TaskLogContains(env, backupAddr, "--zstd 4"),
				}
			},
		},
		{
			name:   "triggers",
			before: "vmid = 100\n  storage = \"local\"\n  triggers = { app_version = \"1.0\" }",
			after:  "vmid = 100\n  storage = \"local\"\n  triggers = { app_version = \"1.1\" }",
			checks: func(*acctest.Env) []statecheck.StateCheck {
				return []statecheck.StateCheck{
					expect("triggers", knownvalue.MapExact(map[string]knownvalue.Check{"app_version": knownvalue.StringExact("1.1")})),
				}
			},
		},
		{
			// storage omitted: PVE's default is chosen again for the new archive
			name:   "triggers with storage omitted",
			before: "vmid = 100\n  triggers = { app_version = \"1.0\" }",
			after:  "vmid = 100\n  triggers = { app_version = \"1.1\" }",
			checks: func(*acctest.Env) []statecheck.StateCheck {
				return []statecheck.StateCheck{expect("storage", knownvalue.StringExact("local"))}
			},
		},
	}
}

// TestAccBackup_rotationForcingArguments changes, one at a time, every
// argument of an existing backup that needs a new archive: the plan is an
// in-place update whose volid is known only after apply; the apply takes the
// new archive, then deletes the old one (file and sidecars); the changed
// argument reaches vzdump; the next plan is empty.
func TestAccBackup_rotationForcingArguments(t *testing.T) {
	t.Parallel()
	for _, tc := range rotationCases() {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env := acctest.New(t)
			env.RequireSim(t)
			cfg := func(body string) string {
				return env.ProviderConfig() + "resource \"proxmoxapp_backup\" \"test\" {\n  " + body + "\n}\n"
			}
			var first, second string
			volidChanges := statecheck.CompareValue(compare.ValuesDiffer())
			volidStays := statecheck.CompareValue(compare.ValuesSame())
			rotated := append([]statecheck.StateCheck{
				acctest.ArchiveOnStorage(env, backupAddr, &second),
				acctest.ArchiveReplaced(env, backupAddr, &first),
				volidChanges.AddStateValue(backupAddr, tfjsonpath.New("volid")),
				volidStays.AddStateValue(backupAddr, tfjsonpath.New("volid")),
				statecheck.ExpectKnownValue(backupAddr, tfjsonpath.New("status"), knownvalue.StringExact("available")),
			}, tc.checks(env)...)
			resource.Test(t, resource.TestCase{
				ProtoV6ProviderFactories: protoV6ProviderFactories,
				CheckDestroy:             func(*terraform.State) error { return acctest.ArchiveGone(second) },
				Steps: []resource.TestStep{
					{
						Config: cfg(tc.before),
						ConfigStateChecks: []statecheck.StateCheck{
							acctest.ArchiveOnStorage(env, backupAddr, &first),
							volidChanges.AddStateValue(backupAddr, tfjsonpath.New("volid")),
						},
					},
					{
						PreConfig: func() {
							// archive names have a one-second resolution
							time.Sleep(time.Second)
							if tc.prepare != nil {
								tc.prepare(t, env)
							}
						},
						Config: cfg(tc.after),
						ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
							plancheck.ExpectResourceAction(backupAddr, plancheck.ResourceActionUpdate),
							plancheck.ExpectUnknownValue(backupAddr, tfjsonpath.New("volid")),
						}},
						ConfigStateChecks: rotated,
					},
					{
						Config:           cfg(tc.after),
						ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
						ConfigStateChecks: []statecheck.StateCheck{
							volidStays.AddStateValue(backupAddr, tfjsonpath.New("volid")),
							acctest.ArchiveIs(env, backupAddr, &second),
						},
					},
				},
			})
		})
	}
}

// TestAccBackup_inPlaceArguments: notes and protected change on the
// archive itself; no new backup is taken.
func TestAccBackup_inPlaceArguments(t *testing.T) {
	t.Parallel()
	env := acctest.New(t)
	env.RequireSim(t)
	var archive string
	volidStays := statecheck.CompareValue(compare.ValuesSame())
	taskStays := statecheck.CompareValue(compare.ValuesSame())
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config: backupConfig(env, `  notes = "nightly"`),
				ConfigStateChecks: []statecheck.StateCheck{
					acctest.ArchiveOnStorage(env, backupAddr, &archive),
					volidStays.AddStateValue(backupAddr, tfjsonpath.New("volid")),
					taskStays.AddStateValue(backupAddr, tfjsonpath.New("task_id")),
				},
			},
			{
				PreConfig: func() { time.Sleep(time.Second) }, // a new archive would get a new name
				Config:    backupConfig(env, "  notes = \"before the upgrade\"\n  protected = true"),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(backupAddr, plancheck.ResourceActionUpdate),
					plancheck.ExpectKnownValue(backupAddr, tfjsonpath.New("volid"), knownvalue.NotNull()),
				}},
				ConfigStateChecks: []statecheck.StateCheck{
					volidStays.AddStateValue(backupAddr, tfjsonpath.New("volid")),
					taskStays.AddStateValue(backupAddr, tfjsonpath.New("task_id")),
					acctest.ArchiveIs(env, backupAddr, &archive),
					acctest.ArchiveSidecar(env, backupAddr, ".notes", "before the upgrade"),
					acctest.ArchiveSidecar(env, backupAddr, ".protected", ""),
					acctest.AtMostArchives(env, "pve1", "local", "vzdump-lxc-100-", 1),
				},
			},
			{
				Config: backupConfig(env, "  notes = \"before the upgrade\"\n  protected = false"),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(backupAddr, plancheck.ResourceActionUpdate),
				}},
				ConfigStateChecks: []statecheck.StateCheck{
					volidStays.AddStateValue(backupAddr, tfjsonpath.New("volid")),
					acctest.ArchiveIs(env, backupAddr, &archive),
					statecheck.ExpectKnownValue(backupAddr, tfjsonpath.New("protected"), knownvalue.Bool(false)),
					acctest.Check(env, func() error {
						if acctest.FileExists(archive+".protected") == nil {
							return fmt.Errorf("%s.protected is still there after protected = false", archive)
						}
						return nil
					}),
				},
			},
		},
	})
}

// TestAccBackup_adoptAfterImport: a backup taken outside Terraform is
// imported with a configuration that sets mode, compress and triggers as
// the archive has them. vzdump records neither mode nor triggers, so they
// are adopted into the state without a new backup; from then on they are
// recorded, and changing one rotates. A compress the archive does not have
// is a real difference and rotates at once.
func TestAccBackup_adoptAfterImport(t *testing.T) {
	t.Parallel()
	env := acctest.New(t)
	env.RequireSim(t)
	outside := acctest.TakeBackup(t, env.Client(t), 100, "local", "", false)
	archive := env.ArchivePath("pve1", "local", outside.Filename)
	config := func(compress, version string) string {
		return backupConfig(env, fmt.Sprintf(`  mode     = "snapshot"
  compress = %q
  triggers = { app_version = %q }`, compress, version)) + fmt.Sprintf(`
import {
  to = %s
  id = %q
}
`, backupAddr, outside.VolID)
	}
	var rotated string
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config: config("zstd", "1.0"),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					// adopts mode and triggers in place: the imported archive stays
					plancheck.ExpectResourceAction(backupAddr, plancheck.ResourceActionUpdate),
					plancheck.ExpectKnownValue(backupAddr, tfjsonpath.New("volid"), knownvalue.StringExact(outside.VolID)),
				}},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(backupAddr, tfjsonpath.New("volid"), knownvalue.StringExact(outside.VolID)),
					statecheck.ExpectKnownValue(backupAddr, tfjsonpath.New("mode"), knownvalue.StringExact("snapshot")),
					statecheck.ExpectKnownValue(backupAddr, tfjsonpath.New("triggers"),
						knownvalue.MapExact(map[string]knownvalue.Check{"app_version": knownvalue.StringExact("1.0")})),
					acctest.ArchiveIs(env, backupAddr, &archive),
					acctest.AtMostArchives(env, "pve1", "local", "vzdump-lxc-100-", 1),
				},
			},
			{
				Config:           config("zstd", "1.0"),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
			},
			{
				// triggers are recorded now: a new value takes a new backup
				Config: config("zstd", "1.1"),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(backupAddr, plancheck.ResourceActionUpdate),
					plancheck.ExpectUnknownValue(backupAddr, tfjsonpath.New("volid")),
				}},
				ConfigStateChecks: []statecheck.StateCheck{
					acctest.ArchiveOnStorage(env, backupAddr, &rotated),
					acctest.ArchiveReplaced(env, backupAddr, &archive),
				},
			},
		},
	})
}

// TestAccBackup_importedCompressDiffers: compress is read from the archive
// on import, so a configuration asking for another compression is a real
// difference and takes a new backup, as any recorded argument does.
func TestAccBackup_importedCompressDiffers(t *testing.T) {
	t.Parallel()
	env := acctest.New(t)
	env.RequireSim(t)
	outside := acctest.TakeBackup(t, env.Client(t), 100, "local", "", false)
	archive := env.ArchivePath("pve1", "local", outside.Filename)
	var rotated string
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6ProviderFactories,
		Steps: []resource.TestStep{{
			Config: backupConfig(env, `  compress = "gzip"`) + fmt.Sprintf("\nimport {\n  to = %s\n  id = %q\n}\n", backupAddr, outside.VolID),
			ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
				plancheck.ExpectResourceAction(backupAddr, plancheck.ResourceActionUpdate),
				plancheck.ExpectUnknownValue(backupAddr, tfjsonpath.New("volid")),
			}},
			ConfigStateChecks: []statecheck.StateCheck{
				statecheck.ExpectKnownValue(backupAddr, tfjsonpath.New("format"), knownvalue.StringExact("tar.gz")),
				acctest.ArchiveOnStorage(env, backupAddr, &rotated),
				acctest.ArchiveReplaced(env, backupAddr, &archive),
			},
		}},
	})
}

// TestAccBackup_rotationOnUnknownTrigger: triggers known only after apply
// (here the output of a changed terraform_data, unknown as a whole, and the
// id of a replaced one, unknown inside the map) rotate too: the plan cannot
// tell that they stay the same.
func TestAccBackup_rotationOnUnknownTrigger(t *testing.T) {
	t.Parallel()
	env := acctest.New(t)
	env.RequireSim(t)
	cfg := func(release string) string {
		return env.ProviderConfig() + fmt.Sprintf(`
resource "terraform_data" "release" {
  input = { release = %[1]q }
}

resource "terraform_data" "host" {
  triggers_replace = [%[1]q]
}

resource "proxmoxapp_backup" "test" {
  vmid     = 100
  storage  = "local"
  triggers = terraform_data.release.output
}

resource "proxmoxapp_backup" "host" {
  vmid     = 101
  storage  = "nas"
  triggers = { host = terraform_data.host.id }
}
`, release)
	}
	const host = "proxmoxapp_backup.host"
	var first, firstHost string
	volidChanges := statecheck.CompareValue(compare.ValuesDiffer())
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config: cfg("1.0"),
				ConfigStateChecks: []statecheck.StateCheck{
					acctest.ArchiveOnStorage(env, backupAddr, &first),
					acctest.ArchiveOnStorage(env, host, &firstHost),
					volidChanges.AddStateValue(backupAddr, tfjsonpath.New("volid")),
				},
			},
			{
				PreConfig: func() { time.Sleep(time.Second) }, // archive names have a one-second resolution
				Config:    cfg("1.1"),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction("terraform_data.host", plancheck.ResourceActionReplace),
					plancheck.ExpectUnknownValue(backupAddr, tfjsonpath.New("triggers")),
					plancheck.ExpectResourceAction(backupAddr, plancheck.ResourceActionUpdate),
					plancheck.ExpectUnknownValue(backupAddr, tfjsonpath.New("volid")),
					plancheck.ExpectUnknownValue(host, tfjsonpath.New("triggers").AtMapKey("host")),
					plancheck.ExpectResourceAction(host, plancheck.ResourceActionUpdate),
					plancheck.ExpectUnknownValue(host, tfjsonpath.New("volid")),
				}},
				ConfigStateChecks: []statecheck.StateCheck{
					acctest.ArchiveOnStorage(env, backupAddr, nil),
					acctest.ArchiveReplaced(env, backupAddr, &first),
					volidChanges.AddStateValue(backupAddr, tfjsonpath.New("volid")),
					statecheck.ExpectKnownValue(backupAddr, tfjsonpath.New("triggers"),
						knownvalue.MapExact(map[string]knownvalue.Check{"release": knownvalue.StringExact("1.1")})),
					acctest.ArchiveOnStorage(env, host, nil),
					acctest.ArchiveReplaced(env, host, &firstHost),
					statecheck.CompareValuePairs(host, tfjsonpath.New("triggers").AtMapKey("host"),
						"terraform_data.host", tfjsonpath.New("id"), compare.ValuesSame()),
				},
			},
		},
	})
}
