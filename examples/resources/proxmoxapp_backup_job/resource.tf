# Nightly backups of the apps, run by Proxmox VE's own scheduler: guests 100
# and 101 at 02:30 node time, kept 7 days plus 4 weekly and 6 monthly copies.
resource "proxmoxapp_backup_job" "nightly" {
  job_id   = "apps-nightly"
  schedule = "02:30"
  vmids    = [100, 101]
  storage  = "local"
  mode     = "snapshot"
  compress = "zstd"
  comment  = "Managed by Terraform"

  notes_template = "{{guestname}} nightly"

  retention = {
    keep_daily   = 7
    keep_weekly  = 4
    keep_monthly = 6
  }
}

# Every guest of the cluster but one, on Saturdays, keeping the last 3.
resource "proxmoxapp_backup_job" "weekly_all" {
  job_id   = "weekly-all"
  schedule = "sat 03:00"
  all      = true
  exclude  = [200]
  storage  = "local"

  retention = {
    keep_last = 3
  }
}

output "nightly_next_run" {
  value = proxmoxapp_backup_job.nightly.next_run
}
