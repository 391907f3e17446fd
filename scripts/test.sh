#!/usr/bin/env bash
# Runs every test of Weir on a fresh Debian machine with Rust: installs the Debian packages and
# npm modules the tests use (once), checks formatting and lints, then runs the whole suite.
#
#   scripts/test.sh              everything
#   scripts/test.sh -- NAME      only tests whose name contains NAME (passed to cargo test)
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n== %s\n' "$*" >&2; }

# Debian packages: MQTT command-line clients, Chromium for the browser (MQTT.js) test, curl.
need_pkgs=()
command -v mosquitto_pub >/dev/null || need_pkgs+=(mosquitto-clients)
command -v chromium >/dev/null || need_pkgs+=(chromium)
command -v curl >/dev/null || need_pkgs+=(curl)
if [ ${#need_pkgs[@]} -gt 0 ]; then
  log "installing Debian packages: ${need_pkgs[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
fi

# MQTT.js for the browser test, bundled for the page (browser build ships in the npm package).
if [ ! -f tests/browser/node_modules/mqtt/dist/mqtt.min.js ]; then
  log "installing MQTT.js (npm) into tests/browser"
  (cd tests/browser && npm install --no-audit --no-fund --silent)
fi

log "cargo fmt --check"
cargo fmt --all --check

log "cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings

log "cargo test"
out=$(mktemp)
trap 'rm -f "$out"' EXIT
status=0
cargo test --workspace "$@" 2>&1 | tee "$out" || status=$?
# One closing line with the totals of every test binary.
awk '/^test result:/ { p += $4; f += $6; s += $8 } END { printf "tests: %d passed, %d failed, %d skipped\n", p, f, s }' "$out"
exit "$status"
