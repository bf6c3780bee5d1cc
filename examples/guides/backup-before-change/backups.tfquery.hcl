# `terraform query` lists the app's backups on backup_storage, newest first;
# `terraform query -generate-config-out=backups.tf` writes import blocks to
# bring them under Terraform's management.
list "proxmoxapp_backup" "app" {
  provider = proxmoxapp

  config {
    vmid    = var.vmid
    storage = var.backup_storage
  }
}
