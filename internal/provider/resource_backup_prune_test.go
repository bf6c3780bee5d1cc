package provider

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/proxmoxapp/terraform-provider-proxmoxapp/internal/acctest"
	"github.com/proxmoxapp/terraform-provider-proxmoxapp/internal/pve"
	"github.com/proxmoxapp/terraform-provider-proxmoxapp/internal/pvesim"
)

const (
	pruneAddr     = "proxmoxapp_backup_prune.p"
	retentionAddr = "data.proxmoxapp_backup_retention.r"
	// The policy of the fixture; see retentionHistory for the marks it gives.
	fixtureKeep = `
  keep_last    = 1
  keep_hourly  = 1
  keep_daily   = 2
  keep_weekly  = 1
  keep_monthly = 1`
)

var berlin = func() *time.Location {
	l, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		panic(err)
	}
	return l
}()

// retentionEnv is a simulator whose nodes run on Europe/Berlin time.
func retentionEnv(t *testing.T) *acctest.Env {
	cfg := pvesim.DefaultConfig()
	cfg.Timezone = "Europe/Berlin"
	env := acctest.NewWithConfig(t, cfg)
	env.RequireSim(t)
	return env
}

// retentionHistory gives guest 100 ten backups on local (pve1) spanning
// hours, days, weeks and months, protects D and adds a renamed archive. With
// keep_last=1, keep_hourly=1, keep_daily=2, keep_weekly=1, keep_monthly=1
// PVE's rules give: A keep (last), B remove (A's hour), C keep (hourly),
// D protected (covers nothing), E and F keep (daily), G keep (weekly: weeks
// 11 and 10 are covered), H remove (February is covered), I keep (monthly),
// J remove.
func retentionHistory(t *testing.T, env *acctest.Env) map[string]string {
	t.Helper()
	c := env.Client(t)
	ctx := context.Background()
	b, err := c.CreateBackup(ctx, pve.BackupOptions{VMID: 100, Storage: "local", Compress: "zstd"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	d := func(y int, m time.Month, day, h, mi int) time.Time {
		return time.Date(y, m, day, h, mi, 0, 0, berlin)
	}
	v := map[string]string{}
	for label, at := range map[string]time.Time{
		"A": d(2026, 3, 10, 12, 30), "B": d(2026, 3, 10, 12, 10), "C": d(2026, 3, 10, 9, 0), "D": d(2026, 3, 9, 18, 0),
		"E": d(2026, 3, 8, 8, 0), "F": d(2026, 3, 2, 8, 0), "G": d(2026, 2, 25, 8, 0), "H": d(2026, 2, 10, 8, 0),
		"I": d(2026, 1, 15, 8, 0), "J": d(2025, 12, 20, 8, 0),
	} {
		if v[label], err = env.Sim.CopyBackup("pve1", b.Backup.VolID, at); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.DeleteBackup(ctx, "pve1", b.Backup.VolID, nil); err != nil {
		t.Fatal(err)
	}
	protected := true
	if err := c.UpdateBackup(ctx, "pve1", v["D"], nil, &protected); err != nil {
		t.Fatal(err)
	}
	renamed := "vzdump-lxc-100-before-migration.tar.zst"
	if err := os.WriteFile(filepath.Join(env.Sim.StorageDumpDir("pve1", "local"), renamed), []byte("kept by hand"), 0o644); err != nil {
		t.Fatal(err)
	}
	v["renamed"] = "local:backup/" + renamed
	return v
}

func volidList(v map[string]string, labels ...string) knownvalue.Check {
	var ids []string
	for _, l := range labels {
		ids = append(ids, v[l])
	}
	sort.Strings(ids)
	checks := make([]knownvalue.Check, len(ids))
	for i, id := range ids {
		checks[i] = knownvalue.StringExact(id)
	}
	return knownvalue.ListExact(checks)
}

// listHas is a knownvalue.Check that some element of a list passes want.
func listHas(want knownvalue.Check) knownvalue.Check {
	return listHasCheck{want}
}

type listHasCheck struct{ want knownvalue.Check }

func (c listHasCheck) CheckValue(v any) error {
	list, ok := v.([]any)
	if !ok {
		return fmt.Errorf("expected a list, got %T", v)
	}
	for _, x := range list {
		if c.want.CheckValue(x) == nil {
			return nil
		}
	}
	return fmt.Errorf("no element of the list of %d matches %s", len(list), c.want)
}

func (c listHasCheck) String() string { return "a list with an element " + c.want.String() }

// archivesPresent checks which of the labelled backups are on the storage
// (*v is read when the check runs).
func archivesPresent(env *acctest.Env, v *map[string]string, present string) statecheck.StateCheck {
	return acctest.Check(env, func() error {
		for label, id := range *v {
			_, err := os.Stat(filepath.Join(env.Sim.StorageDumpDir("pve1", "local"), strings.TrimPrefix(id, "local:backup/")))
			if want := strings.Contains(present, label+" ") || label == "renamed"; want != (err == nil) {
				return fmt.Errorf("backup %s (%s): present=%v, want %v", label, id, err == nil, want)
			}
		}
		if len(*v) == 0 {
			return fmt.Errorf("no backups were recorded")
		}
		return nil
	})
}

// TestAccBackupRetention_marks evaluates the policy through PVE's dry run:
// the marks follow PVE's rules across hours, days, weeks and months, with a
// protected and a renamed backup. Nothing is deleted.
func TestAccBackupRetention_marks(t *testing.T) {
	t.Parallel()
	env := retentionEnv(t)
	var v map[string]string
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				PreConfig: func() { v = retentionHistory(t, env) },
				Config: env.ProviderConfig() + `
data "proxmoxapp_backup_retention" "r" {
  storage = "local"
  vmid    = 100
` + fixtureKeep + `
}
`,
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(retentionAddr, tfjsonpath.New("node"), knownvalue.StringExact("pve1")),
					statecheck.ExpectKnownValue(retentionAddr, tfjsonpath.New("policy"),
						knownvalue.StringExact("keep-last=1,keep-hourly=1,keep-daily=2,keep-weekly=1,keep-monthly=1")),
					// v is recorded by PreConfig: the volid lists are built when checked
					statecheck.ExpectKnownValue(retentionAddr, tfjsonpath.New("keep"),
						acctest.Lazy(func() knownvalue.Check { return volidList(v, "A", "C", "E", "F", "G", "I") })),
					statecheck.ExpectKnownValue(retentionAddr, tfjsonpath.New("remove"),
						acctest.Lazy(func() knownvalue.Check { return volidList(v, "B", "H", "J") })),
					statecheck.ExpectKnownValue(retentionAddr, tfjsonpath.New("protected"),
						acctest.Lazy(func() knownvalue.Check { return volidList(v, "D") })),
					statecheck.ExpectKnownValue(retentionAddr, tfjsonpath.New("renamed"),
						acctest.Lazy(func() knownvalue.Check { return volidList(v, "renamed") })),
					statecheck.ExpectKnownValue(retentionAddr, tfjsonpath.New("backups"), knownvalue.ListSizeExact(11)),
					// J's entry: its time in UTC, its mark
					statecheck.ExpectKnownValue(retentionAddr, tfjsonpath.New("backups"), acctest.Lazy(func() knownvalue.Check {
						return listHas(knownvalue.ObjectPartial(map[string]knownvalue.Check{
							"volid":      knownvalue.StringExact(v["J"]),
							"created_at": knownvalue.StringExact("2025-12-20T07:00:00Z"),
							"mark":       knownvalue.StringExact("remove"),
						}))
					})),
					archivesPresent(env, &v, "A B C D E F G H I J "),
				},
			},
		},
	})
}

// TestAccBackupPrune_planListsExactlyWhatApplyDeletes: the plan lists the
// deletions by volid; the apply deletes exactly those. A backup named in
// managed_volids is held back until prune_managed is set. A new backup
// that shifts the marks shows up in the next plan.
func TestAccBackupPrune_planListsExactlyWhatApplyDeletes(t *testing.T) {
	t.Parallel()
	env := retentionEnv(t)
	// Built before the steps: their configurations name the volids.
	v := retentionHistory(t, env)
	config := func(extra string) string {
		return env.ProviderConfig() + fmt.Sprintf(`
resource "proxmoxapp_backup_prune" "p" {
  storage        = "local"
  vmid           = 100
  managed_volids = [%q]
%s
%s
}
`, v["B"], fixtureKeep, extra)
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config: config(""),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(pruneAddr, plancheck.ResourceActionCreate),
					plancheck.ExpectKnownValue(pruneAddr, tfjsonpath.New("deletions"), volidList(v, "H", "J")),
					plancheck.ExpectKnownValue(pruneAddr, tfjsonpath.New("held_back"), volidList(v, "B")),
				}},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(pruneAddr, tfjsonpath.New("deletions"), volidList(v, "H", "J")),
					statecheck.ExpectKnownValue(pruneAddr, tfjsonpath.New("node"), knownvalue.StringExact("pve1")),
					archivesPresent(env, &v, "A B C D E F G I "),
					statecheck.ExpectKnownValue(pruneAddr, tfjsonpath.New("pruned_at"), knownvalue.StringRegexp(rfc3339UTC)),
				},
			},
			{
				// Nothing more to delete (B is held): no change planned.
				Config:           config(""),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
			},
			{
				// A newer backup takes keep-last; A takes the hour, so C is
				// no longer kept: the plan says exactly that.
				PreConfig: func() {
					n, err := env.Sim.CopyBackup("pve1", v["A"], time.Date(2026, 3, 10, 13, 30, 0, 0, berlin))
					if err != nil {
						t.Fatal(err)
					}
					v["N"] = n
				},
				Config: config(""),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(pruneAddr, plancheck.ResourceActionUpdate),
					plancheck.ExpectKnownValue(pruneAddr, tfjsonpath.New("deletions"), volidList(v, "C")),
				}},
				ConfigStateChecks: []statecheck.StateCheck{archivesPresent(env, &v, "N A B D E F G I ")},
			},
			{
				// Told to: the managed backup goes too.
				Config: config("  prune_managed = true"),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectKnownValue(pruneAddr, tfjsonpath.New("deletions"), volidList(v, "B")),
					plancheck.ExpectKnownValue(pruneAddr, tfjsonpath.New("held_back"), knownvalue.ListExact([]knownvalue.Check{})),
				}},
				ConfigStateChecks: []statecheck.StateCheck{archivesPresent(env, &v, "N A D E F G I ")},
			},
			{
				// Destroying the resource deletes nothing.
				Config:            env.ProviderConfig(),
				ConfigStateChecks: []statecheck.StateCheck{archivesPresent(env, &v, "N A D E F G I ")},
			},
		},
	})
}

// TestAccBackupPrune_badPolicy: keep_all with keep_* fails at plan time,
// naming the attribute; the storage's own policy is used when none is given.
func TestAccBackupPrune_badPolicy(t *testing.T) {
	t.Parallel()
	env := retentionEnv(t)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config: env.ProviderConfig() + `
resource "proxmoxapp_backup_prune" "p" {
  storage   = "local"
  keep_all  = true
  keep_last = 3
}
`,
				ExpectError: regexp.MustCompile(`keep_all conflicts with keep_\*(.|\n)*cannot be combined with keep_last =\s+3`),
			},
			{
				Config: env.ProviderConfig() + `
data "proxmoxapp_backup_retention" "r" {
  storage = "local"
}
`,
				ExpectError: regexp.MustCompile(`no prune-backups options\s+configured for storage 'local'(.|\n)*set keep_\* here, or\s+prune-backups on the storage`),
			},
		},
	})
}

// TestAccBackupPrune_narrowToken: a read-only token may plan (the dry run
// needs Datastore.Audit) but not prune: the apply fails with PVE's
// permission error and every backup is still there.
func TestAccBackupPrune_narrowToken(t *testing.T) {
	t.Parallel()
	env := retentionEnv(t)
	v := retentionHistory(t, env)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config: env.ReadOnlyProviderConfig() + `
resource "proxmoxapp_backup_prune" "p" {
  storage = "local"
  vmid    = 100
` + fixtureKeep + `
}
`,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectKnownValue(pruneAddr, tfjsonpath.New("deletions"), volidList(v, "B", "H", "J")),
				}},
				ExpectError: regexp.MustCompile(`Prune failed(.|\n)*HTTP 403 Permission check failed\s+\(/storage/local,\s+Datastore.AllocateSpace\)`),
			},
			{
				Config:            env.ProviderConfig(),
				ConfigStateChecks: []statecheck.StateCheck{archivesPresent(env, &v, "A B C D E F G H I J ")},
			},
		},
	})
}
