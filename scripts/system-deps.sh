#!/usr/bin/env bash
# System packages opro's set-up needs on a bare Debian machine: a C/C++ toolchain and CMake
# to compile llama-cpp-python, and the venv module. With --browser (`make test`), also
# Chromium and its WebDriver, with which a test renders an `opro report` page headless
# (without them that test checks the page with an HTML parser instead, and says so).
# Installs only what is missing (as root).
set -euo pipefail
browser=no
[ "${1:-}" = "--browser" ] && browser=yes
need=()
command -v gcc >/dev/null || need+=(gcc)
command -v g++ >/dev/null || need+=(g++)
command -v make >/dev/null || need+=(make)
command -v cmake >/dev/null || need+=(cmake)
python3 -c "import ensurepip, venv" 2>/dev/null || need+=(python3-venv)
optional=()
if [ "$browser" = yes ]; then
  command -v chromium >/dev/null || optional+=(chromium)
  command -v chromedriver >/dev/null || optional+=(chromium-driver)
fi
if [ ${#need[@]} -eq 0 ] && [ ${#optional[@]} -eq 0 ]; then exit 0; fi
if [ "$(id -u)" -ne 0 ]; then
  if [ ${#need[@]} -gt 0 ]; then
    echo "opro set-up: please install: ${need[*]} ${optional[*]} (e.g. sudo apt-get install ${need[*]} ${optional[*]})" >&2
    exit 1
  fi
  echo "opro set-up: for the browser test of reports, install: ${optional[*]} (e.g. sudo apt-get install ${optional[*]})" >&2
  exit 0
fi
echo "opro set-up: installing ${need[*]} ${optional[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq
else  # only the optional browser: offline, the report test falls back to an HTML parser
  apt-get update -qq || true
fi
if [ ${#need[@]} -gt 0 ]; then
  apt-get install -y -qq "${need[@]}" >/dev/null
fi
if [ ${#optional[@]} -gt 0 ]; then
  apt-get install -y -qq "${optional[@]}" >/dev/null \
    || echo "opro set-up: could not install ${optional[*]}; the report test will use an HTML parser" >&2
fi
