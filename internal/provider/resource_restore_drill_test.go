package provider

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	tfjson "github.com/hashicorp/terraform-json"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/compare"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/proxmoxapp/terraform-provider-proxmoxapp/internal/acctest"
	"github.com/proxmoxapp/terraform-provider-proxmoxapp/internal/pve"
	"github.com/proxmoxapp/terraform-provider-proxmoxapp/internal/pvesim"
)

const drillAddr = "proxmoxapp_restore_drill.d"

var reDrillTask = func(vmid int) *regexp.Regexp {
	return regexp.MustCompile(fmt.Sprintf(`^UPID:pve1:[0-9A-F]{8}:[0-9A-F]{8,9}:[0-9A-F]{8}:vzrestore:%d:root@pam!terraform:$`, vmid))
}

// drillConfig: a backup "b" of guest 100 and a drill of it with extra arguments.
func drillConfig(env *acctest.Env, args string) string {
	return env.ProviderConfig() + fmt.Sprintf(`
resource "proxmoxapp_backup" "b" {
  vmid    = 100
  storage = "local"
}

resource "proxmoxapp_restore_drill" "d" {
  backup = proxmoxapp_backup.b.volid
  settle = "1s"
%s
}

output "recovery_seconds" {
  value = proxmoxapp_restore_drill.d.recovery_seconds
}
`, args)
}

// onlyDefaultGuests checks that no scratch guest is left: the simulator
// holds its three guests, 100 still running.
func onlyDefaultGuests(env *acctest.Env, scratch ...int) statecheck.StateCheck {
	return acctest.Check(env, func() error { return defaultGuestsOnly(env, scratch...) })
}

func defaultGuestsOnly(env *acctest.Env, scratch ...int) error {
	for _, v := range scratch {
		if _, ok := env.Sim.GuestState(v); ok {
			return fmt.Errorf("scratch guest %d is still there", v)
		}
	}
	if g, ok := env.Sim.GuestState(100); !ok || g.Status != "running" || g.Lock != "" {
		return fmt.Errorf("the original guest 100 is %+v", g)
	}
	for _, v := range []int{101, 200} {
		if _, ok := env.Sim.GuestState(v); !ok {
			return fmt.Errorf("guest %d vanished", v)
		}
	}
	return nil
}

// drillTimings checks 0 < restore_seconds <= recovery_seconds, the size,
// and that the recovery_seconds output shows the attribute.
func drillTimings() statecheck.StateCheck {
	return acctest.StateCheck(func(s *tfjson.State) error {
		a, err := acctest.Attrs(s, drillAddr)
		if err != nil {
			return err
		}
		restore, recovery := acctest.Float64(a["restore_seconds"]), acctest.Float64(a["recovery_seconds"])
		size := acctest.Int64(a["restored_bytes"])
		if !(restore > 0) || !(recovery >= restore) || size <= 0 {
			return fmt.Errorf("restore_seconds %v, recovery_seconds %v, restored_bytes %v", a["restore_seconds"], a["recovery_seconds"], a["restored_bytes"])
		}
		if out := s.Values.Outputs["recovery_seconds"]; out == nil || acctest.Float64(out.Value) != recovery {
			return fmt.Errorf("output recovery_seconds %v, attribute %v", out, a["recovery_seconds"])
		}
		return nil
	})
}

// TestAccRestoreDrill_passes drills a container backup into the next free
// vmid: it passes, the timings and size are recorded, the scratch guest is
// gone and the original untouched. An unchanged config plans nothing; a new
// trigger drills again.
func TestAccRestoreDrill_passes(t *testing.T) {
	t.Parallel()
	env := acctest.New(t)
	env.RequireSim(t)
	sameTask := statecheck.CompareValue(compare.ValuesDiffer())
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config: drillConfig(env, `  triggers = { night = "1" }`),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(drillAddr, tfjsonpath.New("outcome"), knownvalue.StringExact("passed")),
					statecheck.ExpectKnownValue(drillAddr, tfjsonpath.New("failed_step"), knownvalue.Null()),
					statecheck.ExpectKnownValue(drillAddr, tfjsonpath.New("failure_reason"), knownvalue.Null()),
					statecheck.ExpectKnownValue(drillAddr, tfjsonpath.New("vmid"), knownvalue.Int64Exact(102)),
					statecheck.ExpectKnownValue(drillAddr, tfjsonpath.New("node"), knownvalue.StringExact("pve1")),
					statecheck.ExpectKnownValue(drillAddr, tfjsonpath.New("connect_network"), knownvalue.Bool(false)),
					statecheck.ExpectKnownValue(drillAddr, tfjsonpath.New("task_id"), knownvalue.StringRegexp(reDrillTask(102))),
					sameTask.AddStateValue(drillAddr, tfjsonpath.New("task_id")),
					statecheck.ExpectKnownValue(drillAddr, tfjsonpath.New("ran_at"), knownvalue.StringRegexp(rfc3339UTC)),
					drillTimings(),
					onlyDefaultGuests(env, 102),
				},
			},
			{
				Config:           drillConfig(env, `  triggers = { night = "1" }`),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
			},
			{
				Config: drillConfig(env, `  triggers = { night = "2" }`),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(drillAddr, plancheck.ResourceActionDestroyBeforeCreate),
				}},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(drillAddr, tfjsonpath.New("outcome"), knownvalue.StringExact("passed")),
					sameTask.AddStateValue(drillAddr, tfjsonpath.New("task_id")), // a new restore task
					drillTimings(),
					onlyDefaultGuests(env, 102),
				},
			},
		},
	})
}

// TestAccRestoreDrill_failing: the scratch guest cannot start. Without
// fail_on_error the failure is the recorded result (apply succeeds); with it
// the apply fails. Either way the scratch guest is destroyed.
func TestAccRestoreDrill_failing(t *testing.T) {
	t.Parallel()
	env := acctest.New(t)
	env.RequireSim(t)
	const msg = "startup for container '102' failed"
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				PreConfig: func() { env.Sim.FailTask("vzstart", 0, msg) },
				Config:    drillConfig(env, `  triggers = { night = "1" }`),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(drillAddr, tfjsonpath.New("outcome"), knownvalue.StringExact("failed")),
					statecheck.ExpectKnownValue(drillAddr, tfjsonpath.New("failed_step"), knownvalue.StringExact("start")),
					statecheck.ExpectKnownValue(drillAddr, tfjsonpath.New("failure_reason"), knownvalue.StringRegexp(regexp.MustCompile(regexp.QuoteMeta(msg)))),
					statecheck.ExpectKnownValue(drillAddr, tfjsonpath.New("recovery_seconds"), knownvalue.Null()),
					statecheck.ExpectKnownValue(drillAddr, tfjsonpath.New("vmid"), knownvalue.Int64Exact(102)),
					onlyDefaultGuests(env, 102),
				},
			},
			{
				// fail_on_error changes in place: the recorded failure stays, nothing runs.
				Config: drillConfig(env, `  triggers = { night = "1" }
  fail_on_error = true`),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(drillAddr, plancheck.ResourceActionUpdate),
				}},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(drillAddr, tfjsonpath.New("outcome"), knownvalue.StringExact("failed")),
				},
			},
			{
				PreConfig: func() { env.Sim.FailTask("vzstart", 0, msg) },
				Config: drillConfig(env, `  triggers = { night = "2" }
  fail_on_error = true`),
				ExpectError: regexp.MustCompile(`Restore drill of local:backup/vzdump-lxc-100-\S+ failed at step "start"(.|\n)*startup for container '102'(.|\n)*failed`),
			},
			{
				// the failed drill is tainted: the next apply drills again, and passes
				PreConfig: func() {
					if err := defaultGuestsOnly(env, 102); err != nil {
						t.Fatal(err)
					}
				},
				Config: drillConfig(env, `  triggers = { night = "2" }
  fail_on_error = true`),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(drillAddr, tfjsonpath.New("outcome"), knownvalue.StringExact("passed")),
					onlyDefaultGuests(env, 102),
				},
			},
		},
	})
}

// TestAccRestoreDrill_interruptedThenRerun: the drill cannot destroy its
// scratch guest (the destroy task fails), so the apply fails and the guest
// stays, tagged. The next apply removes it and drills again cleanly.
func TestAccRestoreDrill_interruptedThenRerun(t *testing.T) {
	t.Parallel()
	env := acctest.New(t)
	env.RequireSim(t)
	cfg := drillConfig(env, `  vmid = 900`)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				PreConfig:   func() { env.Sim.FailTask("vzdestroy", 900, "zfs error: dataset is busy") },
				Config:      cfg,
				ExpectError: regexp.MustCompile(`Restore drill left its scratch guest behind(.|\n)*scratch guest 900 on node pve1 could not(.|\n)*be destroyed(.|\n)*dataset is busy`),
			},
			{
				PreConfig: func() {
					conf, ok := env.Sim.GuestConfigText(900)
					if !ok || !strings.Contains(conf, "tags: "+pve.DrillTag) {
						t.Fatalf("the left-behind scratch guest 900 is not there or not tagged:\n%s", conf)
					}
				},
				Config: cfg,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(drillAddr, plancheck.ResourceActionDestroyBeforeCreate),
				}},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(drillAddr, tfjsonpath.New("outcome"), knownvalue.StringExact("passed")),
					statecheck.ExpectKnownValue(drillAddr, tfjsonpath.New("vmid"), knownvalue.Int64Exact(900)),
					statecheck.ExpectKnownValue(drillAddr, tfjsonpath.New("task_id"), knownvalue.StringRegexp(reDrillTask(900))),
					onlyDefaultGuests(env, 900),
				},
			},
		},
	})
}

// TestAccRestoreDrill_refusesExistingOrOriginalVMID: at plan time, with the
// attribute named; nothing is created and guest 101 is untouched.
func TestAccRestoreDrill_refusesExistingOrOriginalVMID(t *testing.T) {
	t.Parallel()
	env := acctest.New(t)
	env.RequireSim(t)
	before, _ := env.Sim.GuestConfigText(101)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config:      drillConfig(env, `  vmid = 101`),
				ExpectError: regexp.MustCompile(`Scratch vmid exists(.|\n)*guest 101 already exists \(lxc on node pve2, stopped\)`),
			},
			{
				Config:      drillConfig(env, `  vmid = 100`),
				ExpectError: regexp.MustCompile(`Scratch vmid is the original guest(.|\n)*vmid 100 is the guest`),
			},
			{
				Config: env.ProviderConfig(),
				ConfigStateChecks: []statecheck.StateCheck{
					acctest.Check(env, func() error {
						if after, _ := env.Sim.GuestConfigText(101); after != before {
							return fmt.Errorf("guest 101 changed")
						}
						return nil
					}),
				},
			},
		},
	})
}

// TestAccRestoreDrill_missingBackup: a backup that is gone is a failed
// drill at "check backup"; nothing is created, the configured vmid stays.
func TestAccRestoreDrill_missingBackup(t *testing.T) {
	t.Parallel()
	env := acctest.New(t)
	env.RequireSim(t)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config: env.ProviderConfig() + `
resource "proxmoxapp_restore_drill" "d" {
  backup = "local:backup/vzdump-lxc-100-2020_01_01-00_00_00.tar.zst"
  node   = "pve1"
  vmid   = 950
}
`,
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(drillAddr, tfjsonpath.New("outcome"), knownvalue.StringExact("failed")),
					statecheck.ExpectKnownValue(drillAddr, tfjsonpath.New("failed_step"), knownvalue.StringExact("check backup")),
					statecheck.ExpectKnownValue(drillAddr, tfjsonpath.New("failure_reason"),
						knownvalue.StringRegexp(regexp.MustCompile(`backup local:backup/vzdump-lxc-100-2020_01_01-00_00_00\.tar\.zst does not exist`))),
					statecheck.ExpectKnownValue(drillAddr, tfjsonpath.New("vmid"), knownvalue.Int64Exact(950)),
					statecheck.ExpectKnownValue(drillAddr, tfjsonpath.New("task_id"), knownvalue.Null()),
					statecheck.ExpectKnownValue(drillAddr, tfjsonpath.New("restore_seconds"), knownvalue.Null()),
					onlyDefaultGuests(env, 950),
				},
			},
		},
	})
}

// TestAccRestoreDrill_narrowTokenAndTimeout: a read-only token cannot run a
// drill (an error, not a failed drill, and nothing is created); a drill
// that outlives its create timeout is stopped and its scratch guest destroyed.
func TestAccRestoreDrill_narrowTokenAndTimeout(t *testing.T) {
	t.Parallel()
	cfg := pvesim.DefaultConfig()
	// may read guest 100's backups, but not create guests
	cfg.Users = append(cfg.Users, pvesim.UserConfig{ID: "drill@pve", ACL: []pvesim.ACLEntry{
		{Path: "/storage", Roles: []string{"PVEDatastoreUser"}},
		{Path: "/vms/100", Privs: []string{"VM.Backup", "VM.Audit"}},
	}, Tokens: []pvesim.TokenConfig{{ID: "drill", Secret: "6f1c2a9e-0d3b-4c1e-9a57-2b8d4e7f1a30"}}})
	env := acctest.NewWithConfig(t, cfg)
	env.RequireSim(t)
	narrow := fmt.Sprintf("provider \"proxmoxapp\" {\n  endpoint  = %q\n  api_token = %q\n  ca_cert   = <<-EOT\n%s\n  EOT\n}\n",
		env.Sim.Endpoint(), env.Sim.Token("drill@pve!drill"), strings.TrimSpace(string(env.Sim.CAPEM())))
	b, err := env.Client(t).CreateBackup(context.Background(), pve.BackupOptions{VMID: 100, Storage: "local"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	drill := func(provider, args string) string {
		return provider + fmt.Sprintf(`
resource "proxmoxapp_restore_drill" "d" {
  backup = %q
%s
}
`, b.Backup.VolID, args)
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config: drill(narrow, ""),
				// PVE's restore answers a bare 403 for the VM.Allocate rule
				ExpectError: regexp.MustCompile(`Restore drill not permitted(.|\n)*HTTP 403 Permission check failed\)(.|\n)*needs\s+VM.Allocate`),
			},
			{
				PreConfig: func() {
					if err := defaultGuestsOnly(env, 102); err != nil {
						t.Fatal(err)
					}
				},
				Config: drill(env.ProviderConfig(), `  settle   = "1m"
  timeouts = { create = "3s" }`),
				ExpectError: regexp.MustCompile(`Restore drill interrupted(.|\n)*did not\s+finish: the create timeout \(3s\) ran out(.|\n)*has\s+been\s+destroyed`),
			},
			{
				PreConfig: func() {
					if err := defaultGuestsOnly(env, 102); err != nil {
						t.Fatal(err)
					}
				},
				Config: env.ProviderConfig(),
			},
		},
	})
}

// plantScratch makes the guest a killed drill would leave: restored from
// volid, tagged, with the drill's description and the given deadline.
func plantScratch(t *testing.T, env *acctest.Env, vmid int, volid string, deadline time.Time) {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(env.Sim.CAPEM())
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	form := url.Values{"vmid": {strconv.Itoa(vmid)}, "ostemplate": {volid}, "restore": {"1"}, "storage": {"local-lvm"},
		"tags": {pve.DrillTag}, "description": {"proxmoxapp restore drill: scratch copy of " + volid + "; destroy after " + deadline.UTC().Format(time.RFC3339)}}
	req, _ := http.NewRequest("POST", env.Sim.Endpoint()+"api2/json/nodes/pve1/lxc", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", "PVEAPIToken="+env.Sim.APIToken())
	res, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("planting %d: %s", vmid, res.Status)
	}
	for i := 0; i < 200; i++ {
		if g, ok := env.Sim.GuestState(vmid); ok && g.Lock == "" {
			if conf, _ := env.Sim.GuestConfigText(vmid); strings.Contains(conf, pve.DrillTag) {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("planted guest %d did not finish restoring", vmid)
}

// TestAccRestoreDrill_killedThenRerun: Terraform was killed mid-drill and
// left scratch guests. The re-run on the same vmid removes the one there at
// once, and one whose deadline has passed; one within its deadline (another
// drill may be running) and a guest without the marker are left alone.
func TestAccRestoreDrill_killedThenRerun(t *testing.T) {
	t.Parallel()
	env := acctest.New(t)
	env.RequireSim(t)
	b, err := env.Client(t).CreateBackup(context.Background(), pve.BackupOptions{VMID: 100, Storage: "local"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				PreConfig: func() {
					plantScratch(t, env, 900, b.Backup.VolID, time.Now().Add(time.Hour))    // the killed drill's own vmid
					plantScratch(t, env, 901, b.Backup.VolID, time.Now().Add(-time.Minute)) // expired
					plantScratch(t, env, 902, b.Backup.VolID, time.Now().Add(time.Hour))    // someone else's, running
				},
				Config: env.ProviderConfig() + fmt.Sprintf(`
resource "proxmoxapp_restore_drill" "d" {
  backup = %q
  vmid   = 900
  settle = "1s"
}
`, b.Backup.VolID),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(drillAddr, tfjsonpath.New("outcome"), knownvalue.StringExact("passed")),
					statecheck.ExpectKnownValue(drillAddr, tfjsonpath.New("vmid"), knownvalue.Int64Exact(900)),
					onlyDefaultGuests(env, 900, 901),
					acctest.GuestPowerState(env, 902, "stopped"),
				},
			},
		},
	})
}
