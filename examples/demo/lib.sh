# Shared by the demos (examples/demo/run.sh, examples/demo-actions/run.sh):
# output helpers, clean-up, the provider and simulator built from this
# checkout, and the simulator started on a free port. Source it after setting
# ROOT, TF, STEPS, DEMO_NAME and WORK_PREFIX; it leaves WORK, SIM_DIR, TF_DIR,
# BIN_DIR, the PROXMOX_VE_* variables and the tf function behind.

if [[ -t 1 ]]; then
  BOLD=$'\e[1m' GREEN=$'\e[32m' RED=$'\e[31m' RESET=$'\e[0m'
  NO_COLOR=()
else
  BOLD='' GREEN='' RED='' RESET=''
  NO_COLOR=(-no-color)
fi
step() { printf '\n%s==> Step %d/%d: %s%s\n' "$BOLD" "$1" "$STEPS" "$2" "$RESET"; }
say() { printf '    %s\n' "$@"; }
fail() {
  printf '\n%sDEMO FAILED: %s%s\n' "$RED" "$*" "$RESET" >&2
  exit 1
}

[[ -x "$TF" ]] || fail "Terraform not found at $TF. Run 'make $DEMO_NAME', which builds it first."
command -v go >/dev/null || fail "Go is not installed (needed to build the provider and the simulator)."

WORK="$(mktemp -d "${TMPDIR:-/tmp}/$WORK_PREFIX.XXXXXX")"
SIM_DIR="$WORK/pvesim"   # the simulator's data: guests' files, storages, certificates
SIM_LOG="$WORK/pvesim.log"
TF_DIR="$WORK/terraform" # the demo configuration and its state
BIN_DIR="$WORK/bin"
SIM_PID=''
FAILED_AT=''

demo_cleanup() {
  local rc=$?
  if [[ -n "$SIM_PID" ]] && kill -0 "$SIM_PID" 2>/dev/null; then
    kill -TERM "$SIM_PID" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$SIM_PID" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$SIM_PID" 2>/dev/null && kill -KILL "$SIM_PID" 2>/dev/null || true
    wait "$SIM_PID" 2>/dev/null || true
  fi
  if [[ $rc -ne 0 ]]; then
    if [[ -s "$SIM_LOG" ]]; then
      printf '\n--- last lines of the simulator log (%s) ---\n' "$SIM_LOG" >&2
      tail -n 30 "$SIM_LOG" >&2 || true
    fi
    printf '\n%sThe demo failed (exit code %d)%s%s\n' "$RED" "$rc" "${FAILED_AT:+ at line $FAILED_AT}" "$RESET" >&2
  fi
  rm -rf "$WORK"
  exit "$rc"
}
trap 'FAILED_AT="$LINENO: $BASH_COMMAND"' ERR
trap demo_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

export CHECKPOINT_DISABLE=1 TF_IN_AUTOMATION=1 TF_INPUT=0
export TF_CLI_CONFIG_FILE="$WORK/dev.tfrc"
unset TF_DATA_DIR TF_WORKSPACE TF_CLI_ARGS TF_CLI_ARGS_apply TF_CLI_ARGS_destroy TF_CLI_ARGS_output TF_CLI_ARGS_query
tf() { "$TF" -chdir="$TF_DIR" "$@"; }

# demo_build builds the provider and the simulator from this checkout and
# points Terraform at that provider build instead of the registry.
demo_build() {
  echo
  echo "==> Setup: building the provider and the Proxmox VE simulator"
  mkdir -p "$BIN_DIR" "$SIM_DIR" "$TF_DIR"
  (cd "$ROOT" && go build -o "$BIN_DIR/terraform-provider-proxmoxapp" .)
  (cd "$ROOT" && go build -o "$BIN_DIR/pvesim" ./internal/pvesim/cmd/pvesim)
  # With dev_overrides Terraform warns "Provider development overrides are in
  # effect" on every command; that is expected here, and `terraform init` is
  # neither needed nor possible offline.
  cat >"$TF_CLI_CONFIG_FILE" <<TFRC
provider_installation {
  dev_overrides {
    "proxmoxapp/proxmoxapp" = "$BIN_DIR"
  }
  direct {}
}
TFRC
}

# demo_start_simulator starts the simulator on a free port and loads its
# PROXMOX_VE_* environment (credentials of a real Proxmox VE in the caller's
# environment must not mix with it).
demo_start_simulator() {
  echo "==> Setup: starting the Proxmox VE simulator"
  "$BIN_DIR/pvesim" --data-dir "$SIM_DIR" --listen 127.0.0.1:0 >"$SIM_LOG" 2>&1 &
  SIM_PID=$!
  local deadline=$((SECONDS + 30))
  until [[ -s "$SIM_DIR/env" ]] && grep -q PROXMOX_VE_CA_CERT "$SIM_DIR/env"; do
    if ! kill -0 "$SIM_PID" 2>/dev/null; then
      SIM_PID=''
      fail "the simulator exited during startup (its log follows)"
    fi
    ((SECONDS < deadline)) || fail "the simulator did not get ready within 30 s (no $SIM_DIR/env)"
    sleep 0.1
  done
  unset PROXMOX_VE_USERNAME PROXMOX_VE_PASSWORD PROXMOX_VE_OTP PROXMOX_VE_INSECURE
  # shellcheck disable=SC1091
  source "$SIM_DIR/env"
}
