#!/usr/bin/env bash
# Prints systemd's exposure score for the shipped service unit (systemd-analyze
# security --offline, which needs no running systemd). A figure to read in CI, not a
# gate: units/README.md says what keeps it where it is. Fails only if the analysis
# cannot run or the unit does not parse.
set -euo pipefail
unit=${1:?usage: units_security.sh UNIT_FILE}
out=$(systemd-analyze security --offline=yes --no-pager "$unit" 2>&1) || { echo "$out"; exit 1; }
echo "$out" | grep '✗' || true
echo "$out" | tail -n 1
