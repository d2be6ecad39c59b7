#!/usr/bin/env bash
# Prepare Raspberry Pi OS (Bookworm or Bullseye) for a minewatch kit. Safe to run again: every step
# checks first and changes only what is missing. Run as root:
#
#   sudo bash hardware/setup-pi.sh [--dry-run] [--user pi] [--with-1wire] [--no-packages]
#
#   --dry-run      print what would change, change nothing
#   --user NAME    the account that runs minewatch-node (default: $SUDO_USER, else pi)
#   --with-1wire   also enable 1-Wire on GPIO4 for a DS18B20 water temperature probe
#   --no-packages  do not apt-get install python3-venv, i2c-tools
#
# What it does (hardware/README.md, "Raspberry Pi OS setup", explains why):
#   1. config.txt: enable_uart=1, dtparam=i2c_arm=on (and dtoverlay=w1-gpio with --with-1wire)
#   2. cmdline.txt: remove the serial console (console=serial0,… / ttyAMA0 / ttyS0) so the UART is ours
#   3. /etc/modules: i2c-dev, so /dev/i2c-1 exists at boot
#   4. serial-getty on the UART: disabled
#   5. the user joins the dialout (serial), i2c and gpio groups
#   6. packages: python3-venv, i2c-tools (i2cdetect)
# A reboot is needed when 1–3 changed; the script says so.
#
# MINEWATCH_SETUP_ROOT (default /) prefixes every file path; when it is not /, the steps that act on
# the running system (systemctl, usermod, apt-get) are skipped: that is how the tests run it on a
# copy of /boot and /etc.
set -euo pipefail

ROOT="${MINEWATCH_SETUP_ROOT:-/}"
ROOT="${ROOT%/}"
DRY_RUN=0
WITH_1WIRE=0
PACKAGES=1
TARGET_USER="${SUDO_USER:-pi}"
CHANGED_BOOT=0
CHANGES=0

while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) DRY_RUN=1 ;;
    --with-1wire) WITH_1WIRE=1 ;;
    --no-packages) PACKAGES=0 ;;
    --user) TARGET_USER="${2:?--user needs a name}"; shift ;;
    -h|--help) sed -n '2,23p' "$0"; exit 0 ;;
    *) echo "setup-pi.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

say() { printf '%-8s %s\n' "$1" "$2"; }

# change DESCRIPTION COMMAND...: run it unless --dry-run; count it
change() {
  local what="$1"; shift
  CHANGES=$((CHANGES + 1))
  if [ "$DRY_RUN" = 1 ]; then say "would" "$what"; return 0; fi
  "$@"
  say "done" "$what"
}

# on_test_root STEP: true (and says so) when the system steps must be skipped
on_test_root() {
  if [ -n "$ROOT" ]; then say "skip" "$1 (not the real root: $ROOT)"; return 0; fi
  return 1
}

if [ "$DRY_RUN" = 0 ] && [ -z "$ROOT" ] && [ "$(id -u)" != 0 ]; then
  echo "setup-pi.sh: run as root (sudo bash hardware/setup-pi.sh), or with --dry-run" >&2
  exit 1
fi

# Bookworm keeps the boot partition in /boot/firmware; Bullseye in /boot.
BOOT="$ROOT/boot/firmware"
[ -f "$BOOT/config.txt" ] || BOOT="$ROOT/boot"
CONFIG="$BOOT/config.txt"
CMDLINE="$BOOT/cmdline.txt"

if [ ! -f "$CONFIG" ] || [ ! -f "$CMDLINE" ]; then
  if [ "$DRY_RUN" = 0 ]; then
    echo "setup-pi.sh: no config.txt/cmdline.txt under $ROOT/boot/firmware or $ROOT/boot: is this Raspberry Pi OS?" >&2
    exit 1
  fi
  say "warning" "no $CONFIG or $CMDLINE here: not Raspberry Pi OS; listing every step"
fi

# 1. config.txt lines
config_line() {
  local line="$1"
  if [ -f "$CONFIG" ] && grep -qxF "$line" "$CONFIG"; then
    say "ok" "$CONFIG has $line"
  else
    # lines after a conditional section ([pi4], [cm4] …) apply to that model only: go back to [all]
    local section=""
    [ -f "$CONFIG" ] && section="$(grep -E '^\[[^]]*\]' "$CONFIG" | tail -n 1 || true)"
    if [ -n "$section" ] && [ "$section" != "[all]" ]; then
      change "add [all] to $CONFIG (after $section)" sh -c 'printf "[all]\n" >> "$1"' _ "$CONFIG"
    fi
    change "add $line to $CONFIG" sh -c 'printf "%s\n" "$1" >> "$2"' _ "$line" "$CONFIG"
    CHANGED_BOOT=1
  fi
}
config_line "enable_uart=1"
config_line "dtparam=i2c_arm=on"
[ "$WITH_1WIRE" = 1 ] && config_line "dtoverlay=w1-gpio"

# 2. serial console off the UART
CONSOLE_RE='console=(serial0|ttyAMA0|ttyS0),[0-9]+ ?'
if [ -f "$CMDLINE" ] && grep -qE "$CONSOLE_RE" "$CMDLINE"; then
  change "remove the serial console from $CMDLINE" sed -i -E "s/$CONSOLE_RE//g" "$CMDLINE"
  CHANGED_BOOT=1
elif [ -f "$CMDLINE" ]; then
  say "ok" "$CMDLINE has no serial console"
else
  change "remove the serial console from $CMDLINE" true
fi

# 3. i2c-dev at boot
MODULES="$ROOT/etc/modules"
if [ -f "$MODULES" ] && grep -qx "i2c-dev" "$MODULES"; then
  say "ok" "$MODULES loads i2c-dev"
else
  change "add i2c-dev to $MODULES" sh -c 'mkdir -p "$(dirname "$1")" && echo i2c-dev >> "$1"' _ "$MODULES"
  CHANGED_BOOT=1
fi

# 4. no login prompt on the UART
for unit in serial-getty@ttyS0.service serial-getty@ttyAMA0.service; do
  on_test_root "disable $unit" && continue
  if ! command -v systemctl >/dev/null || ! systemctl is-enabled --quiet "$unit" 2>/dev/null; then
    say "ok" "$unit is not enabled"
  else
    change "disable $unit" systemctl disable --now "$unit"
  fi
done

# 5. groups for the user that runs minewatch-node
for group in dialout i2c gpio; do
  on_test_root "add $TARGET_USER to group $group" && continue
  if ! getent group "$group" >/dev/null; then
    say "skip" "group $group does not exist here"
  elif ! id "$TARGET_USER" >/dev/null 2>&1; then
    say "skip" "no user $TARGET_USER here (use --user)"
  elif id -nG "$TARGET_USER" | tr ' ' '\n' | grep -qx "$group"; then
    say "ok" "$TARGET_USER is in $group"
  else
    change "add $TARGET_USER to group $group (log in again to take effect)" usermod -aG "$group" "$TARGET_USER"
  fi
done

# 6. packages
if [ "$PACKAGES" = 1 ] && ! on_test_root "apt-get install python3-venv i2c-tools"; then
  missing=()
  for pkg in python3-venv i2c-tools; do
    if dpkg -s "$pkg" >/dev/null 2>&1; then say "ok" "$pkg is installed"; else missing+=("$pkg"); fi
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    change "apt-get install ${missing[*]}" apt-get install -y -q "${missing[@]}"
  fi
fi

if [ "$CHANGES" = 0 ]; then
  echo "nothing to change: this Pi is ready (run: minewatch-node check --config node.toml)"
elif [ "$DRY_RUN" = 1 ]; then
  echo "$CHANGES change(s) would be made; run without --dry-run to make them"
elif [ "$CHANGED_BOOT" = 1 ]; then
  echo "$CHANGES change(s) made; reboot now (sudo reboot), then run: minewatch-node check --config node.toml"
else
  echo "$CHANGES change(s) made; log in again, then run: minewatch-node check --config node.toml"
fi
