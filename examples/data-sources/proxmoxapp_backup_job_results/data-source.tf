# The recent runs of a backup job, newest first.
data "proxmoxapp_backup_job_results" "nightly" {
  job_id = "apps-nightly"
  limit  = 5
}

# Did the last run that included app 100 succeed, and which archive did it write?
output "app_100_last_backup" {
  value = try(data.proxmoxapp_backup_job_results.nightly.latest_by_vmid["100"], null)
}

output "last_run_ok" {
  value = try(data.proxmoxapp_backup_job_results.nightly.latest.succeeded, false)
}
