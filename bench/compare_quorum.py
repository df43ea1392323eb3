#!/usr/bin/env python3
"""Ensemble beside Apache ZooKeeper 3.8, both as a 3-member quorum on 127.0.0.1.

    python3 bench/compare_quorum.py            # the full comparison (about 13 minutes on 2 CPUs)
    python3 bench/compare_quorum.py --quick    # a short look: 1 round, short runs, 50,000 znodes

Both ensembles get the same zoo.cfg: tickTime=2000, initLimit=10, syncLimit=5,
forceSync=yes (ZooKeeper's defaults), maxSessionTimeout=40000 (ZooKeeper's
default for that tick), maxClientCnxns=0, admin.enableServer=false,
4lw.commands.whitelist=*, each member on fresh data directories and free
loopback ports (the quorum harness of the cluster tests writes them).
Ensemble runs as `ensemble server zoo.cfg` (a copy of the binary taken at
start, so a rebuild during the run changes nothing); ZooKeeper runs as
`/usr/share/zookeeper/bin/zkServer.sh start-foreground zoo.cfg` with default
JVM settings, as bench/compare_durability.py does.

Phases (ratio = Ensemble / ZooKeeper; above 1 is better for ops/s, below 1
is better for times, latencies and memory):

1. Throughput and latency. `ensemble bench --hosts <all three client ports>`
   (each session picks a member at random), `--keys` znodes of 100 bytes
   created first by the bench's own setup; then write (setData, fsync on) and
   read (getData) at 64 sessions x 16 in flight and at 1 session x 1 in
   flight, each after an unmeasured warm-up. Rounds alternate Ensemble,
   ZooKeeper, Ensemble, ZooKeeper, each on a freshly started ensemble; the
   table gives medians of ops/s, p50 and p99.
2. Failover. A light write load (a kazoo client through all members, about
   100 setData/s) runs; a probe client connected to one follower only writes
   in a tight loop (a hand-written client, 0.5 s timeout per request,
   reconnecting at once with its session). The leader is SIGKILLed; the
   figure is the time from the kill to the first write acknowledged through
   that follower that was sent after the kill. Also the time until a survivor
   says `Mode: leader` in `srvr`. The killed member restarts and the ensemble
   settles (one leader, equal zxids) between repetitions.
3. Rejoin. `--znodes` znodes of 100 bytes are created through all members
   (populate workload, 16 sessions x 16 in flight); once every member has
   the same zxid, a follower is SIGKILLed, its data directory wiped (myid
   kept) and it is started again; the figure is the time from its start
   to `srvr` showing `Mode: follower` and the leader's `Zxid`.

Peak RSS (VmHWM) of every member is read at the end of each phase. Results go
to --out as JSON (default bench/results/quorum-<date>.json). Every process
this script starts is killed when it ends, also on Ctrl-C.
"""

import argparse
import atexit
import json
import os
import platform
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
THROUGHPUT = [("write", 64, 16), ("read", 64, 16), ("write", 1, 1), ("read", 1, 1)]
LIVE_PROCS = []  # helper processes (load writers) to kill at exit
ARGS = None
ENSEMBLE = None  # the copied binary


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def ratio(a, b):
    return (a / b) if a is not None and b else None


def vm_hwm(pid):
    """Peak resident set size of a process in bytes (VmHWM), or None."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


# ---------------------------------------------------------------- the ensembles


def load_clusterlib():
    sys.path.insert(0, os.path.join(ROOT, "tests", "cluster"))
    import clusterlib  # noqa: E402  (read-only use of the quorum test harness)

    return clusterlib


CL = None


def make_cluster(impl):
    """A 3-member cluster of `impl`, configured as the module docstring says,
    started, with a leader."""

    class BenchCluster(CL.Cluster):
        def _command(self, m):
            if self.impl == "ensemble":
                return [ENSEMBLE, "server", m.cfg], dict(os.environ)
            # Default JVM settings: Debian's start script, as an operator runs it.
            return [ZK_SERVER_SH, "start-foreground", m.cfg], dict(os.environ, ZOO_LOG_DIR=m.dir)

    c = BenchCluster(
        impl,
        n=3,
        tick_time=2000,
        init_limit=10,
        sync_limit=5,
        max_session_timeout=40000,
        extra_cfg="forceSync=yes\nmaxClientCnxns=0\n",
        base_dir=WORKDIR,
    )
    try:
        c.start_all(timeout=180)
        c.leader(timeout=180)
    except BaseException:
        fail_report(c)
        c.cleanup()
        raise
    return c


def fail_report(c):
    try:
        log("member logs:\n" + c.log_tails(30))
    except Exception:
        pass


def srvr_fields(c, i):
    text = c.srvr(i) if c.alive(i) else None
    out = {}
    for line in (text or "").splitlines():
        if ":" in line:
            k, v = line.split(":", 1)
            out[k.strip()] = v.strip()
    return out


def zxid_of(fields):
    z = fields.get("Zxid")
    try:
        return int(z, 16) if z else None
    except ValueError:
        return None


def wait_settled(c, timeout=180.0):
    """One leader, every running member a follower of it, and all running
    members at the same zxid (no writes are going on). Returns the leader."""
    deadline = time.monotonic() + timeout
    while True:
        lead = c.leader(timeout=max(1.0, deadline - time.monotonic()))
        zx = {i: zxid_of(srvr_fields(c, i)) for i in c.live_ids()}
        if None not in zx.values() and len(set(zx.values())) == 1:
            return lead
        if time.monotonic() > deadline:
            raise TimeoutError(f"members did not reach the same zxid in {timeout}s: "
                               + ", ".join(f"{i}: {hex(z) if z else z}" for i, z in zx.items()))
        time.sleep(0.1)


def member_rss(c):
    """{member: VmHWM bytes} for every running member."""
    return {str(i): vm_hwm(c.members[i].proc.pid) for i in c.live_ids()}


def connections(c):
    """Client connections per member, `srvr`'s own connection included: with
    1 session the member that shows 2 holds it (leader or follower matters
    for write latency)."""
    return {str(i): srvr_fields(c, i).get("Connections") for i in c.live_ids()}


# ---------------------------------------------------------------- the load generator


def bench(c, *opts, timeout=1800, during=None, during_after=None):
    """Runs `ensemble bench --hosts <all members> --json --quiet <opts>`;
    `during(c)` is called `during_after` seconds into the run."""
    cmd = [ENSEMBLE, "bench", "--hosts", c.connect_string(), "--json", "--quiet"] + [str(o) for o in opts]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    LIVE_PROCS.append(p)
    sample = None
    try:
        if during is not None:
            t0 = time.monotonic()
            while time.monotonic() - t0 < during_after and p.poll() is None:
                time.sleep(0.05)
            if p.poll() is None:
                sample = during(c)
        out, err = p.communicate(timeout=timeout)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        LIVE_PROCS.remove(p)
    if p.returncode != 0:
        raise RuntimeError(f"bench failed ({' '.join(cmd[1:])}): {err.strip()[-500:]}")
    r = json.loads(out)
    if sample is not None:
        r["sampled"] = sample
    return r


# ---------------------------------------------------------------- phase 1


def throughput_phase():
    runs = {f"{w} {s}x{k}": {i: [] for i in IMPLS} for w, s, k in THROUGHPUT}
    rss = {i: [] for i in IMPLS}
    for rnd in range(ARGS.rounds):
        for impl in IMPLS:
            c = make_cluster(impl)
            try:
                t = time.monotonic()
                bench(c, "--workload", "read", "--keys", ARGS.keys, "--value-size", 100,
                      "--ops", 1, "--sessions", 16)
                log(f"throughput round {rnd + 1} {impl}: {ARGS.keys} keys created in "
                    f"{time.monotonic() - t:.1f} s")
                for w, s, k in THROUGHPUT:
                    key = f"{w} {s}x{k}"
                    common = ["--workload", w, "--sessions", s, "--inflight", k, "--keys", ARGS.keys,
                              "--value-size", 100]
                    if ARGS.warmup > 0:
                        bench(c, *common, "--duration", ARGS.warmup)
                    r = bench(c, *common, "--duration", ARGS.duration,
                              during=connections, during_after=ARGS.duration / 2)
                    row = {"ops_per_s": r["ops_per_s"], "p50_ms": r["latency_ms"]["p50"],
                           "p99_ms": r["latency_ms"]["p99"], "p999_ms": r["latency_ms"]["p999"],
                           "errors": r["error_count"], "error_codes": r["errors"],
                           "bench_cpu_per_s": r["bench_cpu_s"]["per_wall_s"],
                           "connections_per_member": r.get("sampled"),
                           "leader": c.leader(timeout=30)}
                    runs[key][impl].append(row)
                    log(f"  {key:<14} {impl:<9} {row['ops_per_s']:>9,.0f} ops/s  p50 "
                        f"{row['p50_ms']:.2f} ms  p99 {row['p99_ms']:.2f} ms  errors {row['errors']}  "
                        f"connections {row['connections_per_member']}, leader {row['leader']}")
                rss[impl].append(member_rss(c))
            except BaseException:
                fail_report(c)
                raise
            finally:
                c.cleanup()
    out = {}
    for key, by in runs.items():
        med = {i: {m: median([r[m] for r in by[i]]) for m in ("ops_per_s", "p50_ms", "p99_ms")}
               for i in IMPLS}
        out[key] = {"runs": by, "median": med,
                    "ratio": {m: ratio(med["ensemble"][m], med["zookeeper"][m])
                              for m in ("ops_per_s", "p50_ms", "p99_ms")}}
    return {"workloads": out, "peak_rss_bytes": rss}


# ---------------------------------------------------------------- phase 2


class Probe(threading.Thread):
    """A hand-written ZooKeeper client on one member only: setData on `path`
    in a tight loop, every request with a short timeout; on any failure the
    connection is dropped and made again at once, with the same session
    (a new one if the server says it expired). After `mark()`, the first
    acknowledgement of a request sent after the mark is recorded."""

    def __init__(self, port, path, op_timeout=0.5, session_timeout_ms=30000):
        super().__init__(daemon=True)
        self.port = port
        self.path = path.encode()
        self.op_timeout = op_timeout
        self.session_timeout_ms = session_timeout_ms
        self.session = 0
        self.passwd = b"\0" * 16
        self.last_zxid = 0
        self.sock = None
        self.xid = 0
        self.ok = 0
        self.failures = 0
        self.reconnects = 0
        self.new_sessions = 0
        self.mark_t = None
        self.first_ok_after_mark = None
        self.failures_after_mark = 0
        self.last_error = None
        self._halt = threading.Event()

    # framing
    def _recv_exact(self, n, deadline):
        buf = b""
        while len(buf) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no answer in time")
            self.sock.settimeout(left)
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("closed by the server")
            buf += chunk
        return buf

    def _frame(self, deadline):
        (n,) = struct.unpack(">i", self._recv_exact(4, deadline))
        if n < 0 or n > 1 << 20:
            raise ConnectionError(f"bad frame length {n}")
        return self._recv_exact(n, deadline)

    def _send(self, body):
        self.sock.sendall(struct.pack(">i", len(body)) + body)

    def _close(self):
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
            self.sock = None

    def _connect(self):
        deadline = time.monotonic() + self.op_timeout
        self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=self.op_timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # ConnectRequest: protocolVersion, lastZxidSeen, timeOut, sessionId, passwd, readOnly
        body = struct.pack(">iqiq", 0, self.last_zxid, self.session_timeout_ms, self.session)
        body += struct.pack(">i", len(self.passwd)) + self.passwd + b"\0"
        self._send(body)
        reply = self._frame(deadline)
        _, timeout, session, plen = struct.unpack(">iiqi", reply[:20])
        if session == 0 or timeout <= 0:
            # The session expired (or the server refused it): start a new one.
            self.session, self.passwd, self.last_zxid = 0, b"\0" * 16, 0
            self.new_sessions += 1
            raise ConnectionError("session expired or refused")
        if session != self.session:
            self.new_sessions += 1
        self.session, self.passwd = session, reply[20:20 + plen]
        self.xid = 0

    def _set_data(self):
        self.xid += 1
        body = struct.pack(">ii", self.xid, 5)  # setData
        body += struct.pack(">i", len(self.path)) + self.path
        data = b"p" * 100
        body += struct.pack(">i", len(data)) + data + struct.pack(">i", -1)
        sent = time.monotonic()
        self._send(body)
        deadline = sent + self.op_timeout
        while True:
            reply = self._frame(deadline)
            xid, zxid, err = struct.unpack(">iqi", reply[:16])
            if xid in (-1, -2):  # a notification or a ping reply
                continue
            if xid != self.xid:
                raise ConnectionError(f"reply to xid {xid}, expected {self.xid}")
            if zxid > 0:
                self.last_zxid = max(self.last_zxid, zxid)
            if err != 0:
                raise ConnectionError(f"setData error {err}")
            return sent, time.monotonic()

    def run(self):
        while not self._halt.is_set():
            try:
                if self.sock is None:
                    self.reconnects += 1
                    self._connect()
                sent, acked = self._set_data()
                self.ok += 1
                if self.mark_t is not None and self.first_ok_after_mark is None and sent >= self.mark_t:
                    self.first_ok_after_mark = acked
            except (OSError, ConnectionError, TimeoutError, struct.error) as e:
                self.failures += 1
                if self.mark_t is not None:
                    self.failures_after_mark += 1
                self.last_error = f"{type(e).__name__}: {e}"
                self._close()
                self._halt.wait(0.005)
        self._close()

    def mark(self, t):
        self.mark_t = t

    def stop(self):
        self._halt.set()
        self.join(timeout=5)


LOAD_WRITER = r"""
import json, signal, sys, time
from kazoo.client import KazooClient
hosts, path, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
stop = []
signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
c = KazooClient(hosts=hosts, timeout=10.0, randomize_hosts=True,
                connection_retry={"max_tries": -1, "delay": 0.05, "backoff": 1.5, "max_delay": 1.0})
c.start(timeout=60)
ok = errors = 0
last_ok = time.monotonic()
max_gap = 0.0
end = time.monotonic() + seconds
while not stop and time.monotonic() < end:
    try:
        c.set_async(path, b"w" * 100).get(timeout=2.0)
        now = time.monotonic()
        max_gap = max(max_gap, now - last_ok)
        last_ok = now
        ok += 1
        time.sleep(0.01)
    except Exception:
        errors += 1
        time.sleep(0.05)
try:
    c.stop(); c.close()
except Exception:
    pass
print(json.dumps({"ok": ok, "errors": errors, "max_gap_s": max_gap}))
"""


def start_load_writer(c, path, seconds):
    p = subprocess.Popen([sys.executable, "-c", LOAD_WRITER, c.connect_string(), path, str(seconds)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    LIVE_PROCS.append(p)
    return p


def stop_load_writer(p):
    try:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
        out, err = p.communicate(timeout=30)
        return json.loads(out) if p.returncode == 0 and out.strip() else {"error": err.strip()[-300:]}
    except (subprocess.TimeoutExpired, ValueError) as e:
        return {"error": str(e)}
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        LIVE_PROCS.remove(p)


def failover_run(c, rep):
    lead = wait_settled(c)
    follower = min(i for i in c.ids if i != lead)
    load = start_load_writer(c, "/failover/load", ARGS.failover_timeout + 120)
    probe = Probe(c.client_port(follower), "/failover/probe")
    probe.start()
    try:
        deadline = time.monotonic() + 60
        while probe.ok < 50:
            if time.monotonic() > deadline:
                raise TimeoutError(f"probe on member {follower}: {probe.ok} writes in 60 s "
                                   f"({probe.last_error})")
            time.sleep(0.05)
        time.sleep(ARGS.pre_kill)  # the light load runs a while
        survivors = [i for i in c.ids if i != lead]
        t_kill = time.monotonic()
        probe.mark(t_kill)
        c.kill(lead)
        new_leader_t = None
        deadline = t_kill + ARGS.failover_timeout
        while probe.first_ok_after_mark is None or new_leader_t is None:
            if time.monotonic() > deadline:
                break
            if new_leader_t is None:
                modes = {i: c.mode(i) for i in survivors}
                if "leader" in modes.values():
                    new_leader_t = time.monotonic()
            time.sleep(0.02)
        first = probe.first_ok_after_mark
        row = {"killed_leader": lead, "probe_member": follower,
               "write_s": (first - t_kill) if first else None,
               "new_leader_seen_s": (new_leader_t - t_kill) if new_leader_t else None,
               "probe_failures_after_kill": probe.failures_after_mark,
               "probe_reconnects": probe.reconnects, "probe_new_sessions": probe.new_sessions,
               "probe_last_error": probe.last_error,
               "new_leader": next((i for i in survivors if c.mode(i) == "leader"), None)}
    finally:
        probe.stop()
        row_load = stop_load_writer(load)
    row["load_writer"] = row_load
    if row["write_s"] is None:
        log(f"failover {c.impl} rep {rep + 1}: NO write through member {follower} within "
            f"{ARGS.failover_timeout} s of the kill ({probe.last_error})")
    else:
        log(f"failover {c.impl} rep {rep + 1}: leader {lead} killed; first write through member "
            f"{follower} after {row['write_s']:.2f} s, srvr leader after "
            f"{row['new_leader_seen_s'] if row['new_leader_seen_s'] is None else round(row['new_leader_seen_s'], 2)} s "
            f"(load writer: {row_load})")
    # The killed member comes back and the ensemble settles.
    c.start(lead)
    c.wait_serving(timeout=180)
    wait_settled(c)
    return row


def failover_phase():
    out = {}
    for impl in IMPLS:
        c = make_cluster(impl)
        try:
            kc = c.client()
            kc.ensure_path("/failover/probe")
            kc.ensure_path("/failover/load")
            kc.stop()
            kc.close()
            samples = [failover_run(c, rep) for rep in range(ARGS.failover_reps)]
            out[impl] = {"runs": samples,
                         "median_write_s": median([r["write_s"] for r in samples]),
                         "median_new_leader_seen_s": median([r["new_leader_seen_s"] for r in samples]),
                         "peak_rss_bytes": member_rss(c)}
        except BaseException:
            fail_report(c)
            raise
        finally:
            c.cleanup()
    out["ratio_write_s"] = ratio(out["ensemble"]["median_write_s"], out["zookeeper"]["median_write_s"])
    out["ratio_new_leader_seen_s"] = ratio(out["ensemble"]["median_new_leader_seen_s"],
                                           out["zookeeper"]["median_new_leader_seen_s"])
    return out


# ---------------------------------------------------------------- phase 3


def rejoin_run(impl):
    c = make_cluster(impl)
    try:
        t = time.monotonic()
        pop = bench(c, "--workload", "populate", "--ops", ARGS.znodes, "--sessions", 16,
                    "--inflight", 16, "--value-size", 100, "--prefix", "/big", timeout=3600)
        pop_s = time.monotonic() - t
        log(f"rejoin {impl}: {pop['ops']:,} znodes at {pop['ops_per_s']:,.0f}/s "
            f"({pop['error_count']} errors)")
        lead = wait_settled(c, timeout=600)
        f = min(i for i in c.ids if i != lead)
        leader_fields = srvr_fields(c, lead)
        rss_before = member_rss(c)
        c.kill(f)
        c.wipe(f)
        t0 = time.monotonic()
        c.start(f)
        serving_t = synced_t = None
        deadline = t0 + ARGS.rejoin_timeout
        while time.monotonic() < deadline:
            if not c.alive(f):
                raise RuntimeError(f"member {f} exited while rejoining")
            mine = srvr_fields(c, f)
            mode = mine.get("Mode")
            if mode and serving_t is None:
                serving_t = time.monotonic()
            if mode == "follower":
                lz = zxid_of(srvr_fields(c, lead))
                if lz is not None and zxid_of(mine) == lz:
                    synced_t = time.monotonic()
                    break
            time.sleep(0.05)
        mine = srvr_fields(c, f)
        row = {"znodes": ARGS.znodes, "populate_ops_per_s": pop["ops_per_s"],
               "populate_errors": pop["error_count"], "populate_wall_s": pop_s,
               "leader": lead, "rejoined_member": f,
               "leader_zxid": srvr_fields(c, lead).get("Zxid"),
               "leader_node_count": leader_fields.get("Node count"),
               "rejoined_zxid": mine.get("Zxid"), "rejoined_node_count": mine.get("Node count"),
               "serving_s": (serving_t - t0) if serving_t else None,
               "rejoin_s": (synced_t - t0) if synced_t else None,
               "rejoined_peak_rss_bytes": vm_hwm(c.members[f].proc.pid),
               "peak_rss_bytes_before_kill": rss_before, "peak_rss_bytes": member_rss(c)}
        if synced_t is None:
            log(f"rejoin {impl}: member {f} did NOT catch up within {ARGS.rejoin_timeout} s")
        else:
            log(f"rejoin {impl}: member {f} serving after {row['serving_s']:.2f} s, at the leader's "
                f"zxid {row['leader_zxid']} after {row['rejoin_s']:.2f} s, "
                f"{row['rejoined_node_count']} nodes, VmHWM "
                f"{(row['rejoined_peak_rss_bytes'] or 0) / 2**20:.0f} MiB")
        return row
    except BaseException:
        fail_report(c)
        raise
    finally:
        c.cleanup()


def rejoin_phase():
    out = {impl: rejoin_run(impl) for impl in IMPLS}
    for m in ("rejoin_s", "serving_s", "rejoined_peak_rss_bytes", "populate_ops_per_s"):
        out[f"ratio_{m}"] = ratio(out["ensemble"][m], out["zookeeper"][m])
    return out


# ---------------------------------------------------------------- report


def fmt(v, unit=""):
    if v is None:
        return "n/a"
    if unit == "MiB":
        return f"{v / 2**20:,.0f}"
    if isinstance(v, float):
        if abs(v) < 10:
            return f"{v:.2f}"
        return f"{v:,.1f}" if abs(v) < 100 else f"{v:,.0f}"
    return f"{v:,}"


def table(header, rows):
    widths = [max(len(str(r[k])) for r in [header] + rows) for k in range(len(header))]
    lines = []
    for n, r in enumerate([header] + rows):
        cells = [str(x).ljust(w) if k == 0 else str(x).rjust(w) for k, (x, w) in enumerate(zip(r, widths))]
        lines.append("  ".join(cells))
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def rss_summary(per_member_list):
    """max VmHWM over members (and over rounds), in bytes."""
    vals = []
    for d in per_member_list:
        vals += [v for v in d.values() if v]
    return max(vals) if vals else None


def report(result):
    out = []
    out.append(f"3-member Ensemble vs 3-member Apache ZooKeeper {result['zookeeper_version']}, "
               f"tickTime=2000 initLimit=10 syncLimit=5 forceSync=yes, {result['machine']}")
    out.append("ratio = Ensemble / ZooKeeper (ops/s: above 1 is better; times, latencies, memory: below 1)")
    if "throughput" in result:
        tp = result["throughput"]
        out.append("")
        out.append(f"1. throughput, --hosts all 3 members, 100 B values, {ARGS.keys:,} keys, "
                   f"medians of {ARGS.rounds} round(s) of {ARGS.duration} s (after {ARGS.warmup} s warm-up)")
        rows = []
        for key, w in tp["workloads"].items():
            e, z, q = w["median"]["ensemble"], w["median"]["zookeeper"], w["ratio"]
            rows.append([key, fmt(e["ops_per_s"]), fmt(z["ops_per_s"]), fmt(q["ops_per_s"]),
                         fmt(e["p50_ms"]), fmt(z["p50_ms"]), fmt(q["p50_ms"]),
                         fmt(e["p99_ms"]), fmt(z["p99_ms"]), fmt(q["p99_ms"])])
        out.append(table(["workload", "E ops/s", "ZK ops/s", "ratio", "E p50 ms", "ZK p50 ms", "ratio",
                          "E p99 ms", "ZK p99 ms", "ratio"], rows))
        e_rss, z_rss = rss_summary(tp["peak_rss_bytes"]["ensemble"]), rss_summary(tp["peak_rss_bytes"]["zookeeper"])
        out.append(f"peak RSS of the largest member at the end of the phase: Ensemble {fmt(e_rss, 'MiB')} MiB, "
                   f"ZooKeeper {fmt(z_rss, 'MiB')} MiB, ratio {fmt(ratio(e_rss, z_rss))}")
    if "failover" in result:
        fo = result["failover"]
        e, z = fo["ensemble"], fo["zookeeper"]
        out.append("")
        out.append(f"2. failover: SIGKILL of the leader under a light write load, {ARGS.failover_reps} repetitions")
        rows = [["first write through a follower (s), median", fmt(e["median_write_s"]),
                 fmt(z["median_write_s"]), fmt(fo["ratio_write_s"])],
                ["  samples", " ".join(fmt(r["write_s"]) for r in e["runs"]),
                 " ".join(fmt(r["write_s"]) for r in z["runs"]), ""],
                ["a survivor says Mode: leader (s), median", fmt(e["median_new_leader_seen_s"]),
                 fmt(z["median_new_leader_seen_s"]), fmt(fo["ratio_new_leader_seen_s"])],
                ["  samples", " ".join(fmt(r["new_leader_seen_s"]) for r in e["runs"]),
                 " ".join(fmt(r["new_leader_seen_s"]) for r in z["runs"]), ""],
                ["longest gap of the light load writer (s), max", fmt(max_gap(e)), fmt(max_gap(z)), ""],
                ["peak RSS, largest member (MiB)", fmt(rss_summary([e["peak_rss_bytes"]]), "MiB"),
                 fmt(rss_summary([z["peak_rss_bytes"]]), "MiB"),
                 fmt(ratio(rss_summary([e["peak_rss_bytes"]]), rss_summary([z["peak_rss_bytes"]])))]]
        out.append(table(["", "Ensemble", "ZooKeeper", "ratio"], rows))
        out.append("   (both notice a closed leader connection at once and elect; a silent leader is given "
                   "up after 1-2 s by Ensemble at tickTime=2000, after syncLimit ticks = 10 s by ZooKeeper)")
    if "rejoin" in result:
        rj = result["rejoin"]
        e, z = rj["ensemble"], rj["zookeeper"]
        out.append("")
        out.append(f"3. rejoin: {ARGS.znodes:,} znodes of 100 B, a follower SIGKILLed, its data wiped, restarted")
        rows = [["start to Mode: follower at the leader's zxid (s)", fmt(e["rejoin_s"]), fmt(z["rejoin_s"]),
                 fmt(rj["ratio_rejoin_s"])],
                ["start to serving (any mode) (s)", fmt(e["serving_s"]), fmt(z["serving_s"]),
                 fmt(rj["ratio_serving_s"])],
                ["peak RSS of the rejoined member (MiB)", fmt(e["rejoined_peak_rss_bytes"], "MiB"),
                 fmt(z["rejoined_peak_rss_bytes"], "MiB"), fmt(rj["ratio_rejoined_peak_rss_bytes"])],
                ["peak RSS, largest member (MiB)", fmt(rss_summary([e["peak_rss_bytes"]]), "MiB"),
                 fmt(rss_summary([z["peak_rss_bytes"]]), "MiB"),
                 fmt(ratio(rss_summary([e["peak_rss_bytes"]]), rss_summary([z["peak_rss_bytes"]])))],
                ["populate (creates/s, 16 x 16, all members)", fmt(e["populate_ops_per_s"]),
                 fmt(z["populate_ops_per_s"]), fmt(rj["ratio_populate_ops_per_s"])],
                ["node count, leader / rejoined", f"{e['leader_node_count']} / {e['rejoined_node_count']}",
                 f"{z['leader_node_count']} / {z['rejoined_node_count']}", ""]]
        out.append(table(["", "Ensemble", "ZooKeeper", "ratio"], rows))
    return "\n".join(out)


def max_gap(side):
    gaps = [r["load_writer"].get("max_gap_s") for r in side["runs"] if isinstance(r.get("load_writer"), dict)]
    gaps = [g for g in gaps if g is not None]
    return max(gaps) if gaps else None


# ---------------------------------------------------------------- main


def zookeeper_version():
    try:
        r = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "zookeeper"], capture_output=True, text=True)
        return r.stdout.strip() or "3.8"
    except OSError:
        return "3.8"


def kill_helpers():
    for p in list(LIVE_PROCS):
        if p.poll() is None:
            p.kill()
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass


WORKDIR = None


def main():
    global ARGS, ENSEMBLE, CL, WORKDIR
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help="1 round, 3 s runs, 1 s warm-up, 1 failover repetition, 50,000 znodes")
    p.add_argument("--ensemble", default=os.path.join(ROOT, "target", "release", "ensemble"),
                   help="the Ensemble binary (copied at start)")
    p.add_argument("--rounds", type=int, help="A B rounds of the throughput runs (default 3)")
    p.add_argument("--duration", type=int, help="seconds per measured run (default 10)")
    p.add_argument("--warmup", type=int, help="seconds of unmeasured load before each run (default 3)")
    p.add_argument("--keys", type=int, default=10_000, help="keys for read and write")
    p.add_argument("--failover-reps", type=int, help="leader kills per server (default 3)")
    p.add_argument("--failover-timeout", type=float, default=120.0,
                   help="seconds to wait for a write after a leader kill")
    p.add_argument("--pre-kill", type=float, default=2.0, help="seconds of load before the kill")
    p.add_argument("--znodes", type=int, help="znodes for the rejoin (default 1,000,000)")
    p.add_argument("--rejoin-timeout", type=float, default=900.0)
    p.add_argument("--phases", default="throughput,failover,rejoin",
                   help="comma list of throughput, failover, rejoin")
    p.add_argument("--out", help="JSON results (default bench/results/quorum-<date>.json)")
    ARGS = p.parse_args()
    q = ARGS.quick
    for name, full, quick in (("rounds", 3, 1), ("duration", 10, 3), ("warmup", 3, 1),
                              ("failover_reps", 3, 1), ("znodes", 1_000_000, 50_000)):
        if getattr(ARGS, name) is None:
            setattr(ARGS, name, quick if q else full)
    phases = [x.strip() for x in ARGS.phases.split(",") if x.strip()]
    for ph in phases:
        if ph not in ("throughput", "failover", "rejoin"):
            sys.exit(f"unknown phase {ph!r}")
    if not os.path.exists(ARGS.ensemble):
        sys.exit(f"no binary at {ARGS.ensemble}: cargo build --release")
    if not os.path.exists(ZK_SERVER_SH):
        sys.exit("Apache ZooKeeper is missing: apt-get install zookeeper")
    out_path = ARGS.out or os.path.join(ROOT, "bench", "results",
                                        f"quorum-{time.strftime('%Y-%m-%d-%H%M%S')}.json")
    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)

    CL = load_clusterlib()
    WORKDIR = tempfile.mkdtemp(prefix="cmpquorum-")
    atexit.register(shutil.rmtree, WORKDIR, True)
    atexit.register(kill_helpers)  # runs before clusterlib's own hook
    ENSEMBLE = os.path.join(WORKDIR, "ensemble")
    shutil.copy2(ARGS.ensemble, ENSEMBLE)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda *_: sys.exit(130))

    busy = subprocess.run(["pgrep", "-f", "pytest"], capture_output=True, text=True).stdout.split()
    if busy:
        log(f"WARNING: {len(busy)} pytest processes are running; the figures will be distorted")
    commit = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    result = {"started": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "args": recorded.options(ARGS),
              "commit": commit, "binary_mtime": time.ctime(os.path.getmtime(ARGS.ensemble)),
              "zookeeper_version": zookeeper_version(),
              "machine": f"{os.cpu_count()} CPUs, {platform.machine()}",
              "loadavg_start": os.getloadavg(), "pytest_running_at_start": len(busy)}
    started = time.time()
    try:
        if "throughput" in phases:
            result["throughput"] = throughput_phase()
        if "failover" in phases:
            result["failover"] = failover_phase()
        if "rejoin" in phases:
            result["rejoin"] = rejoin_phase()
    finally:
        result["wall_s"] = time.time() - started
        result["loadavg_end"] = os.getloadavg()
        with open(out_path, "w") as f:
            json.dump(result, f, indent=1)
        log(f"results written to {os.path.relpath(out_path)}")
    print(report(result))
    print(f"\ntook {result['wall_s'] / 60:.1f} min")


if __name__ == "__main__":
    main()
