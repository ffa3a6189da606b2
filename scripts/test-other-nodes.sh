#!/usr/bin/env bash
# Runs the test suite (already built) on Node 22 and 24 too: the engines promise
# Node >= 20.19 on 20, 22 and 24. The binaries come from the npm registry's
# node-linux-<arch> packages, so no other download source is needed.
# Usage: scripts/test-other-nodes.sh [version ...]   (default: 22 24)
set -euo pipefail
cd "$(dirname "$0")/.."
case "$(uname -m)" in
  x86_64) arch=x64 ;;
  aarch64) arch=arm64 ;;
  *) echo "test-other-nodes: no node-linux package for $(uname -m); skipped"; exit 0 ;;
esac
cache="${MESHLET_NODE_CACHE:-${TMPDIR:-/tmp}/meshlet-nodes}"
mkdir -p "$cache"
versions=("$@")
[ ${#versions[@]} -gt 0 ] || versions=(22 24)
for major in "${versions[@]}"; do
  pkg="node-linux-${arch}@${major}"
  version=$(npm view "$pkg" version 2>/dev/null | tail -n 1 | tr -d "'" | awk '{print $NF}')
  if [ -z "$version" ]; then
    echo "test-other-nodes: cannot resolve $pkg from the registry; FAILED to test Node $major" >&2
    exit 1
  fi
  dir="$cache/node-linux-${arch}-${version}"
  if [ ! -x "$dir/package/bin/node" ]; then
    (cd "$cache" && npm pack "node-linux-${arch}@${version}" --silent >/dev/null)
    mkdir -p "$dir"
    tar xzf "$cache/node-linux-${arch}-${version}.tgz" -C "$dir"
    rm -f "$cache/node-linux-${arch}-${version}.tgz"
  fi
  node_bin="$dir/package/bin/node"
  echo "== tests on $("$node_bin" --version)"
  "$node_bin" scripts/run-tests.mjs
done
