# Keep guest 100's backups on "local" for 7 days, 4 weeks and 6 months.
# `terraform plan` lists in `deletions` exactly the backups the apply deletes.
resource "proxmoxapp_backup_prune" "app" {
  storage      = "local"
  vmid         = 100
  keep_last    = 3
  keep_daily   = 7
  keep_weekly  = 4
  keep_monthly = 6

  # Backups managed by proxmoxapp_backup resources are never deleted here;
  # name them (e.g. [proxmoxapp_backup.before_upgrade.volid]).
  managed_volids = []
}

output "deleted" {
  value = proxmoxapp_backup_prune.app.deletions
}
