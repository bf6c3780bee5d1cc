# Back up an app before an upgrade, and roll it back when the upgrade fails.
# The guide "Back up before an upgrade, roll back on failure" walks through it.
#
#   terraform apply -var app_version=2.0                    # back up, then upgrade
#   terraform apply -var app_version=2.0 -var rollback=true # upgrade failed: restore
#   terraform apply -var app_version=2.0                    # fixed: upgrade again

terraform {
  required_version = ">= 1.5.0"

  required_providers {
    proxmoxapp = {
      source = "proxmoxapp/proxmoxapp"
    }
  }
}

# Endpoint and credentials come from PROXMOX_VE_ENDPOINT, PROXMOX_VE_API_TOKEN
# and PROXMOX_VE_CA_CERT (see the provider documentation).
provider "proxmoxapp" {}

variable "vmid" {
  description = "ID of the guest (LXC container or QEMU VM) the app runs in."
  type        = number
  default     = 100
}

variable "backup_storage" {
  description = "Storage that holds the backups (its content types must include backup)."
  type        = string
  default     = "local"
}

variable "app_version" {
  description = "Version to upgrade the app to. A new value takes a new backup first."
  type        = string
}

variable "upgrade_command" {
  description = "Command that upgrades the app to var.app_version and fails (non-zero exit) when the upgrade does."
  type        = string
  default     = "echo \"upgrading to $APP_VERSION\""
}

variable "rollback" {
  description = "Set to true after a failed upgrade to restore the backup taken before it."
  type        = bool
  default     = false
}

# 1. The backup, taken once per app_version, before anything else happens.
#    The next app_version takes a new one, then deletes this one.
resource "proxmoxapp_backup" "pre_upgrade" {
  vmid    = var.vmid
  storage = var.backup_storage
  mode    = "snapshot"
  notes   = "{{guestname}} before upgrade to ${var.app_version}"

  triggers = {
    app_version = var.app_version
  }
  # A new version rotates the backup: the new one is taken before the
  # previous one is deleted, so there is always a backup of the app.
}

# 2. The upgrade. It runs only after the backup exists, and is left out while
#    rolling back so that a rollback never re-runs a failed upgrade.
resource "terraform_data" "upgrade" {
  count = var.rollback ? 0 : 1

  triggers_replace = [var.app_version, proxmoxapp_backup.pre_upgrade.id]

  provisioner "local-exec" {
    command = var.upgrade_command
    environment = {
      APP_VERSION = var.app_version
      VMID        = var.vmid
    }
  }
}

# 3. The rollback. Creating it puts the pre-upgrade backup back over the
#    guest, once. The provider takes a safety backup of the broken guest
#    first, so the rollback can itself be undone.
resource "proxmoxapp_restore" "rollback" {
  count = var.rollback ? 1 : 0

  vmid   = var.vmid
  backup = proxmoxapp_backup.pre_upgrade.volid
}

output "pre_upgrade_backup" {
  description = "Volume ID of the backup taken before the upgrade."
  value       = proxmoxapp_backup.pre_upgrade.volid
}

output "safety_backup" {
  description = "The guest as it was just before the rollback (null unless rolled back)."
  value       = one(proxmoxapp_restore.rollback[*].safety_backup_volid)
}
