variable "app_version" {
  description = "Version of the app about to be deployed; a new value takes a new backup."
  type        = string
}

# Back up guest 100 before every upgrade of the app.
resource "proxmoxapp_backup" "before_upgrade" {
  vmid     = 100
  storage  = "local"
  mode     = "snapshot"
  compress = "zstd"
  notes    = "{{guestname}} before upgrade to ${var.app_version}"

  triggers = {
    app_version = var.app_version
  }

  timeouts = {
    create = "2h"
  }
}

output "backup_volid" {
  value = proxmoxapp_backup.before_upgrade.volid
}

# A backup kept for good: protected, so neither PVE's pruning nor a destroy
# removes it. Set protected = false and apply before destroying it. (A new
# triggers value would still rotate it: new archive first, then the old one
# is unprotected and deleted.)
resource "proxmoxapp_backup" "golden" {
  vmid      = 100
  storage   = "local"
  notes     = "golden image of {{guestname}}"
  protected = true
}
