package provider

import (
	"testing"

	"github.com/proxmoxapp/terraform-provider-proxmoxapp/internal/acctest"
)

func TestAccActionBackup_invoke(t *testing.T) {
	t.Parallel()
	env := acctest.New(t)
	env.RequireSim(t)
	tf := newTF114(t)
	tf.write("main.tf", tf114Config(env)+`
action "proxmoxapp_backup" "now" {
  config {
    vmid    = 100
    storage = "local"
  }
}
`)
	tf.init()
	res := tf.ok("apply", "-no-color", "-auto-approve", "-invoke=action.proxmoxapp_backup.now")
	t.Log(res)
	res = tf.ok("apply", "-json", "-auto-approve", "-invoke=action.proxmoxapp_backup.now")
	t.Log(res)
}
