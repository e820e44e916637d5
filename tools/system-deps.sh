#!/usr/bin/env bash
# System packages the tests start or build against, installed once: the one list `make test` and
# .ci/run use. Idempotent and quiet when everything is present (a second `make test` installs nothing).
# Without root or a prompt-free sudo it stops at once with the exact command to run.
set -euo pipefail

# libkrb5-dev: gssapi (the [kerberos] extra) builds against it. krb5-*: the throwaway KDC of the Kerberos
# tests. mosquitto: the MQTT broker (mosquitto-clients: mosquitto_sub, the edge backlog benchmark's baseline). socat: the pty pair of the Modbus RTU tests. chromium(+driver): the
# GUI tests. maven: the Delta Lake jars of the Spark tests. buildah/debootstrap: the container test.
# python3.11 + python3.11-venv: Debian's interpreter, which UID 1000 may run (container entrypoint tests).
# nodejs + npm: node-opcua, the second OPC UA server (tools/node-opcua.sh); checked by command, since a
# Node.js from elsewhere (with its own npm) serves as well and Debian's npm package would conflict with it.
PACKAGES=(libkrb5-dev krb5-kdc krb5-admin-server krb5-user mosquitto mosquitto-clients socat chromium chromium-driver maven
  buildah debootstrap python3.11 python3.11-venv)

missing=()
for pkg in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
command -v npm >/dev/null 2>&1 || missing+=(nodejs npm)
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ]; then
  SUDO=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  SUDO=(sudo -n)
else
  echo "make test needs these Debian packages: ${missing[*]}" >&2
  echo "install them once, then run make test again:" >&2
  echo "  sudo apt-get update && sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
  exit 1
fi
echo "installing Debian packages: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -qq
"${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
