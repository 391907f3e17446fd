#!/usr/bin/env bash
# TLS and passwords, Weir beside Mosquitto configured the same way, in one run on this machine;
# prints a Markdown table for docs/BENCHMARKS.md.
#
#   scripts/bench-tls.sh
#   DURATION=5 REPEAT=1 IDLE=2000 CONNS=100 LOADS="idle" scripts/bench-tls.sh
#
# Both brokers get one certificate (an EC P-256 key from a test CA, made here with openssl), a
# plain listener and a TLS listener, and password authentication for every client: Mosquitto
# with its password file (mosquitto_passwd: PBKDF2-SHA512, 101 iterations), Weir with its
# built-in database, once with the same PBKDF2 and once with bcrypt at cost 10.
# Loads (weir-bench for both; each runs REPEAT times on a fresh broker, median shown):
#   (a) connections per second over TLS with a password: CONNS clients connect one after
#       another (handshake, CONNECT, password check, CONNACK)
#   (b) QoS 0 fan-in, 10 publishers -> 1 subscriber, 64-byte payloads, over TLS and over TCP
#       (both with passwords): msgs/s received, and TLS as a share of TCP
#   (c) IDLE idle TLS connections: broker resident memory per connection (and over TCP)
# Mosquitto gets set_tcp_nodelay true, as Weir sets TCP_NODELAY: without it, each connect waits
# on Nagle's algorithm and a delayed ACK (about 40 ms).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/services.sh

DURATION=${DURATION:-10}
REPEAT=${REPEAT:-3}
IDLE=${IDLE:-5000}
CONNS=${CONNS:-300}
PORT=${PORT:-21883}
TLS_PORT=${TLS_PORT:-28883}
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

log() { printf '== %s\n' "$*" >&2; }

command -v mosquitto >/dev/null || [ -x /usr/sbin/mosquitto ] || {
  log "installing mosquitto"; apt-get update -qq && apt-get install -y -qq mosquitto >/dev/null; }
log "building weir (release)"
bench_binaries

(
  cd "$work"
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:prime256v1 -out ca.key 2>/dev/null
  openssl req -x509 -new -key ca.key -out ca.pem -days 2 -subj /CN=bench-ca
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:prime256v1 -out server.key 2>/dev/null
  openssl req -new -key server.key -out server.csr -subj /CN=127.0.0.1
  printf 'subjectAltName=IP:127.0.0.1\n' >san.ext
  openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -extfile san.ext -out server.pem 2>/dev/null
  printf 'user_id,password,is_superuser\nbench,bench-pw,false\n' >users.csv
  : >passwd
  mosquitto_passwd -b passwd bench bench-pw
  # Mosquitto started as root runs as the user mosquitto: it must read these.
  chmod 755 . && chmod 644 passwd server.key
)
AUTH=(-u bench -P bench-pw)

start_broker() { # weir-bcrypt | weir-pbkdf2 | mosquitto
  case "$1" in
    weir-*)
      local hash='{ name = "bcrypt", salt_rounds = 10 }'
      [ "$1" = weir-pbkdf2 ] && hash='{ name = "pbkdf2", mac_fun = "sha512", iterations = 101 }'
      rm -rf "$work/data"
      cat >"$work/weir.toml" <<EOT
data_dir = "$work/data"
[listeners.tcp]
bind = "127.0.0.1:$PORT"
[listeners.ws]
enable = false
[listeners.ssl]
bind = "127.0.0.1:$TLS_PORT"
ssl_options.certfile = "$work/server.pem"
ssl_options.keyfile = "$work/server.key"
[api]
enable = false
[[authentication]]
mechanism = "password_based"
backend = "built_in_database"
password_hash_algorithm = $hash
bootstrap_file = "$work/users.csv"
[durability]
mode = "off"
EOT
      WEIR_LOG=warn "$WEIR" serve --config "$work/weir.toml" 2>"$work/weir.log" &
      ;;
    mosquitto)
      cat >"$work/mosquitto.conf" <<EOT
per_listener_settings false
set_tcp_nodelay true
allow_anonymous false
password_file $work/passwd
max_queued_messages 1000
listener $PORT 127.0.0.1
listener $TLS_PORT 127.0.0.1
certfile $work/server.pem
keyfile $work/server.key
EOT
      /usr/sbin/mosquitto -c "$work/mosquitto.conf" 2>"$work/mosquitto.log" &
      ;;
  esac
  BROKER_PID=$!
  wait_listening "$TLS_PORT" "$1"
}

tls_args() { [ "$1" = tls ] && echo "-p $TLS_PORT --cafile $work/ca.pem" || echo "-p $PORT"; }

load_connect() { # broker
  start_broker "$1"
  local out
  # shellcheck disable=SC2046
  out=$("$BENCH" conn $(tls_args tls) "${AUTH[@]}" -c "$CONNS" -d 1 --prefix c- 2>&1 >/dev/null | grep 'conn/s' || true)
  stop_broker
  echo "conn_per_s=$(sed -n 's/.*(\([0-9.]*\) conn\/s).*/\1/p' <<<"$out")"
}

load_fanin() { # broker tls|tcp
  start_broker "$1"
  # shellcheck disable=SC2046
  "$BENCH" sub $(tls_args "$2") "${AUTH[@]}" -c 1 -t 'bench/#' -q 0 -d $((DURATION + 4)) --prefix s- 2>/dev/null >"$work/sub.out" &
  local sub_pid=$!
  sleep 1.5
  # shellcheck disable=SC2046
  "$BENCH" pub $(tls_args "$2") "${AUTH[@]}" -c 10 -t 'bench/%i' -q 0 -s 64 -d "$DURATION" --prefix p- 2>/dev/null >/dev/null
  wait "$sub_pid" || true
  stop_broker
  cat "$work/sub.out"
}

load_idle() { # broker tls|tcp
  start_broker "$1"; sleep 1
  local line
  # shellcheck disable=SC2046
  line=$(idle_kb_per_conn "$IDLE" "$BENCH" conn $(tls_args "$2") "${AUTH[@]}" -c "$IDLE" -d 5 --prefix idle-)
  stop_broker
  echo "$line"
}

declare -A R
LOADS=${LOADS:-"connect fanin idle"}
has() { [[ " $LOADS " == *" $1 "* ]]; }
has connect && for B in weir-bcrypt weir-pbkdf2 mosquitto; do
  R[$B,conn]=$(median_of conn_per_s load_connect "$B" | field conn_per_s)
done
for B in weir-pbkdf2 mosquitto; do
  if has fanin; then
    R[$B,tls]=$(median_of rate load_fanin "$B" tls | field rate)
    R[$B,tcp]=$(median_of rate load_fanin "$B" tcp | field rate)
  fi
  if has idle; then
    R[$B,idle_tls]=$(median_of kb_per_conn load_idle "$B" tls | field kb_per_conn)
    R[$B,idle_tcp]=$(median_of kb_per_conn load_idle "$B" tcp | field kb_per_conn)
  fi
done

cpu=$(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)
echo
echo "Run on $(date -u +%Y-%m-%d) at $(git rev-parse --short HEAD), $(nproc) cores ($cpu); ${DURATION}s per fan-in, $CONNS connects, $IDLE idle connections, median of $REPEAT runs; load tool: weir-bench."
echo
echo "| broker (password hash) | (a) TLS connects/s | (b) QoS 0 fan-in TLS msgs/s | (b) TCP msgs/s | (b) TLS / TCP | (c) KB per idle TLS conn | (c) KB per idle TCP conn |"
echo "| --- | --- | --- | --- | --- | --- | --- |"
share() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.0f%%", 100 * a / b; else print "-" }'; }
echo "| Weir (bcrypt, cost 10) | ${R[weir-bcrypt,conn]:-} | | | | | |"
echo "| Weir (PBKDF2-SHA512, 101) | ${R[weir-pbkdf2,conn]:-} | ${R[weir-pbkdf2,tls]:-} | ${R[weir-pbkdf2,tcp]:-} | $(share "${R[weir-pbkdf2,tls]:-}" "${R[weir-pbkdf2,tcp]:-}") | ${R[weir-pbkdf2,idle_tls]:-} | ${R[weir-pbkdf2,idle_tcp]:-} |"
echo "| Mosquitto (PBKDF2-SHA512, 101) | ${R[mosquitto,conn]:-} | ${R[mosquitto,tls]:-} | ${R[mosquitto,tcp]:-} | $(share "${R[mosquitto,tls]:-}" "${R[mosquitto,tcp]:-}") | ${R[mosquitto,idle_tls]:-} | ${R[mosquitto,idle_tcp]:-} |"
