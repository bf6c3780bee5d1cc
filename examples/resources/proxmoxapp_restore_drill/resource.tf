data "proxmoxapp_backups" "app" {
  vmid = 100
}

# Restore guest 100's newest backup into a scratch guest (the next free
# vmid, network links down), start it, check that it stays up for a minute,
# and destroy it again. A new backup drills again.
resource "proxmoxapp_restore_drill" "app" {
  backup   = data.proxmoxapp_backups.app.latest.volid
  storage  = "local-lvm"
  settle   = "1m"
  triggers = { backup = data.proxmoxapp_backups.app.latest.volid }
}

output "recovery_seconds" {
  description = "Seconds from the start of the restore until the restored guest ran."
  value       = proxmoxapp_restore_drill.app.recovery_seconds
}

output "drill_outcome" {
  value = proxmoxapp_restore_drill.app.outcome
}
