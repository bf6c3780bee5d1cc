# Terraform 1.5 and later: an import block, planned and applied like any change.
import {
  to = proxmoxapp_backup_job.nightly
  id = "backup-6c3a2b1f-9d1e"
}
