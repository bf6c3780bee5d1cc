# Terraform 1.14 and later.
variable "app_version" {
  description = "Version of the app. Changing it changes the app, so a backup is taken first."
  type        = string
}

# A backup of guest 100, taken whenever something triggers it or on demand:
#   terraform apply -invoke=action.proxmoxapp_backup.pre_upgrade
action "proxmoxapp_backup" "pre_upgrade" {
  config {
    vmid    = 100
    storage = "local"
    notes   = "{{guestname}} before upgrade to ${var.app_version}"
  }
}

# Whatever changes the app (any provider's resource; terraform_data stands in
# here) backs it up right before each change. When the backup fails, the
# change is not made.
resource "terraform_data" "app_release" {
  input = var.app_version

  lifecycle {
    action_trigger {
      events  = [before_update]
      actions = [action.proxmoxapp_backup.pre_upgrade]
    }
  }
}
