#!/usr/bin/env bash
# Builds the OpenTofu binary the tests run, once: no Debian or npm package
# ships one, so it is built from its Go module source (about 5 minutes cold
# on 2 cores) and kept in a cache directory that outlives the clone.
# Prints the binary's path.
set -euo pipefail
version="${TOFU_VERSION:-v1.12.6}"
cache="${GATEHOUSE_TOOLS_CACHE:-$HOME/.cache/gatehouse-tools}"
bin="$cache/tofu-$version/tofu"
if [ -x "$bin" ] && "$bin" version >/dev/null 2>&1; then
	echo "$bin"
	exit 0
fi
mkdir -p "$cache"
work="$(mktemp -d "$cache/build.XXXXXX")"
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT
# The module's own go.mod has replace directives, so `go install …@version`
# refuses it; download the module and build inside a copy of it.
dir="$(GOFLAGS=-mod=mod go mod download -json "github.com/opentofu/opentofu@$version" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
if [ -z "$dir" ]; then
	echo "tofu.sh: go mod download did not report a directory" >&2
	exit 1
fi
cp -r "$dir" "$work/src"
chmod -R u+w "$work/src"
(cd "$work/src" && CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -ldflags "-s -w -X github.com/opentofu/opentofu/version.dev=no" -o "$work/tofu" ./cmd/tofu) >&2
mkdir -p "$(dirname "$bin")"
mv "$work/tofu" "$bin"
echo "$bin"
