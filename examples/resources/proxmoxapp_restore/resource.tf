variable "rollback_id" {
  description = "Change this value to restore the latest backup again."
  type        = string
  default     = "1"
}

# The backups to roll back to: those of guest 100 on storage "local" (taken,
# for example, by proxmoxapp_backup with storage = "local").
data "proxmoxapp_backups" "app" {
  vmid    = 100
  storage = "local"
}

# Roll guest 100 back to its newest backup on "local". A safety backup of its
# current state is taken first (see safety_backup_volid), on another storage
# ("nas"), so that it never becomes `latest` above: the next rollback restores
# the backup again, not the broken state. Destroying this resource only
# removes it from the state; the guest is left as it is.
resource "proxmoxapp_restore" "rollback" {
  vmid                  = 100
  backup                = data.proxmoxapp_backups.app.latest.volid
  storage               = "local-lvm"
  safety_backup_storage = "nas"
  triggers              = { run = var.rollback_id }

  timeouts = {
    create = "1h"
  }

  lifecycle {
    precondition {
      condition     = data.proxmoxapp_backups.app.latest != null
      error_message = "Guest 100 has no backup on storage local to restore."
    }
  }
}

output "safety_backup" {
  value = proxmoxapp_restore.rollback.safety_backup_volid
}
