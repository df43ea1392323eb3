#!/usr/bin/env python3
"""Standalone Ensemble beside standalone Apache ZooKeeper 3.8, with redis as
the reference for what a request/response server reaches on this machine.

    python3 bench/compare_standalone.py            # the full comparison, 3 rounds (about 25 minutes on 2 CPUs)
    python3 bench/compare_standalone.py --quick    # a smoke check: 1 round, 3 s runs, 100,000 znodes
    python3 bench/compare_standalone.py --suites throughput --rounds 1    # one suite

Both servers get the same zoo.cfg on a fresh data directory and a free
127.0.0.1 port: tickTime=2000, forceSync=yes, maxClientCnxns=0 (10,000
sessions come from one address), admin.enableServer=false,
4lw.commands.whitelist=*. Ensemble runs as `ensemble server --config zoo.cfg`
(a copy of the binary taken at start, so a rebuild during the run changes
nothing); ZooKeeper as `/usr/share/zookeeper/bin/zkServer.sh start-foreground
zoo.cfg` with Debian's default JVM settings. The script raises its soft limit
of open files to the hard one first, and both servers inherit it.

Each round runs every suite on each server in turn (Ensemble, ZooKeeper,
Ensemble, ZooKeeper...), each suite on a freshly started server; the report
gives medians and ratios (Ensemble / ZooKeeper: above 1 is better for ops/s,
below 1 is better for latencies, times and memory).

- throughput: `ensemble bench` with 100-byte values on --keys keys, each run
  after an unmeasured warm-up: read (getData), mixed (90% reads), write
  (setData), multi (a version check + 4 setData) at 64 sessions x 16 in flight;
  read and write at 1 session x 1 in flight (p50 latency); create (unique
  names) and delete (--delete-keys znodes made first) at 64 x 16. Peak RSS
  (VmHWM) of the server at the end.
- sessions: `connect` opens --idle-sessions idle sessions (64 handshakes at a
  time) and holds them; the server's VmRSS is sampled while they are held
  (before: the idle server). Then `watch`: --watchers sessions each set a data
  watch on one znode, one setData, the time from its send to the last (and
  the p50, p99) notification, 3 rounds re-arming the watches.
- memory: populate --znodes znodes of 100 bytes (16 x 16), then VmRSS and
  VmHWM of the server.
- redis: a redis-server (Debian's package, persistence off) on a free port;
  `redis-benchmark -t get -d 100 -r 10000` with -c 64 -P 16 and -c 1 -P 1,
  after a SET of the keys. Ensemble's read ops/s is reported as a fraction of
  redis GET.

Results go to --out as JSON (default bench/results/standalone-<date>.json),
and an SVG of throughput and p99 per workload beside it (--svg to choose),
drawn by `ensemble bench plot`. Every process this script starts is killed
when it ends, also on Ctrl-C.
"""

import argparse
import atexit
import json
import os
import platform
import resource
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time

import recorded  # bench/recorded.py, beside this script

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

ZK_SERVER_SH = "/usr/share/zookeeper/bin/zkServer.sh"
IMPLS = ("ensemble", "zookeeper")
NAMES = {"ensemble": "Ensemble", "zookeeper": "ZooKeeper"}
SUITES = ("throughput", "sessions", "memory", "redis")
LIVE = []  # servers and load generators to kill at exit
ARGS = None
ENSEMBLE = None  # the copied binary
BENCH = None  # the load generator command
WORKDIR = None


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def ratio(a, b):
    return (a / b) if a is not None and b else None


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_status(pid, key):
    """A size line of /proc/<pid>/status (VmRSS, VmHWM) in bytes, or None."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def raise_fd_limit():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


# ---------------------------------------------------------------- servers


def get_data_once(port, path, timeout=2.0):
    """One session, one getData, close: True when the server answered it
    without error. ZooKeeper answers ruok before it takes sessions, so
    readiness is a real request (a hand-written client: no retry logic)."""

    def frame(s):
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

    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        # ConnectRequest: protocolVersion, lastZxidSeen, timeOut, sessionId, passwd, readOnly
        body = struct.pack(">iqiqi", 0, 0, 30000, 0, 16) + b"\0" * 16 + b"\0"
        s.sendall(struct.pack(">i", len(body)) + body)
        _, _, session = struct.unpack(">iiq", frame(s)[:16])
        if session == 0:
            return False
        p = path.encode()
        body = struct.pack(">ii", 1, 4) + struct.pack(">i", len(p)) + p + b"\0"
        s.sendall(struct.pack(">i", len(body)) + body)
        _, _, err = struct.unpack(">iqi", frame(s)[:16])
        close = struct.pack(">ii", 2, -11)
        s.sendall(struct.pack(">i", len(close)) + close)
        return err == 0


class Server:
    """One server process on a fresh directory; `impl` is ensemble,
    zookeeper or redis."""

    def __init__(self, impl):
        self.impl = impl
        self.dir = tempfile.mkdtemp(prefix=f"{impl}-", dir=WORKDIR)
        self.port = free_port()
        self.log_path = os.path.join(self.dir, "server.log")
        self.proc = None
        if impl != "redis":
            self.data_dir = os.path.join(self.dir, "data")
            os.makedirs(self.data_dir)
            self.cfg = os.path.join(self.dir, "zoo.cfg")
            with open(self.cfg, "w") as f:
                f.write("tickTime=2000\n"
                        f"dataDir={self.data_dir}\n"
                        f"clientPort={self.port}\n"
                        "clientPortAddress=127.0.0.1\n"
                        "maxClientCnxns=0\n"
                        "forceSync=yes\n"
                        "admin.enableServer=false\n"
                        "4lw.commands.whitelist=*\n")

    @property
    def hosts(self):
        return f"127.0.0.1:{self.port}"

    def command(self):
        env = dict(os.environ)
        if self.impl == "ensemble":
            return [ENSEMBLE, "server", "--config", self.cfg], env
        if self.impl == "zookeeper":
            # Default JVM settings: Debian's start script, as an operator runs it.
            env["ZOO_LOG_DIR"] = self.dir
            return [ZK_SERVER_SH, "start-foreground", self.cfg], env
        return ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "no", "--protected-mode", "no", "--dir", self.dir,
                "--daemonize", "no"], env

    def start(self, timeout=120):
        cmd, env = self.command()
        with open(self.log_path, "a") as logf:
            # Its own process group, so that a kill takes zkServer.sh's java too.
            self.proc = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT, env=env,
                                         start_new_session=True)
        LIVE.append(self)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.impl} exited at start:\n{self.log_tail()}")
            try:
                if self.impl == "redis":
                    r = subprocess.run(["redis-cli", "-p", str(self.port), "ping"],
                                       capture_output=True, text=True, timeout=5)
                    if r.stdout.strip() == "PONG":
                        return self
                elif get_data_once(self.port, "/", 1.0):
                    return self
            except (OSError, struct.error, subprocess.TimeoutExpired):
                pass
            time.sleep(0.05)
        raise RuntimeError(f"{self.impl} did not serve within {timeout} s:\n{self.log_tail()}")

    def rss(self):
        # zkServer.sh start-foreground execs java: the process started is the JVM.
        return proc_status(self.proc.pid, "VmRSS")

    def hwm(self):
        return proc_status(self.proc.pid, "VmHWM")

    def log_tail(self, n=20):
        try:
            with open(self.log_path, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    def close(self):
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait()
        if self in LIVE:
            LIVE.remove(self)
        shutil.rmtree(self.dir, ignore_errors=True)


class Child:
    """A load generator process, killed at exit if still running."""

    def __init__(self, cmd, **kw):
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)
        LIVE.append(self)

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self in LIVE:
            LIVE.remove(self)


def cleanup():
    for p in list(reversed(LIVE)):
        p.close()


# ---------------------------------------------------------------- the load generator


def bench_cmd():
    """`ensemble bench` when this binary has the workloads used here, else the
    bench example built from the same crate."""
    if ARGS.bench:
        return ARGS.bench.split()
    probe = subprocess.run([ENSEMBLE, "bench", "--help"], capture_output=True, text=True)
    if probe.returncode == 0 and "connect" in probe.stdout and "plot" in probe.stdout:
        return [ENSEMBLE, "bench"]
    example = os.path.join(ROOT, "target", "release", "examples", "bench")
    if os.path.exists(example):
        copy = os.path.join(WORKDIR, "bench")
        shutil.copy2(example, copy)
        return [copy]
    sys.exit("no load generator with the watch, connect and plot commands: "
             "cargo build --release -p ensemble-bench --example bench")


def bench(server, *opts, timeout=3600, on_line=None):
    """Runs `bench --hosts <server> --json --quiet <opts>` and returns its JSON;
    `on_line(line)` sees each stderr line as it comes."""
    cmd = BENCH + ["--hosts", server.hosts, "--json", "--quiet"] + [str(o) for o in opts]
    child = Child(cmd)
    out_chunks, err_lines = [], []

    def pump_err():
        for line in child.proc.stderr:
            err_lines.append(line)
            if on_line:
                on_line(line)

    readers = [threading.Thread(target=lambda: out_chunks.append(child.proc.stdout.read()), daemon=True),
               threading.Thread(target=pump_err, daemon=True)]
    for r in readers:
        r.start()
    try:
        child.proc.wait(timeout=timeout)
        for r in readers:
            r.join(timeout=5)
    finally:
        child.close()
    if child.proc.returncode != 0:
        raise RuntimeError(f"bench failed ({' '.join(cmd[1:])}): {''.join(err_lines).strip()[-500:]}")
    return json.loads("".join(out_chunks))


# ---------------------------------------------------------------- suites


def throughput_workloads():
    """(name, options, warm-up?) of the throughput suite, in the order run;
    create and delete last, as they leave the tree bigger or emptier."""
    k = ["--keys", ARGS.keys, "--value-size", 100]
    par = ["--sessions", 64, "--inflight", 16]
    one = ["--sessions", 1, "--inflight", 1]
    return [
        ("read 64x16", ["--workload", "read"] + par + k, True),
        ("mixed 64x16", ["--workload", "mixed", "--read-ratio", 0.9] + par + k, True),
        ("write 64x16", ["--workload", "write"] + par + k, True),
        ("multi 64x16", ["--workload", "multi", "--multi-ops", 4] + par + k, True),
        ("read 1x1", ["--workload", "read"] + one + k, True),
        ("write 1x1", ["--workload", "write"] + one + k, True),
        ("create 64x16", ["--workload", "create"] + par + ["--value-size", 100], True),
        # Bounded by its prepared znodes; the JIT is warm by now.
        ("delete 64x16", ["--workload", "delete"] + par + ["--keys", ARGS.delete_keys,
                                                           "--value-size", 100], False),
    ]


def throughput_suite(impl):
    s = Server(impl).start()
    try:
        bench(s, "--workload", "read", "--keys", ARGS.keys, "--value-size", 100, "--ops", 1,
              "--sessions", 16)
        rows = {}
        for name, opts, warm in throughput_workloads():
            if warm and ARGS.warmup > 0:
                bench(s, *opts, "--duration", ARGS.warmup)
            r = bench(s, *opts, "--duration", ARGS.duration)
            rows[name] = {"ops_per_s": r["ops_per_s"], "p50_ms": r["latency_ms"]["p50"],
                          "p99_ms": r["latency_ms"]["p99"], "p999_ms": r["latency_ms"]["p999"],
                          "ops": r["ops"], "errors": r["error_count"], "error_codes": r["errors"],
                          "bench_cpu_per_s": r["bench_cpu_s"]["per_wall_s"]}
            log(f"  {name:<13} {impl:<9} {r['ops_per_s']:>9,.0f} ops/s  p50 {r['latency_ms']['p50']:.2f} ms  "
                f"p99 {r['latency_ms']['p99']:.2f} ms  errors {r['error_count']}  "
                f"bench CPU {r['bench_cpu_s']['per_wall_s']:.0%}")
        return {"workloads": rows, "peak_rss_bytes": s.hwm()}
    finally:
        s.close()


def sessions_suite(impl):
    s = Server(impl).start()
    try:
        time.sleep(1)
        idle_rss = s.rss()
        held = {"at": None}
        samples = []

        def on_line(line):
            if line.startswith("holding ") and held["at"] is None:
                held["at"] = time.monotonic()

        def sampler(stop):
            while not stop.is_set():
                if held["at"] is not None:
                    v = s.rss()
                    if v:
                        samples.append(v)
                stop.wait(0.5)

        stop = threading.Event()
        t = threading.Thread(target=sampler, args=(stop,), daemon=True)
        t.start()
        try:
            c = bench(s, "--workload", "connect", "--sessions", ARGS.idle_sessions, "--inflight", 64,
                      "--duration", ARGS.hold, on_line=on_line)
        finally:
            stop.set()
            t.join()
        conn = c["connect"]
        held_rss = max(samples) if samples else None
        row = {"sessions": ARGS.idle_sessions, "established": conn["established"],
               "connect_s": conn["connect_s"], "sessions_per_s": conn["sessions_per_s"],
               "handshake_p99_ms": c["latency_ms"]["p99"], "errors": c["error_count"],
               "error_codes": c["errors"], "lost_during_hold": conn["lost_during_hold"],
               "idle_rss_bytes": idle_rss, "held_rss_bytes": held_rss,
               "rss_per_session_bytes": ((held_rss - idle_rss) / conn["established"])
               if held_rss and idle_rss and conn["established"] else None,
               "bench_cpu_per_s": c["bench_cpu_s"]["per_wall_s"]}
        log(f"  connect {ARGS.idle_sessions} {impl:<9} {conn['established']} in {conn['connect_s']:.2f} s "
            f"({conn['sessions_per_s']:,.0f}/s), errors {c['error_count']}, RSS idle "
            f"{mib(idle_rss)} -> held {mib(held_rss)} MiB")
        # The closed sessions' txns settle before the watchers connect.
        time.sleep(2)
        w = bench(s, "--workload", "watch", "--sessions", ARGS.watchers, "--inflight", 64,
                  "--rounds", ARGS.watch_rounds, "--value-size", 100)
        wd = w["watch"]
        watch = {"watchers": ARGS.watchers, "all_notified_ms": wd["all_notified_ms"],
                 "p50_ms": wd["p50_ms"], "p99_ms": wd["p99_ms"], "set_data_ms": wd["set_data_ms"],
                 "missed": wd["missed"], "errors": w["error_count"], "error_codes": w["errors"],
                 "rounds": wd["rounds"], "bench_cpu_per_s": w["bench_cpu_s"]["per_wall_s"]}
        log(f"  watch {ARGS.watchers} {impl:<9} all notified {wd['all_notified_ms']:.1f} ms, p50 "
            f"{wd['p50_ms']:.1f} ms, p99 {wd['p99_ms']:.1f} ms, missed {wd['missed']}, errors {w['error_count']}")
        return {"connect": row, "watch": watch, "peak_rss_bytes": s.hwm()}
    finally:
        s.close()


def memory_suite(impl):
    s = Server(impl).start()
    try:
        pop = bench(s, "--workload", "populate", "--ops", ARGS.znodes, "--sessions", 16, "--inflight", 16,
                    "--value-size", 100, "--prefix", "/big")
        time.sleep(2)
        row = {"znodes": ARGS.znodes, "populate_ops_per_s": pop["ops_per_s"], "errors": pop["error_count"],
               "rss_bytes": s.rss(), "peak_rss_bytes": s.hwm()}
        log(f"  memory {ARGS.znodes:,} znodes {impl:<9} populate {pop['ops_per_s']:,.0f}/s, RSS "
            f"{mib(row['rss_bytes'])} MiB, peak {mib(row['peak_rss_bytes'])} MiB")
        return row
    finally:
        s.close()


def redis_benchmark(s, clients, pipeline, seconds):
    """GET of 100-byte values on 10,000 keys; -n chosen from a short first
    run to last about `seconds`. Returns rps, latencies and the benchmark's CPU."""
    base = ["redis-benchmark", "-h", "127.0.0.1", "-p", str(s.port), "-t", "get", "-d", "100",
            "-r", "10000", "-c", str(clients), "-P", str(pipeline), "--csv"]

    def run(n):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t = time.monotonic()
        child = Child(base + ["-n", str(n)])
        try:
            out, err = child.proc.communicate(timeout=600)
        finally:
            child.close()
        wall = time.monotonic() - t
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        rows = [line.replace('"', "").split(",") for line in out.splitlines() if line.startswith('"GET"')]
        if child.proc.returncode != 0 or not rows:
            raise RuntimeError(f"redis-benchmark failed: {err.strip()[-300:]}")
        v = [float(x) for x in rows[-1][1:]]
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        return {"ops_per_s": v[0], "mean_ms": v[1], "p50_ms": v[3], "p99_ms": v[5], "max_ms": v[6],
                "requests": n, "bench_cpu_per_s": cpu / wall if wall > 0 else None}

    probe = run(20_000 if pipeline == 1 else 200_000)
    return run(max(10_000, int(probe["ops_per_s"] * seconds)))


def redis_suite():
    s = Server("redis").start()
    try:
        fill = subprocess.run(["redis-benchmark", "-h", "127.0.0.1", "-p", str(s.port), "-t", "set",
                               "-d", "100", "-r", "10000", "-n", "100000", "-q"],
                              capture_output=True, text=True, timeout=600)
        if fill.returncode != 0:
            raise RuntimeError(f"redis-benchmark SET failed: {fill.stderr.strip()[-300:]}")
        out = {}
        for name, c, p in (("GET 64x16", 64, 16), ("GET 1x1", 1, 1)):
            r = redis_benchmark(s, c, p, ARGS.duration)
            out[name] = r
            log(f"  redis {name:<9} {r['ops_per_s']:>12,.0f} ops/s  p50 {r['p50_ms']:.3f} ms  "
                f"p99 {r['p99_ms']:.3f} ms  redis-benchmark CPU {r['bench_cpu_per_s']:.0%}")
        out["peak_rss_bytes"] = s.hwm()
        return out
    finally:
        s.close()


# ---------------------------------------------------------------- summary


def mib(v):
    return "n/a" if v is None else f"{v / 2**20:,.0f}"


def summarise(runs):
    """Medians per server and ratios from the per-round results."""
    out = {}
    thr = runs.get("throughput")
    if thr:
        rows = {}
        for name, _, _ in throughput_workloads():
            med = {i: {m: median([r["workloads"][name][m] for r in thr[i]])
                       for m in ("ops_per_s", "p50_ms", "p99_ms")} for i in IMPLS}
            rows[name] = {"median": med, "ratio": {m: ratio(med["ensemble"][m], med["zookeeper"][m])
                                                   for m in ("ops_per_s", "p50_ms", "p99_ms")}}
        peak = {i: median([r["peak_rss_bytes"] for r in thr[i]]) for i in IMPLS}
        out["throughput"] = {"workloads": rows, "peak_rss_bytes": peak,
                             "ratio_peak_rss": ratio(peak["ensemble"], peak["zookeeper"])}
    ses = runs.get("sessions")
    if ses:
        metrics = {"connect": ("held_rss_bytes", "idle_rss_bytes", "rss_per_session_bytes",
                               "sessions_per_s", "handshake_p99_ms"),
                   "watch": ("all_notified_ms", "p50_ms", "p99_ms", "set_data_ms")}
        for part, names in metrics.items():
            med = {i: {m: median([r[part][m] for r in ses[i]]) for m in names} for i in IMPLS}
            out[part] = {"median": med,
                         "ratio": {m: ratio(med["ensemble"][m], med["zookeeper"][m]) for m in names},
                         "errors": {i: sum(r[part]["errors"] for r in ses[i]) for i in IMPLS}}
    mem = runs.get("memory")
    if mem:
        names = ("rss_bytes", "peak_rss_bytes", "populate_ops_per_s")
        med = {i: {m: median([r[m] for r in mem[i]]) for m in names} for i in IMPLS}
        out["memory"] = {"median": med,
                         "ratio": {m: ratio(med["ensemble"][m], med["zookeeper"][m]) for m in names}}
    red = runs.get("redis")
    if red:
        med = {name: {m: median([r[name][m] for r in red]) for m in ("ops_per_s", "p50_ms", "p99_ms")}
               for name in ("GET 64x16", "GET 1x1")}
        out["redis"] = {"median": med}
        if thr:
            tw = out["throughput"]["workloads"]
            out["redis"]["ensemble_read_fraction"] = {
                "64x16": ratio(tw["read 64x16"]["median"]["ensemble"]["ops_per_s"], med["GET 64x16"]["ops_per_s"]),
                "1x1": ratio(tw["read 1x1"]["median"]["ensemble"]["ops_per_s"], med["GET 1x1"]["ops_per_s"])}
    return out


def plot_input(result):
    """The object `ensemble bench plot` draws (see crates/bench/src/plot.rs)."""
    s = result["summary"]
    rows = []
    if "throughput" in s:
        for name, w in s["throughput"]["workloads"].items():
            rows.append({"name": name, "servers": {
                NAMES[i]: {"ops_per_s": w["median"][i]["ops_per_s"], "p99_ms": w["median"][i]["p99_ms"]}
                for i in IMPLS}})
    if "watch" in s:
        rows.append({"name": f"watch {ARGS.watchers}", "servers": {
            NAMES[i]: {"p99_ms": s["watch"]["median"][i]["p99_ms"]} for i in IMPLS}})
    if "redis" in s:
        for name, r in s["redis"]["median"].items():
            rows.append({"name": f"redis {name}", "servers": {"redis": r}})
    kind = "quick run (a smoke check, not a measurement)" if ARGS.quick else \
        f"medians of {ARGS.rounds} rounds of {ARGS.duration} s"
    return {"title": f"Ensemble and Apache ZooKeeper {result['zookeeper_version']}, standalone, fsync on",
            "subtitle": f"{kind}; commit {result['commit']}, {result['machine']}, {result['started']}; "
                        f"ratio = Ensemble / ZooKeeper; watch: p99 of the notifications of one setData",
            "series": ["Ensemble", "ZooKeeper", "redis"], "workloads": rows}


def fmt(v):
    if v is None:
        return "n/a"
    if isinstance(v, float):
        if abs(v) < 10:
            return f"{v:.2f}"
        return f"{v:,.1f}" if abs(v) < 100 else f"{v:,.0f}"
    return f"{v:,}"


def table(header, rows):
    widths = [max(len(str(r[k])) for r in [header] + rows) for k in range(len(header))]
    lines = []
    for n, r in enumerate([header] + rows):
        lines.append("  ".join(str(x).ljust(w) if k == 0 else str(x).rjust(w)
                               for k, (x, w) in enumerate(zip(r, widths))))
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def report(result):
    s = result["summary"]
    out = [f"standalone Ensemble vs Apache ZooKeeper {result['zookeeper_version']}, tickTime=2000 "
           f"forceSync=yes, {result['machine']}, "
           + ("QUICK RUN (smoke check)" if ARGS.quick else f"medians of {ARGS.rounds} rounds"),
           "ratio = Ensemble / ZooKeeper (ops/s: above 1 is better; latencies, times, memory: below 1)"]
    if "throughput" in s:
        t = s["throughput"]
        out += ["", f"throughput: 100 B values, {ARGS.keys:,} keys, {ARGS.duration} s runs after "
                    f"{ARGS.warmup} s warm-up (delete: {ARGS.delete_keys:,} znodes)"]
        rows = []
        for name, w in t["workloads"].items():
            e, z, q = w["median"]["ensemble"], w["median"]["zookeeper"], w["ratio"]
            rows.append([name, fmt(e["ops_per_s"]), fmt(z["ops_per_s"]), fmt(q["ops_per_s"]),
                         fmt(e["p50_ms"]), fmt(z["p50_ms"]), fmt(q["p50_ms"]),
                         fmt(e["p99_ms"]), fmt(z["p99_ms"]), fmt(q["p99_ms"])])
        out.append(table(["workload", "E ops/s", "ZK ops/s", "ratio", "E p50 ms", "ZK p50 ms", "ratio",
                          "E p99 ms", "ZK p99 ms", "ratio"], rows))
        out.append(f"peak RSS after the throughput suite: Ensemble {mib(t['peak_rss_bytes']['ensemble'])} MiB, "
                   f"ZooKeeper {mib(t['peak_rss_bytes']['zookeeper'])} MiB, ratio {fmt(t['ratio_peak_rss'])}")
    rows = []
    if "watch" in s:
        w = s["watch"]
        for m, label in (("all_notified_ms", f"watch, {ARGS.watchers:,} watchers: setData sent to all notified (ms)"),
                         ("p50_ms", "  p50 notification (ms)"), ("p99_ms", "  p99 notification (ms)"),
                         ("set_data_ms", "  the setData itself (ms)")):
            rows.append([label, fmt(w["median"]["ensemble"][m]), fmt(w["median"]["zookeeper"][m]),
                         fmt(w["ratio"][m])])
        rows.append(["  errors (missed notifications included)", fmt(w["errors"]["ensemble"]),
                     fmt(w["errors"]["zookeeper"]), ""])
    if "connect" in s:
        c = s["connect"]
        e, z, q = c["median"]["ensemble"], c["median"]["zookeeper"], c["ratio"]
        rows += [[f"connect: RSS holding {ARGS.idle_sessions:,} idle sessions (MiB)", mib(e["held_rss_bytes"]),
                  mib(z["held_rss_bytes"]), fmt(q["held_rss_bytes"])],
                 ["  RSS before (MiB)", mib(e["idle_rss_bytes"]), mib(z["idle_rss_bytes"]),
                  fmt(q["idle_rss_bytes"])],
                 ["  per session (KiB)", fmt((e["rss_per_session_bytes"] or 0) / 1024),
                  fmt((z["rss_per_session_bytes"] or 0) / 1024), fmt(q["rss_per_session_bytes"])],
                 ["  sessions established per second", fmt(e["sessions_per_s"]), fmt(z["sessions_per_s"]),
                  fmt(q["sessions_per_s"])],
                 ["  errors", fmt(c["errors"]["ensemble"]), fmt(c["errors"]["zookeeper"]), ""]]
    if "memory" in s:
        m = s["memory"]
        e, z, q = m["median"]["ensemble"], m["median"]["zookeeper"], m["ratio"]
        rows += [[f"memory: RSS after populating {ARGS.znodes:,} znodes of 100 B (MiB)", mib(e["rss_bytes"]),
                  mib(z["rss_bytes"]), fmt(q["rss_bytes"])],
                 ["  peak RSS (MiB)", mib(e["peak_rss_bytes"]), mib(z["peak_rss_bytes"]),
                  fmt(q["peak_rss_bytes"])],
                 ["  populate, 16 x 16 (creates/s)", fmt(e["populate_ops_per_s"]), fmt(z["populate_ops_per_s"]),
                  fmt(q["populate_ops_per_s"])]]
    if rows:
        out += ["", table(["", "Ensemble", "ZooKeeper", "ratio"], rows)]
    if "redis" in s:
        r = s["redis"]
        out += ["", "redis GET (redis-benchmark -t get -d 100 -r 10000, persistence off), the reference:"]
        rows = []
        for name, v in r["median"].items():
            frac = r.get("ensemble_read_fraction", {}).get(name.split()[-1])
            rows.append([name, fmt(v["ops_per_s"]), fmt(v["p50_ms"]), fmt(v["p99_ms"]), fmt(frac)])
        out.append(table(["", "ops/s", "p50 ms", "p99 ms", "Ensemble read / redis GET"], rows))
    cpu = result.get("bench_cpu_max")
    if cpu is not None:
        out += ["", f"load generator CPU: at most {cpu:.0%} of one core in any run"]
    return "\n".join(out)


def bench_cpu_max(runs):
    vals = []
    for suite in ("throughput", "sessions"):
        for i in IMPLS:
            for r in runs.get(suite, {}).get(i, []):
                if suite == "throughput":
                    vals += [w["bench_cpu_per_s"] for w in r["workloads"].values()]
                else:
                    vals += [r["connect"]["bench_cpu_per_s"], r["watch"]["bench_cpu_per_s"]]
    vals = [v for v in vals if v is not None]
    return max(vals) if vals else None


# ---------------------------------------------------------------- main


def package_version(name):
    try:
        r = subprocess.run(["dpkg-query", "-W", "-f=${Version}", name], capture_output=True, text=True)
        return r.stdout.strip() or None
    except OSError:
        return None


def main():
    global ARGS, ENSEMBLE, BENCH, WORKDIR
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help="1 round, 3 s runs, 1 s warm-up, 100,000 znodes: a smoke check")
    p.add_argument("--ensemble", default=os.path.join(ROOT, "target", "release", "ensemble"),
                   help="the Ensemble binary (copied at start)")
    p.add_argument("--bench", help="the load generator command (default: `ensemble bench` if it has "
                                   "the watch and connect workloads, else target/release/examples/bench)")
    p.add_argument("--rounds", type=int, help="A B rounds (default 3)")
    p.add_argument("--duration", type=int, help="seconds per measured run (default 10)")
    p.add_argument("--warmup", type=int, help="seconds of unmeasured load before each run (default 3)")
    p.add_argument("--keys", type=int, default=10_000, help="keys of read, write, mixed and multi")
    p.add_argument("--delete-keys", type=int, help="znodes the delete run removes (default 200,000)")
    p.add_argument("--watchers", type=int, default=10_000, help="sessions of the watch run")
    p.add_argument("--watch-rounds", type=int, default=3, help="setData rounds per watch run")
    p.add_argument("--idle-sessions", type=int, default=10_000, help="sessions of the connect run")
    p.add_argument("--hold", type=int, help="seconds the idle sessions are held (default 10)")
    p.add_argument("--znodes", type=int, help="znodes of the memory suite (default 1,000,000)")
    p.add_argument("--suites", default=",".join(SUITES), help="comma list of " + ", ".join(SUITES))
    p.add_argument("--out", help="JSON results (default bench/results/standalone-<date>.json)")
    p.add_argument("--svg", help="the chart (default: the --out path with .svg)")
    ARGS = p.parse_args()
    q = ARGS.quick
    for name, full, quick in (("rounds", 3, 1), ("duration", 10, 3), ("warmup", 3, 1),
                              ("delete_keys", 200_000, 20_000), ("hold", 10, 3),
                              ("znodes", 1_000_000, 100_000)):
        if getattr(ARGS, name) is None:
            setattr(ARGS, name, quick if q else full)
    suites = [x.strip() for x in ARGS.suites.split(",") if x.strip()]
    for suite in suites:
        if suite not in SUITES:
            sys.exit(f"unknown suite {suite!r}: choose from {', '.join(SUITES)}")
    if not os.path.exists(ARGS.ensemble):
        sys.exit(f"no binary at {ARGS.ensemble}: cargo build --release -p ensemble")
    if not os.path.exists(ZK_SERVER_SH):
        sys.exit("Apache ZooKeeper is missing: apt-get install zookeeper")
    if "redis" in suites and not (shutil.which("redis-server") and shutil.which("redis-benchmark")):
        log("redis is missing (apt-get install -y redis-server redis-tools): no redis reference")
        suites.remove("redis")
    limit = raise_fd_limit()
    if limit < max(ARGS.watchers, ARGS.idle_sessions) + 1000:
        sys.exit(f"the limit of open files is {limit}: too few for {max(ARGS.watchers, ARGS.idle_sessions)} "
                 "sessions (raise the hard limit, ulimit -Hn)")
    stamp = time.strftime("%Y-%m-%d-%H%M%S")
    out_path = ARGS.out or os.path.join(ROOT, "bench", "results", f"standalone-{stamp}.json")
    svg_path = ARGS.svg or os.path.splitext(out_path)[0] + ".svg"
    for path in (out_path, svg_path):
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)

    WORKDIR = tempfile.mkdtemp(prefix="cmpstandalone-")
    atexit.register(shutil.rmtree, WORKDIR, True)
    atexit.register(cleanup)  # runs first: the servers go before their directories
    ENSEMBLE = os.path.join(WORKDIR, "ensemble")
    shutil.copy2(ARGS.ensemble, ENSEMBLE)
    BENCH = bench_cmd()
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda *_: sys.exit(130))

    commit = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    result = {"started": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "args": recorded.options(ARGS), "suites": suites,
              "commit": commit, "binary_mtime": time.ctime(os.path.getmtime(ARGS.ensemble)),
              "bench": recorded.portable(BENCH), "zookeeper_version": package_version("zookeeper") or "3.8",
              "redis_version": package_version("redis-server"),
              "machine": f"{os.cpu_count()} CPUs, {platform.machine()}", "open_files_limit": limit,
              "loadavg_start": os.getloadavg()}
    runs = {suite: ([] if suite == "redis" else {i: [] for i in IMPLS}) for suite in suites}
    started = time.time()
    try:
        for rnd in range(ARGS.rounds):
            log(f"round {rnd + 1} of {ARGS.rounds}")
            for suite in suites:
                if suite == "redis":
                    runs["redis"].append(redis_suite())
                    continue
                for impl in IMPLS:
                    fn = {"throughput": throughput_suite, "sessions": sessions_suite, "memory": memory_suite}[suite]
                    runs[suite][impl].append(fn(impl))
        result["summary"] = summarise(runs)
        result["bench_cpu_max"] = bench_cpu_max(runs)
        result["plot"] = plot_input(result)
    finally:
        result["runs"] = runs
        result["wall_s"] = time.time() - started
        result["loadavg_end"] = os.getloadavg()
        with open(out_path, "w") as f:
            json.dump(result, f, indent=1)
        log(f"results written to {os.path.relpath(out_path)}")
    print(report(result))
    if result["plot"]["workloads"]:
        r = subprocess.run(BENCH + ["plot", "--input", out_path, "--output", svg_path],
                           capture_output=True, text=True)
        if r.returncode == 0:
            print(f"\nchart: {os.path.relpath(svg_path)}")
        else:
            log(f"no chart: {r.stderr.strip()}")
    print(f"took {result['wall_s'] / 60:.1f} min")


if __name__ == "__main__":
    main()
