package provider

import (
	"context"
	"errors"
	"fmt"
	tfjson "github.com/hashicorp/terraform-json"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/proxmoxapp/terraform-provider-proxmoxapp/internal/acctest"
	"github.com/proxmoxapp/terraform-provider-proxmoxapp/internal/pve"
)

const jobAddr = "proxmoxapp_backup_job.test"

var reRFC3339 = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$`)

func jobConfig(env *acctest.Env, body string) string {
	return env.ProviderConfig() + fmt.Sprintf(`
resource "proxmoxapp_backup_job" "test" {
  job_id  = "tf-acc-nightly"
  storage = %q
%s
}
`, env.Storage, body)
}

// jobOnPVE reads the test's job as PVE holds it, for checks on the server side.
func jobOnPVE(t *testing.T, env *acctest.Env) (*pve.BackupJob, error) {
	t.Helper()
	return env.Client(t).GetBackupJob(context.Background(), "tf-acc-nightly")
}

// TestAccBackupJob_lifecycle: create, no-op re-plan, in-place update that also
// removes settings (PVE's delete), import, destroy.
func TestAccBackupJob_lifecycle(t *testing.T) {
	t.Parallel()
	env := acctest.New(t)
	env.RequireSim(t) // uses the simulator's fixed guests 100/101
	create := `  vmids          = [100]
  schedule       = "02:30"
  comment        = "apps, nightly"
  compress       = "zstd"
  notes_template = "{{guestname}} nightly"
  retention = {
    keep_last  = 2
    keep_daily = 7
  }`
	update := `  all      = true
  exclude  = [101]
  schedule = "sat 03:00"
  enabled  = false
  mode     = "stop"`
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6ProviderFactories,
		CheckDestroy: func(*terraform.State) error {
			if _, err := jobOnPVE(t, env); !errors.Is(err, pve.ErrJobNotFound) {
				return fmt.Errorf("job still on PVE after destroy (err %v)", err)
			}
			return nil
		},
		Steps: []resource.TestStep{
			{
				Config: jobConfig(env, create),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(jobAddr, tfjsonpath.New("id"), knownvalue.StringExact("tf-acc-nightly")),
					statecheck.ExpectKnownValue(jobAddr, tfjsonpath.New("enabled"), knownvalue.Bool(true)),
					statecheck.ExpectKnownValue(jobAddr, tfjsonpath.New("vmids"), knownvalue.SetExact([]knownvalue.Check{knownvalue.Int64Exact(100)})),
					statecheck.ExpectKnownValue(jobAddr, tfjsonpath.New("retention").AtMapKey("keep_daily"), knownvalue.Int64Exact(7)),
					statecheck.ExpectKnownValue(jobAddr, tfjsonpath.New("retention").AtMapKey("keep_all"), knownvalue.Null()),
					statecheck.ExpectKnownValue(jobAddr, tfjsonpath.New("next_run"), knownvalue.StringRegexp(reRFC3339)),
					jobOnPVEIs(t, env, func(j *pve.BackupJob) error {
						o := j.Options
						if o["vmid"] != "100" || o["prune-backups"] != "keep-daily=7,keep-last=2" || o["comment"] != "apps, nightly" ||
							o["compress"] != "zstd" || o["notes-template"] != "{{guestname}} nightly" || o["storage"] != env.Storage || o["enabled"] != "1" {
							return fmt.Errorf("job on PVE: %v", o)
						}
						if got := j.NextRun.In(time.Local).Format("15:04"); got != "02:30" {
							return fmt.Errorf("next-run %v is not at 02:30", j.NextRun)
						}
						return nil
					}),
				},
			},
			{
				Config:           jobConfig(env, create),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
			},
			{
				// Comment, retention, compress and notes go away; the selection
				// switches to all-but-101; schedule, mode and enabled change.
				Config: jobConfig(env, update),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(jobAddr, plancheck.ResourceActionUpdate),
				}},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(jobAddr, tfjsonpath.New("comment"), knownvalue.Null()),
					statecheck.ExpectKnownValue(jobAddr, tfjsonpath.New("retention"), knownvalue.Null()),
					statecheck.ExpectKnownValue(jobAddr, tfjsonpath.New("vmids"), knownvalue.Null()),
					statecheck.ExpectKnownValue(jobAddr, tfjsonpath.New("all"), knownvalue.Bool(true)),
					statecheck.ExpectKnownValue(jobAddr, tfjsonpath.New("enabled"), knownvalue.Bool(false)),
					jobOnPVEIs(t, env, func(j *pve.BackupJob) error {
						o := j.Options
						for _, gone := range []string{"comment", "prune-backups", "compress", "notes-template", "vmid"} {
							if _, ok := o[gone]; ok {
								return fmt.Errorf("%s left behind on PVE: %v", gone, o)
							}
						}
						if o["all"] != "1" || o["exclude"] != "101" || o["schedule"] != "sat 03:00" || o["enabled"] != "0" || o["mode"] != "stop" {
							return fmt.Errorf("job on PVE after update: %v", o)
						}
						return nil
					}),
				},
			},
			{
				// A comment added in the GUI is drift: the next apply removes it again.
				PreConfig: func() {
					if err := env.Client(t).UpdateBackupJob(context.Background(), "tf-acc-nightly",
						map[string]string{"comment": "added in the GUI"}, nil, nil); err != nil {
						t.Fatal(err)
					}
				},
				Config: jobConfig(env, update),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(jobAddr, plancheck.ResourceActionUpdate),
				}},
				ConfigStateChecks: []statecheck.StateCheck{
					jobOnPVEIs(t, env, func(j *pve.BackupJob) error {
						if c, ok := j.Options["comment"]; ok {
							return fmt.Errorf("the GUI's comment %q is still on PVE", c)
						}
						return nil
					}),
				},
			},
			{
				ResourceName:      jobAddr,
				ImportState:       true,
				ImportStateId:     "tf-acc-nightly",
				ImportStateVerify: true,
			},
			{
				// Deleted outside Terraform: dropped from state with a warning, planned again.
				PreConfig: func() {
					if err := env.Client(t).DeleteBackupJob(context.Background(), "tf-acc-nightly"); err != nil {
						t.Fatal(err)
					}
				},
				Config:             jobConfig(env, update),
				PlanOnly:           true,
				ExpectNonEmptyPlan: true,
			},
		},
	})
}

// TestAccBackupJob_narrowToken: a token that may only audit cannot create a
// job; the error names PVE's privilege and nothing is left on PVE.
func TestAccBackupJob_narrowToken(t *testing.T) {
	t.Parallel()
	env := acctest.New(t)
	env.RequireSim(t)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6ProviderFactories,
		CheckDestroy:             noJobsLeft(t, env),
		Steps: []resource.TestStep{{
			Config: env.ReadOnlyProviderConfig() + `
resource "proxmoxapp_backup_job" "test" {
  job_id   = "tf-acc-denied"
  storage  = "local"
  vmids    = [100]
  schedule = "daily"
}
`,
			ExpectError: wrapped(`Unable to create backup job`, `HTTP 403 Permission check failed (/, Sys.Modify)`),
		}},
	})
}

// TestAccBackupJob_scheduledRunResults: the simulator's scheduler runs the job
// at its time; the results data source reports each guest's outcome and archive.
func TestAccBackupJob_scheduledRunResults(t *testing.T) {
	t.Parallel()
	env := acctest.New(t)
	env.RequireSim(t)
	env.Sim.SetClock(time.Date(2030, 3, 4, 2, 28, 0, 0, time.Local))
	job := jobConfig(env, `  vmids    = [100, 101]
  schedule = "02:30"
  compress = "zstd"
  retention = { keep_last = 1 }`)
	results := job + `
data "proxmoxapp_backup_job_results" "nightly" {
  job_id = proxmoxapp_backup_job.test.job_id
}
`
	const ds = "data.proxmoxapp_backup_job_results.nightly"
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config: job,
				ConfigStateChecks: []statecheck.StateCheck{
					// 101 (on pve2) fails halfway; then it is 02:31 and the scheduler runs the job
					acctest.Check(env, func() error {
						env.Sim.FailTask("vzdump", 101, "I/O error on the source disk")
						upids := env.Sim.AdvanceClock(3 * time.Minute)
						if len(upids) != 2 {
							return fmt.Errorf("scheduler started %v, want one task on each of pve1 and pve2", upids)
						}
						return waitJobRuns(t, env, "tf-acc-nightly", 2)
					}),
				},
			},
			{
				Config: results,
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(ds, tfjsonpath.New("runs"), knownvalue.ListSizeExact(2)),
					statecheck.ExpectKnownValue(ds, tfjsonpath.New("latest_by_vmid").AtMapKey("100").AtMapKey("status"), knownvalue.StringExact("ok")),
					statecheck.ExpectKnownValue(ds, tfjsonpath.New("latest_by_vmid").AtMapKey("100").AtMapKey("volid"),
						knownvalue.StringRegexp(regexp.MustCompile(`^local:backup/vzdump-lxc-100-2\d{3}_\d\d_\d\d-\d\d_\d\d_\d\d\.tar\.zst$`))),
					statecheck.ExpectKnownValue(ds, tfjsonpath.New("latest_by_vmid").AtMapKey("101").AtMapKey("status"), knownvalue.StringExact("failed")),
					statecheck.ExpectKnownValue(ds, tfjsonpath.New("latest_by_vmid").AtMapKey("101").AtMapKey("error"),
						knownvalue.StringRegexp(regexp.MustCompile(`I/O error on the source disk`))),
					statecheck.ExpectKnownValue(ds, tfjsonpath.New("latest").AtMapKey("user"), knownvalue.StringExact("root@pam")),
					// each node's run: pve1's backed up 100, pve2's failed on 101
					statecheck.ExpectKnownValue(ds, tfjsonpath.New("runs"), listHas(knownvalue.ObjectPartial(map[string]knownvalue.Check{
						"node": knownvalue.StringExact("pve1"), "status": knownvalue.StringExact("ok"),
						"exit_status": knownvalue.StringFunc(func(v string) error {
							if v == "job errors" {
								return fmt.Errorf("exit status %q for a run that went ok", v)
							}
							return nil
						}),
					}))),
					statecheck.ExpectKnownValue(ds, tfjsonpath.New("runs"), listHas(knownvalue.ObjectPartial(map[string]knownvalue.Check{
						"node": knownvalue.StringExact("pve2"), "status": knownvalue.StringExact("failed"), "exit_status": knownvalue.StringExact("job errors"),
					}))),
					// the archive the results name is on the storage
					acctest.StateCheck(func(s *tfjson.State) error {
						a, err := acctest.Attrs(s, ds)
						if err != nil {
							return err
						}
						latest, _ := a["latest_by_vmid"].(map[string]any)
						run, _ := latest["100"].(map[string]any)
						volid, _ := run["volid"].(string)
						archive := env.ArchivePath("pve1", "local", strings.TrimPrefix(volid, "local:backup/"))
						if fi, err := os.Stat(archive); err != nil || fi.Size() == 0 {
							return fmt.Errorf("the archive the results name is not on the storage: %v", err)
						}
						return nil
					}),
				},
			},
		},
	})
}

// jobOnPVEIs is a state check on the job as PVE has it (read with the
// test's own client).
func jobOnPVEIs(t *testing.T, env *acctest.Env, check func(j *pve.BackupJob) error) statecheck.StateCheck {
	return acctest.StateCheck(func(*tfjson.State) error {
		j, err := jobOnPVE(t, env)
		if err != nil {
			return err
		}
		return check(j)
	})
}

// waitJobRuns waits until n runs of the job have finished.
func waitJobRuns(t *testing.T, env *acctest.Env, id string, n int) error {
	c := env.Client(t)
	ctx := context.Background()
	j, err := c.GetBackupJob(ctx, id)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		runs, err := c.BackupJobRuns(ctx, j, 10, 50)
		if err != nil {
			return err
		}
		done := 0
		for _, r := range runs {
			if !r.Running {
				done++
			}
		}
		if done >= n {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("job %s: %d runs did not finish in time", id, n)
}

// TestAccBackupJobCoverage_failsThenPasses: a postcondition on the coverage
// data source fails the plan while app 100 has no job, and passes once it has.
func TestAccBackupJobCoverage_failsThenPasses(t *testing.T) {
	t.Parallel()
	env := acctest.New(t)
	env.RequireSim(t)
	coverage := `
data "proxmoxapp_backup_job_coverage" "all" {
  depends_on = [%s]
  lifecycle {
    postcondition {
      condition     = !contains(self.not_backed_up_vmids, 100)
      error_message = "app 100 is not backed up by any backup job"
    }
  }
}
`
	const ds = "data.proxmoxapp_backup_job_coverage.all"
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config:      env.ProviderConfig() + fmt.Sprintf(coverage, ""),
				ExpectError: regexp.MustCompile(`app 100 is not backed up by any backup job`),
			},
			{
				Config: jobConfig(env, `  vmids    = [100]
  schedule = "daily"`) + fmt.Sprintf(coverage, jobAddr),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(ds, tfjsonpath.New("not_backed_up_vmids"),
						knownvalue.ListExact([]knownvalue.Check{knownvalue.Int64Exact(101), knownvalue.Int64Exact(200)})),
					statecheck.ExpectKnownValue(ds, tfjsonpath.New("covered_vmids"), knownvalue.ListExact([]knownvalue.Check{knownvalue.Int64Exact(100)})),
					statecheck.ExpectKnownValue(ds, tfjsonpath.New("jobs").AtSliceIndex(0).AtMapKey("guests").AtSliceIndex(0).AtMapKey("volumes").AtSliceIndex(0),
						knownvalue.ObjectExact(map[string]knownvalue.Check{
							"key": knownvalue.StringExact("rootfs"), "volume": knownvalue.StringExact("local-lvm:vm-100-disk-0"),
							"included": knownvalue.Bool(true), "reason": knownvalue.StringExact("rootfs"),
						})),
					statecheck.ExpectKnownValue(ds, tfjsonpath.New("not_backed_up").AtSliceIndex(0), knownvalue.ObjectExact(map[string]knownvalue.Check{
						"vmid": knownvalue.Int64Exact(101), "type": knownvalue.StringExact("lxc"), "name": knownvalue.StringExact("db"),
					})),
				},
			},
		},
	})
}

// TestAccBackupJob_planTimeErrors: bad schedules, retention and selections
// fail at plan time, and nothing reaches PVE; a rejection by PVE at apply
// leaves no job behind.
func TestAccBackupJob_planTimeErrors(t *testing.T) {
	t.Parallel()
	env := acctest.New(t)
	env.RequireSim(t)
	env.Sim.ResetCounters()
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config:      jobConfig(env, "  vmids = [100]\n  schedule = \"0 2 * * *\""),
				PlanOnly:    true,
				ExpectError: wrapped(`Invalid schedule`, `schedule "0 2 * * *" is not a Proxmox VE calendar event`, `unable to parse calendar event at ' 2 * * *' - Nom(Eof)`),
			},
			{
				Config:      jobConfig(env, "  vmids = [100]\n  schedule = \"nightly\""),
				PlanOnly:    true,
				ExpectError: wrapped(`Invalid schedule`, `at 'nightly' - Context("weekday")`),
			},
			{
				Config:      jobConfig(env, "  vmids = [100]\n  schedule = \"daily\"\n  retention = {\n    keep_all = true\n    keep_last = 3\n  }"),
				PlanOnly:    true,
				ExpectError: wrapped(`retention.keep_all = true conflicts with retention.keep_last = 3`, `keep-all cannot be set together`),
			},
			{
				Config:      jobConfig(env, "  vmids = [100]\n  schedule = \"daily\"\n  retention = { keep_daily = 0 }"),
				PlanOnly:    true,
				ExpectError: wrapped(`retention.keep_daily`, `at least 1, got: 0`),
			},
			{
				Config:      jobConfig(env, "  vmids = [100]\n  all = true\n  schedule = \"daily\""),
				PlanOnly:    true,
				ExpectError: wrapped(`Conflicting guest selection`, `vmids and all are both set`),
			},
			{
				Config:      jobConfig(env, "  schedule = \"daily\""),
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`No guests selected`),
			},
			{
				PreConfig: func() {
					if n := env.Sim.Counters()["POST /cluster/backup"]; n != 0 {
						t.Errorf("plan-time errors sent %d job creations to PVE", n)
					}
				},
				// PVE rejects an unknown pool at apply: the error says so and no job is left
				Config:      jobConfig(env, "  pool = \"no-such-pool\"\n  schedule = \"daily\""),
				ExpectError: wrapped(`Unable to create backup job`, `HTTP 403 Permission check failed (pool 'no-such-pool' does not exist)`),
			},
		},
		CheckDestroy: func(*terraform.State) error {
			jobs, err := env.Client(t).ListBackupJobs(context.Background())
			if err != nil || len(jobs) != 0 {
				return fmt.Errorf("jobs left on PVE: %v %v", jobs, err)
			}
			return nil
		},
	})
}

// wrapped matches the parts in order, each allowing Terraform's line wrapping
// wherever it has a space.
func wrapped(parts ...string) *regexp.Regexp {
	q := make([]string, len(parts))
	for i, p := range parts {
		q[i] = strings.Join(strings.Fields(regexp.QuoteMeta(p)), `\s+`)
	}
	return regexp.MustCompile(`(?s)` + strings.Join(q, `.*`))
}
