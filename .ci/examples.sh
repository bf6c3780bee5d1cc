#!/usr/bin/env bash
# Validates every example under examples/ against the provider built from this
# checkout, offline:
#   - `terraform fmt -check` on all of examples/;
#   - `terraform validate` in every directory that holds .tf files (each one is
#     a root module: examples/provider, examples/provider/password,
#     examples/resources/*, examples/data-sources/*, examples/guides/*,
#     examples/demo), and in every one that holds .tfquery.hcl files.
# Examples with actions or list blocks (examples/actions/*, list-resources/*,
# anything with an action_trigger) need Terraform 1.14: they are validated
# with TF_114 (and `validate -query`), the rest with TF (1.5.7, the floor).
# The provider is found through dev_overrides, so no `terraform init` (which
# fails offline with dev_overrides) and no registry access are needed.
# Examples without a required_providers block get the implied source
# hashicorp/proxmoxapp, so both sources are overridden.
#
# Usage: TF=/path/to/terraform TF_114=/path/to/terraform-1.14 .ci/examples.sh
#        (defaults: .bin/terraform, .bin/terraform-1.14.0)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TF="${TF:-$ROOT/.bin/terraform}"
TF_114="${TF_114:-$ROOT/.bin/terraform-1.14.0}"
[[ -x "$TF" ]] || { echo "examples.sh: no Terraform at $TF (run 'make terraform')" >&2; exit 1; }
[[ -x "$TF_114" ]] || { echo "examples.sh: no Terraform 1.14 at $TF_114 (run 'make terraform-1.14')" >&2; exit 1; }

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

echo "==> terraform fmt -check -recursive examples/ (Terraform 1.14 also formats .tfquery.hcl)"
"$TF_114" fmt -check -recursive -diff "$ROOT/examples"

failed=()
count=0
# check DIR LABEL TERRAFORM [EXCLUDED FILE]: validates a copy of DIR (without
# the excluded file) with TERRAFORM; with Terraform 1.14 .tfquery.hcl too.
check() {
  local dir=$1 label=$2 bin=$3 exclude=${4:-} copy
  copy="$WORK/check/$count"
  mkdir -p "$copy"
  find "$dir" -maxdepth 1 -type f \( -name '*.tf' -o -name '*.tfquery.hcl' -o -name '*.tfvars' \) \
    ! -name "${exclude:-/}" -exec cp {} "$copy"/ \;
  local args=(-chdir="$copy" validate -no-color)
  [[ $bin == "$TF_114" ]] && args+=(-query)
  local out="$WORK/validate.out"
  if "$bin" "${args[@]}" >"$out" 2>&1; then
    echo "ok    $label ($("$bin" version | head -n1))"
  else
    echo "FAIL  $label"
    # Drop the dev_overrides warning; show the rest.
    sed -e '/Provider development overrides are in effect/,/^releases\.$/d' "$out" | sed 's/^/      /'
    failed+=("$label")
  fi
}

while IFS= read -r dir; do
  rel="${dir#"$ROOT"/}"
  count=$((count + 1))
  bin=$TF
  if compgen -G "$dir/*.tfquery.hcl" >/dev/null ||
    grep -qE '^[[:space:]]*(action[[:space:]]+"|action_trigger[[:space:]]*\{)' "$dir"/*.tf 2>/dev/null; then
    bin=$TF_114
  fi
  if [[ -f $dir/import-by-identity.tf ]]; then
    # Import by identity needs Terraform 1.12+, and imports the same resource
    # as import-by-string-id.tf (the docs show them side by side): one pass
    # without each.
    check "$dir" "$rel" "$bin" import-by-identity.tf
    count=$((count + 1))
    check "$dir" "$rel/import-by-identity.tf" "$TF_114" import-by-string-id.tf
  else
    check "$dir" "$rel" "$bin"
  fi
done < <(find "$ROOT/examples" \( -name '*.tf' -o -name '*.tfquery.hcl' \) -not -path '*/.terraform/*' -not -path '*/.run/*' \
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
