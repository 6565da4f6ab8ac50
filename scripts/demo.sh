#!/usr/bin/env bash
# The demo on a fresh Debian 12 machine: installs what is needed, builds, boots the
# test kernel in QEMU, mounts an erofs image lazily through cfsupervisor, reads it,
# kills a worker mid-read, and shows what the daemon did.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${CFS_BUILD_DIR:-$root/build}
"$root/scripts/install-deps.sh"
# Test builds compile in the worker fault injection the VM scenarios use; release
# builds (the default) do not have it.
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_INSTALL_PREFIX=/usr -DCFS_FAULT_INJECTION=ON
cmake --build "$build" -j"$(nproc)"
cd "$build"
ctest --output-on-failure -R '^vm_prepare$'
exec "$root/tests/vm/run-scenario.sh" demo 600 "$build/tests/vm"
