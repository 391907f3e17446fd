#!/usr/bin/env bash
# Runs every test of Weir on a fresh Debian machine with Rust: installs the Debian packages, npm
# modules and the Kafka-compatible broker tansu the tests use (once), starts a private PostgreSQL
# on a free loopback port, checks formatting and lints, then runs the whole suite and a 45-second
# soak (scripts/soak.sh), and stops PostgreSQL again.
#
#   scripts/test.sh              everything
#   scripts/test.sh -- NAME      only tests whose name contains NAME (passed to cargo test)
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n== %s\n' "$*" >&2; }

# Debian packages: MQTT command-line clients, Chromium for the browser (MQTT.js) test, curl,
# PostgreSQL and the sqlite3 shell (reference tables, and the sinks' destinations), python3 and
# pip (to pick a free port, and to fetch the Kafka-compatible test broker), and the openssl
# command (the TLS test makes its certificates with it, and checks protocol versions); and for
# the build, OpenSSL's headers and pkg-config (librdkafka's SSL and SASL use the system OpenSSL).
source scripts/services.sh
need_pkgs=()
command -v mosquitto_pub >/dev/null || need_pkgs+=(mosquitto-clients)
command -v chromium >/dev/null || need_pkgs+=(chromium)
command -v curl >/dev/null || need_pkgs+=(curl)
command -v sqlite3 >/dev/null || need_pkgs+=(sqlite3)
command -v openssl >/dev/null || need_pkgs+=(openssl)
command -v python3 >/dev/null || need_pkgs+=(python3)
python3 -m pip --version >/dev/null 2>&1 || need_pkgs+=(python3-pip)
[ -n "$(pg_bin)" ] || need_pkgs+=(postgresql)
command -v pkg-config >/dev/null || need_pkgs+=(pkg-config)
[ -f /usr/include/openssl/ssl.h ] || need_pkgs+=(libssl-dev)
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

# The services the sinks' tests use: a private PostgreSQL on a free loopback port (the tests read
# TEST_POSTGRES_URL), and tansu, a Kafka-compatible broker each Kafka test starts itself
# (TEST_TANSU), fetched once.
cleanup=()
trap 'for c in "${cleanup[@]}"; do eval "$c"; done' EXIT
start_postgres
export TEST_POSTGRES_URL="$PG_URL" TEST_POSTGRES_CA="$PG_CA"
install_tansu
export TEST_TANSU="$TANSU"

log "cargo fmt --check"
cargo fmt --all --check

log "cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings

log "cargo test"
out=$(mktemp)
cleanup+=("rm -f '$out'")
status=0
cargo test --workspace "$@" 2>&1 | tee "$out" || status=$?
# One closing line with the totals of every test binary.
awk '/^test result:/ { p += $4; f += $6; s += $8 } END { printf "tests: %d passed, %d failed, %d skipped\n", p, f, s }' "$out"

# A short soak (scripts/soak.sh) on the debug build, after a whole suite that passed.
if [ "$status" = 0 ] && [ $# = 0 ]; then
  log "soak test (45 s)"
  cargo build --quiet -p weir -p weir-bench
  WEIR="${CARGO_TARGET_DIR:-target}/debug/weir" BENCH="${CARGO_TARGET_DIR:-target}/debug/weir-bench" \
    DURATION=45 RATE=500 scripts/soak.sh || status=$?
fi
exit "$status"
