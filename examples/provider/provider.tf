terraform {
  required_version = ">= 1.5.0"

  required_providers {
    proxmoxapp = {
      source = "proxmoxapp/proxmoxapp"
    }
  }
}

variable "pve_api_token" {
  description = "API token as USER@REALM!TOKENID=SECRET, e.g. terraform@pve!backup=xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx."
  type        = string
  sensitive   = true
}

# Token authentication, with the cluster's own CA pinned instead of
# turning certificate checks off.
provider "proxmoxapp" {
  endpoint  = "https://pve.example.com:8006/"
  api_token = var.pve_api_token

  # Copy /etc/pve/pve-root-ca.pem from any node of the cluster.
  ca_cert = file("${path.module}/pve-root-ca.pem")
}
