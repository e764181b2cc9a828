#!/usr/bin/env bash
# Install the system packages needed for headless EGL / Mesa llvmpipe rendering (moderngl).
# Idempotent: only missing packages are installed. Usage:
#   bash scripts/install_system_deps.sh            # GL/EGL runtime
#   bash scripts/install_system_deps.sh --browser  # + chromium (HTML report tests)
set -euo pipefail

pkgs=(libegl1 libgl1 libegl-mesa0 libgl1-mesa-dri)
for arg in "$@"; do
    case "$arg" in
        --browser) pkgs+=(chromium chromium-driver) ;;
        -h | --help) sed -n '2,5p' "$0"; exit 0 ;;
        *) echo "install_system_deps: unknown argument: $arg" >&2; exit 2 ;;
    esac
done

if ! command -v apt-get >/dev/null 2>&1 || ! command -v dpkg >/dev/null 2>&1; then
    echo "install_system_deps: apt-get/dpkg not available; install manually: ${pkgs[*]}"
    exit 0
fi

missing=()
for p in "${pkgs[@]}"; do
    if ! dpkg -s "$p" 2>/dev/null | grep -q '^Status: install ok installed'; then
        missing+=("$p")
    fi
done

if [ ${#missing[@]} -eq 0 ]; then
    echo "install_system_deps: all present (${pkgs[*]})"
    exit 0
fi

sudo=()
if [ "$(id -u)" -ne 0 ]; then
    if ! command -v sudo >/dev/null 2>&1; then
        echo "install_system_deps: not root and sudo unavailable; install manually: ${missing[*]}" >&2
        exit 1
    fi
    sudo=(sudo)
fi

echo "install_system_deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install_system_deps: done"
