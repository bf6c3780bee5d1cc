# The configuration that `make demo` applies against the PVE simulator.
# It is applied twice: first with restore = false (take a backup, list the
# backups), then with restore = true (put the backup back over the app).
# See README.md in this folder.

terraform {
  required_providers {
    proxmoxapp = {
      source = "proxmoxapp/proxmoxapp"
    }
  }
}

# Endpoint and credentials come from the PROXMOX_VE_* environment variables.
provider "proxmoxapp" {}

variable "vmid" {
  description = "The app to protect: the ID of its guest (LXC container 100 'web' in the simulator)."
  type        = number
  default     = 100
}

variable "backup_storage" {
  description = "Storage the backup archive is written to (must hold backups)."
  type        = string
  default     = "local"
}

variable "restore_storage" {
  description = "Storage for the restored container's root filesystem (must hold containers)."
  type        = string
  default     = "local-lvm"
}

variable "restore" {
  description = "Whether to restore the app from the backup. A restore overwrites the app's files."
  type        = bool
  default     = false
}

# 1. Back up the app now.
resource "proxmoxapp_backup" "app" {
  vmid    = var.vmid
  storage = var.backup_storage
  notes   = "taken by make demo"
}

# 2. Ask Proxmox which backups of the app exist (newest first). depends_on
#    makes Terraform read this after the backup above has been taken, and
#    after the restore below (whose safety backup is listed too), so that a
#    second apply finds nothing to change.
data "proxmoxapp_backups" "app" {
  vmid       = var.vmid
  depends_on = [proxmoxapp_backup.app, proxmoxapp_restore.app]
}

# 3. Put the backup back over the app, only when asked (restore = true).
#    Before it overwrites anything, the provider takes a safety backup of the
#    app as it is now.
resource "proxmoxapp_restore" "app" {
  count = var.restore ? 1 : 0

  vmid    = var.vmid
  backup  = proxmoxapp_backup.app.volid
  storage = var.restore_storage
}

output "backup_volid" {
  description = "Volume ID of the backup taken above."
  value       = proxmoxapp_backup.app.volid
}

output "backup_size" {
  description = "Size of the backup archive in bytes."
  value       = proxmoxapp_backup.app.size
}

output "backups" {
  description = "Every backup of the app, newest first: volid, size in bytes, time taken."
  value = join("\n", [
    for b in data.proxmoxapp_backups.app.backups :
    format("%s  %d bytes  %s", b.volid, b.size, b.created_at)
  ])
}

output "backup_count" {
  description = "How many backups of the app the storages hold."
  value       = length(data.proxmoxapp_backups.app.backups)
}

output "restore_task_id" {
  description = "UPID of the restore task (null until restored)."
  value       = one(proxmoxapp_restore.app[*].task_id)
}

output "restore_previous_status" {
  description = "Power state of the app before the restore (null until restored)."
  value       = one(proxmoxapp_restore.app[*].previous_status)
}

output "safety_backup_volid" {
  description = "Backup of the app as it was just before the restore (null until restored)."
  value       = one(proxmoxapp_restore.app[*].safety_backup_volid)
}
