# Terraform 1.14 and later. Nothing is restored by plan or apply; run
#   terraform apply -invoke=action.proxmoxapp_restore.rollback
variable "rollback_to" {
  description = "Volume ID of the backup to roll guest 100 back to; empty for its newest backup on local."
  type        = string
  default     = ""
}

data "proxmoxapp_backups" "app" {
  vmid    = 100
  storage = "local"
}

# Terraform evaluates an action's config on every plan, invoked or not: try()
# keeps plans working while guest 100 has no backup yet.
action "proxmoxapp_restore" "rollback" {
  config {
    vmid   = 100
    backup = var.rollback_to != "" ? var.rollback_to : try(data.proxmoxapp_backups.app.latest.volid, null)
    # Keep the safety backup off the listing above, so the next rollback does
    # not pick it as the newest backup.
    safety_backup_storage = "nas"
    shutdown_timeout      = "2m"

    timeouts = {
      invoke = "1h"
    }
  }
}
