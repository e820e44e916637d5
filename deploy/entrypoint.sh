#!/bin/bash
# Container entrypoint of the edge agent: check the volumes, seed the container paths, start the agent.
#
# Why a script and not the bare console script: the root filesystem is read-only, so HOME and TMPDIR must
# point into a volume, a volume mounted with the wrong owner must fail with a message that says what to do
# (not with a Python traceback deep in the spool), and the log goes to /app/logs as well as to stdout.
#
#   entrypoint.sh [extra args for `iot-connector serve`]
#
# Environment (all optional):
#   IOT_CONNECTOR_APP_DIR   root of the four volumes (default /app): config, certs, spool, logs
#   IOT_CONNECTOR_MODE      serve (GUI + agent + metrics, default) | run (headless agent + metrics);
#                           the healthcheck reads it too
#   IOT_CONNECTOR_LOG_FILE  log copy with size rotation (default $APP_DIR/logs/agent.log; empty = stdout only)
#   IOT_CONNECTOR_CERTS_DIR  certificate uploads (default $APP_DIR/certs)
#   IOT_CONNECTOR_ADMIN_PASSWORD, IOT_CONNECTOR_SECRET_KEY_FILE, IOT_CONNECTOR_GUI_PORT / _HOST / _TLS_CERT /
#   _TLS_KEY are read by the agent itself (docs/operations.md)
set -euo pipefail

APP_DIR="${IOT_CONNECTOR_APP_DIR:-/app}"
CONFIG_DIR="$APP_DIR/config"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

fail() {
    echo "entrypoint: $*" >&2
    exit 1
}

for volume in config certs spool logs; do
    dir="$APP_DIR/$volume"
    mkdir -p "$dir" 2>/dev/null || true
    [ -d "$dir" ] && [ -w "$dir" ] || fail "$dir is not writable by uid $(id -u): mount a volume owned by" \
        "1000:1000 there (docker: chown -R 1000:1000 <host dir>; Kubernetes: securityContext.fsGroup: 1000)"
done

# The root filesystem is read-only: everything a library may write (home, temp files) lives in the spool volume.
export HOME="$APP_DIR/spool/home"
export TMPDIR="${TMPDIR:-$APP_DIR/spool/tmp}"
export PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
# the GUI stores uploaded certificates here (default would be <config>/certs)
export IOT_CONNECTOR_CERTS_DIR="${IOT_CONNECTOR_CERTS_DIR:-$APP_DIR/certs}"
mkdir -p "$HOME" "$TMPDIR"

# First start only: point the spool at its own volume. The GUI's state is merged over this file, so an
# operator can still change it; an existing configuration is never touched.
if [ ! -e "$CONFIG_DIR/connector.yaml" ] && [ ! -e "$CONFIG_DIR/connector_state.json" ]; then
    cat >"$CONFIG_DIR/connector.yaml" <<YAML
# Written once by the container entrypoint on the first start (deploy/entrypoint.sh).
# Settings made in the web GUI (connector_state.json) are merged over this file.
pipeline:
  spool:
    directory: $APP_DIR/spool/wal
YAML
fi

command -v iot-connector >/dev/null || fail "the iot-connector console script is not on PATH ($PATH)"
MODE="${IOT_CONNECTOR_MODE:-serve}"
case "$MODE" in
serve | run) ;;
*) fail "IOT_CONNECTOR_MODE must be serve or run, got '$MODE'" ;;
esac
LOG_FILE="${IOT_CONNECTOR_LOG_FILE-$APP_DIR/logs/agent.log}"
if [ -n "$LOG_FILE" ]; then
    # stdout stays the container log; logtee also keeps a rotated copy in the logs volume. After `exec` the
    # agent is this process (PID 1 in the container), so SIGTERM reaches it directly; logtee ends on EOF.
    exec > >(exec python "$HERE/logtee.py" "$LOG_FILE") 2>&1
fi
exec iot-connector "$MODE" --config-dir "$CONFIG_DIR" "$@"
