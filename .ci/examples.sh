#!/usr/bin/env bash
# Validates every example under examples/ against the provider built from this
# checkout, offline:
#   - `terraform fmt -check` on all of examples/;
#   - `terraform validate` in every directory that holds .tf files (each one is
#     a root module: examples/provider, examples/provider/password,
#     examples/resources/*, examples/data-sources/*, examples/guides/*,
#     examples/demo).
# The provider is found through dev_overrides, so no `terraform init` (which
# fails offline with dev_overrides) and no registry access are needed.
# Examples without a required_providers block get the implied source
# hashicorp/proxmoxapp, so both sources are overridden.
#
# Usage: TF=/path/to/terraform .ci/examples.sh   (default: .bin/terraform)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TF="${TF:-$ROOT/.bin/terraform}"
[[ -x "$TF" ]] || { echo "examples.sh: no Terraform at $TF (run 'make terraform')" >&2; exit 1; }

WORK="$(mktemp -d "${TMPDIR:-/tmp}/proxmoxapp-examples.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

export CHECKPOINT_DISABLE=1 TF_IN_AUTOMATION=1 TF_INPUT=0
unset TF_WORKSPACE TF_CLI_ARGS TF_CLI_ARGS_validate TF_CLI_ARGS_fmt
export TF_CLI_CONFIG_FILE="$WORK/dev.tfrc"
# Keep .terraform/ out of the source tree.
export TF_DATA_DIR="$WORK/tfdata"

(cd "$ROOT" && go build -o "$WORK/bin/terraform-provider-proxmoxapp" .)
cat >"$TF_CLI_CONFIG_FILE" <<EOF
provider_installation {
  dev_overrides {
    "proxmoxapp/proxmoxapp" = "$WORK/bin"
    "hashicorp/proxmoxapp"  = "$WORK/bin"
  }
  direct {}
}
EOF

echo "==> terraform fmt -check -recursive examples/"
"$TF" fmt -check -recursive -diff "$ROOT/examples"

failed=()
count=0
while IFS= read -r dir; do
  rel="${dir#"$ROOT"/}"
  count=$((count + 1))
  out="$WORK/validate.out"
  if "$TF" -chdir="$dir" validate -no-color >"$out" 2>&1; then
    echo "ok    $rel"
  else
    echo "FAIL  $rel"
    # Drop the dev_overrides warning; show the rest.
    sed -e '/Provider development overrides are in effect/,/^releases\.$/d' "$out" | sed 's/^/      /'
    failed+=("$rel")
  fi
done < <(find "$ROOT/examples" -name '*.tf' -not -path '*/.terraform/*' -not -path '*/.run/*' \
  -exec dirname {} \; | sort -u)

if ((count == 0)); then
  echo "examples.sh: no examples found under $ROOT/examples" >&2
  exit 1
fi
if ((${#failed[@]} > 0)); then
  echo "examples.sh: ${#failed[@]} of $count example(s) failed: ${failed[*]}" >&2
  exit 1
fi
echo "examples.sh: all $count examples are valid"
