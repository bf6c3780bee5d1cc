# Which guests no backup job covers.
data "proxmoxapp_backup_job_coverage" "cluster" {}

# Fail the plan while app 100 is not in any backup job.
check "app_100_is_backed_up" {
  assert {
    condition     = !contains(data.proxmoxapp_backup_job_coverage.cluster.not_backed_up_vmids, 100)
    error_message = "Guest 100 is not included in any backup job."
  }
}

output "not_backed_up" {
  value = [for g in data.proxmoxapp_backup_job_coverage.cluster.not_backed_up : "${g.vmid} (${g.name})"]
}
