# Terraform 1.14 and later, in a file ending in .tfquery.hcl:
#   terraform query                                    # show the backups found
#   terraform query -generate-config-out=backups.tf    # write import blocks for them
list "proxmoxapp_backup" "app" {
  provider         = proxmoxapp
  include_resource = true

  config {
    vmid    = 100
    storage = "local"
  }
}

# Every backup on the shared storage "nas", whatever guest it belongs to.
list "proxmoxapp_backup" "nas" {
  provider = proxmoxapp

  config {
    storage = "nas"
  }
}
