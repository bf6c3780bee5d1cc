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
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/proxmoxapp/terraform-provider-proxmoxapp/internal/acctest"
	"github.com/proxmoxapp/terraform-provider-proxmoxapp/internal/pve"
)

// The early checks: each mistake below fails `terraform plan` (rc 1) with the
// message asserted here, before anything is done on the cluster. Each test
// then asserts that nothing was done: no archive on any storage, no task run.

// simProvider is a provider block for the test's simulator with the given
// endpoint and credential lines.
func simProvider(env *acctest.Env, endpoint, creds string) string {
	return fmt.Sprintf("provider \"proxmoxapp\" {\n  endpoint = %q\n%s\n  ca_cert = <<-EOT\n%s\n  EOT\n}\n",
		endpoint, creds, strings.TrimSpace(string(env.Sim.CAPEM())))
}

// assertNothingDone fails when the simulator ran any task or holds any
// archive on its backup storages.
func assertNothingDone(t *testing.T, env *acctest.Env) {
	t.Helper()
	assertNoWrites(t, env)
	for _, dir := range []string{env.Sim.StorageDumpDir("pve1", "local"), env.Sim.StorageDumpDir("pve2", "local"), env.Sim.StorageDumpDir("", "nas")} {
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			t.Errorf("archive left on %s: %s", dir, e.Name())
		}
	}
}

// assertNoWrites fails when the simulator got any request that changes
// something (a login aside) since its counters were last reset.
func assertNoWrites(t *testing.T, env *acctest.Env) {
	t.Helper()
	for key, n := range env.Sim.Counters() {
		if strings.HasPrefix(key, "POST ") || strings.HasPrefix(key, "PUT ") || strings.HasPrefix(key, "DELETE ") {
			if !strings.HasSuffix(key, "/access/ticket") {
				t.Errorf("the plan changed something: %d× %s", n, key)
			}
		}
	}
}

const planCheckBackup = `
resource "proxmoxapp_backup" "test" {
  vmid    = 100
  storage = "local"
}
`

// TestAccPlanCheck_credentials: a wrong token secret, a wrong password, an
// unreachable endpoint and an http:// endpoint each fail at plan, titled by
// the kind of problem, naming endpoint and identity but never the secret.
func TestAccPlanCheck_credentials(t *testing.T) {
	t.Parallel()
	env := acctest.New(t)
	env.RequireSim(t)
	ep := env.Sim.Endpoint()
	api := strings.TrimSuffix(ep, "/") + "/api2/json"
	const wrongSecret = "00000000-dead-beef-0000-000000000000"
	httpEndpoint := "http://" + strings.TrimPrefix(ep, "https://")

	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config:   simProvider(env, ep, `  api_token = "root@pam!terraform=`+wrongSecret+`"`) + planCheckBackup,
				PlanOnly: true,
				ExpectError: wantDiag("Proxmox VE authentication failed",
					"connecting to "+api+" as API token root@pam!terraform failed: GET /cluster/resources: "+
						"HTTP 401 Authentication failed!\nCheck the token: api_token (PROXMOX_VE_API_TOKEN) must be "+
						"USER@REALM!TOKENID=SECRET with the secret PVE showed when the token was created (it is shown only "+
						"once; create a new token if it is lost), and neither the user nor the token may be expired or "+
						"disabled (Datacenter → Permissions → API Tokens)."),
			},
			{
				Config:   simProvider(env, ep, `  username = "root@pam"`+"\n"+`  password = "wrong"`) + planCheckBackup,
				PlanOnly: true,
				ExpectError: wantDiag("Proxmox VE authentication failed",
					"connecting to "+api+" as user root@pam failed: pve: login as root@pam failed: POST /access/ticket: "+
						"HTTP 401 authentication failure\nCheck username (PROXMOX_VE_USERNAME, as USER@REALM) and password "+
						"(PROXMOX_VE_PASSWORD); a user with two-factor authentication also needs otp (PROXMOX_VE_OTP)."),
			},
			{
				Config:   simProvider(env, "https://127.0.0.1:1/", fmt.Sprintf("  api_token = %q", env.Sim.APIToken())) + planCheckBackup,
				PlanOnly: true,
				ExpectError: wantDiag("Cannot connect to Proxmox VE",
					"connecting to https://127.0.0.1:1/api2/json as API token root@pam!terraform failed: GET /cluster/resources: "+
						"dial tcp 127.0.0.1:1: connect: connection refused\nCheck that endpoint "+
						"(PROXMOX_VE_ENDPOINT) names a reachable node and port (8006 unless a proxy says otherwise), and "+
						"that no firewall or proxy is in the way."),
			},
			{
				Config:   simProvider(env, httpEndpoint, fmt.Sprintf("  api_token = %q", env.Sim.APIToken())) + planCheckBackup,
				PlanOnly: true,
				ExpectError: wantDiag("Proxmox VE endpoint does not answer as the API",
					"connecting to "+strings.Replace(api, "https://", "http://", 1)+" as API token root@pam!terraform "+
						"failed: GET /cluster/resources: HTTP 400 Bad Request\nThe endpoint uses http://, but "+
						"Proxmox VE serves its API over HTTPS only: use https://HOST:8006/."),
			},
			{
				// The shape of a token is checked before any request, and
				// pinned to api_token: a token name needs two characters.
				Config:   simProvider(env, ep, `  api_token = "root@pam!a=secret"`) + planCheckBackup,
				PlanOnly: true,
				ExpectError: wantDiag("Malformed Proxmox VE API token",
					"the API token must look like USER@REALM!TOKENID=SECRET, where TOKENID starts with a letter and has "+
						"at least two characters, e.g. terraform@pve!backup=xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx (the value "+
						"is not shown because it holds the secret). (argument api_token, environment variable "+
						"PROXMOX_VE_API_TOKEN)"),
			},
		},
	})
	assertNothingDone(t, env)
	if n := env.Sim.Counters()["POST /nodes/{node}/vzdump"]; n != 0 {
		t.Fatalf("vzdump ran %d times", n)
	}
}

// TestAccPlanCheck_backup: an unknown vmid, a guest on another node, a
// storage that does not exist and one without backup content fail at plan.
func TestAccPlanCheck_backup(t *testing.T) {
	t.Parallel()
	env := acctest.New(t)
	env.RequireSim(t)
	backup := func(body string) string {
		return env.ProviderConfig() + "resource \"proxmoxapp_backup\" \"test\" {\n" + body + "\n}\n"
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config:   backup("  vmid = 4242\n  storage = \"local\""),
				PlanOnly: true,
				ExpectError: wantDiag("Guest not found", "guest 4242 does not exist in the cluster (or the credentials lack "+
					"VM.Audit on /vms/4242): check vmid against the guests in the Proxmox VE web interface."),
			},
			{
				Config:   backup("  vmid = 100\n  node = \"pve2\"\n  storage = \"local\""),
				PlanOnly: true,
				ExpectError: wantDiag("Guest is on another node", `guest 100 is on node pve1, not on node pve2: set node = "pve1" `+
					"or leave node unset (it defaults to the guest's node)."),
			},
			{
				Config:   backup("  vmid = 100\n  storage = \"usb\""),
				PlanOnly: true,
				ExpectError: wantDiag("Storage not found", `storage "usb" does not exist on node pve1 (or the credentials lack `+
					"Datastore.Audit on /storage/usb). Set storage to a storage the node has (storages of node pve1 that hold "+
					"backups: local, nas, pbs)."),
			},
			{
				Config:   backup("  vmid = 100\n  storage = \"local-lvm\""),
				PlanOnly: true,
				ExpectError: wantDiag("Storage cannot hold backups", `storage "local-lvm" on node pve1 cannot hold backups: its `+
					`content types are rootdir,images, and "backup" is not among them. Set storage to another storage `+
					`(storages of node pve1 that hold backups: local, nas, pbs), or add "backup" to the storage's content `+
					"(Datacenter → Storage → Edit → Content)."),
			},
		},
	})
	assertNothingDone(t, env)
}

// TestAccPlanCheck_nodeDownIsLeftToApply: when the guest's node is down the
// storage cannot be checked; the plan succeeds quietly and the apply decides.
func TestAccPlanCheck_nodeDownIsLeftToApply(t *testing.T) {
	t.Parallel()
	env := acctest.New(t)
	env.RequireSim(t)
	env.Sim.SetNodeOffline("pve2", true)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6ProviderFactories,
		Steps: []resource.TestStep{{
			Config: env.ProviderConfig() + `
resource "proxmoxapp_backup" "test" {
  vmid    = 101
  storage = "usb"
}
`,
			PlanOnly:           true,
			ExpectNonEmptyPlan: true,
		}},
	})
	assertNothingDone(t, env)
}

// TestAccPlanCheck_restore: a backup that does not exist, a storage that
// cannot hold a container and a safety-backup storage that cannot hold
// backups fail at plan; the guest is not touched.
func TestAccPlanCheck_restore(t *testing.T) {
	t.Parallel()
	env := acctest.New(t)
	env.RequireSim(t)
	const missing = "local:backup/vzdump-lxc-100-2020_01_01-00_00_00.tar.zst"
	restore := func(body string) string {
		return env.ProviderConfig() + "resource \"proxmoxapp_restore\" \"test\" {\n  vmid = 100\n" + body + "\n}\n"
	}
	// A real backup of guest 100, taken before the plans.
	taken, err := env.Client(t).CreateBackup(t.Context(), pve.BackupOptions{VMID: 100, Storage: "local", Compress: "zstd"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	existing := taken.Backup.VolID
	env.Sim.ResetCounters()
	before, _ := env.Sim.GuestState(100)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config:   restore(fmt.Sprintf("  backup = %q", missing)),
				PlanOnly: true,
				ExpectError: wantDiag("Backup not found", "backup "+missing+" does not exist: storage local on node pve1 does "+
					"not list it. Check the volume ID (data.proxmoxapp_backups lists a guest's backups), or whether it was "+
					"deleted or pruned."),
			},
			{
				// A backup on a storage the restore's node does not have.
				Config:   restore(`  backup = "usb:backup/vzdump-lxc-100-2020_01_01-00_00_00.tar.zst"`),
				PlanOnly: true,
				ExpectError: wantDiag("Backup not found", "backup usb:backup/vzdump-lxc-100-2020_01_01-00_00_00.tar.zst cannot "+
					`be read from node pve1: storage "usb" does not exist on node pve1 (or the credentials lack Datastore.Audit `+
					"on /storage/usb). Check the volume ID, or set node to a node that has storage usb."),
			},
			{
				// A container's root filesystem cannot go to a backup storage.
				Config:   restore(fmt.Sprintf("  backup = %q\n  storage = \"local\"", existing)),
				PlanOnly: true,
				ExpectError: wantDiag("Storage cannot hold container root filesystems", `storage "local" on node pve1 cannot `+
					`hold container root filesystems: its content types are backup,iso,vztmpl, and "rootdir" is not among `+
					"them. Set storage to another storage (storages of node pve1 that hold container root filesystems: "+
					`local-lvm), or add "rootdir" to the storage's content (Datacenter → Storage → Edit → Content).`),
			},
			{
				Config:   restore(fmt.Sprintf("  backup = %q\n  storage = \"local-lvm\"\n  safety_backup_storage = \"local-lvm\"", existing)),
				PlanOnly: true,
				ExpectError: wantDiag("Storage cannot hold backups", `storage "local-lvm" on node pve1 cannot hold backups: its `+
					`content types are rootdir,images, and "backup" is not among them. Set safety_backup_storage to another `+
					`storage (storages of node pve1 that hold backups: local, nas, pbs), or add "backup" to the storage's `+
					"content (Datacenter → Storage → Edit → Content)."),
			},
			{
				// All fine: the plan goes through.
				Config:             restore(fmt.Sprintf("  backup = %q\n  storage = \"local-lvm\"\n  safety_backup_storage = \"nas\"", existing)),
				PlanOnly:           true,
				ExpectNonEmptyPlan: true,
			},
		},
	})
	assertNoWrites(t, env)
	if after, _ := env.Sim.GuestState(100); after.Status != before.Status || before.Status != "running" {
		t.Fatalf("guest 100 was %q before the plans and is %q after", before.Status, after.Status)
	}
}

// wantDiag matches an error diagnostic by its exact summary and detail,
// whatever line breaks Terraform puts into the detail when it prints it.
func wantDiag(summary, detail string) *regexp.Regexp {
	words := strings.Fields(detail)
	for i, w := range words {
		words[i] = regexp.QuoteMeta(w)
	}
	return regexp.MustCompile(`(?s)Error: ` + regexp.QuoteMeta(summary) + `\n.*?` + strings.Join(words, `\s+`))
}

// TestAccPlanCheck_listingStorage: a listing filtered on a storage says what
// is wrong with it: absent from the node, or not holding backups.
func TestAccPlanCheck_listingStorage(t *testing.T) {
	t.Parallel()
	env := acctest.New(t)
	env.RequireSim(t)
	listing := func(storage string) string {
		return env.ProviderConfig() + fmt.Sprintf("data \"proxmoxapp_backups\" \"app\" {\n  vmid    = 100\n  storage = %q\n}\n", storage)
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config: listing("local-lvm"),
				ExpectError: wantDiag("Storage cannot hold backups", `Listing the backups of guest 100: storage "local-lvm" `+
					`on node pve1 cannot hold backups: its content types are rootdir,images, and "backup" is not among them. `+
					`Set storage to another storage (storages of node pve1 that hold backups: local, nas, pbs), or add `+
					`"backup" to the storage's content (Datacenter → Storage → Edit → Content).`),
			},
			{
				Config: listing("usb"),
				ExpectError: wantDiag("Storage not found", `Listing the backups of guest 100: storage "usb" does not exist `+
					"on node pve1 (or the credentials lack Datastore.Audit on /storage/usb). Set storage to a storage the node "+
					"has (storages of node pve1 that hold backups: local, nas, pbs)."),
			},
		},
	})
}

// TestAccRestore_nodeChangeRecorded: changing node on a restore that already
// ran plans an update that only records the new value (no second restore,
// no "inconsistent result"); leaving node out again changes nothing.
func TestAccRestore_nodeChangeRecorded(t *testing.T) {
	t.Parallel()
	env := acctest.New(t)
	env.RequireSim(t)
	withNode := func(node string) string {
		return restoreConfig(env, 100, "\nresource \"proxmoxapp_restore\" \"r\" {\n  vmid   = 100\n  backup = proxmoxapp_backup.b.volid\n"+node+"}\n")
	}
	taskStays := statecheck.CompareValue(compare.ValuesSame())
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config: withNode(""),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(restoreAddr, tfjsonpath.New("node"), knownvalue.StringExact("pve1")),
					taskStays.AddStateValue(restoreAddr, tfjsonpath.New("task_id")),
				},
			},
			{
				Config: withNode("  node = \"pve2\"\n"),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(restoreAddr, plancheck.ResourceActionUpdate),
				}},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(restoreAddr, tfjsonpath.New("node"), knownvalue.StringExact("pve2")),
					// the restore did not run again: the same task, one restore on PVE
					taskStays.AddStateValue(restoreAddr, tfjsonpath.New("task_id")),
					acctest.Check(env, func() error {
						if n := env.Sim.Counters()["POST /nodes/{node}/lxc"]; n != 1 {
							return fmt.Errorf("%d restores ran, want 1", n)
						}
						return nil
					}),
				},
			},
			{
				Config:           withNode("  node = \"pve2\"\n"),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
			},
			{
				// node left out: the recorded value stays, nothing to do.
				Config:           withNode(""),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
			},
		},
	})
}
