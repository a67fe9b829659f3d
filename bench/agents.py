#!/usr/bin/env python3
"""Classroom-scale load benchmark: N simulated agents against one Lectern server.

Starts a fresh server (temporary data directory, random loopback port), then:

  1. server RSS before any agent connects (after ~2 s of settling);
  2. `lectern-sim` run 1: enrolls all N devices and connects them; time until
     `/metrics` reports N agents online (polled every 200 ms) and the
     simulator's own `connect_ms`;
  3. server RSS after all are connected and idle ~5 s -> KiB per agent;
  4. stop the simulator (SIGINT), wait until 0 online;
  5. `lectern-sim` run 2 with the same credentials file: reconnect-all, same
     figures, RSS again;
  6. R lock/unlock commands to all N devices: per-device latency from the
     server's own clock (target.updated_at - command.created_at), and the
     client-observed time from just before the POST until the API shows no
     pending target (polled every 50 ms, so up to 50 ms of polling slack);
  7. a JSON summary and a table; the simulator and server are stopped cleanly
     (killed if anything goes wrong).

Alongside, for diagnosis: CPU seconds used by the server, the simulator and
everything else on the machine in each phase (other processes and hypervisor
steal disturb the figures on a shared machine: check `other_processes` before
trusting a run), kernel accept-queue counters (ListenOverflows), the server's
warnings, and optionally `perf record` profiles (--perf-lock, --perf-reconnect).

Python 3.11 standard library only. Usage: see `bench/agents.sh` or `--help`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import math
import os
import platform
import re
import resource
import secrets
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SETTLE_S = 2.0  # server idle time before the baseline RSS
IDLE_S = 5.0  # idle time after all agents connect, before the RSS sample
METRICS_POLL_S = 0.2
COMMAND_POLL_S = 0.05


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


class BenchError(RuntimeError):
    pass


# --------------------------------------------------------------------------- /proc


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS / VmHWM (KiB) and thread count of a process."""
    out: dict[str, int] = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM", "Threads"):
                out[key] = int(rest.split()[0])
    try:
        out["fds"] = len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        pass
    return out


def proc_cpu_s(pid: int) -> float:
    """User + system CPU seconds consumed so far by a process."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # fields[0] is the state (3rd field of stat); utime is the 14th, stime the 15th.
    ticks = int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def machine_busy_s() -> float:
    """CPU seconds this machine's cores spent busy since boot (user, nice, system, irq,
    softirq; not idle, iowait, or steal, the time the hypervisor gave to others)."""
    vals = [int(x) for x in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    return (vals[0] + vals[1] + vals[2] + vals[5] + vals[6]) / os.sysconf("SC_CLK_TCK")


def cpu_split_s() -> dict[str, float]:
    """Machine-wide CPU seconds by /proc/stat column (user, system, irq, softirq, steal...)."""
    names = ["user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal"]
    vals = [int(x) for x in Path("/proc/stat").read_text().split("\n")[0].split()[1:9]]
    hz = os.sysconf("SC_CLK_TCK")
    return {n: v / hz for n, v in zip(names, vals)}


def all_proc_cpu() -> dict[int, tuple[str, float]]:
    """CPU seconds of every process now: pid -> (name, seconds)."""
    out = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                raw = Path(f"/proc/{d}/stat").read_text()
            except OSError:
                continue
            name = raw[raw.index("(") + 1:raw.rindex(")")]
            f = raw.rsplit(")", 1)[1].split()
            out[int(d)] = (name, (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK"))
    return out


def cpu_report(split0: dict, procs0: dict, exclude: set[int]) -> dict:
    """Where the machine's CPU went since (split0, procs0): by /proc/stat column and
    the busiest processes other than `exclude` (server, simulator, this script)."""
    split1, procs1 = cpu_split_s(), all_proc_cpu()
    cols = {k: round(split1[k] - split0[k], 2) for k in split1
            if k != "idle" and round(split1[k] - split0[k], 2)}
    others = []
    for pid, (name, sec) in procs1.items():
        if pid in exclude:
            continue
        d = sec - procs0.get(pid, (name, 0.0))[1]
        if d >= 0.05:
            others.append((round(d, 2), f"{name}[{pid}]"))
    others.sort(reverse=True)
    return {"by_column": cols, "busiest_other_processes": others[:5]}


def self_cpu_s() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def tcp_counters() -> dict[str, int]:
    """Kernel TCP counters that reveal accept-queue overflows and SYN drops."""
    wanted = {"ListenOverflows", "ListenDrops", "SyncookiesSent", "TCPReqQFullDrop",
              "TCPReqQFullDoCookies", "TCPTimeWaitOverflow"}
    out: dict[str, int] = {}
    try:
        lines = Path("/proc/net/netstat").read_text().splitlines()
    except OSError:
        return out
    for head, vals in zip(lines[0::2], lines[1::2]):
        keys, nums = head.split()[1:], vals.split()[1:]
        if head.startswith("TcpExt:"):
            for k, v in zip(keys, nums):
                if k in wanted:
                    out[k] = int(v)
    return out


def counter_delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {k: after[k] - before.get(k, 0) for k in after if after[k] - before.get(k, 0)}


def machine_info() -> dict:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_kib = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            mem_kib = int(line.split()[1])
    def sysctl(name: str) -> str:
        try:
            return Path("/proc/sys/" + name.replace(".", "/")).read_text().split("\n")[0].strip()
        except OSError:
            return "?"
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu_model": model,
        "mem_total_gib": round(mem_kib / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "nofile_limit": list(resource.getrlimit(resource.RLIMIT_NOFILE)),
        "loadavg_at_start": Path("/proc/loadavg").read_text().split()[:3],
        "sysctl": {k: sysctl(k) for k in (
            "net.ipv4.ip_local_port_range", "net.ipv4.tcp_tw_reuse", "net.core.somaxconn",
            "net.ipv4.tcp_max_syn_backlog", "net.ipv4.tcp_syncookies")},
    }


def git_info() -> dict:
    def git(*a: str) -> str:
        try:
            return subprocess.run(["git", *a], cwd=REPO, capture_output=True, text=True,
                                  timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""
    dirty = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": git("rev-parse", "--short", "HEAD"),
            "dirty_files": dirty.splitlines() if dirty else []}


def binary_info(path: str) -> dict:
    import hashlib
    h = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    mtime = dt.datetime.fromtimestamp(os.stat(path).st_mtime).astimezone()
    return {"path": path, "sha256": h[:16], "built": mtime.isoformat(timespec="seconds")}


# --------------------------------------------------------------------------- HTTP


class Api:
    """A keep-alive HTTPS client for the server's API (self-signed: unverified)."""

    def __init__(self, port: int):
        self.port = port
        self.ctx = ssl.create_default_context()
        self.ctx.check_hostname = False
        self.ctx.verify_mode = ssl.CERT_NONE
        self.conn: http.client.HTTPSConnection | None = None
        self.token: str | None = None
        # /metrics takes server.toml's metrics_token, not a session.
        self.metrics_token: str | None = None

    def _connect(self) -> http.client.HTTPSConnection:
        if self.conn is None:
            self.conn = http.client.HTTPSConnection("127.0.0.1", self.port, context=self.ctx,
                                                    timeout=60)
        return self.conn

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def request(self, method: str, path: str, body=None, expect=(200,)) -> tuple[int, bytes]:
        headers = {}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["content-type"] = "application/json"
        bearer = self.metrics_token if path == "/metrics" else self.token
        if bearer:
            headers["authorization"] = f"Bearer {bearer}"
        last: Exception | None = None
        # Retries on a dropped connection: during a connect storm from the
        # same loopback address, the server's admission control may reset
        # this not-yet-authenticated one (metrics and sign-in requests).
        for attempt in range(5):
            if attempt:
                time.sleep(0.2 * attempt)
            try:
                conn = self._connect()
                conn.request(method, path, body=data, headers=headers)
                resp = conn.getresponse()
                payload = resp.read()
                if resp.status not in expect:
                    raise BenchError(f"{method} {path}: HTTP {resp.status}: {payload[:300]!r}")
                return resp.status, payload
            except (http.client.HTTPException, ConnectionError, ssl.SSLError, OSError) as e:
                last = e
                self.close()
        raise BenchError(f"{method} {path} failed: {last}")

    def json(self, method: str, path: str, body=None, expect=(200,)):
        return json.loads(self.request(method, path, body, expect)[1])

    def use_metrics_token(self, data_dir: Path) -> None:
        m = re.search(r'^metrics_token = "([^"]+)"', (data_dir / "server.toml").read_text(), re.M)
        if not m:
            raise BenchError(f"no metrics_token in {data_dir}/server.toml")
        self.metrics_token = m.group(1)

    def login(self, password: str) -> None:
        self.token = self.json("POST", "/api/v1/session",
                               {"username": "admin", "password": password})["token"]

    def agents_online(self) -> int:
        text = self.request("GET", "/metrics")[1].decode()
        m = re.search(r"^lectern_agents_online (\d+)$", text, re.M)
        if not m:
            raise BenchError("lectern_agents_online missing from /metrics")
        return int(m.group(1))

    def metrics(self) -> dict[str, int]:
        text = self.request("GET", "/metrics")[1].decode()
        return {m.group(1): int(m.group(2))
                for m in re.finditer(r"^lectern_(\w+) (\d+)$", text, re.M)}


# --------------------------------------------------------------------------- processes


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def raise_nofile() -> list[int]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else 1048576
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return list(resource.getrlimit(resource.RLIMIT_NOFILE))


def stop_process(p: subprocess.Popen | None, sig: int, timeout: float) -> float | None:
    """Sends `sig`, waits up to `timeout` s, kills after that. Returns seconds to exit."""
    if p is None or p.poll() is not None:
        return None
    t = time.perf_counter()
    try:
        p.send_signal(sig)
        p.wait(timeout)
    except subprocess.TimeoutExpired:
        log(f"pid {p.pid} did not exit within {timeout:.0f} s of signal {sig}; killing it")
        p.kill()
        p.wait(10)
    return time.perf_counter() - t


def tail(path: Path, n: int = 15) -> str:
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join(lines[-n:])


def start_perf(pid: int, out: str | None, log_path: Path) -> subprocess.Popen | None:
    """`perf record -g` of one process until stopped with SIGINT (diagnostics only)."""
    if not out:
        return None
    p = subprocess.Popen(["perf", "record", "-F", "499", "-g", "-p", str(pid), "-o", out],
                         stdout=subprocess.DEVNULL, stderr=open(log_path, "ab"))
    time.sleep(1)
    return p


def log_warnings(path: Path, also: tuple[str, ...] = ()) -> dict:
    """Counts WARN/ERROR lines (and lines containing `also`) by message, numbers masked."""
    counts: dict[str, int] = {}
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return counts
    for line in text.splitlines():
        line = re.sub(r"\x1b\[[0-9;]*m", "", line)
        if " WARN " not in line and " ERROR " not in line and not any(a in line for a in also):
            continue
        msg = re.sub(r"^\S+\s+", "", line)  # timestamp
        msg = re.sub(r"\d+(\.\d+){3}:\d+", "ADDR", msg)
        msg = re.sub(r"\b\d+\b", "N", msg)[:200]
        counts[msg] = counts.get(msg, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: -kv[1])[:20])


class Sim:
    """One `lectern-sim` process; reads its JSON line on a thread."""

    def __init__(self, args, port: int, fingerprint: str, token: str, creds: Path, log_path: Path):
        cmd = [args.sim_bin, "--server", f"127.0.0.1:{port}", "--fingerprint", fingerprint,
               "--token", token, "--agents", str(args.agents), "--credentials", str(creds)]
        if args.sim_threads:
            cmd += ["--threads", str(args.sim_threads)]
        self.log_path = log_path
        self.stderr = open(log_path, "ab")
        self.started = time.perf_counter()
        env = dict(os.environ)
        if args.sim_rust_log:
            env["RUST_LOG"] = args.sim_rust_log
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self.stderr, text=True,
                                     env=env)
        self.event: dict | None = None
        self.event_at: float | None = None
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            line = line.strip()
            if line.startswith("{"):
                try:
                    ev = json.loads(line)
                except ValueError:
                    continue
                if ev.get("event") == "connected" and self.event is None:
                    self.event, self.event_at = ev, time.perf_counter()

    def stop(self) -> float | None:
        took = stop_process(self.proc, signal.SIGINT, 120)
        self.stderr.close()
        return took


# --------------------------------------------------------------------------- phases


def pctl(sorted_vals: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    if not sorted_vals:
        return float("nan")
    k = max(1, math.ceil(q * len(sorted_vals)))
    return sorted_vals[k - 1]


def connect_phase(args, api: Api, server: subprocess.Popen, label: str, make_sim) -> tuple[Sim, dict]:
    """Starts a simulator and waits for N agents online. Returns the sim and figures."""
    n = args.agents
    tcp0, cpu_srv0 = tcp_counters(), proc_cpu_s(server.pid)
    busy0, self0 = machine_busy_s(), self_cpu_s()
    split0, procs0 = cpu_split_s(), all_proc_cpu()
    m0 = api.metrics()
    log(f"{label}: starting the simulator ({n} agents)")
    sim = make_sim()
    try:
        res = _wait_connected(args, api, server, label, sim, tcp0, cpu_srv0, m0)
        busy = machine_busy_s() - busy0
        res["machine_busy_cpu_s"] = round(busy, 2)
        res["other_processes_cpu_s"] = round(
            busy - res["server_cpu_s"] - res["sim_cpu_s"] - (self_cpu_s() - self0), 2)
        res["cpu"] = cpu_report(split0, procs0, {server.pid, sim.proc.pid, os.getpid()})
        return sim, res
    except BaseException:
        sim.stop()
        raise


def _wait_connected(args, api, server, label, sim, tcp0, cpu_srv0, m0) -> dict:
    n = args.agents
    deadline = sim.started + args.connect_timeout
    online, peak, seen_at = 0, 0, None
    progress: list[tuple[float, int]] = []
    next_report = time.perf_counter() + 10
    while True:
        online = api.agents_online()
        now = time.perf_counter()
        peak = max(peak, online)
        progress.append((round(now - sim.started, 2), online))
        if online >= n:
            seen_at = now
            break
        if sim.proc.poll() is not None:
            raise BenchError(f"{label}: simulator exited with {sim.proc.returncode} at {online}/{n} "
                             f"online; its log:\n{tail(sim.log_path)}")
        if server.poll() is not None:
            raise BenchError(f"{label}: server exited with {server.returncode}")
        if now > deadline:
            break
        if now >= next_report:
            log(f"{label}: {online}/{n} online after {now - sim.started:.0f} s")
            next_report = now + 10
        time.sleep(METRICS_POLL_S)
    external_s = None if seen_at is None else seen_at - sim.started
    # The simulator prints its line once its own count reaches N (it polls every 50 ms).
    wait_until = time.perf_counter() + (30 if seen_at else 5)
    while sim.event is None and time.perf_counter() < wait_until and sim.proc.poll() is None:
        time.sleep(0.05)
    m1 = api.metrics()
    res = {
        "external_ms": None if external_s is None else round(external_s * 1000),
        "sim_enroll_ms": sim.event.get("enroll_ms") if sim.event else None,
        "sim_connect_ms": sim.event.get("connect_ms") if sim.event else None,
        "sim_reported_agents": sim.event.get("agents") if sim.event else None,
        "online_reached": online,
        "server_cpu_s": round(proc_cpu_s(server.pid) - cpu_srv0, 2),
        "sim_cpu_s": round(proc_cpu_s(sim.proc.pid), 2),
        "tcp_counters_delta": counter_delta(tcp0, tcp_counters()),
        "server_metrics_delta": {k: m1[k] - m0.get(k, 0) for k in (
            "agent_sessions_total", "agent_refused_total", "enrollments_total", "bad_frames_total")
            if k in m1},
        "sim_log_lines": sum(1 for _ in open(sim.log_path, errors="replace")),
        "sim_log_summary": log_warnings(sim.log_path, also=("disconnected:",)),
    }
    if seen_at is None:
        res["progress_tail"] = progress[-10:]
        res["sim_log_tail"] = tail(sim.log_path)
        raise BenchError(f"{label}: only {online}/{n} agents online after "
                         f"{args.connect_timeout} s: {json.dumps(res)}")
    log(f"{label}: {n} online; external {res['external_ms']} ms, simulator "
        f"connect_ms {res['sim_connect_ms']} (enroll_ms {res['sim_enroll_ms']})")
    return res


def wait_online(api: Api, want: int, timeout: float) -> float:
    t = time.perf_counter()
    while True:
        online = api.agents_online()
        if online == want:
            return time.perf_counter() - t
        if time.perf_counter() - t > timeout:
            raise BenchError(f"still {online} agents online after {timeout} s (want {want})")
        time.sleep(METRICS_POLL_S)


def lock_runs(args, api: Api, ids: list[int]) -> list[dict]:
    runs = []
    for r in range(args.runs):
        kind = "lock" if r % 2 == 0 else "unlock"
        body = {"devices": ids, "command": {"type": kind}}
        t0_wall = time.time()
        t0 = time.perf_counter()
        created = api.json("POST", "/api/v1/commands", body, expect=(201,))
        post_s = time.perf_counter() - t0
        cid = created["id"]
        polls = 0
        deadline = t0 + args.command_timeout
        while True:
            rec = api.json("GET", f"/api/v1/commands/{cid}")
            polls += 1
            if rec["summary"].get("pending", 0) == 0:
                all_s = time.perf_counter() - t0
                break
            if time.perf_counter() > deadline:
                raise BenchError(f"command {cid} ({kind}): still {rec['summary']} after "
                                 f"{args.command_timeout} s")
            time.sleep(COMMAND_POLL_S)
        created_at = rec["created_at"]
        done = [t for t in rec["targets"] if t["status"] == "done"]
        lat = sorted(t["updated_at"] - created_at for t in done)
        t0_ms = round(t0_wall * 1000)
        lat0 = sorted(t["updated_at"] - t0_ms for t in done)
        run = {
            "run": r + 1,
            "command": kind,
            "command_id": cid,
            "summary": rec["summary"],
            "p50_ms": pctl(lat, 0.50),
            "p99_ms": pctl(lat, 0.99),
            "max_ms": lat[-1] if lat else None,
            "p50_from_t0_ms": pctl(lat0, 0.50),
            "p99_from_t0_ms": pctl(lat0, 0.99),
            "max_from_t0_ms": lat0[-1] if lat0 else None,
            "client_all_acked_ms": round(all_s * 1000),
            "client_post_ms": round(post_s * 1000),
            "post_to_created_ms": created_at - round(t0_wall * 1000),
            "polls": polls,
        }
        runs.append(run)
        log(f"run {r + 1}/{args.runs} {kind}: p50 {run['p50_ms']} ms, p99 {run['p99_ms']} ms, "
            f"max {run['max_ms']} ms, client all-acked {run['client_all_acked_ms']} ms "
            f"(POST {run['client_post_ms']} ms), {rec['summary']}")
        if len(done) != len(ids):
            log(f"warning: only {len(done)}/{len(ids)} targets done: {rec['summary']}")
        time.sleep(args.pause)
    return runs


# --------------------------------------------------------------------------- main


def idle_cpu(server_pid: int, sim_pid: int) -> dict:
    """Sleeps IDLE_S with every agent connected and idle; returns the CPU share (% of one
    core) the server and the simulator used meanwhile (heartbeats, timers)."""
    a, b, t = proc_cpu_s(server_pid), proc_cpu_s(sim_pid), time.perf_counter()
    time.sleep(IDLE_S)
    el = time.perf_counter() - t
    return {"idle_server_cpu_pct": round((proc_cpu_s(server_pid) - a) / el * 100, 1),
            "idle_sim_cpu_pct": round((proc_cpu_s(sim_pid) - b) / el * 100, 1)}


def kib_per_agent(before: dict, after: dict, n: int) -> float:
    return round((after["VmRSS"] - before["VmRSS"]) / n, 2)


def run(args) -> dict:
    nofile = raise_nofile()
    started = dt.datetime.now().astimezone()
    tmp = Path(tempfile.mkdtemp(prefix="lectern-bench-"))
    data, creds = tmp / "data", tmp / "credentials.json"
    port = free_port()
    password = "bench-" + secrets.token_hex(12)
    server: subprocess.Popen | None = None
    sim: Sim | None = None
    api = Api(port)
    result: dict = {
        "benchmark": "agents",
        "agents": args.agents,
        "runs": args.runs,
        "date": started.isoformat(timespec="seconds"),
        "machine": machine_info(),
        "git": git_info(),
        "note": args.note,
        "binaries": {name: binary_info(path) for name, path in
                     (("server", args.server_bin), ("sim", args.sim_bin))},
        "tmp_dir": str(tmp),
    }
    log(f"temp dir {tmp}, port {port}, RLIMIT_NOFILE {nofile}")
    try:
        out = subprocess.run([args.server_bin, "init", "--data-dir", str(data), "--school",
                              "Bench School", "--password", password, "--listen",
                              f"127.0.0.1:{port}"], capture_output=True, text=True, check=True)
        m = re.search(r"fingerprint \(agents pin this\): ([0-9a-fA-F:]+)", out.stdout)
        fingerprint = m.group(1) if m else subprocess.run(
            [args.server_bin, "fingerprint", "--data-dir", str(data)], capture_output=True,
            text=True, check=True).stdout.strip().split()[-1]
        token = subprocess.run([args.server_bin, "token", "create", "--data-dir", str(data),
                                "--uses", str(args.agents), "--hours", "2"],
                               capture_output=True, text=True, check=True).stdout.strip().split()[-1]

        server_log = open(tmp / "server.log", "ab")
        server = subprocess.Popen([args.server_bin, "serve", "--data-dir", str(data), "--listen",
                                   f"127.0.0.1:{port}"], stdout=server_log, stderr=server_log)
        t = time.perf_counter()
        while True:
            try:
                api.request("GET", "/healthz")
                break
            except BenchError:
                if server.poll() is not None or time.perf_counter() - t > 30:
                    raise BenchError(f"server did not start:\n{tail(tmp / 'server.log')}")
                time.sleep(0.1)
        api.login(password)
        api.use_metrics_token(data)
        time.sleep(SETTLE_S)
        rss0 = proc_status(server.pid)
        result["server_rss_idle_kib"] = rss0
        log(f"server up (pid {server.pid}); RSS before agents {rss0['VmRSS']} KiB")

        def make_sim(label: str):
            return lambda: Sim(args, port, fingerprint, token, creds, tmp / f"sim-{label}.log")

        # Run 1: enroll + connect.
        sim, first = connect_phase(args, api, server, "enroll+connect", make_sim("1"))
        first.update(idle_cpu(server.pid, sim.proc.pid))
        first["server_rss_kib"] = proc_status(server.pid)
        first["sim_rss_kib"] = proc_status(sim.proc.pid)
        first["server_kib_per_agent"] = kib_per_agent(rss0, first["server_rss_kib"], args.agents)
        log(f"after enroll+connect: server RSS {first['server_rss_kib']['VmRSS']} KiB "
            f"({first['server_kib_per_agent']} KiB/agent), sim RSS "
            f"{first['sim_rss_kib']['VmRSS']} KiB")
        result["enroll_connect"] = first

        # Stop, wait for 0 online.
        took = sim.stop()
        sim = None
        drained = wait_online(api, 0, 120)
        result["sim_stop_s"] = None if took is None else round(took, 2)
        result["drain_to_zero_s"] = round(drained, 2)
        time.sleep(1)
        result["server_rss_after_disconnect_kib"] = proc_status(server.pid)

        # Run 2: reconnect with stored credentials (no enrollment).
        perf = start_perf(server.pid, args.perf_reconnect, tmp / "perf.log")
        try:
            sim, second = connect_phase(args, api, server, "reconnect", make_sim("2"))
        finally:
            stop_process(perf, signal.SIGINT, 60)
        second.update(idle_cpu(server.pid, sim.proc.pid))
        second["server_rss_kib"] = proc_status(server.pid)
        second["sim_rss_kib"] = proc_status(sim.proc.pid)
        second["server_kib_per_agent"] = kib_per_agent(rss0, second["server_rss_kib"], args.agents)
        log(f"after reconnect: server RSS {second['server_rss_kib']['VmRSS']} KiB "
            f"({second['server_kib_per_agent']} KiB/agent), sim RSS "
            f"{second['sim_rss_kib']['VmRSS']} KiB")
        result["reconnect"] = second

        devices = api.json("GET", "/api/v1/devices")
        ids = sorted(d["id"] for d in devices if d.get("online"))
        if len(ids) != args.agents:
            raise BenchError(f"/api/v1/devices shows {len(ids)} online, expected {args.agents}")

        cpu0, sim_cpu0, busy0, self0 = (proc_cpu_s(server.pid), proc_cpu_s(sim.proc.pid),
                                         machine_busy_s(), self_cpu_s())
        split0, procs0 = cpu_split_s(), all_proc_cpu()
        perf = start_perf(server.pid, args.perf_lock, tmp / "perf.log")
        try:
            runs = lock_runs(args, api, ids)
        finally:
            stop_process(perf, signal.SIGINT, 60)
        result["lock_runs"] = runs
        srv, simc = proc_cpu_s(server.pid) - cpu0, proc_cpu_s(sim.proc.pid) - sim_cpu0
        busy, me = machine_busy_s() - busy0, self_cpu_s() - self0
        result["lock_phase_cpu_s"] = {
            "server": round(srv, 2), "sim": round(simc, 2), "bench_script": round(me, 2),
            "machine_busy": round(busy, 2),
            "other_processes": round(busy - srv - simc - me, 2),
            **cpu_report(split0, procs0, {server.pid, sim.proc.pid, os.getpid()})}
        med = lambda k: statistics.median(r[k] for r in runs)  # noqa: E731
        result["lock_median"] = {k: med(k) for k in (
            "p50_ms", "p99_ms", "max_ms", "p50_from_t0_ms", "p99_from_t0_ms", "max_from_t0_ms",
            "client_all_acked_ms", "client_post_ms", "post_to_created_ms")}
        result["server_rss_end_kib"] = proc_status(server.pid)
        result["sim_rss_end_kib"] = proc_status(sim.proc.pid)

        took = sim.stop()
        sim = None
        result["sim_stop2_s"] = None if took is None else round(took, 2)
        took = stop_process(server, signal.SIGTERM, 60)
        result["server_stop_s"] = None if took is None else round(took, 2)
        result["server_exit_code"] = server.returncode
        server = None
        result["ok"] = True
        return result
    except BaseException as e:
        result["ok"] = False
        result["error"] = str(e) if not isinstance(e, KeyboardInterrupt) else "interrupted"
        raise
    finally:
        api.close()
        if sim is not None:
            stop_process(sim.proc, signal.SIGINT, 30)
        if server is not None:
            stop_process(server, signal.SIGTERM, 30)
        result["server_log_warnings"] = log_warnings(tmp / "server.log")
        result["loadavg_at_end"] = Path("/proc/loadavg").read_text().split()[:3]
        result["duration_s"] = round((dt.datetime.now().astimezone() - started).total_seconds())
        if args.json_out:
            Path(args.json_out).parent.mkdir(parents=True, exist_ok=True)
            Path(args.json_out).write_text(json.dumps(result, indent=2) + "\n")
        if args.keep or not result.get("ok"):
            log(f"kept {tmp} (server.log, sim-*.log, data/)")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def table(r: dict) -> str:
    n = r["agents"]
    ec, rc, lm = r["enroll_connect"], r["reconnect"], r["lock_median"]
    mach = r["machine"]
    rows = [
        ("Agents", f"{n:,}"),
        ("Machine", f"{mach['nproc']} cores ({mach['cpu_model']}), {mach['mem_total_gib']} GiB"),
        ("Enroll + connect all: external (API)", f"{ec['external_ms'] / 1000:.1f} s"),
        ("Enroll + connect all: simulator connect_ms", f"{ec['sim_connect_ms'] / 1000:.1f} s "
         f"(of which enrollment {ec['sim_enroll_ms'] / 1000:.1f} s)"),
        ("Reconnect all: external (API)", f"{rc['external_ms'] / 1000:.1f} s"),
        ("Reconnect all: simulator connect_ms", f"{rc['sim_connect_ms'] / 1000:.1f} s"),
        ("Server RSS before agents", f"{r['server_rss_idle_kib']['VmRSS'] / 1024:.1f} MiB"),
        ("Server RSS, N idle (after enroll+connect)",
         f"{ec['server_rss_kib']['VmRSS'] / 1024:.1f} MiB -> {ec['server_kib_per_agent']:.1f} KiB/agent"),
        ("Server RSS, N idle (after reconnect)",
         f"{rc['server_rss_kib']['VmRSS'] / 1024:.1f} MiB -> {rc['server_kib_per_agent']:.1f} KiB/agent"),
        ("Server peak RSS (VmHWM, whole run)", f"{r['server_rss_end_kib']['VmHWM'] / 1024:.1f} MiB"),
        ("Simulator RSS, N idle / peak",
         f"{rc['sim_rss_kib']['VmRSS'] / 1024:.1f} MiB / {r['sim_rss_end_kib']['VmHWM'] / 1024:.1f} MiB"),
        (f"Lock to all, per-device latency p50 (median of {r['runs']})", f"{lm['p50_ms']:.0f} ms"),
        ("Lock to all, per-device latency p99", f"{lm['p99_ms']:.0f} ms"),
        ("Lock to all, per-device latency max", f"{lm['max_ms']:.0f} ms"),
        ("Lock to all, per-device latency from client t0: p50 / p99",
         f"{lm['p50_from_t0_ms']:.0f} ms / {lm['p99_from_t0_ms']:.0f} ms"),
        ("Lock to all, client t0 -> API shows all acked (+<=50 ms poll)",
         f"{lm['client_all_acked_ms']:.0f} ms"),
        ("Lock POST round trip (client)", f"{lm['client_post_ms']:.0f} ms"),
    ]
    w = max(len(a) for a, _ in rows)
    lines = [f"| {'Measure'.ljust(w)} | Value |", f"|{'-' * (w + 2)}|-------|"]
    lines += [f"| {a.ljust(w)} | {b} |" for a, b in rows]
    lines.append("")
    lines.append("Per run: " + "; ".join(
        f"#{x['run']} {x['command']}: p50 {x['p50_ms']}, p99 {x['p99_ms']}, max {x['max_ms']}, "
        f"all-acked {x['client_all_acked_ms']} ms" for x in r["lock_runs"]))
    return "\n".join(lines)


def _on_sigterm(_sig, _frame):
    raise SystemExit(143)  # unwinds through run()'s cleanup


def main() -> int:
    signal.signal(signal.SIGTERM, _on_sigterm)
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--agents", type=int, default=10000)
    ap.add_argument("--runs", type=int, default=5, help="lock/unlock measurements")
    ap.add_argument("--keep", action="store_true", help="keep the temporary data directory")
    ap.add_argument("--server-bin", default=str(REPO / "target/release/lectern-server"))
    ap.add_argument("--sim-bin", default=str(REPO / "target/release/lectern-sim"))
    ap.add_argument("--sim-threads", type=int, default=None,
                    help="simulator worker threads (default: its own, one per core)")
    ap.add_argument("--connect-timeout", type=float, default=600,
                    help="seconds to wait for all agents online")
    ap.add_argument("--command-timeout", type=float, default=120)
    ap.add_argument("--pause", type=float, default=2.0, help="seconds between lock runs")
    ap.add_argument("--json-out", default=None, help="also write the JSON summary here")
    ap.add_argument("--note", default=None,
                    help="free text stored in the JSON (e.g. what the binaries were built from)")
    ap.add_argument("--perf-lock", default=None, metavar="FILE",
                    help="record a `perf record -g` profile of the server during the lock runs")
    ap.add_argument("--perf-reconnect", default=None, metavar="FILE",
                    help="the same during the reconnect phase")
    ap.add_argument("--sim-rust-log", default=None, metavar="FILTER",
                    help="RUST_LOG for the simulator (e.g. lectern_agent=info to log each "
                         "(re)connect; adds load), default its own (warn)")
    args = ap.parse_args()
    for b in (args.server_bin, args.sim_bin):
        if not os.access(b, os.X_OK):
            print(f"{b} not found; build with: cargo build --release -p lectern-server "
                  f"-p lectern-sim", file=sys.stderr)
            return 2
    try:
        r = run(args)
    except BenchError as e:
        log(f"FAILED: {e}")
        return 1
    except subprocess.CalledProcessError as e:
        log(f"FAILED: {e}: {e.stderr}")
        return 1
    print(json.dumps(r, indent=2))
    print()
    print(table(r))
    return 0


if __name__ == "__main__":
    sys.exit(main())
