terraform {
  required_version = ">= 1.5.0"
  required_providers {
    proxmoxapp = { source = "proxmoxapp/proxmoxapp" }
  }
}

variable "apps" {
  description = "VM IDs of the apps that must be backed up every night."
  type        = set(number)
  default     = [100, 101]
}

variable "backup_storage" {
  description = "Storage the nightly archives go to."
  type        = string
  default     = "local"
}

# 1. The job: Proxmox VE's scheduler runs it every night at 02:30 node time,
#    and prunes each app's backups to 7 daily and 4 weekly copies.
resource "proxmoxapp_backup_job" "nightly" {
  job_id   = "apps-nightly"
  schedule = "02:30"
  vmids    = var.apps
  storage  = var.backup_storage
  compress = "zstd"
  comment  = "Nightly app backups (Terraform)"

  notes_template = "{{guestname}} nightly"

  retention = {
    keep_daily  = 7
    keep_weekly = 4
  }
}

# 2. Coverage: read after the job exists; the plan fails while an app is in
#    no backup job (this one or any other on the cluster).
data "proxmoxapp_backup_job_coverage" "cluster" {
  depends_on = [proxmoxapp_backup_job.nightly]

  lifecycle {
    postcondition {
      condition     = length(setintersection(var.apps, self.not_backed_up_vmids)) == 0
      error_message = "These apps are in no backup job: ${join(", ", setintersection(var.apps, self.not_backed_up_vmids))}."
    }
  }
}

# 3. Results: what the last runs did, per app.
data "proxmoxapp_backup_job_results" "nightly" {
  job_id = proxmoxapp_backup_job.nightly.job_id
}

# A warning (not an error) on every plan while an app's last run failed.
check "last_night_succeeded" {
  assert {
    condition = alltrue([
      for id in var.apps : try(data.proxmoxapp_backup_job_results.nightly.latest_by_vmid[tostring(id)].status, "ok") != "failed"
    ])
    error_message = "The last nightly backup of an app failed; see data.proxmoxapp_backup_job_results.nightly."
  }
}

output "next_run" {
  value = proxmoxapp_backup_job.nightly.next_run
}

output "last_archives" {
  value = { for id, r in data.proxmoxapp_backup_job_results.nightly.latest_by_vmid : id => r.volid }
}
