# A backup is imported by its volume ID; the node is the guest's current node.
terraform import proxmoxapp_backup.before_upgrade local:backup/vzdump-lxc-100-2025_10_04-12_00_00.tar.zst

# Prefix the node when the guest no longer exists, or when the backup is on a
# node-local storage of another node: <node>/<volid>.
terraform import proxmoxapp_backup.before_upgrade pve1/local:backup/vzdump-lxc-100-2025_10_04-12_00_00.tar.zst
