package provider

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/compare"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/proxmoxapp/terraform-provider-proxmoxapp/internal/acctest"
	"github.com/proxmoxapp/terraform-provider-proxmoxapp/internal/pve"
)

// backupsListConfig holds backups of guest 100 on local, nas and pbs (taken in
// that order, one step each) and one of guest 101 (on pve2) on the shared nas.
func backupsListConfig(env *acctest.Env, storages int, extra string) string {
	cfg := env.ProviderConfig() + `
resource "proxmoxapp_backup" "db" {
  vmid    = 101
  storage = "nas"
}

resource "proxmoxapp_backup" "local" {
  vmid    = 100
  storage = "local"
  notes   = "first"
}
`
	if storages >= 2 {
		cfg += `
resource "proxmoxapp_backup" "nas" {
  vmid       = 100
  storage    = "nas"
  notes      = "second"
  depends_on = [proxmoxapp_backup.local]
}
`
	}
	if storages >= 3 {
		cfg += `
resource "proxmoxapp_backup" "pbs" {
  vmid       = 100
  storage    = "pbs"
  depends_on = [proxmoxapp_backup.nas]
}
`
	}
	return cfg + extra
}

const backupsDataSources = `
data "proxmoxapp_backups" "all" {
  vmid       = 100
  depends_on = [proxmoxapp_backup.pbs, proxmoxapp_backup.db]
}

data "proxmoxapp_backups" "local_only" {
  vmid       = 100
  storage    = "local"
  depends_on = [proxmoxapp_backup.pbs]
}

data "proxmoxapp_backups" "from_pve2" {
  vmid       = 100
  node       = "pve2"
  depends_on = [proxmoxapp_backup.pbs]
}

data "proxmoxapp_backups" "db" {
  vmid       = 101
  depends_on = [proxmoxapp_backup.db]
}
`

// TestAccBackups_listing lists backups on a dir, a shared NAS and a PBS
// storage: newest first, latest, the storage and node filters, a shared
// storage counted once, a guest that no longer exists, what a read-only token
// sees, and an unknown storage.
func TestAccBackups_listing(t *testing.T) {
	t.Parallel()
	env := acctest.New(t)
	env.RequireSim(t)

	const all, local, pve2, db = "data.proxmoxapp_backups.all", "data.proxmoxapp_backups.local_only",
		"data.proxmoxapp_backups.from_pve2", "data.proxmoxapp_backups.db"
	at := func(i int, key string) tfjsonpath.Path {
		return tfjsonpath.New("backups").AtSliceIndex(i).AtMapKey(key)
	}
	// Backup names carry the time to the second (a real PVE limit), so each
	// backup of guest 100 is taken in a later second than the one before.
	var lastCreated string
	remember := func(addr string) []statecheck.StateCheck {
		return []statecheck.StateCheck{acctest.Remember(addr, "created_at", &lastCreated)}
	}
	nextSecond := func() { waitPastSecond(t, lastCreated) }

	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6ProviderFactories,
		Steps: []resource.TestStep{
			// Errors first, so that the last step's configuration can destroy.
			{
				Config: env.ProviderConfig() + `
data "proxmoxapp_backups" "bad" {
  vmid    = 100
  storage = "nope"
}
`,
				ExpectError: regexp.MustCompile(`(?s)Storage not found.*Listing the backups of guest 100: storage "nope" does not exist on node pve1`),
			},
			{
				Config: env.ProviderConfig() + `
data "proxmoxapp_backups" "bad" {
  vmid = 42
}
`,
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`(?s)vmid.*between 100 and 999999999`),
			},
			{Config: backupsListConfig(env, 1, ""), ConfigStateChecks: remember("proxmoxapp_backup.local")},
			{PreConfig: nextSecond, Config: backupsListConfig(env, 2, ""), ConfigStateChecks: remember("proxmoxapp_backup.nas")},
			{
				PreConfig: nextSecond,
				Config:    backupsListConfig(env, 3, backupsDataSources),
				ConfigStateChecks: []statecheck.StateCheck{
					// newest first: pbs, nas, local; the db backup is another guest's
					statecheck.ExpectKnownValue(all, tfjsonpath.New("backups"), knownvalue.ListSizeExact(3)),
					statecheck.CompareValuePairs(all, at(0, "volid"), "proxmoxapp_backup.pbs", tfjsonpath.New("volid"), compare.ValuesSame()),
					statecheck.CompareValuePairs(all, at(1, "volid"), "proxmoxapp_backup.nas", tfjsonpath.New("volid"), compare.ValuesSame()),
					statecheck.CompareValuePairs(all, at(2, "volid"), "proxmoxapp_backup.local", tfjsonpath.New("volid"), compare.ValuesSame()),
					statecheck.CompareValuePairs(all, tfjsonpath.New("latest"), all, tfjsonpath.New("backups").AtSliceIndex(0), compare.ValuesSame()),
					statecheck.ExpectKnownValue(all, tfjsonpath.New("id"), knownvalue.StringExact("100/*/*")),
					// the fields of one entry, as the backup resource saw them
					statecheck.CompareValuePairs(all, at(1, "size"), "proxmoxapp_backup.nas", tfjsonpath.New("size"), compare.ValuesSame()),
					statecheck.CompareValuePairs(all, at(1, "created_at"), "proxmoxapp_backup.nas", tfjsonpath.New("created_at"), compare.ValuesSame()),
					statecheck.CompareValuePairs(all, at(1, "filename"), "proxmoxapp_backup.nas", tfjsonpath.New("filename"), compare.ValuesSame()),
					statecheck.ExpectKnownValue(all, at(1, "notes"), knownvalue.StringExact("second")),
					statecheck.ExpectKnownValue(all, at(1, "storage"), knownvalue.StringExact("nas")),
					statecheck.ExpectKnownValue(all, at(1, "node"), knownvalue.StringExact("pve1")),
					statecheck.ExpectKnownValue(all, at(1, "vmid"), knownvalue.Int64Exact(100)),
					statecheck.ExpectKnownValue(all, at(1, "guest_type"), knownvalue.StringExact("lxc")),
					statecheck.ExpectKnownValue(all, at(1, "format"), knownvalue.StringExact("tar.zst")),
					statecheck.ExpectKnownValue(all, at(1, "protected"), knownvalue.Bool(false)),
					statecheck.ExpectKnownValue(all, at(1, "encrypted"), knownvalue.Bool(false)),
					statecheck.ExpectKnownValue(all, at(1, "verification"), knownvalue.StringExact("")),
					statecheck.ExpectKnownValue(all, at(0, "format"), knownvalue.StringExact("pbs-ct")),
					statecheck.ExpectKnownValue(all, at(0, "storage"), knownvalue.StringExact("pbs")),
					statecheck.ExpectKnownValue(all, at(2, "notes"), knownvalue.StringExact("first")),
					// storage filter
					statecheck.ExpectKnownValue(local, tfjsonpath.New("backups"), knownvalue.ListSizeExact(1)),
					statecheck.CompareValuePairs(local, tfjsonpath.New("latest").AtMapKey("volid"), "proxmoxapp_backup.local", tfjsonpath.New("volid"), compare.ValuesSame()),
					// node filter: pve2 sees the shared nas and pbs, not pve1's local
					statecheck.ExpectKnownValue(pve2, tfjsonpath.New("backups"), knownvalue.ListExact([]knownvalue.Check{
						knownvalue.ObjectPartial(map[string]knownvalue.Check{"storage": knownvalue.StringExact("pbs"), "node": knownvalue.StringExact("pve2")}),
						knownvalue.ObjectPartial(map[string]knownvalue.Check{"storage": knownvalue.StringExact("nas"), "node": knownvalue.StringExact("pve2")}),
					})),
					// guest 101 on pve2: its nas backup, once
					statecheck.ExpectKnownValue(db, tfjsonpath.New("backups"), knownvalue.ListSizeExact(1)),
					statecheck.CompareValuePairs(db, tfjsonpath.New("latest").AtMapKey("volid"), "proxmoxapp_backup.db", tfjsonpath.New("volid"), compare.ValuesSame()),
					statecheck.ExpectKnownValue(db, tfjsonpath.New("latest").AtMapKey("node"), knownvalue.StringExact("pve2")),
					statecheck.ExpectKnownValue(all, at(0, "created_at"), knownvalue.StringRegexp(rfc3339UTC)),
				},
			},
			{
				// A guest that no longer exists (999) still has its archive on the
				// shared nas, which every node sees: it is listed once.
				PreConfig: func() {
					copyArchive(t, env, "proxmoxapp_backup.db", "vzdump-lxc-999-2024_01_02-03_04_05.tar.zst")
				},
				Config: backupsListConfig(env, 3, backupsDataSources) + `
data "proxmoxapp_backups" "gone" {
  vmid = 999
}
`,
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("data.proxmoxapp_backups.gone", tfjsonpath.New("backups"), knownvalue.ListExact([]knownvalue.Check{
						knownvalue.ObjectPartial(map[string]knownvalue.Check{
							"volid":      knownvalue.StringExact("nas:backup/vzdump-lxc-999-2024_01_02-03_04_05.tar.zst"),
							"vmid":       knownvalue.Int64Exact(999),
							"guest_type": knownvalue.StringExact("lxc"),
						}),
					})),
				},
			},
		},
	})
}

// TestAccBackups_readOnly: a token with only Datastore.Audit (and VM.Audit)
// sees what PVE shows it, which is no backups at all (PVE filters each
// backup by VM.Backup on its guest), without an error.
//
// It is a test of its own: provider aliases cannot give two credentials in
// one in-process test, because every alias is configured on the same
// provider server.
func TestAccBackups_readOnly(t *testing.T) {
	t.Parallel()
	env := acctest.New(t)
	env.RequireSim(t)
	ctx := context.Background()
	client := env.Client(t)
	for _, st := range []string{"local", "nas"} {
		if _, err := client.CreateBackup(ctx, pve.BackupOptions{VMID: 100, Storage: st, Compress: "zstd"}, nil); err != nil {
			t.Fatal(err)
		}
	}
	if bs, err := client.ListBackups(ctx, pve.ListOptions{VMID: 100}); err != nil || len(bs) != 2 {
		t.Fatalf("root sees %d backups (err %v), want 2", len(bs), err)
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6ProviderFactories,
		Steps: []resource.TestStep{{
			Config: env.ReadOnlyProviderConfig() + `
data "proxmoxapp_backups" "all" {
  vmid = 100
}

data "proxmoxapp_backups" "nas" {
  vmid    = 100
  storage = "nas"
}
`,
			ConfigStateChecks: []statecheck.StateCheck{
				statecheck.ExpectKnownValue("data.proxmoxapp_backups.all", tfjsonpath.New("backups"), knownvalue.ListSizeExact(0)),
				statecheck.ExpectKnownValue("data.proxmoxapp_backups.all", tfjsonpath.New("latest"), knownvalue.Null()),
				statecheck.ExpectKnownValue("data.proxmoxapp_backups.nas", tfjsonpath.New("backups"), knownvalue.ListSizeExact(0)),
			},
		}},
	})
}

// waitPastSecond sleeps until the wall clock is past the second of an
// RFC 3339 time, so the next backup gets a later name.
func waitPastSecond(t *testing.T, rfc string) {
	t.Helper()
	ts, err := time.Parse(time.RFC3339, rfc)
	if err != nil {
		t.Fatalf("created_at %q: %v", rfc, err)
	}
	if d := time.Until(ts.Add(time.Second + 20*time.Millisecond)); d > 0 {
		time.Sleep(d)
	}
}

// copyArchive puts a copy of a dir backup's archive on the same storage under
// another name, as if another guest had written it.
func copyArchive(t *testing.T, env *acctest.Env, addr, name string) {
	t.Helper()
	st := env.Sim.StorageDumpDir("pve1", "nas")
	entries, err := os.ReadDir(st)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "vzdump-lxc-101-") && strings.HasSuffix(e.Name(), ".tar.zst") {
			b, err := os.ReadFile(filepath.Join(st, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(st, name), b, 0o644); err != nil {
				t.Fatal(err)
			}
			return
		}
	}
	t.Fatalf("%s: no archive of guest 101 in %s", addr, st)
}
