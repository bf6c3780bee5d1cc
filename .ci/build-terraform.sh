#!/usr/bin/env bash
# Builds a Terraform release newer than 1.5.x from the Go module proxy, the
# only registry reachable here, into OUT (default .bin/terraform-VERSION).
#
# `go install github.com/hashicorp/terraform@v1.14.0` refuses: the module's
# go.mod has `replace` directives pointing at nested modules (remote-state
# backends, internal/legacy) that the module zip does not contain. Those
# backends are only imported by internal/backend/init/init.go, so the copy
# built here drops them from go.mod and from that file; every other backend
# (local, http, remote, cloud...) stays. The -X flag marks the build as a
# release: without it Terraform says 1.14.0-dev, which version checks treat as
# older than 1.14.0.
#
# Usage: .ci/build-terraform.sh 1.14.0 [OUT]
set -euo pipefail

VERSION="${1:?usage: build-terraform.sh VERSION [OUT]}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${2:-$ROOT/.bin/terraform-$VERSION}"
DROP=(azure consul cos gcs kubernetes oss pg s3 oci)

WORK="$(mktemp -d "${TMPDIR:-/tmp}/terraform-$VERSION-build.XXXXXX")"
trap 'chmod -R u+w "$WORK" 2>/dev/null; rm -rf "$WORK"' EXIT

# Outside any module, so the project's go.mod is not consulted or changed.
cd "$WORK"
DIR="$(GOFLAGS= go mod download -json "github.com/hashicorp/terraform@v$VERSION" |
	sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
[[ -d "$DIR" ]] || { echo "build-terraform.sh: module download of terraform v$VERSION failed" >&2; exit 1; }
cp -r "$DIR" "$WORK/src"
chmod -R u+w "$WORK/src"
cd "$WORK/src"

# go.mod: drop the require and replace lines of the nested modules.
pattern='internal/legacy'
for b in "${DROP[@]}"; do pattern="$pattern|internal/backend/remote-state/$b"; done
grep -Ev "github.com/hashicorp/terraform/($pattern)([[:space:]]|$)" go.mod >go.mod.new
mv go.mod.new go.mod
if grep -Eq "($pattern)([[:space:]]|$)" go.mod; then
	echo "build-terraform.sh: go.mod still names a dropped module:" >&2
	grep -E "($pattern)" go.mod >&2
	exit 1
fi

# init.go: drop the nine imports and their entries in the backends map. Map
# keys differ from package names (azure is "azurerm"), so entries are found by
# the import's alias.
init=internal/backend/init/init.go
for b in "${DROP[@]}"; do
	alias="$(sed -n "s|^[[:space:]]*\([A-Za-z0-9_]*\) \"github.com/hashicorp/terraform/internal/backend/remote-state/$b\"\$|\1|p" "$init")"
	[[ -n "$alias" ]] || { echo "build-terraform.sh: no aliased import of backend $b in $init" >&2; exit 1; }
	before=$(wc -l <"$init")
	grep -Ev "internal/backend/remote-state/$b\"|[^A-Za-z0-9_]$alias\.New\(" "$init" >"$init.new"
	mv "$init.new" "$init"
	after=$(wc -l <"$init")
	[[ $((before - after)) -eq 2 ]] || {
		echo "build-terraform.sh: expected to drop 2 lines for backend $b in $init, dropped $((before - after))" >&2
		exit 1
	}
done

mkdir -p "$(dirname "$OUT")"
GOFLAGS=-mod=mod CGO_ENABLED=0 go build \
	-ldflags "-X github.com/hashicorp/terraform/version.dev=no" \
	-o "$OUT.tmp.$$" .
# Atomic: .bin/ may be shared by several checkouts.
mv "$OUT.tmp.$$" "$OUT"
TF_CLI_CONFIG_FILE=/dev/null CHECKPOINT_DISABLE=1 "$OUT" version
