#!/usr/bin/env bash
# Builds the upstream-VPA oracle (tests/oracle, k8s.io/autoscaler/vertical-pod-autoscaler v1.7.1
# from the Go module proxy) into tools/bin/vpa-oracle (git-ignored).
# Idempotent: skipped when the Go version, go.mod, go.sum and the Go sources are unchanged
# (stamp: tools/bin/vpa-oracle.stamp). FORCE_BUILD=1 rebuilds. Prints the binary path last.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
GO="${GO:-go}"
command -v "$GO" >/dev/null 2>&1 || GO=/usr/local/go/bin/go
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=readonly
bin="$root/tools/bin"
out="$bin/vpa-oracle"
stamp="$out.stamp"
mkdir -p "$bin"

want="$("$GO" version)
$(cd "$here" && sha256sum go.mod go.sum $(ls ./*.go | grep -v '_test\.go$' | sort))"
if [[ -x "$out" && -f "$stamp" && "$(cat "$stamp")" == "$want" && "${FORCE_BUILD:-0}" != 1 ]]; then
  echo "vpa-oracle: up to date ($out)"
  exit 0
fi

echo "vpa-oracle: building $out (upstream VPA $(grep 'k8s.io/autoscaler/vertical-pod-autoscaler ' "$here/go.mod" | awk '{print $2}'))"
start=$(date +%s)
tmp="$out.tmp.$$"
trap 'rm -f "$tmp"' EXIT
(cd "$here" && "$GO" build -trimpath -ldflags "-s -w" -o "$tmp" .)
mv -f "$tmp" "$out"
printf '%s\n' "$want" >"$stamp"
echo "vpa-oracle: built in $(($(date +%s) - start)) s"
