#!/usr/bin/env python3
"""Cluster benchmark: N gateway nodes on one PostgreSQL and one NATS server.

Starts a throwaway PostgreSQL cluster (initdb in a temporary folder, loopback
only, fsync off) and a `nats-server`, makes node 1 with `lectern-server init
--postgres`, copies its server.toml and certificate to nodes 2..N (each its
own `node` name on the bus), starts every node, then:

  1. RSS of each node before agents connect;
  2. one `lectern-sim` whose agents know every gateway (a comma-separated
     server list; each agent starts at a random one): enrolls and connects A
     agents; time until the nodes' `/metrics` add up to A online, and how
     many each gateway holds;
  3. RSS of each node with the agents connected -> KiB per agent;
  4. R lock/unlock commands to all A devices, sent on node 1 (so most
     devices are reached through the other gateways, one bus message per
     gateway): per-device latency from the store's clock (target.updated_at
     - command.created_at), p50/p99/max;
  5. `kill -9` of the last gateway: time until its agents are back online on
     the survivors (the sum of `lectern_agents_online` again A), and a lock
     to all A afterwards (every device reached, none lost);
  6. a JSON summary and a table.

What the two cores of a CI-sized machine show is correctness, not scale: the
nodes, PostgreSQL, NATS and the simulator share them. The same command runs
unchanged on a bigger machine (`--gateways 4 --agents 20000`); see
BENCHMARKS.md. The single-server figures to compare with come from
`bench/agents.py` (bench/cluster.sh runs it with the same agents after).

Python 3.11 standard library only; needs PostgreSQL's programs (Debian's
postgresql) and nats-server. Usage: see `bench/cluster.sh` or `--help`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import agents as base  # noqa: E402  (the single-server benchmark's helpers)

REPO = base.REPO
log = base.log
BenchError = base.BenchError


def pg_bin() -> Path:
    versions = sorted(
        (p for p in Path("/usr/lib/postgresql").glob("*/bin") if (p / "initdb").exists()),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0)
    if not versions:
        raise BenchError("no PostgreSQL under /usr/lib/postgresql (apt-get install postgresql)")
    return versions[-1]


def as_postgres(cmd: list[str]) -> list[str]:
    # PostgreSQL refuses to run as root.
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


class Postgres:
    def __init__(self):
        # A folder of its own: the benchmark's is private to root, and
        # PostgreSQL runs as postgres.
        self.dir = Path(tempfile.mkdtemp(prefix="lectern-bench-pg-"))
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres")
        self.bin = pg_bin()
        self.port = base.free_port()
        data = str(self.dir / "data")
        subprocess.run(as_postgres([str(self.bin / "initdb"), "-D", data, "--auth=trust",
                                    "-U", "lectern", "-E", "UTF8", "--no-sync"]),
                       check=True, capture_output=True)
        opts = f"-k {self.dir} -p {self.port} -c listen_addresses=127.0.0.1 -c fsync=off " \
               f"-c max_connections=200"
        subprocess.run(as_postgres([str(self.bin / "pg_ctl"), "-D", data, "-o", opts, "-l",
                                    str(self.dir / "log"), "-w", "start"]),
                       check=True, capture_output=True)
        subprocess.run(as_postgres([str(self.bin / "createdb"), "-h", "127.0.0.1", "-p",
                                    str(self.port), "-U", "lectern", "lectern"]),
                       check=True, capture_output=True)
        self.params = f"host=127.0.0.1 port={self.port} user=lectern dbname=lectern"

    def stop(self) -> None:
        subprocess.run(as_postgres([str(self.bin / "pg_ctl"), "-D", str(self.dir / "data"),
                                    "-m", "immediate", "stop"]), capture_output=True)
        shutil.rmtree(self.dir, ignore_errors=True)


def nats_server() -> str:
    for d in os.environ.get("PATH", "").split(":") + ["/usr/sbin", "/usr/bin"]:
        p = Path(d) / "nats-server"
        if p.is_file():
            return str(p)
    raise BenchError("nats-server not found (apt-get install nats-server)")


class Node:
    def __init__(self, name: str, data: Path, port: int, server_bin: str, log_path: Path):
        self.name, self.data, self.port = name, data, port
        self.log = open(log_path, "ab")
        self.proc = subprocess.Popen([server_bin, "serve", "--data-dir", str(data), "--listen",
                                      f"127.0.0.1:{port}"], stdout=self.log, stderr=self.log)
        self.api = base.Api(port)

    def wait_up(self, timeout: float = 60) -> None:
        t = time.perf_counter()
        while True:
            try:
                self.api.request("GET", "/healthz")
                return
            except BenchError:
                if self.proc.poll() is not None or time.perf_counter() - t > timeout:
                    raise BenchError(f"{self.name} did not start (see its log)")
                time.sleep(0.1)

    def online(self) -> int:
        return self.api.agents_online()


def join_bus(data: Path, nats_port: int, name: str, lease: int) -> None:
    """Puts a node's [cluster] (the last table of server.toml) on the bus."""
    path = data / "server.toml"
    text = path.read_text()
    text = re.sub(r"^lease_secs = \d+$", f"lease_secs = {lease}", text, flags=re.M)
    text += f'nats = ["nats://127.0.0.1:{nats_port}"]\nnode = "{name}"\n'
    path.write_text(text)


def total_online(nodes: list[Node]) -> int:
    return sum(n.online() for n in nodes)


def wait_total(nodes: list[Node], want: int, timeout: float) -> float:
    t = time.perf_counter()
    while True:
        have = total_online(nodes)
        if have == want:
            return time.perf_counter() - t
        if time.perf_counter() - t > timeout:
            raise BenchError(f"{have} agents online after {timeout} s (want {want})")
        time.sleep(base.METRICS_POLL_S)


def run(args) -> dict:
    base.raise_nofile()
    started = dt.datetime.now().astimezone()
    tmp = Path(tempfile.mkdtemp(prefix="lectern-cluster-bench-"))
    password = "bench-" + secrets.token_hex(12)
    result: dict = {
        "benchmark": "cluster", "gateways": args.gateways, "agents": args.agents,
        "runs": args.runs, "lease_secs": args.lease, "date": started.isoformat(timespec="seconds"),
        "machine": base.machine_info(), "git": base.git_info(), "note": args.note,
    }
    pg = nats = sim = None
    nodes: list[Node] = []
    try:
        pg = Postgres()
        nats_port = base.free_port()
        nats_log = open(tmp / "nats.log", "ab")
        nats = subprocess.Popen([nats_server(), "-a", "127.0.0.1", "-p", str(nats_port)],
                                stdout=nats_log, stderr=nats_log)
        ports = [base.free_port() for _ in range(args.gateways)]
        first = tmp / "gw-1"
        out = subprocess.run([args.server_bin, "init", "--data-dir", str(first), "--school",
                              "Bench School", "--password", password, "--postgres", pg.params],
                             capture_output=True, text=True, check=True)
        m = re.search(r"fingerprint \(agents pin this\): ([0-9a-fA-F:]+)", out.stdout)
        if not m:
            raise BenchError(f"no fingerprint in init's output: {out.stdout}")
        fingerprint = m.group(1)
        token = subprocess.run([args.server_bin, "token", "create", "--data-dir", str(first),
                                "--uses", str(args.agents), "--hours", "2"],
                               capture_output=True, text=True, check=True).stdout.strip().split()[-1]
        for i in range(2, args.gateways + 1):
            data = tmp / f"gw-{i}"
            data.mkdir(mode=0o700)
            for f in ("server.toml", "cert.pem", "key.pem"):
                shutil.copy2(first / f, data / f)
        for i in range(1, args.gateways + 1):
            join_bus(tmp / f"gw-{i}", nats_port, f"gw-{i}", args.lease)
        for i, port in enumerate(ports, 1):
            nodes.append(Node(f"gw-{i}", tmp / f"gw-{i}", port, args.server_bin,
                              tmp / f"gw-{i}.log"))
        for n in nodes:
            n.wait_up()
        nodes[0].api.login(password)
        for n in nodes:
            n.api.token = nodes[0].api.token  # one session, every node (the shared store)
            n.api.use_metrics_token(n.data)
        time.sleep(base.SETTLE_S)
        rss0 = {n.name: base.proc_status(n.proc.pid) for n in nodes}
        log(f"{len(nodes)} gateways up; RSS " +
            ", ".join(f"{k} {v['VmRSS']} KiB" for k, v in rss0.items()))

        servers = ",".join(f"127.0.0.1:{p}" for p in ports)
        cmd = [args.sim_bin, "--server", servers, "--fingerprint", fingerprint, "--token", token,
               "--agents", str(args.agents), "--credentials", str(tmp / "credentials.json")]
        if args.sim_threads:
            cmd += ["--threads", str(args.sim_threads)]
        sim_log = open(tmp / "sim.log", "ab")
        t0 = time.perf_counter()
        sim = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=sim_log)
        connect_s = wait_total(nodes, args.agents, args.connect_timeout)
        time.sleep(base.IDLE_S)
        per_gateway = {n.name: n.online() for n in nodes}
        rss1 = {n.name: base.proc_status(n.proc.pid) for n in nodes}
        grown = sum(rss1[k]["VmRSS"] - rss0[k]["VmRSS"] for k in rss1)
        result["enroll_connect_s"] = round(connect_s, 2)
        result["agents_per_gateway"] = per_gateway
        result["rss_idle_kib"] = {k: v["VmRSS"] for k, v in rss0.items()}
        result["rss_connected_kib"] = {k: v["VmRSS"] for k, v in rss1.items()}
        result["kib_per_agent"] = round(grown / args.agents, 1)
        log(f"{args.agents} agents online in {connect_s:.1f} s: {per_gateway}; "
            f"{result['kib_per_agent']} KiB/agent over all gateways")

        api = nodes[0].api
        devices = api.json("GET", "/api/v1/devices")
        ids = sorted(d["id"] for d in devices if d.get("online"))
        if len(ids) != args.agents:
            raise BenchError(f"gw-1 lists {len(ids)} online, expected {args.agents}")
        runs = base.lock_runs(args, api, ids)
        result["lock_runs"] = runs
        result["lock_median"] = {k: statistics.median(r[k] for r in runs) for k in (
            "p50_ms", "p99_ms", "max_ms", "client_all_acked_ms")}

        # kill -9 of the last gateway; its agents find the others.
        victim = nodes[-1]
        lost = victim.online()
        victim.proc.kill()
        t_kill = time.perf_counter()
        victim.proc.wait()
        survivors = nodes[:-1]
        back_s = wait_total(survivors, args.agents, args.connect_timeout)
        result["killed"] = {"gateway": victim.name, "agents_it_held": lost,
                            "all_back_online_s": round(back_s, 2),
                            "per_survivor": {n.name: n.online() for n in survivors}}
        log(f"killed {victim.name} holding {lost}: all {args.agents} back in {back_s:.1f} s")
        # Presence on gw-1 may still name the dead gateway until its lease
        # runs out: wait for the device list to agree before locking.
        time.sleep(args.lease + 1)
        after = base.lock_runs(argparse.Namespace(**{**vars(args), "runs": 1}), api, ids)[0]
        result["lock_after_kill"] = after
        if after["summary"].get("done") != args.agents:
            raise BenchError(f"after the kill, the lock reached {after['summary']}")
        result["ok"] = True
        return result
    except BaseException as e:
        result["ok"] = False
        result["error"] = str(e) if not isinstance(e, KeyboardInterrupt) else "interrupted"
        raise
    finally:
        if sim is not None:
            base.stop_process(sim, signal.SIGINT, 60)
        for n in nodes:
            n.api.close()
            if n.proc.poll() is None:
                base.stop_process(n.proc, signal.SIGTERM, 60)
        if nats is not None:
            base.stop_process(nats, signal.SIGTERM, 10)
        if pg is not None:
            pg.stop()
        result["duration_s"] = round((dt.datetime.now().astimezone() - started).total_seconds())
        if args.json_out:
            Path(args.json_out).parent.mkdir(parents=True, exist_ok=True)
            Path(args.json_out).write_text(json.dumps(result, indent=2) + "\n")
        if args.keep or not result.get("ok"):
            log(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def table(r: dict) -> str:
    m = r["lock_median"]
    rows = [
        ("gateways", r["gateways"]),
        ("agents", r["agents"]),
        ("agents per gateway", ", ".join(f"{k} {v}" for k, v in r["agents_per_gateway"].items())),
        ("enroll + connect, all online", f"{r['enroll_connect_s']} s"),
        ("server memory per agent (all gateways)", f"{r['kib_per_agent']} KiB"),
        ("lock to all, p50 / p99 / max (median of runs)",
         f"{m['p50_ms']} / {m['p99_ms']} / {m['max_ms']} ms"),
        ("lock to all, client sees all acked", f"{m['client_all_acked_ms']} ms"),
        (f"kill -9 {r['killed']['gateway']} ({r['killed']['agents_it_held']} agents): all back",
         f"{r['killed']['all_back_online_s']} s"),
        ("lock after the kill", str(r["lock_after_kill"]["summary"])),
    ]
    w = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{w}}  {v}" for k, v in rows)


def main() -> int:
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(SystemExit(143)))
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--gateways", type=int, default=2)
    ap.add_argument("--agents", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=5, help="lock/unlock measurements")
    ap.add_argument("--lease", type=int, default=5, help="the nodes' lease_secs")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder")
    ap.add_argument("--server-bin", default=str(REPO / "target/release/lectern-server"))
    ap.add_argument("--sim-bin", default=str(REPO / "target/release/lectern-sim"))
    ap.add_argument("--sim-threads", type=int, default=None)
    ap.add_argument("--connect-timeout", type=float, default=600)
    ap.add_argument("--command-timeout", type=float, default=120)
    ap.add_argument("--pause", type=float, default=1.0, help="seconds between lock runs")
    ap.add_argument("--json-out", default=None)
    ap.add_argument("--note", default=None)
    args = ap.parse_args()
    if args.gateways < 2:
        print("--gateways must be at least 2 (one is killed)", file=sys.stderr)
        return 2
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
