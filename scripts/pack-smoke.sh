#!/usr/bin/env bash
# Packs the six published packages (@meshlet/core, http, grpc, discovery, control and the
# umbrella meshlet), installs
# the tarballs into a fresh app outside the repository (from the npm registry for
# everything else, as a user would), adds the current OpenTelemetry SDK next to them (an
# ERESOLVE on the @opentelemetry/api peer fails the step), then runs, on each Node:
#   esm.mjs / cjs.cjs  a real call through the mesh to a local server, from ESM and from
#                      CommonJS (require(esm), which also loads discovery and control);
#   grpc.mjs / .cjs    a unary gRPC call through the mesh (meshGrpcOptions) to a local grpc-js
#                      server with meshServerInterceptors, from ESM and CommonJS, with the app's
#                      own @grpc/grpc-js (one copy, the one @meshlet/grpc's peer resolves to);
#   telemetry.mjs      the same under that SDK (a span, the traceparent, a duration metric:
#                      the SDK and meshlet share one API), and a gRPC call's client span with
#                      the server interceptors' span as its child and the rpc durations;
#   control.mjs        the installed `meshlet` binary through npx (check, --version, and a
#                      control server stopped by SIGTERM), a mesh configured only by that
#                      server through controlPlane(), and a call through it;
#   umbrella.mjs       `import … from 'meshlet'` and `require('meshlet')`, zero-code start
#                      (`node --import meshlet/register` of an ESM and a CommonJS app: a call
#                      through the global fetch, a gRPC call with meshGrpcOptions(mesh), the
#                      admin endpoint, a bad variable refused),
#                      `npx --no -- meshlet` and the umbrella's own bin.
# Then the ESM, CommonJS and gRPC tests again against the lowest @opentelemetry/api the scoped
# packages' peer range allows (without the umbrella, whose OpenTelemetry SDK needs a newer
# API) and the lowest @grpc/grpc-js @meshlet/grpc's peer range allows (pinned by the app, so
# discovery keeps a newer copy of its own for the control-plane client). Also checks what the tarballs hold (check-tarballs.mjs: LICENSE, README,
# no .tsbuildinfo, maps that resolve, the packed @meshlet versions depend on each other,
# schema/, proto/, an executable bin/meshlet.js). The temp dir is removed on exit.
#
# Usage: scripts/pack-smoke.sh
# The smoke tests also run on any Node binary that scripts/test-other-nodes.sh left in
# its cache (MESHLET_NODE_CACHE), so CI checks require(esm) on Node 22 and 24 too.
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$PWD"

tmp="$(mktemp -d "${TMPDIR:-/tmp}/meshlet-pack-smoke.XXXXXX")"
cleanup() { rm -rf "$tmp"; }
trap cleanup EXIT
trap 'exit 130' INT TERM
case "$tmp/" in
  "$repo"/*)
    echo "pack-smoke: the temp dir $tmp is inside the repository; set TMPDIR elsewhere" >&2
    exit 1
    ;;
esac

echo "== pack-smoke: build"
npm run build --silent

echo "== pack-smoke: pack"
mkdir "$tmp/tarballs" "$tmp/extract" "$tmp/app"
workspaces=(packages/core packages/http packages/grpc packages/discovery packages/control packages/meshlet)
npm pack "${workspaces[@]/#/--workspace=}" --pack-destination "$tmp/tarballs" --silent >/dev/null
shopt -s nullglob
tarballs=("$tmp"/tarballs/*.tgz)
shopt -u nullglob
[ ${#tarballs[@]} -eq ${#workspaces[@]} ] || {
  echo "pack-smoke: expected ${#workspaces[@]} tarballs, got ${#tarballs[@]}: ${tarballs[*]##*/}" >&2
  exit 1
}
for t in "${tarballs[@]}"; do echo "packed $(basename "$t") ($(du -k "$t" | cut -f1) KiB)"; done
node scripts/pack-smoke/check-tarballs.mjs "$repo" "$tmp/extract" "${tarballs[@]}"

echo "== pack-smoke: install into a fresh app ($tmp/app)"
cd "$tmp/app"
cat >package.json <<'JSON'
{ "name": "meshlet-pack-smoke-app", "version": "1.0.0", "private": true }
JSON
# As a user would: the packages, the API and grpc-js (the app imports it for its clients and
# credentials) first, then the current SDK on top. No
# --force / --legacy-peer-deps: a peer conflict must fail here, not in users' installs.
# "Current" is the newest SDK whose engines accept the Node running npm (`@*`, not
# `@latest`): OpenTelemetry's 3.x line (API 1.10) needs Node >= 22.15, so on Node 20 npm
# picks the 2.x line for meshlet's SDK peers, and a forced 3.x SDK would conflict with it
# exactly as it would in a user's Node 20 app.
npm install --no-audit --no-fund --loglevel=error "${tarballs[@]}" @opentelemetry/api @grpc/grpc-js
npm install --no-audit --no-fund --loglevel=error '@opentelemetry/sdk-node@*'
node - <<'JS'
// One copy of each @meshlet package (the dependencies of http, grpc, discovery and control
// deduped onto the tarballs), one of the OpenTelemetry API (so the SDK and the mesh see the
// same global providers) and one of grpc-js (the app's credentials and clients are the mesh's).
const { execSync } = require('node:child_process');
const { readFileSync } = require('node:fs');
const found = (name) =>
  execSync(`find ./node_modules -path '*/node_modules/${name}/package.json' -not -path '*/node_modules/${name}/*/*'`, {
    encoding: 'utf8',
  })
    .split('\n')
    .filter(Boolean)
    .map((p) => `${JSON.parse(readFileSync(p, 'utf8')).version} at ${p.replace(/\/package\.json$/, '')}`);
let ok = true;
const names = ['@meshlet/core', '@meshlet/http', '@meshlet/grpc', '@meshlet/discovery', '@meshlet/control', 'meshlet'];
for (const name of [...names, '@opentelemetry/api', '@opentelemetry/sdk-node', '@grpc/grpc-js']) {
  const copies = found(name);
  console.log(`installed ${name}: ${copies.join(', ') || 'MISSING'}`);
  if (copies.length !== 1) ok = false;
}
const sdkPeer = JSON.parse(readFileSync('node_modules/@opentelemetry/sdk-node/package.json', 'utf8')).peerDependencies;
console.log(`@opentelemetry/sdk-node wants @opentelemetry/api ${sdkPeer['@opentelemetry/api']}`);
if (!ok) {
  console.error('pack-smoke: FAIL expected exactly one copy of each package above');
  process.exit(1);
}
JS

echo "== pack-smoke: smoke tests"
cp "$repo"/scripts/pack-smoke/{esm.mjs,cjs.cjs,grpc.mjs,grpc.cjs,greeter.cjs,telemetry.mjs,control.mjs,umbrella.mjs} .
nodes=("$(command -v node)")
cache="${MESHLET_NODE_CACHE:-${TMPDIR:-/tmp}/meshlet-nodes}"
shopt -s nullglob
for extra in "$cache"/node-linux-*/package/bin/node; do nodes+=("$extra"); done
shopt -u nullglob
for node_bin in "${nodes[@]}"; do
  # A handle left open (socket, timer) keeps the process alive: the timeout fails it.
  timeout 60 "$node_bin" esm.mjs
  timeout 60 "$node_bin" cjs.cjs
  timeout 60 "$node_bin" grpc.mjs
  timeout 60 "$node_bin" grpc.cjs
  timeout 60 "$node_bin" telemetry.mjs
  timeout 60 "$node_bin" control.mjs
  timeout 60 "$node_bin" umbrella.mjs
done

# The floor of the peer range must hold too: the same smoke tests against the lowest
# @opentelemetry/api it allows, in a second fresh app.
peer="$(node -p "require('./node_modules/@meshlet/core/package.json').peerDependencies['@opentelemetry/api']")"
floor="$(node -p "(/^(?:\^|>=\s*)(\d+\.\d+\.\d+)/.exec(process.argv[1]) || [])[1] || ''" "$peer")"
if [ -z "$floor" ]; then
  echo "pack-smoke: cannot read the lowest version of the @opentelemetry/api peer range \"$peer\"" >&2
  exit 1
fi
grpc_peer="$(node -p "require('./node_modules/@meshlet/grpc/package.json').peerDependencies['@grpc/grpc-js']")"
grpc_floor="$(node -p "(/^(?:\^|>=\s*)(\d+\.\d+\.\d+)/.exec(process.argv[1]) || [])[1] || ''" "$grpc_peer")"
if [ -z "$grpc_floor" ]; then
  echo "pack-smoke: cannot read the lowest version of the @grpc/grpc-js peer range \"$grpc_peer\"" >&2
  exit 1
fi
echo "== pack-smoke: the lowest @opentelemetry/api the peer range \"$peer\" allows: $floor; the lowest @grpc/grpc-js \"$grpc_peer\" allows: $grpc_floor"
mkdir "$tmp/app-floor"
cd "$tmp/app-floor"
cat >package.json <<'JSON'
{ "name": "meshlet-pack-smoke-floor", "version": "1.0.0", "private": true }
JSON
scoped=()
for t in "${tarballs[@]}"; do case "$(basename "$t")" in meshlet-[0-9]*) ;; *) scoped+=("$t") ;; esac; done
npm install --no-audit --no-fund --loglevel=error --save-exact "${scoped[@]}" "@opentelemetry/api@$floor" "@grpc/grpc-js@$grpc_floor"
installed_grpc="$(node -p "require('@grpc/grpc-js/package.json').version")"
[ "$installed_grpc" = "$grpc_floor" ] || {
  echo "pack-smoke: the floor app has @grpc/grpc-js $installed_grpc at its top, expected $grpc_floor" >&2
  exit 1
}
cp "$repo"/scripts/pack-smoke/{esm.mjs,cjs.cjs,grpc.mjs,grpc.cjs,greeter.cjs} .
timeout 60 node esm.mjs
timeout 60 node cjs.cjs
timeout 60 node grpc.mjs
timeout 60 node grpc.cjs
echo "pack-smoke: OK (${#nodes[@]} Node binaries, @opentelemetry/api $floor and latest, @grpc/grpc-js $grpc_floor and latest; temp dir removed on exit)"
