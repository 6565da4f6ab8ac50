#!/usr/bin/env bash
# Lints man pages with groff's man(7) macros and every warning on (-ww): any
# diagnostic fails, as does a page without NAME and SYNOPSIS sections (what
# mandb and apropos need). groff comes from groff-base (scripts/install-deps.sh).
set -euo pipefail
[[ $# -gt 0 ]] || { echo "usage: man_lint.sh PAGE..." >&2; exit 2; }
status=0
for page in "$@"; do
    bad=0
    diag=$(LC_ALL=C.UTF-8 groff -man -ww -z "$page" 2>&1) || bad=1
    if [[ -n "$diag" ]]; then
        echo "$page:"; echo "$diag"; bad=1
    fi
    for section in NAME SYNOPSIS; do
        grep -q "^\.SH $section\$" "$page" || { echo "$page: no .SH $section"; bad=1; }
    done
    if [[ $bad -eq 0 ]]; then echo "$page: clean"; else status=1; fi
done
exit $status
