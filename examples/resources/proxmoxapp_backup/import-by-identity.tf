# Terraform 1.12 and later: import by resource identity, as the import blocks
# `terraform query -generate-config-out` writes do. node is optional.
import {
  to = proxmoxapp_backup.before_upgrade
  identity = {
    node  = "pve1"
    volid = "local:backup/vzdump-lxc-100-2025_10_04-12_00_00.tar.zst"
  }
}
