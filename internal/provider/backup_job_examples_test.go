package provider

import (
	"context"
	"fmt"
	tfjson "github.com/hashicorp/terraform-json"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/config"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/proxmoxapp/terraform-provider-proxmoxapp/internal/acctest"
)

// TestAccBackupJob_examplesApply applies the backup-job examples as written:
// the resource example, then with the two data-source examples next to it,
// then destroys them.
func TestAccBackupJob_examplesApply(t *testing.T) {
	t.Parallel()
	env := acctest.New(t)
	env.RequireSim(t)
	res := exampleConfig(t, "examples/resources/proxmoxapp_backup_job/resource.tf")
	withData := res + exampleConfig(t, "examples/data-sources/proxmoxapp_backup_job_coverage/data-source.tf") +
		exampleConfig(t, "examples/data-sources/proxmoxapp_backup_job_results/data-source.tf")
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6ProviderFactories,
		CheckDestroy:             noJobsLeft(t, env),
		Steps: []resource.TestStep{
			{
				Config: env.ProviderConfig() + res,
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("proxmoxapp_backup_job.nightly", tfjsonpath.New("retention").AtMapKey("keep_monthly"), knownvalue.Int64Exact(6)),
					statecheck.ExpectKnownValue("proxmoxapp_backup_job.weekly_all", tfjsonpath.New("all"), knownvalue.Bool(true)),
				},
			},
			{
				Config: env.ProviderConfig() + withData,
				ConfigStateChecks: []statecheck.StateCheck{
					// every default guest is in a job: 100 and 101 nightly, all but 200 weekly
					statecheck.ExpectKnownValue("data.proxmoxapp_backup_job_coverage.cluster", tfjsonpath.New("not_backed_up_vmids"),
						knownvalue.ListExact([]knownvalue.Check{knownvalue.Int64Exact(200)})),
					statecheck.ExpectKnownValue("data.proxmoxapp_backup_job_results.nightly", tfjsonpath.New("runs"), knownvalue.ListSizeExact(0)),
				},
			},
		},
	})
}

// TestAccBackupJob_guideApply applies the nightly-backups guide as written,
// changes its storage in place, and destroys it.
func TestAccBackupJob_guideApply(t *testing.T) {
	t.Parallel()
	env := acctest.New(t)
	env.RequireSim(t)
	// The test factories serve the provider under hashicorp/proxmoxapp, so the
	// guide's terraform block (source proxmoxapp/proxmoxapp) is left out.
	guide := envConfig(env, exampleConfig(t, "examples/guides/nightly-backups/main.tf"))
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6ProviderFactories,
		CheckDestroy:             noJobsLeft(t, env),
		Steps: []resource.TestStep{
			{
				Config: guide,
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("proxmoxapp_backup_job.nightly", tfjsonpath.New("storage"), knownvalue.StringExact("local")),
				},
			},
			{
				Config:          guide,
				ConfigVariables: config.Variables{"backup_storage": config.StringVariable("nas")},
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction("proxmoxapp_backup_job.nightly", plancheck.ResourceActionUpdate),
				}},
				ConfigStateChecks: []statecheck.StateCheck{
					acctest.StateCheck(func(*tfjson.State) error {
						j, err := env.Client(t).GetBackupJob(context.Background(), "apps-nightly")
						if err != nil || j.Options["storage"] != "nas" {
							return fmt.Errorf("job after the change: %v %v", j, err)
						}
						return nil
					}),
				},
			},
		},
	})
}

func noJobsLeft(t *testing.T, env *acctest.Env) resource.TestCheckFunc {
	return func(*terraform.State) error {
		jobs, err := env.Client(t).ListBackupJobs(context.Background())
		if err != nil || len(jobs) != 0 {
			return fmt.Errorf("jobs left on PVE after destroy: %v %v", jobs, err)
		}
		return nil
	}
}
