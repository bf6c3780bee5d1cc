package provider

import (
	"strings"
	"testing"

	"github.com/proxmoxapp/terraform-provider-proxmoxapp/internal/acctest"
)

// TestAccBackup_rotationMovesIdentity: with Terraform 1.14 (identity
// support), a triggers change rotates the backup in place and its identity
// follows the new archive; the plan after it is empty.
func TestAccBackup_rotationMovesIdentity(t *testing.T) {
	t.Parallel()
	tf := newTF114(t)
	env := acctest.New(t)
	env.RequireSim(t)
	cfg := func(v string) string {
		return tf114Config(env) + `
resource "proxmoxapp_backup" "b" {
  vmid      = 100
  storage   = "local"
  protected = true
  triggers  = { v = "` + v + `" }
}
`
	}
	identity := func() (volid, identityVolid string) {
		for _, r := range tf.State().Values.RootModule.Resources {
			if r.Address == "proxmoxapp_backup.b" {
				v, _ := r.AttributeValues["volid"].(string)
				iv, _ := r.IdentityValues["volid"].(string)
				return v, iv
			}
		}
		t.Fatal("no proxmoxapp_backup.b in the state")
		return "", ""
	}
	tf.WriteFile("main.tf", cfg("1"))
	tf.Init()
	tf.Ok("apply", "-auto-approve", "-no-color")
	first, firstID := identity()
	if first == "" || firstID != first {
		t.Fatalf("after create: volid %q, identity %q", first, firstID)
	}
	tf.WriteFile("main.tf", cfg("2"))
	tf.Ok("apply", "-auto-approve", "-no-color")
	second, secondID := identity()
	if second == first || secondID != second {
		t.Fatalf("after the rotation: volid %q (was %q), identity %q", second, first, secondID)
	}
	if err := acctest.ArchiveGone(env.ArchivePath("pve1", "local", first[len("local:backup/"):])); err != nil {
		t.Fatal(err)
	}
	if res := tf.Ok("plan", "-no-color", "-detailed-exitcode"); res.ExitCode != 0 {
		t.Fatalf("plan after the rotation is not empty: %s", res)
	}
	tf.WriteFile("main.tf", strings.Replace(cfg("2"), "protected = true", "protected = false", 1))
	tf.Ok("apply", "-auto-approve", "-no-color")
	tf.Ok("destroy", "-auto-approve", "-no-color")
}
