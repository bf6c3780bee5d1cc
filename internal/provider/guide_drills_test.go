package provider

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/config"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/proxmoxapp/terraform-provider-proxmoxapp/internal/acctest"
	"github.com/proxmoxapp/terraform-provider-proxmoxapp/internal/pve"
)

// TestAccGuide_drillsAndRetention applies the guide's configuration as
// written: the first night drills the only backup and prunes nothing; the
// next night (a new backup, an old history) drills the new backup and the
// plan lists the deletions; destroying it deletes no backup.
func TestAccGuide_drillsAndRetention(t *testing.T) {
	t.Parallel()
	env := acctest.New(t)
	env.RequireSim(t)
	cfg := envConfig(env, exampleConfig(t, "examples/guides/drills-and-retention/main.tf"))
	c := env.Client(t)
	var first string
	var old []string
	backup := func() string {
		b, err := c.CreateBackup(context.Background(), pve.BackupOptions{VMID: 100, Storage: "local", Compress: "zstd"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		return b.Backup.VolID
	}
	fast := config.Variables{"settle": config.StringVariable("2s")} // the default 30s, shortened
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				PreConfig:       func() { first = backup() },
				Config:          cfg,
				ConfigVariables: fast,
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownOutputValue("drill_outcome", knownvalue.StringExact("passed")),
					statecheck.ExpectKnownOutputValue("pruned", knownvalue.ListExact([]knownvalue.Check{})),
					statecheck.ExpectKnownOutputValue("recovery_seconds", knownvalue.Float64Func(positive)),
					onlyDefaultGuests(env, 102),
				},
			},
			{
				// Next night: a new backup, and three backups taken on one
				// day nine months ago: daily keeps that day's newest only.
				PreConfig: func() {
					time.Sleep(1100 * time.Millisecond) // a new second: a new archive name
					backup()
					day := time.Now().AddDate(0, -9, 0)
					for _, h := range []int{1, 2, 3} {
						id, err := env.Sim.CopyBackup("pve1", first, time.Date(day.Year(), day.Month(), day.Day(), h, 0, 0, 0, time.Local))
						if err != nil {
							t.Fatal(err)
						}
						old = append(old, id)
					}
				},
				Config:          cfg,
				ConfigVariables: fast,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction("proxmoxapp_restore_drill.nightly", plancheck.ResourceActionDestroyBeforeCreate),
					plancheck.ExpectResourceAction("proxmoxapp_backup_prune.app", plancheck.ResourceActionUpdate),
				}},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownOutputValue("drill_outcome", knownvalue.StringExact("passed")),
					statecheck.ExpectKnownValue("proxmoxapp_backup_prune.app", tfjsonpath.New("held_back"), knownvalue.ListExact([]knownvalue.Check{})),
					statecheck.ExpectKnownOutputValue("recovery_seconds", knownvalue.Float64Func(positive)),
					onlyDefaultGuests(env, 102),
					// the two older of one day's three backups; the newest stays
					statecheck.ExpectKnownOutputValue("pruned", acctest.Lazy(func() knownvalue.Check {
						return knownvalue.ListExact([]knownvalue.Check{knownvalue.StringExact(old[0]), knownvalue.StringExact(old[1])})
					})),
					acctest.Check(env, func() error {
						for i, id := range old {
							_, err := os.Stat(env.ArchivePath("pve1", "local", strings.TrimPrefix(id, "local:backup/")))
							if gone := os.IsNotExist(err); gone != (i < 2) {
								return fmt.Errorf("%s: gone=%v", id, gone)
							}
						}
						return nil
					}),
				},
			},
		},
	})
}

// positive is a knownvalue.Float64Func check for a value above zero.
func positive(v float64) error {
	if v <= 0 {
		return fmt.Errorf("%v is not positive", v)
	}
	return nil
}
