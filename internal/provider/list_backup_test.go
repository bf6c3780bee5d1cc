package provider

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/knownvalue"

	"github.com/proxmoxapp/terraform-provider-proxmoxapp/internal/acctest"
)

// queryResult is one list_resource_found message of `terraform query -json`.
type queryResult struct {
	Address        string                     `json:"address"`
	DisplayName    string                     `json:"display_name"`
	Identity       map[string]json.RawMessage `json:"identity"`
	ResourceObject map[string]json.RawMessage `json:"resource_object"`
}

// queryResults runs `terraform query -json` and groups the results by list
// block address.
func queryResults(t *testing.T, tf *acctest.Terraform) map[string][]queryResult {
	t.Helper()
	res := tf.Ok("query", "-json", "-no-color")
	out := map[string][]queryResult{}
	for _, line := range strings.Split(strings.TrimSpace(res.Stdout), "\n") {
		var m struct {
			Type  string      `json:"type"`
			Found queryResult `json:"list_resource_found"`
		}
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("not a JSON UI message: %q: %v", line, err)
		}
		if m.Type == "list_resource_found" {
			out[m.Found.Address] = append(out[m.Found.Address], m.Found)
		}
	}
	return out
}

// identityString reads one string attribute of a query result's identity.
func (r queryResult) identityString(t *testing.T, name string) string {
	t.Helper()
	var s string
	if err := json.Unmarshal(r.Identity[name], &s); err != nil {
		t.Fatalf("identity.%s of %s: %v (%s)", name, r.DisplayName, err, r.Identity[name])
	}
	return s
}

// TestAccListBackup_queryAndImport: `terraform query` finds existing backups
// by guest, node and storage, newest first, as proxmoxapp_backup identities;
// `-generate-config-out` writes import blocks and configuration for them;
// the import plan changes nothing but the imports; after the import the plan
// is empty and the archives are under management (state = what PVE lists).
func TestAccListBackup_queryAndImport(t *testing.T) {
	t.Parallel()
	env := acctest.New(t)
	env.RequireSim(t)
	c := env.Client(t)
	older := acctest.TakeBackup(t, c, 100, "local", "{{guestname}} before v2", true)
	newer := acctest.TakeBackup(t, c, 100, "local", "", false)
	onNAS := acctest.TakeBackup(t, c, 100, "nas", "", false)
	dbOnNAS := acctest.TakeBackup(t, c, 101, "nas", "db nightly", false)

	tf := newTF114(t)
	tf.WriteFile("main.tf", tf114Config(env))
	tf.WriteFile("scopes.tfquery.hcl", `
list "proxmoxapp_backup" "web_local" {
  provider = proxmoxapp
  config {
    vmid    = 100
    storage = "local"
  }
}

list "proxmoxapp_backup" "nas" {
  provider = proxmoxapp
  config {
    storage = "nas"
  }
}

list "proxmoxapp_backup" "pve2" {
  provider = proxmoxapp
  config {
    node = "pve2"
  }
}

list "proxmoxapp_backup" "web_all" {
  provider = proxmoxapp
  limit    = 2
  config {
    vmid = 100
  }
}
`)
	tf.Init()

	got := queryResults(t, tf)
	volids := func(addr string) []string {
		var out []string
		for _, r := range got[addr] {
			out = append(out, r.identityString(t, "volid"))
		}
		return out
	}
	for addr, want := range map[string][]string{
		"list.proxmoxapp_backup.web_local": {newer.VolID, older.VolID},
		"list.proxmoxapp_backup.nas":       {dbOnNAS.VolID, onNAS.VolID},
		// pve2's own local storage is empty; the shared nas is seen from it.
		"list.proxmoxapp_backup.pve2":    {dbOnNAS.VolID, onNAS.VolID},
		"list.proxmoxapp_backup.web_all": {onNAS.VolID, newer.VolID},
	} {
		if g := volids(addr); strings.Join(g, " ") != strings.Join(want, " ") {
			t.Errorf("%s found %v, want %v", addr, g, want)
		}
	}
	if r := got["list.proxmoxapp_backup.web_local"]; len(r) == 2 {
		if node := r[1].identityString(t, "node"); node != "pve1" {
			t.Errorf("identity.node of %s is %q, want pve1", older.VolID, node)
		}
		if want := older.Filename + " on local (guest 100, " + older.CreatedAt.UTC().Format(time.DateTime) + " UTC, " + humanBytes(older.Size) + ", protected): web before v2"; r[1].DisplayName != want {
			t.Errorf("display name %q, want %q", r[1].DisplayName, want)
		}
	}
	if r := got["list.proxmoxapp_backup.pve2"]; len(r) > 0 && r[0].identityString(t, "node") != "pve2" {
		t.Errorf("a backup listed from pve2 has identity.node %q", r[0].identityString(t, "node"))
	}

	// Bring the two backups of guest 100 on local under management.
	if err := os.Remove(filepath.Join(tf.Dir(), "scopes.tfquery.hcl")); err != nil {
		t.Fatal(err)
	}
	tf.WriteFile("web.tfquery.hcl", `
list "proxmoxapp_backup" "web" {
  provider         = proxmoxapp
  include_resource = true
  config {
    vmid    = 100
    storage = "local"
  }
}
`)
	tf.Ok("query", "-no-color", "-generate-config-out=generated.tf")
	generated, err := os.ReadFile(filepath.Join(tf.Dir(), "generated.tf"))
	if err != nil {
		t.Fatalf("query -generate-config-out wrote nothing: %v", err)
	}
	for _, want := range []string{"import {", "identity = {", older.VolID, newer.VolID, `resource "proxmoxapp_backup"`, `notes`, `protected`} {
		if !strings.Contains(string(generated), want) {
			t.Errorf("generated.tf lacks %q:\n%s", want, generated)
		}
	}
	if strings.Contains(string(generated), onNAS.VolID) || strings.Contains(string(generated), dbOnNAS.VolID) {
		t.Errorf("generated.tf imports backups outside the list's scope:\n%s", generated)
	}

	plan := tf.Plan()
	var imported []string
	for _, rc := range plan.ResourceChanges {
		if rc.Type != "proxmoxapp_backup" {
			continue
		}
		if rc.Change.Importing == nil || !rc.Change.Actions.NoOp() {
			t.Errorf("%s: actions %v, importing %v; want a no-op import", rc.Address, rc.Change.Actions, rc.Change.Importing)
			continue
		}
		after, _ := rc.Change.After.(map[string]any)
		imported = append(imported, after["volid"].(string))
	}
	sort.Strings(imported)
	want := []string{older.VolID, newer.VolID}
	sort.Strings(want)
	if strings.Join(imported, " ") != strings.Join(want, " ") {
		t.Fatalf("the import plan imports %v, want %v", imported, want)
	}

	tf.Ok("apply", "-no-color", "tfplan")
	res := tf.Run("plan", "-no-color", "-detailed-exitcode")
	if res.ExitCode != 0 {
		t.Fatalf("the plan after the import is not empty: %s", res)
	}
	st := tf.State()
	found := 0
	for _, r := range st.Values.RootModule.Resources {
		if r.Type != "proxmoxapp_backup" || r.AttributeValues["volid"] != older.VolID {
			continue
		}
		found++
		for attr, check := range map[string]knownvalue.Check{
			"node":      knownvalue.StringExact("pve1"),
			"vmid":      knownvalue.Int64Exact(100),
			"storage":   knownvalue.StringExact("local"),
			"notes":     knownvalue.StringExact("web before v2"),
			"protected": knownvalue.Bool(true),
			"compress":  knownvalue.StringExact("zstd"),
			"size":      knownvalue.Int64Exact(older.Size),
			"mode":      knownvalue.Null(),
		} {
			v := r.AttributeValues[attr]
			if n, ok := v.(float64); ok {
				v = json.Number(strconv.FormatFloat(n, 'f', -1, 64)) // as knownvalue reads numbers
			}
			if err := check.CheckValue(v); err != nil {
				t.Errorf("%s.%s: %v", r.Address, attr, err)
			}
		}
	}
	if found != 1 {
		t.Errorf("%s is in the state %d times, want once", older.VolID, found)
	}
}

// TestAccListBackup_unreadableStorage: a storage that cannot be read fails
// the query with its name and PVE's message, instead of listing fewer
// backups than exist, and no configuration is generated from it.
func TestAccListBackup_unreadableStorage(t *testing.T) {
	t.Parallel()
	env := acctest.New(t)
	env.RequireSim(t)
	acctest.TakeBackup(t, env.Client(t), 100, "local", "", false)
	tf := newTF114(t)
	tf.WriteFile("main.tf", tf114Config(env))
	tf.WriteFile("web.tfquery.hcl", `
list "proxmoxapp_backup" "web" {
  provider = proxmoxapp
  config {
    vmid = 100
  }
}
`)
	tf.Init()
	env.Sim.FailRequests("GET", "/nodes/{node}/storage/{storage}/content", 500, "storage 'local' is not online", 0)
	res := tf.Fails("query", "-no-color", "-generate-config-out=generated.tf")
	out := acctest.Flat(res.Stdout + res.Stderr)
	for _, want := range []string{"Unable to list backups", "listing the backups of guest 100", "storage 'local' is not online"} {
		if !strings.Contains(out, want) {
			t.Errorf("the failed query does not say %q:\n%s", want, out)
		}
	}
	if _, err := os.Stat(filepath.Join(tf.Dir(), "generated.tf")); !os.IsNotExist(err) {
		t.Errorf("a failed query generated configuration (stat: %v)", err)
	}
}
