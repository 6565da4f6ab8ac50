#!/usr/bin/env bash
# The daemon's binaries are built hardened (CMakeLists.txt): full RELRO (a GNU_RELRO
# segment and BIND_NOW), position independent, the stack protector and fortified
# libc calls compiled in (their checking functions imported; not in a Debug build,
# whose lack of optimisation _FORTIFY_SOURCE needs: --unfortified).
#
# usage: hardening.sh --fortified|--unfortified BINARY...
set -euo pipefail
usage() { echo "usage: hardening.sh --fortified|--unfortified BINARY..." >&2; exit 2; }
case ${1:-} in
    --fortified) fortified=1 ;;
    --unfortified) fortified=0 ;;
    *) usage ;;
esac
shift
[[ $# -gt 0 ]] || usage
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
    [[ $fortified -eq 0 ]] || grep -Eq '__[a-z_]+_chk@' <<< "$symbols" || fail "no fortified libc call (_FORTIFY_SOURCE)"
done
exit "$failed"
