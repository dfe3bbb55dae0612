#!/usr/bin/env bash
# System packages opro's set-up needs on a bare Debian machine: a C/C++ toolchain and CMake
# to compile llama-cpp-python, and the venv module. Installs only what is missing (as root).
set -euo pipefail
need=()
command -v gcc >/dev/null || need+=(gcc)
command -v g++ >/dev/null || need+=(g++)
command -v make >/dev/null || need+=(make)
command -v cmake >/dev/null || need+=(cmake)
python3 -c "import ensurepip, venv" 2>/dev/null || need+=(python3-venv)
if [ ${#need[@]} -eq 0 ]; then exit 0; fi
if [ "$(id -u)" -ne 0 ]; then
  echo "opro set-up: please install: ${need[*]} (e.g. sudo apt-get install ${need[*]})" >&2
  exit 1
fi
echo "opro set-up: installing ${need[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq "${need[@]}" >/dev/null
