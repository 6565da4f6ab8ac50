#!/usr/bin/env bash
# Builds cfsupervisor and runs the whole test suite: unit tests, then every scenario
# on the real test kernel in QEMU. The first run builds that kernel (about 10 minutes
# on 2 cores) and caches it in ${CFS_CACHE_DIR:-~/.cache/cfsupervisor}.
#
# usage: scripts/test.sh [ctest arguments...]   e.g. scripts/test.sh -L unit
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${CFS_BUILD_DIR:-$root/build}
# Test builds compile in the worker fault injection the VM scenarios use; release
# builds (the default) do not have it.
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_INSTALL_PREFIX=/usr -DCFS_FAULT_INJECTION=ON
cmake --build "$build" -j"$(nproc)"
cd "$build"
exec ctest --output-on-failure "$@"
