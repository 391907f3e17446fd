#!/usr/bin/env bash
# Runs the same loads against Weir, Mosquitto and rumqttd, one broker after another, in one run
# on this machine, and prints a Markdown table for docs/BENCHMARKS.md.
#
#   scripts/bench-peers.sh                 all brokers, all loads
#   BROKERS="weir mosquitto" DURATION=5 REPEAT=1 scripts/bench-peers.sh
#
# Each load runs REPEAT times (default 3) on a freshly started broker; the table shows the run
# with the median of the load's main figure, since a 2-core machine shared by broker and load
# tool is noisy.
#
# Loads (64-byte payloads, `weir-bench` as the load tool for every broker):
#   (a) fan-in: 10 publishers -> 1 subscriber on bench/#, QoS 0 and QoS 1, as fast as delivered
#   (b) the same at a fixed 20,000 msgs/s, QoS 0: latency p50/p99
#   (c) fan-out: 1 publisher -> 100 subscribers, QoS 0: deliveries/s
#   (d) 10,000 idle connections: broker resident memory per connection
# Needs: mosquitto (Debian package), rumqttd (`cargo install rumqttd`); installs them if missing.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/services.sh

BROKERS=${BROKERS:-"weir mosquitto rumqttd"}
DURATION=${DURATION:-10}
PORT=${PORT:-21883}
IDLE=${IDLE:-10000}
REPEAT=${REPEAT:-3}
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

log() { printf '== %s\n' "$*" >&2; }

command -v mosquitto >/dev/null || [ -x /usr/sbin/mosquitto ] || {
  log "installing mosquitto"; apt-get update -qq && apt-get install -y -qq mosquitto >/dev/null; }
command -v rumqttd >/dev/null || { log "installing rumqttd"; cargo install rumqttd; }
log "building weir (release)"
bench_binaries

start_broker() {
  case "$1" in
    weir)
      cat >"$work/weir.toml" <<EOF
data_dir = "$work/data"
[listeners.tcp]
bind = "127.0.0.1:$PORT"
[listeners.ws]
enable = false
[api]
enable = false
EOF
      WEIR_LOG=warn "$WEIR" serve --config "$work/weir.toml" 2>"$work/weir.log" &
      ;;
    mosquitto)
      printf 'listener %s 127.0.0.1\nallow_anonymous true\nmax_queued_messages 1000\n' "$PORT" >"$work/mosquitto.conf"
      /usr/sbin/mosquitto -c "$work/mosquitto.conf" 2>"$work/mosquitto.log" &
      ;;
    rumqttd)
      cat >"$work/rumqttd.toml" <<EOF
id = 0
[router]
id = 0
max_connections = $((IDLE + 1000))
max_outgoing_packet_count = 200
max_segment_size = 104857600
max_segment_count = 10
[v4.1]
name = "v4-1"
listen = "127.0.0.1:$PORT"
next_connection_delay_ms = 0
    [v4.1.connections]
    connection_timeout_ms = 60000
    max_payload_size = 20480
    max_inflight_count = 100
    dynamic_filters = true
EOF
      rumqttd --config "$work/rumqttd.toml" -q >"$work/rumqttd.log" 2>&1 &
      ;;
  esac
  BROKER_PID=$!
  for _ in $(seq 100); do
    (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && return 0
    sleep 0.1
  done
  log "$1 did not start"; return 1
}


# One subscriber process and one publisher process; echoes the subscriber's summary line.
pubsub() { # pubs subs qos rate
  local pubs=$1 subs=$2 qos=$3 rate=$4
  "$BENCH" sub -p "$PORT" -c "$subs" -t 'bench/#' -q "$qos" -d $((DURATION + 4)) --prefix s- 2>/dev/null >"$work/sub.out" &
  local sub_pid=$!
  sleep 1.5
  "$BENCH" pub -p "$PORT" -c "$pubs" -t 'bench/%i' -q "$qos" -s 64 -r "$rate" -d "$DURATION" --prefix p- 2>/dev/null >"$work/pub.out"
  wait "$sub_pid" || true
  echo "$(cat "$work/sub.out") $(sed 's/summary: /pub_/; s/ rate=/ pub_rate=/' "$work/pub.out")"
}

# The loads. Each starts its broker, prints one line of key=value figures, and stops it.
load_fanin() { # qos rate
  start_broker "$B"; pubsub 10 1 "$1" "$2"; stop_broker
}
load_fanout() {
  start_broker "$B"
  "$BENCH" sub -p "$PORT" -c 100 -t 'bench/fan' -q 0 -d $((DURATION + 6)) --prefix f- 2>/dev/null >"$work/sub.out" &
  local sp=$!; sleep 3
  "$BENCH" pub -p "$PORT" -c 1 -t 'bench/fan' -q 0 -s 64 -d "$DURATION" --prefix fp- 2>/dev/null >/dev/null
  wait "$sp" || true; stop_broker
  cat "$work/sub.out"
}
load_idle() {
  start_broker "$B"; sleep 1
  local line
  line=$(idle_kb_per_conn "$IDLE" "$BENCH" conn -p "$PORT" -c "$IDLE" -d 5 --prefix idle-)
  stop_broker
  echo "$line"
}

declare -A R
for B in $BROKERS; do
  line=$(median_of rate load_fanin 0 0)
  R[$B,a0]=$(field rate <<<"$line")
  line=$(median_of rate load_fanin 1 0)
  R[$B,a1]=$(field rate <<<"$line"); R[$B,a1sent]=$(field pub_sent <<<"$line"); R[$B,a1recv]=$(field received <<<"$line")
  line=$(median_of p99_ms load_fanin 0 20000)
  R[$B,bp50]=$(field p50_ms <<<"$line"); R[$B,bp99]=$(field p99_ms <<<"$line"); R[$B,brate]=$(field rate <<<"$line")
  line=$(median_of rate load_fanout)
  R[$B,c]=$(field rate <<<"$line")
  line=$(median_of kb_per_conn load_idle)
  R[$B,d]=$(field kb_per_conn <<<"$line")
done

cpu=$(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)
echo
echo "Run on $(date -u +%Y-%m-%d), $(nproc) cores ($cpu), $(free -g | awk '/Mem:/ {print $2}') GiB; ${DURATION}s per load, median of $REPEAT runs; load tool: weir-bench."
echo
echo "| broker | (a) QoS 0 msgs/s | (a) QoS 1 msgs/s | (a) QoS 1 sent / received | (b) p50 ms | (b) p99 ms | (b) msgs/s | (c) deliveries/s | (d) KB/conn |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"
for b in $BROKERS; do
  echo "| $b | ${R[$b,a0]} | ${R[$b,a1]} | ${R[$b,a1sent]} / ${R[$b,a1recv]} | ${R[$b,bp50]} | ${R[$b,bp99]} | ${R[$b,brate]} | ${R[$b,c]} | ${R[$b,d]} |"
done
