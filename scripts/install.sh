#!/usr/bin/env bash
# Install minewatch as a systemd service: the node on a kit, or the gateway on its server.
#
#   sudo scripts/install.sh node            # or: gateway
#   scripts/install.sh node --dry-run       # print what would be done, change nothing
#   scripts/install.sh node --root /tmp/img # write files under a root (an SD-card image);
#                                           # users, groups, pip and systemctl are skipped there
#
# Idempotent: run it again after `git pull` to upgrade. It never overwrites an existing config
# in /etc/minewatch, and restarts the service only when the program or the unit changed.
set -euo pipefail

usage() { echo "usage: $0 node|gateway [--root DIR] [--dry-run] [--venv DIR]" >&2; exit 2; }

ROLE="${1:-}"
[[ "$ROLE" == node || "$ROLE" == gateway ]] || usage
shift
ROOT=""
DRY_RUN=0
VENV=/opt/minewatch
while [[ $# -gt 0 ]]; do
  case "$1" in
    --root) ROOT="${2:?--root needs a directory}"; ROOT="${ROOT%/}"; shift 2 ;;
    --dry-run) DRY_RUN=1; shift ;;
    --venv) VENV="${2:?--venv needs a directory}"; shift 2 ;;
    *) usage ;;
  esac
done

SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
USER_NAME=minewatch
UNIT="minewatch-$ROLE.service"
CHANGED=0

say() { echo "install.sh: $*"; }

# Commands that change the host itself (users, groups, packages, services).
host() {
  if [[ $DRY_RUN == 1 ]]; then say "would run: $*"
  elif [[ -n "$ROOT" ]]; then say "skipped under --root: $*"
  else "$@"
  fi
}

# Files under $ROOT.
ensure_dir() {  # path mode [owner]
  local path="$ROOT$1"
  if [[ -d "$path" ]]; then say "ok: $1"; return; fi
  if [[ $DRY_RUN == 1 ]]; then say "would create: $1"; return; fi
  install -d -m "$2" "$path"
  say "created: $1"
  [[ -n "${3:-}" ]] && host chown "$3:$3" "$path"
  return 0
}

ensure_file() {  # source dest mode [keep]
  local dest="$ROOT$2"
  if [[ -e "$dest" ]]; then
    if [[ "${4:-}" == keep ]]; then say "kept (yours): $2"; return; fi
    if cmp -s "$1" "$dest"; then say "unchanged: $2"; return; fi
  fi
  if [[ $DRY_RUN == 1 ]]; then say "would install: $2"; return; fi
  install -D -m "$3" "$1" "$dest"
  CHANGED=1
  say "installed: $2"
}

# 1. An unprivileged user; the node's also reads serial ports (dialout), I2C and GPIO.
GROUPS_NEEDED=()
[[ "$ROLE" == node ]] && GROUPS_NEEDED=(dialout i2c gpio)
if [[ -z "$ROOT" && $DRY_RUN == 0 ]]; then
  if id "$USER_NAME" >/dev/null 2>&1; then
    say "ok: user $USER_NAME"
  else
    useradd --system --home-dir /var/lib/minewatch --no-create-home --shell /usr/sbin/nologin "$USER_NAME"
    say "created: user $USER_NAME"
  fi
  for group in "${GROUPS_NEEDED[@]}"; do
    getent group "$group" >/dev/null || groupadd --system "$group"
    id -nG "$USER_NAME" | tr ' ' '\n' | grep -qx "$group" || usermod -aG "$group" "$USER_NAME"
    say "ok: $USER_NAME in group $group"
  done
else
  host useradd --system --home-dir /var/lib/minewatch --no-create-home --shell /usr/sbin/nologin "$USER_NAME"
  for group in "${GROUPS_NEEDED[@]}"; do
    host usermod -aG "$group" "$USER_NAME"
  done
fi

# 2. State and config directories.
ensure_dir /var/lib/minewatch 0750 "$USER_NAME"
ensure_dir "/var/lib/minewatch/$ROLE" 0750 "$USER_NAME"
ensure_dir /etc/minewatch 0755

# 3. The program, in its own virtualenv (upgraded in place from this source tree). A node gets the
# node's dependencies only; a gateway gets its own extra and those of the parts the shipped
# examples/gateway.toml turns on (the dashboard, [web], and the regulators' report, [report]).
if [[ "$ROLE" == gateway ]]; then PKG="$SRC[gateway,web,report]"; else PKG="$SRC"; fi
if [[ -z "$ROOT" && $DRY_RUN == 0 ]]; then
  [[ -x "$VENV/bin/python" ]] || python3 -m venv "$VENV"
  before="$("$VENV/bin/pip" freeze 2>/dev/null | grep -i '^minewatch' || true)"
  "$VENV/bin/pip" install -q --upgrade "$PKG"
  after="$("$VENV/bin/pip" freeze 2>/dev/null | grep -i '^minewatch' || true)"
  [[ "$before" == "$after" ]] || CHANGED=1
  say "ok: $VENV ($after)"
else
  host python3 -m venv "$VENV"
  host "$VENV/bin/pip" install --upgrade "$PKG"
fi

# 4. A starting config (never overwritten: it is yours once installed), readable by the service.
ensure_file "$SRC/examples/$ROLE.toml" "/etc/minewatch/$ROLE.toml" 0640 keep
host chgrp "$USER_NAME" "/etc/minewatch/$ROLE.toml"

# Secrets placed beside it (mode 600, e.g. the node.key and mqtt.password that `minewatch-gateway
# provision` writes) must belong to the service's user, or it cannot read them.
if [[ -d "$ROOT/etc/minewatch" ]]; then
  while IFS= read -r -d '' secret; do
    host chown "$USER_NAME:$USER_NAME" "${secret#"$ROOT"}"
  done < <(find "$ROOT/etc/minewatch" -maxdepth 1 -type f -perm 600 -print0)
fi

# 5. The unit, then enable it; restart only when something changed.
ensure_file "$SRC/$ROLE/systemd/$UNIT" "/etc/systemd/system/$UNIT" 0644
host systemctl daemon-reload
host systemctl enable "$UNIT"
if [[ $CHANGED == 1 ]]; then
  host systemctl restart "$UNIT"
else
  host systemctl start "$UNIT"
fi
say "done: $UNIT (journalctl -u $UNIT -f to watch it)"
