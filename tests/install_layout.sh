#!/usr/bin/env bash
# `cmake --install` into a temporary DESTDIR must give exactly Debian 12's layout:
# the file list (with modes) equals tests/install_layout.txt, the installed units
# name the installed binary and config, the supervisor's compiled-in worker path is
# where the worker went, and the installed config is the commented example.
#
# usage: install_layout.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=${1:?usage: install_layout.sh BUILD_DIR SOURCE_DIR}
src=${2:?usage: install_layout.sh BUILD_DIR SOURCE_DIR}
dest=$(mktemp -d)
trap 'rm -rf "$dest"' EXIT
DESTDIR=$dest cmake --install "$build" > /dev/null
fail() { echo "install_layout: $*" >&2; exit 1; }

# Files and symlinks only: directories depend on what already exists on a system.
actual=$(cd "$dest" && find . \( -type f -o -type l \) -printf '%m %p\n' | sed 's| \./| /|' | sort -k2)
expected=$(grep -v '^#' "$src/tests/install_layout.txt" | sort -k2)
if [[ "$actual" != "$expected" ]]; then
    echo "install_layout: installed files differ from tests/install_layout.txt (< expected, > installed):" >&2
    diff <(echo "$expected") <(echo "$actual") >&2 || true
    exit 1
fi

unit=$dest/lib/systemd/system/cfsupervisor.service
exec_path=$(sed -n 's/^ExecStart=[-@:+!]*\([^ ]*\).*/\1/p' "$unit")
[[ -x "$dest$exec_path" ]] || fail "the unit's ExecStart= names $exec_path, which was not installed"
config_path=$(sed -n 's/^ExecStart=.*--config \([^ ]*\).*/\1/p' "$unit")
[[ -f "$dest$config_path" ]] || fail "the unit's --config names $config_path, which was not installed"
cmp -s "$dest$config_path" "$src/cfsupervisor.toml.example" \
    || fail "$config_path is not cfsupervisor.toml.example"
mapfile -t worker_paths < <(grep -ao '/[[:alnum:]/._-]*/cfsupervisor-worker' "$dest$exec_path" | sort -u)
[[ ${#worker_paths[@]} -eq 1 ]] || fail "expected one worker path in $exec_path, found: ${worker_paths[*]:-none}"
[[ -x "$dest${worker_paths[0]}" ]] || fail "the supervisor looks for its worker at ${worker_paths[0]}, not installed there"
grep -q '^ListenSequentialPacket=/run/cfsupervisor/control$' "$dest/lib/systemd/system/cfsupervisor.socket" \
    || fail "the socket unit does not listen where cfsupervisor status connects"
# The installed sysusers.d and tmpfiles.d files must be what systemd accepts.
sysusers_out=$(systemd-sysusers --dry-run --root="$dest" "$dest/usr/lib/sysusers.d/cfsupervisor.conf" 2>&1) \
    || fail "systemd-sysusers rejects the installed file: $sysusers_out"
[[ "$sysusers_out" == *"Creating user 'cfsupervisor-worker'"* ]] \
    || fail "systemd-sysusers does not create cfsupervisor-worker from the installed file: $sysusers_out"
tmp_out=$(systemd-tmpfiles --root="$dest" --create "$dest/usr/lib/tmpfiles.d/cfsupervisor.conf" 2>&1) \
    || fail "systemd-tmpfiles rejects the installed file: $tmp_out"
[[ -d "$dest/var/lib/cfsupervisor/blobs" ]] || fail "tmpfiles.d did not create /var/lib/cfsupervisor/blobs"
echo "install_layout: $(echo "$actual" | wc -l) files where Debian 12 expects them; units, config, worker path agree"
