#!/usr/bin/env python3
"""Runs the performance evaluation of docs/performance.md and prints its tables.

Usage: python3 bench/evaluate.py [--runs 3] [--quick] [--before PATH_TO_OLD_CHATD]

Builds nothing: run `cargo build --release -p chatd -p chat-bench` first.
Every figure is the median of --runs runs; raw JSON lines go to
bench/results.jsonl.
"""
import argparse, json, statistics, subprocess, sys, os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(ROOT, "target", "release", "chat-bench")
RESULTS = os.path.join(ROOT, "bench", "results.jsonl")

def run(args, label):
    out = subprocess.run([BENCH] + args, capture_output=True, text=True, timeout=600)
    if out.returncode != 0:
        sys.stderr.write(f"FAILED {label}: {' '.join(args)}\n{out.stdout}\n{out.stderr}\n")
        return None
    line = [l for l in out.stdout.splitlines() if l.startswith("{")][-1]
    result = json.loads(line)
    result["label"] = label
    result["args"] = " ".join(args)
    with open(RESULTS, "a") as f:
        f.write(json.dumps(result) + "\n")
    return result

def median_of(runs, key):
    values = [key(r) for r in runs if r is not None]
    return statistics.median(values) if values else float("nan")

def main():
    p = argparse.ArgumentParser()
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--quick", action="store_true", help="small sizes, for a smoke test")
    p.add_argument("--before", help="an older chatd binary to compare with")
    a = p.parse_args()
    n = a.runs
    clients, duration, conns = (200, 2, 2000) if a.quick else (1000, 5, 19000)
    configs = [
        ("multi_thread, 2 workers (default)", ["--server-flavor", "multi_thread", "--server-threads", "0"]),
        ("multi_thread, 1 worker", ["--server-flavor", "multi_thread", "--server-threads", "1"]),
        ("current_thread", ["--server-flavor", "current_thread"]),
    ]
    if a.before:
        configs.append(("before the Outbox change (multi_thread, 2)", ["--chatd", a.before]))
    print(f"| server runtime | fanout {clients}x10 deliveries/s | p99 at 100 msg/s (ms) | p99.9 at 100 msg/s (ms) | pingpong p50 (µs) | pingpong p99 (µs) |")
    print("|---|---|---|---|---|---|")
    for name, flags in configs:
        fan = [run(["fanout", "--spawn", "--clients", str(clients), "--senders", "10", "--duration", str(duration)] + flags, "fanout " + name) for _ in range(n)]
        lat = [run(["fanout", "--spawn", "--clients", str(clients), "--senders", "10", "--duration", str(duration), "--rate", "100"] + flags, "latency " + name) for _ in range(n)]
        png = [run(["pingpong", "--spawn", "--count", "20000"] + flags, "pingpong " + name) for _ in range(n)]
        print(f"| {name} | {median_of(fan, lambda r: r['deliveries_per_s']):,.0f} | "
              f"{median_of(lat, lambda r: r['latency']['p99_us']) / 1000:.2f} | "
              f"{median_of(lat, lambda r: r['latency']['p999_us']) / 1000:.2f} | "
              f"{median_of(png, lambda r: r['rtt']['p50_us']):.0f} | {median_of(png, lambda r: r['rtt']['p99_us']):.0f} |", flush=True)
    print()
    print(f"| idle connections | server RSS per connection (bytes) | connect rate (/s) |")
    print("|---|---|---|")
    for name, flags in configs[:1] + (configs[-1:] if a.before else []):
        c = [run(["conns", "--spawn", "--count", str(conns), "--concurrency", "128"] + flags, "conns " + name) for _ in range(n)]
        print(f"| {conns} ({name}) | {median_of(c, lambda r: r['server_rss_bytes_per_conn']):,.0f} | {median_of(c, lambda r: r['count'] / r['connect_s']):,.0f} |", flush=True)
    t = [run(["thread-cost", "--count", "5000"], "thread-cost") for _ in range(n)]
    print(f"| 5000 OS threads blocked in read (thread-per-connection model) | {median_of(t, lambda r: r['rss_bytes_per_thread']):,.0f} (user space only) | |")
    print()
    for slots in (1, 2):
        l = [run(["logins", "--spawn", "--logins", "100", "--hash-slots", str(slots)], f"logins {slots}") for _ in range(n)]
        print(f"logins (100 concurrent, {slots} hash slot(s)): {median_of(l, lambda r: r['logins_per_s']):.0f} logins/s, "
              f"chat p99 before {median_of(l, lambda r: r['chat_before']['p99_us']) / 1000:.2f} ms, "
              f"during {median_of(l, lambda r: r['chat_during']['p99_us']) / 1000:.2f} ms", flush=True)
    size = "10" if a.quick else "100"
    tr = [run(["transfer", "--spawn", "--size-mib", size], "transfer") for _ in range(n)]
    print(f"transfer ({size} MiB): upload {median_of(tr, lambda r: r['upload_mb_s']):.0f} MB/s, download {median_of(tr, lambda r: r['download_mb_s']):.0f} MB/s, "
          f"end to end {median_of(tr, lambda r: r['end_to_end_mb_s']):.0f} MB/s, plain TCP {median_of(tr, lambda r: r['plain_tcp_mb_s']):.0f} MB/s, "
          f"chat p99 before {median_of(tr, lambda r: r['chat_before']['p99_us']) / 1000:.2f} ms, during {median_of(tr, lambda r: r['chat_during']['p99_us']) / 1000:.2f} ms")

if __name__ == "__main__":
    main()
