package provider

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/compare"
	"github.com/hashicorp/terraform-plugin-testing/config"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/proxmoxapp/terraform-provider-proxmoxapp/internal/acctest"
	"github.com/proxmoxapp/terraform-provider-proxmoxapp/internal/pve"
	"github.com/proxmoxapp/terraform-provider-proxmoxapp/internal/pvesim"
)

// The examples are documentation users copy: these tests run each of them,
// and the README's minimal configuration, as written through create, a
// change and destroy against the simulator. Only what ties an example to a
// real cluster is rewritten: the terraform block (the tests run the provider
// in-process), a provider block that reads the environment (replaced by one
// for the test's simulator), the example endpoint and the CA file.

const repoRoot = "../.."

// exampleConfig reads a file of the repository as a test configuration.
func exampleConfig(t *testing.T, rel string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, rel))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// readmeConfig is the HCL block of the README's "A minimal configuration".
func readmeConfig(t *testing.T) string {
	t.Helper()
	readme := exampleConfig(t, "README.md")
	i := strings.Index(readme, "## A minimal configuration")
	if i < 0 {
		t.Fatal(`README.md has no "## A minimal configuration" section`)
	}
	m := regexp.MustCompile("(?s)```hcl\n(.*?)```").FindStringSubmatch(readme[i:])
	if m == nil {
		t.Fatal("the README's minimal configuration has no hcl block")
	}
	return m[1]
}

// withoutBlocks drops the top-level blocks whose first line starts with one
// of the headers (terraform fmt puts their closing brace in column 0).
func withoutBlocks(src string, headers ...string) string {
	var out []string
	skipping := false
	for _, line := range strings.Split(src, "\n") {
		if skipping {
			if line == "}" {
				skipping = false
			}
			continue
		}
		for _, h := range headers {
			if strings.HasPrefix(line, h) {
				skipping = !strings.HasSuffix(strings.TrimSpace(line), "{}")
				line = "\x00"
				break
			}
		}
		if line != "\x00" {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}

// forSim points a configuration with its own provider block at the test's
// simulator: the example endpoint and CA file become the simulator's.
func forSim(t *testing.T, env *acctest.Env, src string) string {
	t.Helper()
	src = withoutBlocks(src, "terraform {")
	for _, ca := range []string{`file("pve-root-ca.pem")`, `file("${path.module}/pve-root-ca.pem")`} {
		src = strings.ReplaceAll(src, ca, fmt.Sprintf("file(%q)", env.Sim.CAPath()))
	}
	out := strings.ReplaceAll(src, `"https://pve.example.com:8006/"`, fmt.Sprintf("%q", env.Sim.Endpoint()))
	if out == src {
		t.Fatal("the configuration does not use the example endpoint https://pve.example.com:8006/ any more; update the test")
	}
	return out
}

// envConfig gives a configuration whose provider block reads the environment
// the test simulator's provider block instead.
func envConfig(env *acctest.Env, src string) string {
	return env.ProviderConfig() + withoutBlocks(src, "terraform {", `provider "proxmoxapp"`)
}

// archiveCount checks that a simulator storage holds n archives of guest
// 100 (the guest every example backs up).
func archiveCount(env *acctest.Env, node, storage string, n int) error {
	if got, _ := env.Archives(node, storage, "vzdump-lxc-100-"); len(got) != n {
		return fmt.Errorf("storage %s on %s holds %d archives of guest 100, want %d: %v", storage, node, len(got), n, got)
	}
	return nil
}

// wantArchives is archiveCount as a step's state check.
func wantArchives(env *acctest.Env, node, storage string, n int) statecheck.StateCheck {
	return acctest.Check(env, func() error { return archiveCount(env, node, storage, n) })
}

// destroyLeaves is archiveCount on pve1's local storage as a test's
// CheckDestroy.
func destroyLeaves(env *acctest.Env, n int) func(*terraform.State) error {
	return func(*terraform.State) error { return archiveCount(env, "pve1", "local", n) }
}

// TestAccExamples_readme: the README's minimal configuration, as written,
// takes a backup, takes a new one (deleting the old one) when app_version
// changes, and deletes its archive on destroy.
func TestAccExamples_readme(t *testing.T) {
	t.Parallel()
	env := acctest.New(t)
	env.RequireSim(t)
	cfg := forSim(t, env, readmeConfig(t))
	vars := func(version string) config.Variables {
		return config.Variables{"pve_token": config.StringVariable(env.Sim.APIToken()), "app_version": config.StringVariable(version)}
	}
	const addr = "proxmoxapp_backup.before_upgrade"
	var first string
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6ProviderFactories,
		CheckDestroy:             destroyLeaves(env, 0),
		Steps: []resource.TestStep{
			{
				Config: cfg, ConfigVariables: vars("1.0"),
				ConfigStateChecks: []statecheck.StateCheck{
					acctest.ArchiveOnStorage(env, addr, &first),
					// {{guestname}} is filled in by PVE.
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("notes"), knownvalue.StringExact("{{guestname}} before 1.0")),
					wantArchives(env, "pve1", "local", 1),
				},
			},
			{
				// a protected backup rotates: new archive first, old one deleted
				Config: cfg, ConfigVariables: vars("2.0"),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(addr, plancheck.ResourceActionUpdate),
				}},
				ConfigStateChecks: []statecheck.StateCheck{
					acctest.ArchiveOnStorage(env, addr, nil),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("protected"), knownvalue.Bool(true)),
					wantArchives(env, "pve1", "local", 1),
					acctest.ArchiveReplaced(env, addr, &first),
				},
			},
			{
				// the documented way to destroy it: unprotect, apply, destroy
				Config: strings.Replace(cfg, "protected = true", "protected = false", 1), ConfigVariables: vars("2.0"),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(addr, plancheck.ResourceActionUpdate),
				}},
			},
		},
	})
}

// TestAccExamples_provider: both provider examples configure the provider
// (token with a pinned CA; password with insecure) and carry a backup
// through create, an in-place change and destroy.
func TestAccExamples_provider(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		file string
		vars func(env *acctest.Env) config.Variables
	}{
		{"examples/provider/provider.tf", func(env *acctest.Env) config.Variables {
			return config.Variables{"pve_api_token": config.StringVariable(env.Sim.APIToken())}
		}},
		{"examples/provider/password/provider.tf", func(*acctest.Env) config.Variables {
			return config.Variables{"pve_password": config.StringVariable("pvesim")}
		}},
	} {
		t.Run(filepath.Dir(tc.file), func(t *testing.T) {
			t.Parallel()
			env := acctest.New(t)
			env.RequireSim(t)
			withBackup := func(notes string) string {
				return forSim(t, env, exampleConfig(t, tc.file)) +
					fmt.Sprintf("\nresource \"proxmoxapp_backup\" \"test\" {\n  vmid    = 100\n  storage = \"local\"\n  notes   = %q\n}\n", notes)
			}
			resource.Test(t, resource.TestCase{
				ProtoV6ProviderFactories: protoV6ProviderFactories,
				CheckDestroy:             destroyLeaves(env, 0),
				Steps: []resource.TestStep{
					{
						Config: withBackup("first"), ConfigVariables: tc.vars(env),
						ConfigStateChecks: []statecheck.StateCheck{acctest.ArchiveOnStorage(env, backupAddr, nil)},
					},
					{
						Config: withBackup("second"), ConfigVariables: tc.vars(env),
						ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
							plancheck.ExpectResourceAction(backupAddr, plancheck.ResourceActionUpdate),
							// Fixed when the archive was written: no "(known after apply)" noise.
							plancheck.ExpectKnownValue(backupAddr, tfjsonpath.New("encrypted"), knownvalue.Bool(false)),
							plancheck.ExpectKnownValue(backupAddr, tfjsonpath.New("size"), knownvalue.NotNull()),
						}},
						ConfigStateChecks: []statecheck.StateCheck{
							wantArchives(env, "pve1", "local", 1),
						},
					},
				},
			})
		})
	}
}

// TestAccExamples_backup: the backup resource example. A new app_version
// takes the new backup before deleting the old one; the protected "golden"
// backup stays untouched, and is destroyed the way its comment says: set
// protected = false and apply first.
func TestAccExamples_backup(t *testing.T) {
	t.Parallel()
	env := acctest.New(t)
	env.RequireSim(t)
	src := envConfig(env, exampleConfig(t, "examples/resources/proxmoxapp_backup/resource.tf"))
	if !strings.Contains(src, "protected = true") {
		t.Fatal("the example no longer has a protected backup; update the test")
	}
	unprotected := strings.Replace(src, "protected = true", "protected = false", 1)
	vars := func(v string) config.Variables { return config.Variables{"app_version": config.StringVariable(v)} }
	const upgrade, golden = "proxmoxapp_backup.before_upgrade", "proxmoxapp_backup.golden"
	var goldenArchive, firstUpgrade string
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6ProviderFactories,
		CheckDestroy:             destroyLeaves(env, 0),
		Steps: []resource.TestStep{
			{
				Config: src, ConfigVariables: vars("1.0"),
				ConfigStateChecks: []statecheck.StateCheck{
					acctest.ArchiveOnStorage(env, upgrade, &firstUpgrade),
					acctest.ArchiveOnStorage(env, golden, &goldenArchive),
					statecheck.ExpectKnownValue(golden, tfjsonpath.New("protected"), knownvalue.Bool(true)),
					statecheck.ExpectKnownOutputValue("backup_volid", knownvalue.StringRegexp(regexp.MustCompile(`^local:backup/vzdump-lxc-100-`))),
				},
			},
			{
				Config: src, ConfigVariables: vars("2.0"),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(upgrade, plancheck.ResourceActionUpdate),
					plancheck.ExpectResourceAction(golden, plancheck.ResourceActionNoop),
				}},
				ConfigStateChecks: []statecheck.StateCheck{
					acctest.ArchiveOnStorage(env, upgrade, nil),
					wantArchives(env, "pve1", "local", 2),
					acctest.ArchiveReplaced(env, upgrade, &firstUpgrade),
					// golden untouched, still protected
					acctest.ArchiveIs(env, golden, &goldenArchive),
					acctest.ArchiveSidecar(env, golden, ".protected", ""),
				},
			},
			{
				// Before destroying: protected = false, applied (in place).
				Config: unprotected, ConfigVariables: vars("2.0"),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(golden, plancheck.ResourceActionUpdate),
				}},
			},
		},
	})
}

// TestAccExamples_dataSource: the listing example reports "no backups yet",
// then the newest backup once one exists.
func TestAccExamples_dataSource(t *testing.T) {
	t.Parallel()
	env := acctest.New(t)
	env.RequireSim(t)
	src := envConfig(env, exampleConfig(t, "examples/data-sources/proxmoxapp_backups/data-source.tf"))
	var taken string
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config:            src,
				ConfigStateChecks: []statecheck.StateCheck{statecheck.ExpectKnownOutputValue("latest_backup", knownvalue.StringExact("no backups yet"))},
			},
			{
				PreConfig: func() {
					res, err := env.Client(t).CreateBackup(context.Background(), pve.BackupOptions{VMID: 100, Storage: "nas", Compress: "zstd"}, nil)
					if err != nil {
						t.Fatal(err)
					}
					taken = res.Backup.VolID
				},
				Config: src,
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownOutputValue("latest_backup", acctest.Lazy(func() knownvalue.Check { return knownvalue.StringExact(taken) })),
					statecheck.ExpectKnownValue("data.proxmoxapp_backups.app_on_nas", tfjsonpath.New("backups"), knownvalue.ListSizeExact(1)),
				},
			},
		},
	})
}

// TestAccExamples_restore: the restore example rolls guest 100 back to its
// newest backup on "local", and rolling back again restores that backup
// again, not the safety backup the first rollback took (it went to "nas").
func TestAccExamples_restore(t *testing.T) {
	t.Parallel()
	env := acctest.New(t)
	env.RequireSim(t)
	root := env.Sim.GuestRootfs(100)
	src := envConfig(env, exampleConfig(t, "examples/resources/proxmoxapp_restore/resource.tf"))
	vars := func(run string) config.Variables { return config.Variables{"rollback_id": config.StringVariable(run)} }

	// The example's precondition: a backup of guest 100 on "local".
	acctest.WriteGuestFile(t, root, markerPath, "good\n")
	res, err := env.Client(t).CreateBackup(context.Background(), pve.BackupOptions{VMID: 100, Storage: "local", Compress: "zstd"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	good := res.Backup.VolID
	const addr = "proxmoxapp_restore.rollback"
	marker := filepath.Join(root, markerPath)
	// the second rollback is a restore of its own
	taskChanges := statecheck.CompareValue(compare.ValuesDiffer())
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6ProviderFactories,
		CheckDestroy:             func(*terraform.State) error { return env.GuestIs(100, "running") },
		Steps: []resource.TestStep{
			{
				PreConfig: func() { acctest.WriteGuestFile(t, root, markerPath, "broken once\n") },
				Config:    src, ConfigVariables: vars("1"),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("backup"), knownvalue.StringExact(good)),
					statecheck.ExpectKnownOutputValue("safety_backup", knownvalue.StringRegexp(regexp.MustCompile(`^nas:backup/vzdump-lxc-100-`))),
					acctest.FileContent(marker, "good\n"),
					acctest.GuestPowerState(env, 100, "running"),
					taskChanges.AddStateValue(addr, tfjsonpath.New("task_id")),
				},
			},
			{
				PreConfig: func() { acctest.WriteGuestFile(t, root, markerPath, "broken twice\n") },
				Config:    src, ConfigVariables: vars("2"),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(addr, plancheck.ResourceActionDestroyBeforeCreate),
				}},
				ConfigStateChecks: []statecheck.StateCheck{
					// Still the good backup: the first safety backup is on nas.
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("backup"), knownvalue.StringExact(good)),
					acctest.FileContent(marker, "good\n"),
					acctest.GuestPowerState(env, 100, "running"),
					wantArchives(env, "", "nas", 2),
					taskChanges.AddStateValue(addr, tfjsonpath.New("task_id")),
				},
			},
		},
	})
}

// TestAccExamples_upgradeRollback walks the guide's three commands: back up
// and upgrade, roll back after a failed upgrade, upgrade again once fixed.
func TestAccExamples_upgradeRollback(t *testing.T) {
	t.Parallel()
	env := acctest.New(t)
	env.RequireSim(t)
	root := env.Sim.GuestRootfs(100)
	src := envConfig(env, exampleConfig(t, "examples/guides/upgrade-rollback/main.tf"))
	vars := func(version string, rollback bool) config.Variables {
		return config.Variables{"app_version": config.StringVariable(version), "rollback": config.BoolVariable(rollback)}
	}
	const backup, restore = "proxmoxapp_backup.pre_upgrade", "proxmoxapp_restore.rollback[0]"
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6ProviderFactories,
		CheckDestroy:             destroyLeaves(env, 1), // the rollback's safety backup is not managed
		Steps: []resource.TestStep{
			{
				PreConfig: func() { acctest.WriteGuestFile(t, root, markerPath, "1.0\n") },
				Config:    src, ConfigVariables: vars("2.0", false),
				ConfigStateChecks: []statecheck.StateCheck{acctest.ArchiveOnStorage(env, backup, nil)},
			},
			{
				// The upgrade broke the app: roll back.
				PreConfig: func() { acctest.WriteGuestFile(t, root, markerPath, "2.0 broken\n") },
				Config:    src, ConfigVariables: vars("2.0", true),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(backup, plancheck.ResourceActionNoop),
					plancheck.ExpectResourceAction(restore, plancheck.ResourceActionCreate),
				}},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.CompareValuePairs(restore, tfjsonpath.New("backup"), backup, tfjsonpath.New("volid"), compare.ValuesSame()),
					acctest.GuestPowerState(env, 100, "running"),
					acctest.FileContent(filepath.Join(root, markerPath), "1.0\n"),
				},
			},
			{
				// Fixed: upgrade again; the rollback is only forgotten.
				Config: src, ConfigVariables: vars("2.0", false),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(restore, plancheck.ResourceActionDestroy),
				}},
				ConfigStateChecks: []statecheck.StateCheck{
					acctest.GuestPowerState(env, 100, "running"),
				},
			},
			{
				// The next version takes a new backup first.
				Config: src, ConfigVariables: vars("2.1", false),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(backup, plancheck.ResourceActionUpdate),
				}},
				ConfigStateChecks: []statecheck.StateCheck{
					wantArchives(env, "pve1", "local", 2), // the new backup and the safety backup
				},
			},
		},
	})
}

// TestAccExamples_demo: the configuration `make demo` applies, in its two
// stages (back up; restore) and destroy.
func TestAccExamples_demo(t *testing.T) {
	t.Parallel()
	env := acctest.New(t)
	env.RequireSim(t)
	src := envConfig(env, exampleConfig(t, "examples/demo/main.tf"))
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6ProviderFactories,
		CheckDestroy:             destroyLeaves(env, 1), // the restore's safety backup
		Steps: []resource.TestStep{
			{
				Config: src, ConfigVariables: config.Variables{"restore": config.BoolVariable(false)},
				ConfigStateChecks: []statecheck.StateCheck{
					acctest.ArchiveOnStorage(env, "proxmoxapp_backup.app", nil),
					statecheck.ExpectKnownOutputValue("backup_count", knownvalue.Int64Exact(1)),
				},
			},
			{
				Config: src, ConfigVariables: config.Variables{"restore": config.BoolVariable(true)},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownOutputValue("restore_previous_status", knownvalue.StringExact("running")),
					// The listing is read after the restore: backup and safety backup.
					statecheck.ExpectKnownOutputValue("backup_count", knownvalue.Int64Exact(2)),
					acctest.GuestPowerState(env, 100, "running"),
				},
			},
		},
	})
}

// TestAccExamples_import: the import example adopts the archive it names
// (vzdump-lxc-100-2025_10_04-12_00_00.tar.zst on local) into the backup
// example's before_upgrade, without taking a new backup; the next
// app_version replaces it like any backup, and destroy leaves nothing.
func TestAccExamples_import(t *testing.T) {
	t.Parallel()
	if os.Getenv("TF_ACC") == "" || acctest.Live() {
		t.Skip("acceptance test on the simulator (TF_ACC=1, no PROXMOX_VE_ENDPOINT)")
	}
	const name = "vzdump-lxc-100-2025_10_04-12_00_00.tar.zst"
	// The archive the example names: a real backup, renamed on disk, found
	// by a simulator started again on the same data directory.
	dir := t.TempDir()
	first, err := pvesim.Start(pvesim.Options{DataDir: dir, Throughput: 512 << 20})
	if err != nil {
		t.Fatal(err)
	}
	env := &acctest.Env{Sim: first, VMID: 100, Storage: "local", Node: "pve1"}
	res, err := env.Client(t).CreateBackup(context.Background(), pve.BackupOptions{VMID: 100, Storage: "local", Compress: "zstd"}, nil)
	_ = first.Close()
	if err != nil {
		t.Fatal(err)
	}
	dump := filepath.Join(dir, "nodes", "pve1", "storage", "local", "dump")
	if err := os.Rename(filepath.Join(dump, res.Backup.Filename), filepath.Join(dump, name)); err != nil {
		t.Fatal(err)
	}
	sim, err := pvesim.Start(pvesim.Options{DataDir: dir, Throughput: 512 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	env = &acctest.Env{Sim: sim, VMID: 100, Storage: "local", Node: "pve1"}

	src := envConfig(env, exampleConfig(t, "examples/resources/proxmoxapp_backup/resource.tf")) + "\n" +
		exampleConfig(t, "examples/resources/proxmoxapp_backup/import-by-string-id.tf")
	unprotected := strings.Replace(src, "protected = true", "protected = false", 1)
	vars := func(v string) config.Variables { return config.Variables{"app_version": config.StringVariable(v)} }
	const upgrade = "proxmoxapp_backup.before_upgrade"
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6ProviderFactories,
		CheckDestroy:             destroyLeaves(env, 0),
		Steps: []resource.TestStep{
			{
				Config: src, ConfigVariables: vars("1.0"),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					// Imported, then its notes set in place: no new backup.
					plancheck.ExpectResourceAction(upgrade, plancheck.ResourceActionUpdate),
				}},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(upgrade, tfjsonpath.New("volid"), knownvalue.StringExact("local:backup/"+name)),
					acctest.ArchiveOnStorage(env, upgrade, nil),
					wantArchives(env, "pve1", "local", 2), // the imported one and golden
				},
			},
			{
				Config: src, ConfigVariables: vars("2.0"),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(upgrade, plancheck.ResourceActionUpdate),
				}},
				ConfigStateChecks: []statecheck.StateCheck{
					wantArchives(env, "pve1", "local", 2),
					acctest.Check(env, func() error { return acctest.ArchiveGone(filepath.Join(dump, name)) }),
				},
			},
			{Config: unprotected, ConfigVariables: vars("2.0")},
		},
	})
}
