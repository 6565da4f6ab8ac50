#!/usr/bin/env bash
# Installs, with apt-get, everything needed to build cfsupervisor and run its tests
# (including the QEMU test VM) on Debian 12. Needs root.
set -euo pipefail
if [[ $(id -u) -ne 0 ]]; then
    echo "install-deps: run as root (it uses apt-get)" >&2
    exit 1
fi
packages=(
    # build
    build-essential cmake ninja-build pkg-config
    libsystemd-dev libseccomp-dev libcap-dev libtomlplusplus-dev libfmt-dev doctest-dev
    libcurl4-openssl-dev nlohmann-json3-dev
    # openssl makes the systemd test VM's TLS certificate (tests/vm/build-root-image.sh)
    openssl
    # test kernel build (Debian's linux-source-6.12 is fetched by tests/vm)
    bc bison flex libelf-dev libssl-dev xz-utils dpkg-dev
    # test VM and images
    qemu-system-x86 erofs-utils busybox-static e2fsprogs cpio python3
    # the systemd test VM's Debian root tree (tests/vm/build-rootfs.sh)
    debootstrap debian-archive-keyring
    # systemd-sysusers creates the workers' user in that root image (build-root-image.sh);
    # systemd-analyze, -sysusers and -tmpfiles check the units and the install
    systemd
    # groff lints the man pages (tests/man_lint.sh)
    groff-base
    # the benchmark's plot (scripts/bench.sh, bench/report.py)
    gnuplot-nox
)
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${packages[@]}"
