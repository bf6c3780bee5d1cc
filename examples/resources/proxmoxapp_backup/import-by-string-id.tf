# Terraform 1.5 and later: an import block, planned and applied like any change.
import {
  to = proxmoxapp_backup.before_upgrade
  id = "local:backup/vzdump-lxc-100-2025_10_04-12_00_00.tar.zst"
}
