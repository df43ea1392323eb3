#!/usr/bin/env python3
"""Ensemble against Apache ZooKeeper 3.8 with fsync on: write throughput,
restart time and peak RSS with a big tree, snapshot size and write time.

A long benchmark, not a test: it starts both servers itself on fresh temporary
data directories (127.0.0.1 only), alternates them A B A B, prints medians and
the ratios Ensemble / ZooKeeper, and writes every raw figure as JSON.

    python3 bench/compare_durability.py                       # the full run, 1,000,000 znodes
    python3 bench/compare_durability.py --znodes 100000 --rounds 1 --duration 5   # a quick look

The load comes from `ensemble bench` (crates/bench); until the binary has that
subcommand, from `target/release/examples/bench` (`cargo build --release -p
ensemble-bench --example bench`). fsyncs are counted by bench/fsync_count.c,
an LD_PRELOAD shim (built here with gcc) that counts fsync and fdatasync calls
in a shared file; txns come from the `Zxid` of `srvr` before and after a run.
strace was tried first: `strace -f` slowed both servers several times over and
lost most of Ensemble's threads on this machine.
"""

import argparse
import atexit
import glob
import json
import os
import re
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from datetime import datetime

import recorded  # bench/recorded.py, beside this script

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

ZK_HOME = "/usr/share/zookeeper"
KINDS = ("ensemble", "zookeeper")  # narrowed by --kinds
LIVE = []  # every Server started, for cleanup at exit
SHIM = None  # path of the built fsync_count.so, if any


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def four_letter(port, word, timeout=5.0):
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(word.encode())
        chunks = []
        while True:
            b = s.recv(65536)
            if not b:
                break
            chunks.append(b)
    return b"".join(chunks).decode(errors="replace")


def _recv_frame(s):
    def exactly(n):
        buf = b""
        while len(buf) < n:
            b = s.recv(n - len(buf))
            if not b:
                raise ConnectionError("closed")
            buf += b
        return buf

    (n,) = struct.unpack(">i", exactly(4))
    return exactly(n)


def get_data_once(port, path, timeout=2.0):
    """One session, one getData, close: True when the server answered it
    without error. A hand-written client keeps the poll cheap and free of
    any retry logic of a library."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        # ConnectRequest: protocolVersion, lastZxidSeen, timeOut, sessionId, passwd, readOnly
        body = struct.pack(">iqiqi", 0, 0, 30000, 0, 16) + b"\0" * 16 + b"\0"
        s.sendall(struct.pack(">i", len(body)) + body)
        reply = _recv_frame(s)
        _, _, session = struct.unpack(">iiq", reply[:16])
        if session == 0:
            return False
        p = path.encode()
        body = struct.pack(">ii", 1, 4) + struct.pack(">i", len(p)) + p + b"\0"
        s.sendall(struct.pack(">i", len(body)) + body)
        _, _, err = struct.unpack(">iqi", _recv_frame(s)[:16])
        close = struct.pack(">ii", 2, -11)
        s.sendall(struct.pack(">i", len(close)) + close)
        return err == 0


def proc_status(pid, key):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def snapshots(data_dir):
    """(zxid, path) of every snapshot, oldest first."""
    out = []
    for p in glob.glob(os.path.join(data_dir, "version-2", "snapshot.*")):
        m = re.match(r"snapshot\.([0-9a-fA-F]+)", os.path.basename(p))
        if m:
            out.append((int(m.group(1), 16), p))
    return sorted(out)


def txn_logs(data_dir):
    return sorted(glob.glob(os.path.join(data_dir, "version-2", "log.*")))


class Server:
    def __init__(self, kind, extra_cfg="", workdir=None):
        self.kind = kind
        self.dir = tempfile.mkdtemp(prefix=f"cmpdur-{kind}-", dir=workdir)
        self.port = free_port()
        self.data_dir = os.path.join(self.dir, "data")
        os.makedirs(self.data_dir)
        self.cfg = os.path.join(self.dir, "zoo.cfg")
        with open(self.cfg, "w") as f:
            f.write(
                "tickTime=2000\n"
                f"dataDir={self.data_dir}\n"
                f"clientPort={self.port}\n"
                "clientPortAddress=127.0.0.1\n"
                "admin.enableServer=false\n"
                "4lw.commands.whitelist=*\n"
                "forceSync=yes\n" + extra_cfg
            )
        self.log_path = os.path.join(self.dir, "server.log")
        self.proc = None
        self.fsync_file = os.path.join(self.dir, "fsync.count")
        self.starts = 0
        LIVE.append(self)

    @property
    def hosts(self):
        return f"127.0.0.1:{self.port}"

    def command(self):
        env = dict(os.environ)
        if SHIM:
            env.update(LD_PRELOAD=SHIM, FSYNC_COUNT_FILE=self.fsync_file)
        if self.kind == "ensemble":
            return [ARGS.ensemble, "server", "--config", self.cfg], env
        env["ZOO_LOG_DIR"] = self.dir
        return [os.path.join(ZK_HOME, "bin", "zkServer.sh"), "start-foreground", self.cfg], env

    def fsyncs(self):
        """fdatasync + fsync calls since the count file was made, or None."""
        try:
            with open(self.fsync_file, "rb") as f:
                a, b = struct.unpack("<qq", f.read(16))
            return a + b
        except (OSError, struct.error):
            return None

    def start(self, wait=True):
        cmd, env = self.command()
        self.starts += 1
        logf = open(self.log_path, "a")
        self.exec_time = time.monotonic()
        self.proc = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT, env=env,
                                     start_new_session=True)
        logf.close()
        if wait:
            self.wait_ruok()
        return self

    def server_pid(self):
        # zkServer.sh start-foreground execs java, so both are the process we started
        return self.proc.pid

    def wait_ruok(self, timeout=120):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.kind} exited early; see {self.log_path}")
            try:
                # ruok is answered before ZooKeeper takes sessions: wait for a real one
                if get_data_once(self.port, "/", 1.0):
                    return
            except (OSError, struct.error):
                pass
            time.sleep(0.05)
        raise RuntimeError(f"{self.kind} did not serve getData / in {timeout} s")

    def srvr(self):
        out = {}
        for line in four_letter(self.port, "srvr").splitlines():
            if ":" in line:
                k, v = line.split(":", 1)
                out[k.strip()] = v.strip()
        return out

    def kill(self):
        """SIGKILL to the server's whole process group."""
        if self.proc and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait()

    def close(self):
        self.kill()
        if not ARGS.keep:
            shutil.rmtree(self.dir, ignore_errors=True)
        if self in LIVE:
            LIVE.remove(self)

    def log_text(self):
        with open(self.log_path, errors="replace") as f:
            text = f.read()
        for extra in glob.glob(os.path.join(self.dir, "*.log")) + glob.glob(os.path.join(self.dir, "*.out")):
            if extra != self.log_path:
                with open(extra, errors="replace") as f:
                    text += f.read()
        return text


def cleanup():
    for s in list(LIVE):
        s.close()


def bench_cmd():
    if ARGS.bench:
        return ARGS.bench.split()
    ensemble = ARGS.ensemble
    probe = subprocess.run([ensemble, "bench", "--help"], capture_output=True)
    if probe.returncode == 0:
        return [ensemble, "bench"]
    example = os.path.join(ROOT, "target", "release", "examples", "bench")
    if os.path.exists(example):
        return [example]
    sys.exit("no load generator: build `ensemble bench` or "
             "`cargo build --release -p ensemble-bench --example bench`")


def bench(server, *opts, timeout=3600):
    cmd = BENCH + ["--hosts", server.hosts, "--json", "--quiet"] + [str(o) for o in opts]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        raise RuntimeError(f"bench failed ({' '.join(cmd)}): {r.stderr.strip()}")
    return json.loads(r.stdout)


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


# ---------------------------------------------------------------- write throughput

def write_run(kind, sessions, inflight):
    s = Server(kind, extra_cfg="maxClientCnxns=0\n", workdir=ARGS.workdir).start()
    try:
        common = ["--workload", "write", "--sessions", sessions, "--inflight", inflight,
                  "--keys", 1000, "--value-size", 100]
        if ARGS.warmup > 0:
            bench(s, *common, "--duration", ARGS.warmup)
        zxid0, fs0, t0 = int(s.srvr()["Zxid"], 16), s.fsyncs(), time.monotonic()
        r = bench(s, *common, "--duration", ARGS.duration)
        zxid1, fs1, t1 = int(s.srvr()["Zxid"], 16), s.fsyncs(), time.monotonic()
        fs = (fs1 - fs0) if fs0 is not None and fs1 is not None else None
        txns = zxid1 - zxid0
        return {"ops_per_s": r["ops_per_s"], "p50_ms": r["latency_ms"]["p50"],
                "p99_ms": r["latency_ms"]["p99"], "p999_ms": r["latency_ms"]["p999"],
                "errors": r["error_count"], "bench_cpu_per_s": r["bench_cpu_s"]["per_wall_s"],
                "txns": txns, "fsyncs": fs,
                "fsyncs_per_s": (fs / (t1 - t0)) if fs is not None else None,
                "txns_per_fsync": (txns / fs) if fs else None,
                "data_dir_files": len(os.listdir(os.path.join(s.data_dir, "version-2")))
                if os.path.isdir(os.path.join(s.data_dir, "version-2")) else 0}
    finally:
        s.close()


def write_phase():
    configs = [(1, 1), (64, 1)] + ([] if ARGS.no_pipelined else [(64, 16)])
    out = {}
    for sessions, inflight in configs:
        key = f"{sessions}x{inflight}"
        runs = {k: [] for k in KINDS}
        for rnd in range(ARGS.rounds):
            for kind in KINDS:
                r = write_run(kind, sessions, inflight)
                log(f"write {key} round {rnd + 1} {kind}: {r['ops_per_s']:.0f} ops/s, "
                    f"p99 {r['p99_ms']:.2f} ms, {r['fsyncs']} fsyncs for {r['txns']} txns")
                if kind == "ensemble" and r["fsyncs"] == 0:
                    log("WARNING: Ensemble made no fsync with forceSync=yes: is this build durable?")
                runs[kind].append(r)
        metrics = ("ops_per_s", "p50_ms", "p99_ms", "p999_ms", "fsyncs_per_s", "txns_per_fsync")
        med = {k: {m: median([r[m] for r in runs[k]]) for m in metrics} for k in KINDS}
        out[key] = {"runs": runs, "median": med,
                    "ratio_ops": ratio(med.get("ensemble", {}).get("ops_per_s"),
                                       med.get("zookeeper", {}).get("ops_per_s")),
                    "ratio_p99": ratio(med.get("ensemble", {}).get("p99_ms"),
                                       med.get("zookeeper", {}).get("p99_ms"))}
    return out


def ratio(a, b):
    return (a / b) if a is not None and b else None


# ---------------------------------------------------------------- restart with a big tree

def wait_snapshot_after(s, zxid, timeout):
    """Drives setData until a snapshot newer than `zxid` exists; returns it."""
    deadline = time.monotonic() + timeout
    filler = 0
    while time.monotonic() < deadline:
        newer = [x for x in snapshots(s.data_dir) if x[0] > zxid]
        if newer:
            return newer[-1], filler
        if not os.path.isdir(os.path.join(s.data_dir, "version-2")):
            raise RuntimeError(f"{s.kind} wrote nothing under {s.data_dir}: is this build durable?")
        r = bench(s, "--workload", "write", "--sessions", 16, "--keys", 1000, "--duration", 1)
        filler += r["ops"]
    raise RuntimeError(f"{s.kind}: no snapshot after zxid 0x{zxid:x} within {timeout} s")


def wait_stable(path, quiet=1.0, timeout=600):
    last, since = -1, time.monotonic()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        size = os.path.getsize(path)
        if size != last:
            last, since = size, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return size
        time.sleep(0.1)
    return last


def birth_and_mtime(path):
    """Creation (statx birth) and last-modification times of a file, in
    seconds; birth is None where the filesystem does not record it."""
    r = subprocess.run(["stat", "-c", "%w|%y", path], capture_output=True, text=True)
    def parse(t):
        m = re.match(r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)(?:\.(\d+))? ([+-]\d{4})", t.strip())
        if not m:
            return None
        base = datetime.strptime(m.group(1) + " " + m.group(3), "%Y-%m-%d %H:%M:%S %z").timestamp()
        return base + float("0." + (m.group(2) or "0"))
    if r.returncode != 0 or "|" not in r.stdout:
        return None, os.stat(path).st_mtime
    born, modified = r.stdout.split("|", 1)
    return parse(born), parse(modified)


def snapshot_write_ms(s, snap_path):
    """How long the snapshot file took to write: from its creation to its last
    write (the same clock for both servers), and what the server itself says
    (Ensemble's log line; ZooKeeper's mntr snapshottime, which is the max over
    all snapshots it took, ZooKeeper logging nothing with Debian's packages)."""
    born, modified = birth_and_mtime(snap_path)
    file_ms = (modified - born) * 1000 if born is not None and modified is not None else None
    own = None
    if s.kind == "ensemble":
        m = re.search(re.escape(os.path.basename(snap_path)) + r" in (\d+) ms", s.log_text())
        own = float(m.group(1)) if m else None
    else:
        try:
            for line in four_letter(s.port, "mntr").splitlines():
                if line.startswith("zk_max_snapshottime"):
                    own = float(line.split()[1])
        except OSError:
            pass
    return file_ms, own


def restart_run(kind):
    snap_count = ARGS.snap_count
    s = Server(kind, extra_cfg=f"snapCount={snap_count}\nmaxClientCnxns=0\n", workdir=ARGS.workdir).start()
    try:
        t = time.monotonic()
        pop = bench(s, "--workload", "populate", "--ops", ARGS.znodes, "--sessions", 16,
                    "--inflight", 16, "--value-size", 100, "--prefix", "/big")
        log(f"restart {kind}: populated {pop['ops']} znodes at {pop['ops_per_s']:.0f}/s "
            f"({pop['error_count']} errors) in {time.monotonic() - t:.1f} s")
        zxid_after_populate = int(s.srvr()["Zxid"], 16)
        (snap_zxid, snap_path), filler = wait_snapshot_after(s, zxid_after_populate - 1, 1800)
        snap_size = wait_stable(snap_path)
        log(f"restart {kind}: snapshot {os.path.basename(snap_path)} ({snap_size} bytes) after "
            f"{filler} filler setData")
        upd = bench(s, "--workload", "write", "--ops", ARGS.updates, "--sessions", 16,
                    "--inflight", 4, "--keys", 1000)
        last_zxid = int(s.srvr()["Zxid"], 16)
        newest = snapshots(s.data_dir)[-1]
        snap_ms, snap_ms_server = snapshot_write_ms(s, snap_path)
        layout = {"snapshots": len(snapshots(s.data_dir)), "logs": len(txn_logs(s.data_dir)),
                  "newest_snapshot_zxid": hex(newest[0]), "last_zxid": hex(last_zxid),
                  "txns_after_snapshot": last_zxid - newest[0]}
        log(f"restart {kind}: {upd['ops']} setData; data dir {layout}")
        rss_before = proc_status(s.server_pid(), "VmHWM")
        s.kill()

        s.start(wait=False)
        exec_t = s.exec_time
        probe = f"/big"
        while True:
            if s.proc.poll() is not None:
                raise RuntimeError(f"{kind} died on restart; see {s.log_path}")
            try:
                if get_data_once(s.port, probe, 1.0):
                    break
            except (OSError, struct.error):
                pass
            if time.monotonic() - exec_t > 1800:
                raise RuntimeError(f"{kind} did not serve within 1800 s of restart")
            time.sleep(0.01)
        restart_s = time.monotonic() - exec_t
        hwm = proc_status(s.server_pid(), "VmHWM")
        rss = proc_status(s.server_pid(), "VmRSS")
        nodes = s.srvr().get("Node count")
        loaded = None
        if kind == "ensemble":
            m = re.findall(r"loaded .*? in \d+ ms", s.log_text())
            loaded = m[-1] if m else None
        r = {"populate_ops_per_s": pop["ops_per_s"], "populate_errors": pop["error_count"],
             "update_ops_per_s": upd["ops_per_s"], "snapshot_bytes": snap_size,
             "snapshot_write_ms": snap_ms, "snapshot_write_ms_server_says": snap_ms_server,
             "restart_s": restart_s, "peak_rss_bytes": hwm, "rss_bytes": rss,
             "peak_rss_before_kill_bytes": rss_before, "node_count_after_restart": nodes,
             "data_dir": layout, "server_load_line": loaded}
        log(f"restart {kind}: served after {restart_s:.2f} s, VmHWM {hwm / 2**20:.0f} MiB, "
            f"{nodes} nodes")
        return r
    finally:
        s.close()


def restart_phase():
    runs = {k: [] for k in KINDS}
    for rnd in range(ARGS.restart_rounds):
        for kind in KINDS:
            try:
                runs[kind].append(restart_run(kind))
            except (RuntimeError, subprocess.TimeoutExpired, OSError, KeyError, ValueError) as e:
                log(f"restart {kind} round {rnd + 1} failed: {e}")
                runs[kind].append({"error": str(e)})
    metrics = ("restart_s", "peak_rss_bytes", "snapshot_bytes", "snapshot_write_ms",
               "snapshot_write_ms_server_says", "populate_ops_per_s", "update_ops_per_s")
    med = {k: {m: median([r.get(m) for r in runs[k]]) for m in metrics} for k in KINDS}
    ratios = {m: ratio(med.get("ensemble", {}).get(m), med.get("zookeeper", {}).get(m)) for m in metrics}
    return {"runs": runs, "median": med, "ratio": ratios}


# ---------------------------------------------------------------- report

def fmt(v, unit=""):
    if v is None:
        return "n/a"
    if unit == "MiB":
        return f"{v / 2**20:.0f} MiB"
    if isinstance(v, float):
        return f"{v:,.2f}" if v < 100 else f"{v:,.0f}"
    return f"{v:,}"


def print_report(result):
    print()
    print(f"znodes {ARGS.znodes}, updates {ARGS.updates}, rounds {ARGS.rounds} "
          f"(restart {ARGS.restart_rounds}), duration {ARGS.duration} s")
    if "write" in result:
        print("\nwrite throughput, fsync on (medians; ratio = Ensemble / ZooKeeper)")
        print(f"{'sessions x inflight':<20}{'Ensemble ops/s':>16}{'ZooKeeper ops/s':>17}{'ratio':>7}"
              f"{'E p99 ms':>10}{'ZK p99 ms':>10}{'E fsync/s':>11}{'E txn/fsync':>12}"
              f"{'ZK fsync/s':>11}{'ZK txn/fsync':>13}")
        for key, w in result["write"].items():
            e, z = w["median"].get("ensemble", {}), w["median"].get("zookeeper", {})
            fe, fz = e, z
            print(f"{key:<20}{fmt(e.get('ops_per_s')):>16}{fmt(z.get('ops_per_s')):>17}{fmt(w['ratio_ops']):>7}"
                  f"{fmt(e.get('p99_ms')):>10}{fmt(z.get('p99_ms')):>10}{fmt(fe.get('fsyncs_per_s')):>11}"
                  f"{fmt(fe.get('txns_per_fsync')):>12}{fmt(fz.get('fsyncs_per_s')):>11}"
                  f"{fmt(fz.get('txns_per_fsync')):>13}")
    if "restart" in result:
        r = result["restart"]
        e, z, q = r["median"].get("ensemble", {}), r["median"].get("zookeeper", {}), r["ratio"]
        print(f"\nbig tree: {ARGS.znodes} znodes of 100 bytes + {ARGS.updates} setData after the snapshot")
        rows = [("restart to first getData (s)", "restart_s", ""),
                ("peak RSS after restart", "peak_rss_bytes", "MiB"),
                ("snapshot size", "snapshot_bytes", "MiB"),
                ("snapshot write, file (ms)", "snapshot_write_ms", ""),
                ("snapshot write, server (ms)", "snapshot_write_ms_server_says", ""),
                ("populate (creates/s)", "populate_ops_per_s", ""),
                ("setData (ops/s)", "update_ops_per_s", "")]
        print(f"{'':<32}{'Ensemble':>12}{'ZooKeeper':>12}{'ratio':>8}")
        for label, m, unit in rows:
            print(f"{label:<32}{fmt(e.get(m), unit):>12}{fmt(z.get(m), unit):>12}{fmt(q[m]):>8}")


def build_shim():
    """Compiles bench/fsync_count.c; None (no fsync counts) without gcc."""
    if shutil.which("gcc") is None:
        log("gcc not found (apt-get install gcc): fsyncs will not be counted")
        return None
    out_dir = tempfile.mkdtemp(prefix="cmpdur-shim-")
    atexit.register(shutil.rmtree, out_dir, True)
    so = os.path.join(out_dir, "fsync_count.so")
    src = os.path.join(ROOT, "bench", "fsync_count.c")
    r = subprocess.run(["gcc", "-O2", "-shared", "-fPIC", "-o", so, src, "-ldl"],
                       capture_output=True, text=True)
    if r.returncode != 0:
        log(f"cannot build the fsync counter, fsyncs will not be counted: {r.stderr.strip()}")
        return None
    return so


def main():
    global ARGS, BENCH, SHIM, KINDS
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ensemble", default=os.path.join(ROOT, "target", "release", "ensemble"))
    p.add_argument("--bench", help="the load generator command (default: `ensemble bench`, "
                   "else target/release/examples/bench)")
    p.add_argument("--rounds", type=int, default=2, help="A B rounds of each write test")
    p.add_argument("--restart-rounds", type=int, default=2)
    p.add_argument("--duration", type=int, default=10, help="seconds per write measurement")
    p.add_argument("--warmup", type=int, default=3, help="seconds of unmeasured writes first")
    p.add_argument("--znodes", type=int, default=1_000_000)
    p.add_argument("--updates", type=int, default=100_000)
    p.add_argument("--snap-count", type=int, default=300_000,
                   help="snapCount for the big-tree test; its half must exceed --updates "
                        "plus a few thousand, so no snapshot falls among the updates (Ensemble "
                        "waits for half the tree's size in txns as well, which is more)")
    p.add_argument("--no-pipelined", action="store_true", help="skip 64 sessions x 16 in flight")
    p.add_argument("--skip-write", action="store_true")
    p.add_argument("--skip-restart", action="store_true")
    p.add_argument("--workdir", default=None, help="where the temporary data dirs go")
    p.add_argument("--json-out", default=None, help="write every raw figure here")
    p.add_argument("--keep", action="store_true", help="keep the data dirs")
    p.add_argument("--kinds", default="ensemble,zookeeper",
                   help="which servers to run (for a partial run; ratios need both)")
    ARGS = p.parse_args()
    KINDS = tuple(k for k in ARGS.kinds.split(",") if k)
    if ARGS.snap_count // 2 < ARGS.updates + 5000:
        sys.exit("--snap-count must be at least 2 * (--updates + 5000)")
    BENCH = bench_cmd()
    atexit.register(cleanup)
    SHIM = build_shim()
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda *_: sys.exit(130))
    started = time.time()
    result = {"args": recorded.options(ARGS), "bench": recorded.portable(BENCH), "started": time.ctime(started)}
    if not ARGS.skip_write:
        result["write"] = write_phase()
    if not ARGS.skip_restart:
        result["restart"] = restart_phase()
    result["wall_s"] = time.time() - started
    if ARGS.json_out:
        with open(ARGS.json_out, "w") as f:
            json.dump(result, f, indent=1)
    print_report(result)
    print(f"\ntook {result['wall_s'] / 60:.1f} min")


if __name__ == "__main__":
    main()
