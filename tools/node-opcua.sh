#!/usr/bin/env bash
# node-opcua, the independent OPC UA stack the edge tests also run as a server
# (tests/edge/sources/nodeopcua_server.js), installed by npm's own client at the versions locked in
# tools/node-opcua/package-lock.json into build/node-opcua/node_modules. Quiet when already there.
set -euo pipefail
cd "$(dirname "$0")/.."
out=build/node-opcua
if ! command -v npm >/dev/null 2>&1; then
  echo "the OPC UA interoperability tests need Node.js and npm: sudo apt-get install -y nodejs npm" >&2
  exit 1
fi
mkdir -p "$out"
cp tools/node-opcua/package.json tools/node-opcua/package-lock.json "$out"/
cd "$out"
npm ci --no-audit --no-fund --loglevel=error >/dev/null
node -e 'require("node-opcua")'
