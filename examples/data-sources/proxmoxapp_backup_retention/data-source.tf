# What would a 7-daily, 4-weekly policy remove from guest 100's backups?
data "proxmoxapp_backup_retention" "app" {
  storage     = "local"
  vmid        = 100
  keep_daily  = 7
  keep_weekly = 4
}

output "would_remove" {
  value = data.proxmoxapp_backup_retention.app.remove
}

output "protected" {
  value = data.proxmoxapp_backup_retention.app.protected
}
