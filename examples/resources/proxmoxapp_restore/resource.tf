variable "rollback_id" {
  description = "Change this value to restore the latest backup again."
  type        = string
  default     = "1"
}

data "proxmoxapp_backups" "app" {
  vmid = 100
}

# Roll guest 100 back to its newest backup. A safety backup of its current
# state is taken first (see safety_backup_volid). Destroying this resource
# only removes it from the state; the guest is left as it is.
resource "proxmoxapp_restore" "rollback" {
  vmid     = 100
  backup   = data.proxmoxapp_backups.app.latest.volid
  storage  = "local-lvm"
  triggers = { run = var.rollback_id }

  timeouts = {
    create = "1h"
  }
}

output "safety_backup" {
  value = proxmoxapp_restore.rollback.safety_backup_volid
}
