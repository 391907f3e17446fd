#!/usr/bin/env bash
# Sinks, end to end: QoS 1 MQTT publishers (weir-bench pub, 4 clients) → one rule
#   INSERT INTO s SELECT clientid, topic, timestamp AS ts FROM "bench/#"
# → a sink, timed from the first publish until the sink has confirmed every row; beside each, in
# the same run, the ceiling for the same rows without Weir:
#   postgres  table mode (one COPY ... FROM STDIN per batch) vs  psql \copy of the rows from a CSV file
#   kafka     acks=all, idempotence (tansu, in memory)        vs  weir-bench kafka (plain librdkafka)
#   sqlite    table mode (multi-row INSERT per batch)         vs  sqlite3 .import of the CSV file
# Prints one Markdown row per destination and run, with the CPU time (user + system) that Weir,
# the publishers and, for PostgreSQL, the database server used during the run through Weir.
#
#   ROWS=2000000 REPEAT=2 scripts/bench-sinks.sh
# In runs of about a second, warm-up (connections, first allocations) weighs heavily: keep ROWS
# in the millions.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/services.sh

ROWS=${ROWS:-1000000}
REPEAT=${REPEAT:-1}
CLIENTS=4
work=$(mktemp -d)
cleanup=()
trap 'kill $(jobs -p) 2>/dev/null || true; for c in "${cleanup[@]}"; do eval "$c"; done; rm -rf "$work"' EXIT

bench_binaries
start_postgres
start_tansu

# The rows the rule makes, as CSV, for the ceilings.
python3 - "$ROWS" "$CLIENTS" >"$work/rows.csv" <<'PY'
import sys, time
rows, clients = int(sys.argv[1]), int(sys.argv[2])
ts = int(time.time() * 1000)
for i in range(rows):
    c = i % clients
    print(f"bench-{c},bench/{c},{ts + i // 1000}")
PY

now() { date +%s.%N; }
# CPU seconds (user + system) used by process $1 and the children it has waited for.
cpu_of() { awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15 + $16 + $17) / hz }' "/proc/$1/stat"; }
# CPU seconds used so far by the PostgreSQL server: the postmaster and its live children.
pg_cpu() {
  local postmaster t=0
  postmaster=$(head -n 1 "$PG_DATA/postmaster.pid")
  for p in $postmaster $(pgrep -P "$postmaster"); do t=$(python3 -c "print($t + $(cpu_of "$p"))"); done
  echo "$t"
}
rate() { python3 -c "print(f'{$1 / ($3 - $2):,.0f}')"; }

# Runs Weir with the sink config $1, publishes ROWS QoS 1 messages, waits until the sink `s` has
# confirmed them all; prints rows/s from the first publish to the last confirmation, then the CPU
# seconds of Weir, of the publishers and, when $2 names a function printing a server's CPU
# seconds so far, of that server.
through_weir() {
  local port api
  port=$(free_port)
  api=$(free_port)
  rm -rf "$work/data" "$work/sql"
  mkdir -p "$work/sql"
  echo 'INSERT INTO s SELECT clientid, topic, timestamp AS ts FROM "bench/#"' >"$work/sql/s.sql"
  printf '[sinks.s]\n%s\n' "$1" | weir_bench_config "$work/weir.toml" "$work/data" "$work/sql" "$port" "$api"
  WEIR_LOG=warn "$WEIR" serve --config "$work/weir.toml" 2>"$work/weir.log" &
  local broker=$!
  sleep 1
  local start end server_before weir_cpu server_cpu=-
  # Watches the sink from before the first publish, so that the end is the time of the last
  # confirmation (to 10 ms), not that plus the start-up of a checking process.
  python3 - "$api" "$ROWS" "$WEIR_API_KEY" >"$work/end" <<'PY' &
import base64, json, sys, time, urllib.request
url, rows = f"http://127.0.0.1:{sys.argv[1]}/api/v5/sinks/s", int(sys.argv[2])
auth = {"Authorization": "Basic " + base64.b64encode(sys.argv[3].encode()).decode()}
while (done := json.load(urllib.request.urlopen(urllib.request.Request(url, headers=auth)))["metrics"]["success"]) < rows:
    # Often near the end only: each look costs CPU that Weir and the database would use.
    time.sleep(0.2 if done < rows * 0.9 else 0.01)
print(f"{time.time():.6f}")
PY
  local watcher=$!
  sleep 0.5
  [ -n "${2:-}" ] && server_before=$($2)
  start=$(now)
  local TIMEFORMAT='%U %S'
  { time "$BENCH" pub -p "$port" -c "$CLIENTS" -q 1 -t 'bench/%i' -s 16 --limit $((ROWS / CLIENTS)) -d 600 >/dev/null 2>&1; } 2>"$work/pub.time"
  wait "$watcher"
  end=$(cat "$work/end")
  weir_cpu=$(cpu_of "$broker")
  [ -n "${2:-}" ] && server_cpu=$(python3 -c "print(f'{$($2) - $server_before:.2f}')")
  kill "$broker"
  wait "$broker" 2>/dev/null || true
  echo "$(rate "$ROWS" "$start" "$end") $weir_cpu $(awk '{ printf "%.2f", $1 + $2 }' "$work/pub.time") $server_cpu"
}

# One Markdown row: destination, the output of through_weir, the ceiling and what it is.
row() { # destination "rate weir_cpu pub_cpu server_cpu" ceiling ceiling_is
  local r
  read -r -a r <<<"$2"
  echo "| $1 | ${r[0]} | $3 | $4 | $(python3 -c "print(f'{${r[0]//,/} / ${3//,/}:.0%}')") | ${r[1]}, ${r[2]}, ${r[3]} |"
}

echo "| destination | through Weir (rows/s) | ceiling (rows/s) | ceiling is | share | CPU s: Weir, publishers, server |"
echo "| --- | --- | --- | --- | --- | --- |"
for run in $(seq 1 "$REPEAT"); do
  # PostgreSQL
  psql "$PG_URL" -q -c "DROP TABLE IF EXISTS bench_rows, bench_copy; CREATE TABLE bench_rows (clientid text, topic text, ts bigint); CREATE TABLE bench_copy (clientid text, topic text, ts bigint)"
  # Each timed phase starts right after a checkpoint, so that neither shares the disk with one
  # that the previous phase's WAL set off.
  psql "$PG_URL" -q -c CHECKPOINT
  weir=$(through_weir "type = \"postgres\"
url = \"$PG_URL\"
table = \"bench_rows\"" pg_cpu)
  psql "$PG_URL" -q -c CHECKPOINT
  start=$(now)
  psql "$PG_URL" -q -c "\\copy bench_copy FROM '$work/rows.csv' CSV"
  row postgres "$weir" "$(rate "$ROWS" "$start" "$(now)")" "psql \\copy"

  # Kafka
  topic="bench-$run-$RANDOM"
  weir=$(through_weir "type = \"kafka\"
brokers = \"$KAFKA\"
topic = \"$topic\"
key = \"\${clientid}\"")
  ceiling=$("$BENCH" kafka --brokers "$KAFKA" -t "$topic-plain" -n "$ROWS" -c "$CLIENTS" | sed -n 's/.*rate=\([0-9]*\).*/\1/p')
  row kafka "$weir" "$(python3 -c "print(f'{$ceiling:,}')")" "librdkafka producer"

  # SQLite
  rm -f "$work/bench.db" "$work/copy.db"
  weir=$(through_weir "type = \"sqlite\"
url = \"sqlite:$work/bench.db\"
table = \"bench_rows\"
init_sql = [\"CREATE TABLE IF NOT EXISTS bench_rows (clientid TEXT, topic TEXT, ts INTEGER)\"]")
  sqlite3 "$work/copy.db" "PRAGMA journal_mode=WAL; CREATE TABLE bench_copy (clientid TEXT, topic TEXT, ts INTEGER)" >/dev/null
  start=$(now)
  sqlite3 "$work/copy.db" ".import --csv $work/rows.csv bench_copy"
  row sqlite "$weir" "$(rate "$ROWS" "$start" "$(now)")" "sqlite3 .import"
done
