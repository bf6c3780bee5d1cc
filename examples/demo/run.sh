#!/usr/bin/env bash
# `make demo`: back up an app, break it, restore it, all with Terraform and
# this provider, against the bundled Proxmox VE simulator. Nothing here touches
# a real Proxmox VE server, and everything is created in a temporary directory
# that is removed at the end.
#
# Usage: TF=/path/to/terraform-1.5.x examples/demo/run.sh   (or just `make demo`)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
DEMO_DIR="$ROOT/examples/demo"
TF="${TF:-$ROOT/.bin/terraform}"
VMID=100
START_TIME=$SECONDS

STEPS=7
DEMO_NAME=demo WORK_PREFIX=proxmoxapp-demo
# shellcheck source=examples/demo/lib.sh
source "$DEMO_DIR/lib.sh"

# tf_output NAME prints one output as plain text.
tf_output() {
  local out
  out="$("$TF" -chdir="$TF_DIR" output -raw "$1" 2>"$WORK/output.err")" \
    || { cat "$WORK/output.err" >&2; fail "could not read Terraform output '$1'"; }
  printf '%s' "$out"
}

# ---------------------------------------------------------------- setup
printf '%sproxmoxapp demo%s: back up an app, break it, and restore it with Terraform.\n' "$BOLD" "$RESET"
say "Everything runs against a local Proxmox VE simulator, in $WORK (removed at the end)."

demo_build
cp "$DEMO_DIR"/*.tf "$TF_DIR"/
TF_VERSION_TEXT="$("$TF" version)"
say "${TF_VERSION_TEXT%%$'\n'*}"

demo_start_simulator
say "Proxmox VE API: $PROXMOX_VE_ENDPOINT (the provider reads PROXMOX_VE_* from the environment)"
say "App $VMID is LXC container 'web' on node pve1; its files are in $SIM_DIR/guests/$VMID/rootfs"

ROOTFS="$SIM_DIR/guests/$VMID/rootfs"
MARKER="$ROOTFS/srv/marker.txt"
[[ -d "$ROOTFS" ]] || fail "the simulator has no files for app $VMID at $ROOTFS"

# ---------------------------------------------------------------- 1. marker
step 1 "put some data into app $VMID: write /srv/marker.txt inside the container"
mkdir -p "$(dirname "$MARKER")"
GOOD="important data, written by make demo at $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
printf '%s\n' "$GOOD" >"$MARKER"
say "/srv/marker.txt now says: $(cat "$MARKER")"

# ---------------------------------------------------------------- 2. backup
step 2 "back up app $VMID (LXC container 'web') to storage 'local' (resource proxmoxapp_backup)"
say "terraform apply: Terraform plans one new backup, then the provider runs vzdump and waits for it."
tf apply -auto-approve -compact-warnings "${NO_COLOR[@]}" -var restore=false
BACKUP_VOLID="$(tf_output backup_volid)"
BACKUP_SIZE="$(tf_output backup_size)"
[[ -n "$BACKUP_VOLID" ]] || fail "the backup has no volume ID"
printf '%s' "$GREEN"; say "Backup taken: $BACKUP_VOLID ($BACKUP_SIZE bytes)"; printf '%s' "$RESET"

# ---------------------------------------------------------------- 3. list
step 3 "list the backups of app $VMID that Proxmox knows about (data source proxmoxapp_backups)"
say "Read in the same apply, after the backup (newest first):"
BACKUPS="$(tf_output backups)"
[[ -n "$BACKUPS" ]] || fail "the data source lists no backups of app $VMID"
printf '%s\n' "$BACKUPS" | sed 's/^/      /'
grep -qF "$BACKUP_VOLID" <<<"$BACKUPS" || fail "the new backup $BACKUP_VOLID is missing from the list"

# ---------------------------------------------------------------- 4. break it
step 4 "simulate a bad upgrade: overwrite /srv/marker.txt in app $VMID"
BAD="BROKEN by a bad upgrade at $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
printf '%s\n' "$BAD" >"$MARKER"
say "/srv/marker.txt now says: $(cat "$MARKER")"

# ---------------------------------------------------------------- 5. restore
step 5 "restore app $VMID from backup $BACKUP_VOLID (resource proxmoxapp_restore)"
say "terraform apply -var restore=true: the provider first takes a safety backup of the app as it is"
say "now, stops it, puts the backup back, and starts it again. The backup itself stays unchanged."
tf apply -auto-approve -compact-warnings "${NO_COLOR[@]}" -var restore=true
[[ "$(tf_output backup_volid)" == "$BACKUP_VOLID" ]] \
  || fail "the backup was replaced during the restore apply (it should have stayed $BACKUP_VOLID)"
RESTORE_TASK="$(tf_output restore_task_id)"
PREVIOUS_STATUS="$(tf_output restore_previous_status)"
SAFETY_VOLID="$(tf_output safety_backup_volid)"

# ---------------------------------------------------------------- 6. check
step 6 "check that the data is back"
NOW="$(cat "$MARKER" 2>/dev/null || echo '<file missing>')"
say "/srv/marker.txt now says: $NOW"
if [[ "$NOW" != "$GOOD" ]]; then
  say "expected:                 $GOOD"
  fail "the restore did not bring the marker file back"
fi
printf '%s' "$GREEN"; say "The marker is back: the app's files are as they were at backup time."; printf '%s' "$RESET"
say "Restore task:  $RESTORE_TASK (the app was '$PREVIOUS_STATUS' before)"
[[ -n "$SAFETY_VOLID" ]] || fail "the restore reports no safety backup"
say "Safety backup: $SAFETY_VOLID"
say "  (the app as it was just before the restore, with the broken marker; restore it to undo the restore)"
# Re-read the data source (terraform apply -refresh-only changes nothing in
# Proxmox) to show that the safety backup is an ordinary backup of the app.
tf apply -refresh-only -auto-approve -compact-warnings -no-color -var restore=true >"$WORK/refresh.log" 2>&1 \
  || { cat "$WORK/refresh.log" >&2; fail "terraform apply -refresh-only failed"; }
BACKUPS="$(tf_output backups)"
say "The app's backups now (newest first), read again through the data source:"
printf '%s\n' "$BACKUPS" | sed 's/^/      /'
grep -qF "$SAFETY_VOLID" <<<"$BACKUPS" || fail "the safety backup $SAFETY_VOLID is missing from the list"

# ---------------------------------------------------------------- 7. clean up
step 7 "clean up: terraform destroy"
say "This deletes the backup from step 2. Destroying a restore only removes it from Terraform's state:"
say "nothing is undone, and the safety backup stays on the storage."
tf destroy -auto-approve -compact-warnings "${NO_COLOR[@]}" -var restore=true
say "Stopping the simulator and removing $WORK"

printf '\n%sDemo passed in %d s.%s\n' "$GREEN$BOLD" "$((SECONDS - START_TIME))" "$RESET"
