terraform {
  required_version = ">= 1.5.0"

  required_providers {
    proxmoxapp = {
      source = "proxmoxapp/proxmoxapp"
    }
  }
}

variable "pve_password" {
  description = "Password of root@pam (or of the user named below)."
  type        = string
  sensitive   = true
}

variable "pve_otp" {
  description = "Current one-time code, when the user has two-factor authentication; null otherwise."
  type        = string
  sensitive   = true
  default     = null
}

# Password (ticket) authentication. The provider logs in with
# POST /access/ticket and renews the ticket as needed.
provider "proxmoxapp" {
  endpoint = "https://pve.example.com:8006/"
  username = "root@pam"
  password = var.pve_password
  otp      = var.pve_otp

  # A lab node with PVE's self-signed certificate and no CA at hand.
  # Prefer ca_cert: insecure accepts any certificate, including an attacker's.
  insecure = true
}
