# A backup job is imported by its ID (Datacenter → Backup in the GUI, or
# `pvesh get /cluster/backup`).
terraform import proxmoxapp_backup_job.nightly backup-6c3a2b1f-9d1e
