#!/usr/bin/env bash
# What `[durability] mode` costs at QoS 1, in each mode, a fresh broker and data directory per run:
#  (p) 10 QoS 1 publishers -> 1 QoS 1 subscriber with a persistent session (`--session-expiry
#      3600`) on bench/#, 64-byte payloads: as fast as delivered, then paced at RATE msgs/s;
#  (r) the same publishers with no subscriber, into a rule that writes every message into SQLite
#      (the rules' write-ahead): as fast as accepted, then paced at RATE msgs/s.
# Then Mosquitto with `persistence true` under (p). One Markdown row per run: msgs/s, the
# subscriber's end-to-end p50/p99, and the publishers' publish-to-PUBACK p50/p99.
#
#   DURATION=8 REPEAT=2 RATE=20000 scripts/bench-durability.sh
#   MODES="off sync" LOADS=r scripts/bench-durability.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/services.sh

DURATION=${DURATION:-8}
REPEAT=${REPEAT:-2}
RATE=${RATE:-20000}
MODES=${MODES:-"off async sync"}
LOADS=${LOADS:-"p r"}
MOSQUITTO=${MOSQUITTO:-1}
PORT=${PORT:-21893}
API_PORT=${API_PORT:-21894}
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

bench_binaries

field() { # file key: the last value of key= in file
  grep -o " $2=[0-9.]*" "$1" | tail -1 | sed 's/.*=//'
}

start_weir() { # mode load
  rm -rf "$work/data" "$work/sql" && mkdir -p "$work/data" "$work/sql"
  if [ "$2" = r ]; then
    echo 'INSERT INTO db SELECT clientid, topic, payload FROM "bench/#"' >"$work/sql/bench.sql"
  fi
  weir_bench_config "$work/weir.toml" "$work/data" "$work/sql" "$PORT" "$API_PORT" <<EOF
[durability]
mode = "$1"

[sinks.db]
type = "sqlite"
url = "sqlite:$work/data/bench.db"
table = "readings"
init_sql = ["CREATE TABLE IF NOT EXISTS readings (clientid TEXT, topic TEXT, payload BLOB)"]
EOF
  WEIR_LOG=warn "$WEIR" serve --config "$work/weir.toml" 2>"$work/broker.log" &
  broker=$!
  sleep 1
}

start_mosquitto() {
  rm -rf "$work/data" && mkdir -p "$work/data"
  printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence true\npersistence_location %s/\n' \
    "$PORT" "$work/data" >"$work/mosquitto.conf"
  /usr/sbin/mosquitto -c "$work/mosquitto.conf" 2>"$work/broker.log" &
  broker=$!
  sleep 1
}

# One load at one rate (0: as fast as it goes) on the running broker; prints its columns.
load() { # load rate
  local sub=""
  if [ "$1" = p ]; then
    "$BENCH" sub -p "$PORT" -c 1 -q 1 -t 'bench/#' --session-expiry 3600 -d $((DURATION + 4)) --prefix s- \
      2>/dev/null >"$work/sub.out" &
    sub=$!
    sleep 1.5
  fi
  "$BENCH" pub -p "$PORT" -c 10 -q 1 -t 'bench/%i' -s 64 -r "$2" -d "$DURATION" --prefix "p$2-" \
    2>/dev/null >"$work/pub.out" || true
  local e2e="-"
  if [ -n "$sub" ]; then
    wait "$sub" || true
    e2e="$(field "$work/sub.out" rate) · $(field "$work/sub.out" p50_ms) / $(field "$work/sub.out" p99_ms)"
  fi
  echo -n "$(field "$work/pub.out" rate) | $e2e | $(field "$work/pub.out" ack_p50_ms) / $(field "$work/pub.out" ack_p99_ms) |"
}

run() { # broker mode load: both rates, each on a fresh broker (a persistent session stays)
  local cols=""
  for rate in 0 "$RATE"; do
    if [ "$1" = weir ]; then start_weir "$2" "$3"; else start_mosquitto; fi
    cols="$cols $(load "$3" "$rate")"
    kill "$broker"; wait "$broker" 2>/dev/null || true
    sleep 1
  done
  echo "| $3 | $1 | $2 |$cols"
}

echo "| load | broker | mode | msgs/s published | received msgs/s · e2e p50 / p99 ms | PUBACK p50 / p99 ms | at $RATE msgs/s: published | received · e2e p50 / p99 ms | PUBACK p50 / p99 ms |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"
for _ in $(seq 1 "$REPEAT"); do
  for l in $LOADS; do
    for m in $MODES; do
      run weir "$m" "$l"
    done
  done
  if [ "$MOSQUITTO" = 1 ] && [[ " $LOADS " == *" p "* ]]; then
    run mosquitto "persistence true" p
  fi
done
