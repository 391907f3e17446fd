#!/usr/bin/env bash
# Soak: well-behaved QoS 1 publishers and a subscriber, with rules into SQLite (the built-in
# weir_db) and an HTTP destination, beside hostile clients (scripts/soak_clients.py: garbage
# bytes, sockets that never send CONNECT, subscribers that read nothing, connect/disconnect
# loops, retained messages and subscriptions flooded past their limits, payloads that make rules
# fail). Meanwhile the HTTP destination goes away for a sixth of the run and comes back.
#
# At the end it checks, and exits non-zero if one fails:
#   - the subscriber received every QoS 1 message the publishers sent (none lost);
#   - every row the sinks matched was delivered, refused (failed) or dropped, counted, and none
#     is left buffered; the HTTP destination got at least the rows the sink counts as delivered;
#   - the broker's RSS stayed under RSS_LIMIT_MB;
#   - a normal client's PUBLISH -> PUBACK and CONNECT -> CONNACK took at most 100 ms at p99.
#
#   scripts/soak.sh                      10 minutes
#   DURATION=60 RATE=2000 scripts/soak.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/services.sh

DURATION=${DURATION:-600}
RATE=${RATE:-2000}
RSS_LIMIT_MB=${RSS_LIMIT_MB:-512}
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
PORT=$(free_port) API_PORT=$(free_port) HOOK_PORT=$(free_port)

bench_binaries

mkdir -p "$work/sql"
cat >"$work/sql/soak.sql" <<'SQL'
INSERT INTO weir_db SELECT timestamp AS received_at, clientid, topic FROM "soak/good/#";
INSERT INTO hook SELECT clientid, topic, qos, timestamp FROM "soak/good/#";
INSERT INTO weir_db SELECT hexstr2bin(payload.x) AS payload, pad(payload.x, 100000000) AS topic, jq('.[0]', payload) AS clientid FROM "soak/bad/#"
SQL
weir_bench_config "$work/weir.toml" "$work/data" "$work/sql" "$PORT" "$API_PORT" <<EOF
[mqtt]
max_subscriptions = 1000
send_timeout = 5000
idle_timeout = 5
[retainer]
max_retained_messages = 2000
[sinks.hook]
type = "http"
url = "http://127.0.0.1:$HOOK_PORT/rows"
max_retry_backoff_ms = 1000
EOF

log() { echo "== $(date +%T) $*" >&2; }
hook() { python3 scripts/soak_clients.py hook "$HOOK_PORT" "$work/hook.rows" & hook_pid=$!; }
api() { curl -sf -u "$WEIR_API_KEY" "127.0.0.1:$API_PORT$1"; }

log "soak: ${DURATION}s, $RATE QoS 1 msgs/s, broker on 127.0.0.1:$PORT"
hook
WEIR_LOG=warn "$WEIR" serve --config "$work/weir.toml" 2>"$work/weir.log" &
broker=$!
for _ in $(seq 50); do api /api/v5/rules >/dev/null 2>&1 && break; sleep 0.1; done

max_rss=0
( while kill -0 "$broker" 2>/dev/null; do
    awk '/VmRSS/ {print $2}' "/proc/$broker/status" 2>/dev/null
    sleep 1
  done >"$work/rss" ) &
"$BENCH" sub -p "$PORT" -c 1 -q 1 -t 'soak/good/#' -d $((DURATION + 15)) --prefix good-sub- \
  >"$work/sub.out" 2>/dev/null &
sub=$!
sleep 1
python3 scripts/soak_clients.py probe "$PORT" "$DURATION" >"$work/probe.out" 2>"$work/probe.err" &
probe=$!
python3 scripts/soak_clients.py hostile "$PORT" "$DURATION" 2>"$work/hostile.out" &
hostile=$!
"$BENCH" pub -p "$PORT" -c 5 -q 1 -t 'soak/good/%i' -r "$RATE" -d "$DURATION" --prefix good-pub- \
  >"$work/pub.out" 2>/dev/null &
pub=$!

sleep $((DURATION / 3))
log "the HTTP destination goes away"
kill "$hook_pid"; wait "$hook_pid" 2>/dev/null || true
sleep $((DURATION / 6))
log "the HTTP destination comes back"
hook
wait "$pub"
log "publishers done; waiting for the subscriber and the sinks"
wait "$probe" "$hostile" || true
wait "$sub" || true

settled=no
for _ in $(seq 120); do
  h=$(api /api/v5/sinks/hook || echo '{}')
  if [ "$(echo "$h" | python3 -c 'import json,sys; m=json.load(sys.stdin).get("metrics",{}); print(m.get("queuing",1)+m.get("inflight",1))')" = 0 ]; then
    settled=yes; break
  fi
  sleep 0.5
done
sinks=$(for s in hook weir_db; do api "/api/v5/sinks/$s"; echo; done)
rules=$(for r in soak_1 soak_2 soak_3; do api "/api/v5/rules/$r/metrics"; echo; done)
kill "$broker"; wait "$broker" 2>/dev/null || true

sent=$(grep -o 'sent=[0-9]*' "$work/pub.out" | tail -1 | cut -d= -f2)
received=$(grep -o 'received=[0-9]*' "$work/sub.out" | tail -1 | cut -d= -f2)
max_rss=$(sort -n "$work/rss" | tail -1)
hook_rows=$(awk '{s += $1} END {print s + 0}' "$work/hook.rows" 2>/dev/null || echo 0)
probe_line=$(cat "$work/probe.out")
p99=$(echo "$probe_line" | grep -o 'p99_ms=[0-9.]*' | cut -d= -f2)

echo "$sinks" >"$work/sinks.json"
echo "$rules" >"$work/rules.json"
python3 scripts/soak_clients.py report "$work/sinks.json" "$work/rules.json" >"$work/report" || true
cat "$work/report"
sed 's/^/  /' "$work/hostile.out"
echo "good QoS 1 messages: sent=$sent received=$received"
echo "HTTP destination: rows=$hook_rows"
echo "broker RSS: max=$((max_rss / 1024)) MB (limit $RSS_LIMIT_MB MB)"
echo "$probe_line"
head -20 "$work/probe.err"
echo "broker log: $(grep -c WARN "$work/weir.log" || true) warnings, $(grep -c ERROR "$work/weir.log" || true) errors"

status=0
fail() { echo "FAIL: $*"; status=1; }
[ -n "$sent" ] && [ "$sent" -gt 0 ] || fail "the publishers sent nothing"
[ "${received:-0}" -ge "${sent:-1}" ] || fail "QoS 1 messages lost: $sent sent, $received received"
[ "$settled" = yes ] || fail "the HTTP sink still holds rows"
grep -q '^sinks add up' "$work/report" || fail "a sink's rows do not add up"
hook_success=$(sed -n 's/^sink hook: matched=[0-9]* success=\([0-9]*\).*/\1/p' "$work/report")
[ "$hook_rows" -ge "${hook_success:-1}" ] || fail "the HTTP destination got $hook_rows rows, the sink counts $hook_success"
[ "$((max_rss / 1024))" -le "$RSS_LIMIT_MB" ] || fail "RSS went over $RSS_LIMIT_MB MB"
python3 -c "import sys; sys.exit(0 if float('${p99:-1e9}') <= 100 else 1)" || fail "p99 over 100 ms"
grep -q 'panicked' "$work/weir.log" && fail "the broker log has a panic: $(grep -m1 panicked "$work/weir.log")"
[ "$status" = 0 ] && echo "soak: passed"
exit $status
