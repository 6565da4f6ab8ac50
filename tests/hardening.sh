#!/usr/bin/env bash
# The daemon's binaries are built hardened (CMakeLists.txt): full RELRO (a GNU_RELRO
# segment and BIND_NOW), position independent, the stack protector and fortified
# libc calls compiled in (their checking functions imported).
#
# usage: hardening.sh BINARY...
set -euo pipefail
[[ $# -gt 0 ]] || { echo "usage: hardening.sh BINARY..." >&2; exit 2; }
failed=0
for bin in "$@"; do
    fail() { echo "hardening: $bin: $*" >&2; failed=1; }
    headers=$(readelf -lW "$bin") || { fail "not an ELF file readelf can read"; continue; }
    dynamic=$(readelf -dW "$bin")
    symbols=$(readelf -sW --dyn-syms "$bin")
    grep -q 'GNU_RELRO' <<< "$headers" || fail "no GNU_RELRO segment (-z relro)"
    grep -Eq '\(FLAGS\).*BIND_NOW|\(FLAGS_1\).*NOW' <<< "$dynamic" || fail "relocations bound lazily (no -z now)"
    grep -Eq '\(FLAGS_1\).*PIE' <<< "$dynamic" || fail "not position independent (PIE)"
    grep -q '__stack_chk_fail' <<< "$symbols" || fail "no stack protector (__stack_chk_fail not imported)"
    grep -Eq '__[a-z_]+_chk@' <<< "$symbols" || fail "no fortified libc call (_FORTIFY_SOURCE)"
done
exit "$failed"
