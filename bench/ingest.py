#!/usr/bin/env python3
"""Durable activity ingest: N simulated agents each send a burst of M events
through the real pipeline (numbered batches over TLS WebSockets, committed to
SQLite, acknowledged after commit). Measures events per second stored by the
server, from the first stored event to the last, over several runs.

    python3 bench/ingest.py --agents 100 --burst 1000 --runs 3
"""

import argparse
import json
import re
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from agents import Api, BenchError, free_port, machine_info, stop_process, tail  # noqa: E402


def one_run(args, run: int) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="lectern-ingest-"))
    data = tmp / "data"
    port = free_port()
    password = "bench-" + secrets.token_hex(8)
    out = subprocess.run([args.server_bin, "init", "--data-dir", str(data), "--school", "Ingest",
                          "--password", password, "--listen", f"127.0.0.1:{port}"],
                         capture_output=True, text=True, check=True)
    fp = subprocess.run([args.server_bin, "fingerprint", "--data-dir", str(data)],
                        capture_output=True, text=True, check=True).stdout.strip().split()[-1]
    token = subprocess.run([args.server_bin, "token", "create", "--data-dir", str(data), "--uses",
                            str(args.agents), "--hours", "1"], capture_output=True, text=True,
                           check=True).stdout.strip().split()[-1]
    del out
    log = open(tmp / "server.log", "ab")
    server = subprocess.Popen([args.server_bin, "serve", "--data-dir", str(data), "--listen",
                               f"127.0.0.1:{port}"], stdout=log, stderr=log)
    api = Api(port)
    sim = None
    try:
        t = time.perf_counter()
        while True:
            try:
                api.request("GET", "/healthz")
                break
            except BenchError:
                if server.poll() is not None or time.perf_counter() - t > 30:
                    raise BenchError(f"server did not start:\n{tail(tmp / 'server.log')}")
                time.sleep(0.1)
        want = args.agents * args.burst
        sim_log = open(tmp / "sim.log", "ab")
        started = time.perf_counter()
        sim = subprocess.Popen([args.sim_bin, "--server", f"127.0.0.1:{port}", "--fingerprint", fp,
                                "--token", token, "--agents", str(args.agents),
                                "--activity-burst", str(args.burst)],
                               stdout=subprocess.DEVNULL, stderr=sim_log)
        first = None
        n = 0
        while n < want:
            n = api.metrics().get("activity_events_total", 0)
            now = time.perf_counter()
            if n > 0 and first is None:
                first = (now, n)
            if now - started > args.timeout:
                raise BenchError(f"only {n}/{want} events stored after {args.timeout} s")
            time.sleep(0.05)
        done = time.perf_counter()
        t0, n0 = first
        rate = (n - n0) / max(done - t0, 1e-6)
        r = {"run": run, "events": n, "seconds_first_to_last": round(done - t0, 3),
             "events_per_s": round(rate), "seconds_from_sim_start": round(done - started, 3)}
        print(json.dumps(r), file=sys.stderr)
        return r
    finally:
        if sim is not None:
            stop_process(sim, 2, 30)
        stop_process(server, 15, 30)
        api.close()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--agents", type=int, default=100)
    p.add_argument("--burst", type=int, default=1000, help="events per agent")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--timeout", type=float, default=600)
    p.add_argument("--server-bin", default="target/release/lectern-server")
    p.add_argument("--sim-bin", default="target/release/lectern-sim")
    p.add_argument("--json-out")
    args = p.parse_args()
    runs = [one_run(args, i + 1) for i in range(args.runs)]
    result = {
        "benchmark": "ingest",
        "agents": args.agents,
        "burst": args.burst,
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": machine_info(),
        "runs": runs,
        "median_events_per_s": statistics.median(r["events_per_s"] for r in runs),
    }
    print(json.dumps(result, indent=1))
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
