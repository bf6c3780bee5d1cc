#!/usr/bin/env bash
# `make demo-actions`: the Terraform 1.14 flow of the guide "Back up before
# every change with action_trigger", against the bundled Proxmox VE
# simulator: every change of the app is backed up first (action_trigger), a
# failed change is rolled back with `terraform apply -invoke`, and
# `terraform query` lists the backups. Nothing here touches a real Proxmox VE
# server; everything lives in a temporary directory removed at the end.
#
# Usage: TF=/path/to/terraform-1.14 examples/demo-actions/run.sh   (or `make demo-actions`)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
GUIDE_DIR="$ROOT/examples/guides/backup-before-change"
TF="${TF:-$ROOT/.bin/terraform-1.14.0}"
VMID=100
START_TIME=$SECONDS

STEPS=6
DEMO_NAME=demo-actions WORK_PREFIX=proxmoxapp-demo-actions
# shellcheck source=examples/demo/lib.sh
source "$ROOT/examples/demo/lib.sh"

printf '%sproxmoxapp actions demo%s: back up before every change, roll back a failed one (Terraform 1.14).\n' "$BOLD" "$RESET"
say "Everything runs against a local Proxmox VE simulator, in $WORK (removed at the end)."

demo_build
# The guide's configuration, as published.
cp "$GUIDE_DIR"/main.tf "$GUIDE_DIR"/backups.tfquery.hcl "$TF_DIR"/
TF_VERSION_TEXT="$("$TF" version)"
say "${TF_VERSION_TEXT%%$'\n'*}; configuration: examples/guides/backup-before-change"

demo_start_simulator
ROOTFS="$SIM_DIR/guests/$VMID/rootfs"
APP_FILE="$ROOTFS/srv/app-version.txt"
[[ -d "$ROOTFS" ]] || fail "the simulator has no files for app $VMID at $ROOTFS"
mkdir -p "$(dirname "$APP_FILE")"
say "Proxmox VE API: $PROXMOX_VE_ENDPOINT; app $VMID is LXC container 'web' on node pve1"

# The "upgrade": writes the version into the app, as a package upgrade would.
upgrade_ok="printf 'app %s\\n' \"\$APP_VERSION\" > '$APP_FILE'"
upgrade_broken="printf 'app %s, half installed\\n' \"\$APP_VERSION\" > '$APP_FILE'; echo 'upgrade failed: migration error' >&2; exit 1"
archives() { find "$SIM_DIR" -path "*/storage/$1/dump/vzdump-*" ! -name '*.log' ! -name '*.notes' 2>/dev/null | wc -l; }

# ---------------------------------------------------------------- 1
step 1 "install version 1.0 of the app (a backup is taken right before, by the action)"
tf apply -auto-approve -compact-warnings "${NO_COLOR[@]}" -var app_version=1.0 -var "upgrade_command=$upgrade_ok"
[[ "$(cat "$APP_FILE")" == "app 1.0" ]] || fail "the app does not say version 1.0"
[[ "$(archives local)" == 1 ]] || fail "expected one backup on storage local, found $(archives local)"

# ---------------------------------------------------------------- 2
step 2 "upgrade to 2.0: backup first (watch its progress), then the change"
tf apply -auto-approve -compact-warnings "${NO_COLOR[@]}" -var app_version=2.0 -var "upgrade_command=$upgrade_ok"
[[ "$(cat "$APP_FILE")" == "app 2.0" ]] || fail "the app does not say version 2.0"
[[ "$(archives local)" == 2 ]] || fail "expected two backups on storage local, found $(archives local)"

# ---------------------------------------------------------------- 3
step 3 "upgrade to 3.0, which fails halfway and leaves the app broken"
say "The apply is expected to fail; the backup before it succeeded."
if tf apply -auto-approve -compact-warnings "${NO_COLOR[@]}" -var app_version=3.0 -var "upgrade_command=$upgrade_broken"; then
  fail "the broken upgrade did not fail"
fi
say "The app now says: $(cat "$APP_FILE")"
[[ "$(archives local)" == 3 ]] || fail "expected three backups on storage local, found $(archives local)"

# ---------------------------------------------------------------- 4
step 4 "roll back: terraform apply -invoke=action.proxmoxapp_restore.rollback"
say "Restores the newest backup on local (taken right before 3.0); a safety backup of the broken"
say "app goes to storage nas first."
tf apply -auto-approve -compact-warnings "${NO_COLOR[@]}" -var app_version=3.0 -invoke=action.proxmoxapp_restore.rollback
NOW="$(cat "$APP_FILE")"
say "The app now says: $NOW"
[[ "$NOW" == "app 2.0" ]] || fail "the rollback did not bring version 2.0 back"
[[ "$(archives nas)" == 1 ]] || fail "expected the safety backup on storage nas"
printf '%s' "$GREEN"; say "Rolled back to 2.0; the broken state is kept in the safety backup on nas."; printf '%s' "$RESET"

# ---------------------------------------------------------------- 5
step 5 "terraform query: the backups the action took (not in Terraform's state)"
tf query "${NO_COLOR[@]}" -var app_version=3.0
tf query -no-color -var app_version=3.0 -generate-config-out=backups.tf >/dev/null
say "terraform query -generate-config-out=backups.tf would bring them under management; it wrote:"
sed -n '/^import {/,/^}/p' "$TF_DIR/backups.tf" | head -n 8 | sed 's/^/      /'
grep -c '^import {' "$TF_DIR/backups.tf" | grep -qx 3 || fail "expected three import blocks in backups.tf"
rm "$TF_DIR/backups.tf"

# ---------------------------------------------------------------- 6
step 6 "clean up: terraform destroy (the backups stay: actions do not own them)"
tf destroy -auto-approve -compact-warnings "${NO_COLOR[@]}" -var app_version=3.0
[[ "$(archives local)" == 3 ]] || fail "destroy removed backups taken by the action"
say "Stopping the simulator and removing $WORK"

printf '\n%sDemo passed in %d s.%s\n' "$GREEN$BOLD" "$((SECONDS - START_TIME))" "$RESET"
