#!/usr/bin/env bash
# Regenerates go.mod's k8s.io staging `replace` lines from k8s.io/kubernetes' own go.mod.
#
# k8s.io/kubernetes requires every staging module (k8s.io/api, k8s.io/client-go, ...) at the
# fake version v0.0.0 and maps it to ./staging/src/k8s.io/X. A consumer has to replace each of
# them with the published module k8s.io/X v0.<minor>.<patch> that matches v1.<minor>.<patch>.
# This script reads the list from the real go.mod (never typed by hand), writes the replaces,
# and only then runs `go get` + `go mod tidy` (the other order fails on v0.0.0).
#
# Usage: tests/controlplane/gen-replace.sh [v1.37.2]   (or K8S_VERSION=v1.37.2)
set -euo pipefail

K8S_VERSION="${1:-${K8S_VERSION:-v1.37.2}}"
cd "$(dirname "${BASH_SOURCE[0]}")"
export GOTOOLCHAIN=local
GO="${GO:-go}"
command -v "$GO" >/dev/null 2>&1 || GO=/usr/local/go/bin/go

case "$K8S_VERSION" in
v1.*) STAGING_VERSION="v0.${K8S_VERSION#v1.}" ;;
*)
  echo "gen-replace: expected a v1.x.y version, got $K8S_VERSION" >&2
  exit 2
  ;;
esac

gomod="$("$GO" mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')"
if [[ -z "$gomod" || ! -f "$gomod" ]]; then
  echo "gen-replace: could not download the go.mod of k8s.io/kubernetes@$K8S_VERSION" >&2
  exit 1
fi

mapfile -t staging < <(awk '$2 == "=>" && $3 ~ /^\.\/staging\/src\// { print $1 }' "$gomod" | sort -u)
if [[ ${#staging[@]} -lt 20 ]]; then
  echo "gen-replace: found only ${#staging[@]} staging modules in $gomod; refusing" >&2
  exit 1
fi

# Drop k8s.io replaces that upstream no longer has (e.g. legacy-cloud-providers).
while read -r old; do
  keep=0
  for m in "${staging[@]}"; do [[ "$m" == "$old" ]] && keep=1; done
  if [[ $keep -eq 0 ]]; then "$GO" mod edit -dropreplace "$old"; fi
done < <("$GO" mod edit -json | sed -n 's/^[[:space:]]*"Path": "\(k8s\.io\/[^"]*\)"[,]*$/\1/p' | sort -u | grep -vx 'k8s.io/kubernetes' || true)

for m in "${staging[@]}"; do
  "$GO" mod edit -replace "$m=$m@$STAGING_VERSION"
done
"$GO" mod edit -go=1.26.0 -require "k8s.io/kubernetes@$K8S_VERSION"
"$GO" get "k8s.io/kubernetes@$K8S_VERSION"
"$GO" mod tidy
echo "gen-replace: ${#staging[@]} staging replaces -> $STAGING_VERSION for k8s.io/kubernetes $K8S_VERSION"
