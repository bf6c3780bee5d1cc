# Back up an app right before every change Terraform makes to it, and roll it
# back on demand. The guide "Back up before every change with action_trigger"
# walks through it. Terraform 1.14 or later.
#
#   terraform apply -var app_version=2.0                   # back up, then change
#   terraform apply -var app_version=2.0 \
#     -invoke=action.proxmoxapp_restore.rollback           # the change failed: restore
#   terraform query                                        # the backups there are

terraform {
  required_version = ">= 1.14.0"

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
  description = "Storage for the backups taken before each change (its content types must include backup)."
  type        = string
  default     = "local"
}

variable "safety_backup_storage" {
  description = "Storage for the safety backup a rollback takes first: another one than backup_storage, so a rollback never picks it as the newest backup."
  type        = string
  default     = "nas"
}

variable "app_version" {
  description = "Version of the app. A new value changes the app, and backs it up first."
  type        = string
}

variable "upgrade_command" {
  description = "Command that changes the app to var.app_version and fails (non-zero exit) when the change does."
  type        = string
  default     = "echo \"upgrading app $VMID to $APP_VERSION\""
}

variable "rollback_to" {
  description = "Volume ID of the backup a rollback restores; empty for the newest backup on backup_storage."
  type        = string
  default     = ""
}

# 1. The backup: taken right before every change below, never on its own.
action "proxmoxapp_backup" "pre_change" {
  config {
    vmid    = var.vmid
    storage = var.backup_storage
    notes   = "{{guestname}} before app ${var.app_version}"
  }
}

# 2. The change. Here a command run for every new app_version; in practice
#    any resource that changes the app (a container's configuration, a
#    playbook run...) gets the same lifecycle block. When the backup fails,
#    Terraform does not make the change.
resource "terraform_data" "app" {
  triggers_replace = [var.app_version]

  provisioner "local-exec" {
    command = var.upgrade_command
    environment = {
      VMID        = var.vmid
      APP_VERSION = var.app_version
    }
  }

  lifecycle {
    action_trigger {
      # A new app_version replaces this resource (a create); an in-place
      # change would be an update. Back up before either.
      events  = [before_create, before_update]
      actions = [action.proxmoxapp_backup.pre_change]
    }
  }
}

# 3. The rollback, only when invoked:
#    terraform apply -invoke=action.proxmoxapp_restore.rollback
data "proxmoxapp_backups" "app" {
  vmid    = var.vmid
  storage = var.backup_storage
}

# Terraform evaluates an action's config on every plan, invoked or not: try()
# keeps plans working while there is no backup yet (latest is null then).
action "proxmoxapp_restore" "rollback" {
  config {
    vmid                  = var.vmid
    backup                = var.rollback_to != "" ? var.rollback_to : try(data.proxmoxapp_backups.app.latest.volid, null)
    safety_backup_storage = var.safety_backup_storage
  }
}
