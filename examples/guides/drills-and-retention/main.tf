# Prove last night's backup with a restore drill, record the app's recovery
# time, and keep a retention policy whose deletions show up in the plan. The
# guide "Restore drills and retention in the plan" walks through it.
#
#   terraform plan   # shows the drill to run and the exact backups to delete
#   terraform apply  # drills, then prunes exactly the listed backups
#
# Run it every night (cron, CI schedule) after the PVE backup job.

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
  description = "Storage the backups of the app are on."
  type        = string
  default     = "local"
}

variable "scratch_storage" {
  description = "Storage for the drill's scratch guest (container root filesystems or VM disks)."
  type        = string
  default     = "local-lvm"
}

variable "settle" {
  description = "How long the restored app must stay up for the drill to pass."
  type        = string
  default     = "30s"
}

variable "managed_backups" {
  description = "Volume IDs of backups that other resources manage (e.g. proxmoxapp_backup.x.volid): never pruned."
  type        = list(string)
  default     = []
}

# The newest backup of the app, whoever took it (a PVE backup job, vzdump,
# or a proxmoxapp_backup elsewhere).
data "proxmoxapp_backups" "app" {
  vmid    = var.vmid
  storage = var.backup_storage
}

# Restore it into a scratch guest (next free vmid, network links down),
# start it, require it to stay up for var.settle, destroy it. A new newest
# backup is a new drill; an unchanged one is not drilled twice.
resource "proxmoxapp_restore_drill" "nightly" {
  backup   = data.proxmoxapp_backups.app.latest.volid
  storage  = var.scratch_storage
  settle   = var.settle
  triggers = { backup = data.proxmoxapp_backups.app.latest.volid }

  # A failed drill is recorded in `outcome`; set this to make it fail the run.
  fail_on_error = false
}

# Retention: every plan lists in `deletions` the exact backups the apply
# deletes. The backup being drilled is the newest, so keep_last keeps it.
resource "proxmoxapp_backup_prune" "app" {
  storage        = var.backup_storage
  vmid           = var.vmid
  keep_last      = 2
  keep_daily     = 7
  keep_weekly    = 4
  keep_monthly   = 6
  managed_volids = var.managed_backups
}

output "drill_outcome" {
  description = "passed or failed (failed_step and failure_reason say why)."
  value       = proxmoxapp_restore_drill.nightly.outcome
}

output "recovery_seconds" {
  description = "Measured recovery time: seconds from the start of the restore until the restored app ran."
  value       = proxmoxapp_restore_drill.nightly.recovery_seconds
}

output "pruned" {
  description = "Backups the last prune deleted."
  value       = proxmoxapp_backup_prune.app.deletions
}
