#!/usr/bin/env python3
"""The soak test's own clients, with nothing but the standard library (see scripts/soak.sh).

  soak_clients.py hostile PORT SECONDS       garbage, silent, deaf, churning and flooding clients
  soak_clients.py probe PORT SECONDS         a normal client's PUBLISH -> PUBACK and CONNECT ->
                                             CONNACK times, every 50 ms; prints p50/p99/max
  soak_clients.py hook PORT FILE             an HTTP destination that appends each body's rows
                                             count to FILE
  soak_clients.py report SINKS RULES         the sinks' and rules' counters from the API's JSON
                                             (one sink per line), and whether each sink's rows
                                             add up
"""

import http.server
import json
import os
import random
import socket
import sys
import threading
import time


def varint(n):
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def packet(first, body):
    return bytes([first]) + varint(len(body)) + body


def text(s):
    b = s.encode()
    return len(b).to_bytes(2, "big") + b


def connect_packet(client_id, keepalive=60):
    return packet(0x10, text("MQTT") + bytes([4, 0x02]) + keepalive.to_bytes(2, "big") + text(client_id))


def publish_packet(topic, payload, qos=0, packet_id=1, retain=False):
    body = text(topic) + (packet_id.to_bytes(2, "big") if qos else b"") + payload
    return packet(0x30 | (qos << 1) | int(retain), body)


def subscribe_packet(packet_id, topic_filter, qos=0):
    return packet(0x82, packet_id.to_bytes(2, "big") + text(topic_filter) + bytes([qos]))


def read_packet(sock):
    """(type, body) of the next packet; raises on close or timeout."""
    first = sock.recv(1)
    if not first:
        raise ConnectionError("closed")
    length, shift = 0, 0
    while True:
        b = sock.recv(1)
        if not b:
            raise ConnectionError("closed")
        length |= (b[0] & 0x7F) << shift
        shift += 7
        if not b[0] & 0x80:
            break
    body = b""
    while len(body) < length:
        chunk = sock.recv(length - len(body))
        if not chunk:
            raise ConnectionError("closed")
        body += chunk
    return first[0] >> 4, body


def client(port, client_id, timeout=5.0):
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    sock.sendall(connect_packet(client_id))
    kind, body = read_packet(sock)
    if kind != 2 or body[1] != 0:
        raise ConnectionError(f"CONNACK {body!r}")
    return sock


def forever(stop, name, step):
    """Runs `step` until `stop`; a step that fails is the point of a hostile client."""
    runs = 0
    while not stop.is_set():
        try:
            step()
            runs += 1
        except (OSError, ConnectionError):
            time.sleep(0.05)
    sys.stderr.write(f"hostile {name}: {runs} rounds\n")


def hostile(port, seconds):
    stop = threading.Event()
    rng = random.Random(15)

    def garbage():
        with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
            s.sendall(bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200))))
            s.settimeout(1)
            try:
                while s.recv(4096):
                    pass
            except OSError:
                pass

    silent_socks = []

    def silent():
        silent_socks.append(socket.create_connection(("127.0.0.1", port), timeout=2))
        if len(silent_socks) > 100:
            silent_socks.pop(0).close()
        time.sleep(0.05)

    def deaf():
        s = client(port, f"deaf-{rng.randrange(3)}")
        s.sendall(subscribe_packet(1, "soak/#"))
        time.sleep(20)
        s.close()

    def churn():
        s = client(port, f"churn-{rng.randrange(5)}")
        s.sendall(b"\xe0\x00")
        s.close()

    def retained_flood():
        s = client(port, "retainer")
        for n in range(5000):
            s.sendall(publish_packet(f"soak/ret/{n}", b"r" * 100, retain=True))
        s.sendall(b"\xe0\x00")
        s.close()
        time.sleep(1)

    def subscription_flood():
        s = client(port, "subscriber-flood")
        for n in range(1100):
            s.sendall(subscribe_packet(n + 1, f"soak/subs/{n}"))
            read_packet(s)
        s.close()
        time.sleep(1)

    bad = [b'{"x": "\xc3\xa9a"}', b"not json", b"[" * 5000 + b"]" * 5000, b'{"x": 1e999999}',
           b'{"x": "' + b"f" * 100_000 + b'"}', b"\xff\xfe\x00", b'{"x": -9223372036854775809}']

    def bad_payloads():
        s = client(port, "poisoner")
        for i in range(200):
            s.sendall(publish_packet("soak/bad/x", bad[i % len(bad)]))
        s.sendall(b"\xe0\x00")
        s.close()
        time.sleep(0.2)

    steps = {"garbage": garbage, "silent": silent, "deaf": deaf, "churn": churn,
             "retained": retained_flood, "subscriptions": subscription_flood, "bad-payloads": bad_payloads}
    threads = [threading.Thread(target=forever, args=(stop, n, f), daemon=True) for n, f in steps.items()]
    threads += [threading.Thread(target=forever, args=(stop, "deaf", deaf), daemon=True) for _ in range(2)]
    for t in threads:
        t.start()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join(timeout=25)


def probe(port, seconds):
    """A normal client: PUBLISH QoS 1 -> PUBACK every 50 ms, and a fresh CONNECT every second.
    Its topic is its own: a publisher whose topic a stuck subscriber shares waits for it, once
    per episode, up to backpressure_timeout (by design), which is not what this measures."""
    times, failures, slow = [], 0, []
    sock = client(port, "probe")
    end = time.time() + seconds
    packet_id, last_connect = 0, 0.0
    while time.time() < end:
        started = time.perf_counter()
        try:
            if time.time() - last_connect >= 1:
                last_connect = time.time()
                client(port, "probe-connect").close()
            else:
                packet_id = packet_id % 65535 + 1
                sock.sendall(publish_packet("probe/soak", b"ping", qos=1, packet_id=packet_id))
                while read_packet(sock)[0] != 4:
                    pass
            took = (time.perf_counter() - started) * 1000
            times.append(took)
            if took > 100:
                slow.append(f"{time.strftime('%H:%M:%S')} {'connect' if time.time() - last_connect < 0.5 else 'publish'} {took:.0f}ms")
        except (OSError, ConnectionError):
            failures += 1
            times.append(5000.0)
            sock = client(port, "probe")
        time.sleep(0.05)
    times.sort()
    pick = lambda q: times[min(len(times) - 1, int(q * len(times)))]
    print(f"probe: samples={len(times)} p50_ms={pick(0.5):.2f} p99_ms={pick(0.99):.2f} "
          f"max_ms={times[-1]:.2f} over_100ms={sum(t > 100 for t in times)} failures={failures}")
    for sample in slow:
        sys.stderr.write(f"probe: slow {sample}\n")


def hook(port, path):
    lock = threading.Lock()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            rows = json.loads(body)
            with lock, open(path, "a") as f:
                f.write(f"{len(rows) if isinstance(rows, list) else 1}\n")
            self.send_response(200)
            self.end_headers()

        def do_HEAD(self):
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


def report(sinks_path, rules_path):
    add_up = True
    for line in open(sinks_path):
        if not line.strip():
            continue
        sink = json.loads(line)
        m = sink["metrics"]
        keys = ["matched", "success", "failed", "dropped", "queuing", "inflight", "retried"]
        print(f"sink {sink['name']}: " + " ".join(f"{k}={m[k]}" for k in keys))
        add_up &= m["matched"] == sum(m[k] for k in ["success", "failed", "dropped", "queuing", "inflight"])
    for line in open(rules_path):
        if line.strip():
            rule = json.loads(line)
            m = rule["metrics"]
            print(f"rule {rule['id']}: " + " ".join(f"{k}={m.get(k)}" for k in ["matched", "passed", "failed.exception"]))
    if add_up:
        print("sinks add up: matched = success + failed + dropped + queuing + inflight")


if __name__ == "__main__":
    what = sys.argv[1]
    if what == "report":
        report(sys.argv[2], sys.argv[3])
    else:
        port = int(sys.argv[2])
        {"hostile": lambda: hostile(port, float(sys.argv[3])), "probe": lambda: probe(port, float(sys.argv[3])),
         "hook": lambda: hook(port, sys.argv[3])}[what]()
    os._exit(0)
