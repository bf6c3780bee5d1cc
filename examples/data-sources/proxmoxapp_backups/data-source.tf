# Every backup of guest 100 on the storages its node sees, newest first.
data "proxmoxapp_backups" "app" {
  vmid = 100
}

# Only the backups on one storage.
data "proxmoxapp_backups" "app_on_nas" {
  vmid    = 100
  storage = "nas"
}

output "latest_backup" {
  value = data.proxmoxapp_backups.app.latest == null ? "no backups yet" : data.proxmoxapp_backups.app.latest.volid
}
