#!/usr/bin/env bash
# End-to-end cost of rules: the fan-in load of bench-peers.sh (a) (10 publishers -> 1 subscriber
# on bench/#, QoS 0, 64-byte payloads, as fast as delivered) on Weir with no rules, then with ten
# rules that all match every message, alternating REPEAT times (default 2). Prints one Markdown
# row per run: the subscriber's msgs/s, and how many messages the rules processed or skipped
# (read from the Prometheus endpoint after the load).
#
#   DURATION=6 REPEAT=2 scripts/bench-rules.sh
#   RULE='SELECT 1 AS x FROM "bench/#" WHERE qos > 5' scripts/bench-rules.sh   # another rule, ten times
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/services.sh

DURATION=${DURATION:-6}
REPEAT=${REPEAT:-2}
RULE=${RULE:-'SELECT clientid, topic, qos, payload FROM "bench/#" WHERE qos >= 0'}
PORT=${PORT:-21893}
API_PORT=${API_PORT:-21894}
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

bench_binaries

mkdir -p "$work/none" "$work/ten"
for i in $(seq 1 10); do
  echo "$RULE" >"$work/ten/rule_$i.sql"
done

run() { # rules directory
  weir_bench_config "$work/weir.toml" "$work/data" "$1" "$PORT" "$API_PORT" </dev/null
  WEIR_LOG=warn "$WEIR" serve --config "$work/weir.toml" 2>"$work/weir.log" &
  local broker=$!
  sleep 1
  "$BENCH" sub -p "$PORT" -c 1 -t 'bench/#' -d $((DURATION + 4)) --prefix s- 2>/dev/null >"$work/sub.out" &
  local sub=$!
  sleep 1.5
  "$BENCH" pub -p "$PORT" -c 10 -t 'bench/%i' -s 64 -d "$DURATION" --prefix p- 2>/dev/null >/dev/null
  wait "$sub" || true
  local stats matched skipped rate
  stats=$(curl -s "127.0.0.1:$API_PORT/api/v5/prometheus/stats")
  matched=$(echo "$stats" | awk '/^emqx_rule_matched/ {s += $2} END {print s + 0}')
  skipped=$(echo "$stats" | awk '/^weir_rule_engine_skipped/ {print $2}')
  rate=$(grep -o ' rate=[0-9.]*' "$work/sub.out" | tail -1 | sed 's/.*=//')
  kill "$broker"; wait "$broker" 2>/dev/null || true
  echo "| $(basename "$1") | $rate | $matched | ${skipped:-0} |"
  sleep 1
}

echo "| rules | subscriber msgs/s | rule evaluations | messages that skipped the rules |"
echo "| --- | --- | --- | --- |"
for _ in $(seq 1 "$REPEAT"); do
  run "$work/none"
  run "$work/ten"
done
