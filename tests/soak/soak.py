#!/usr/bin/env python3
"""Soak: a long mixed load on a 3-member Ensemble with a fault every minute
or two, watching whether the members' memory and file descriptors stay
flat and how latency behaves.

    python3 tests/soak/soak.py --minutes 60 DIR

Load, all the time:
- `ensemble bench --workload mixed` (90% getData, 10% setData, 100 B values,
  1000 keys) in windows of `--window` seconds, each window new sessions
  spread over every member; each window gives ops/s, p50/p99/p99.9 and errors;
- churn: kazoo clients that create an ephemeral sequential znode, watch it,
  delete it, and close and reopen their session every 30 s, so sessions,
  ephemerals and watches come and go.

Faults (tests/chaos/nemesis.py): kill (SIGKILL, then start again), pause
(SIGSTOP/SIGCONT), partition and restart (SIGTERM), one every
`--quiet` seconds, held `--hold` seconds. Members in `--spare` (default:
member 1) are paused and partitioned but never killed or restarted, so one
process lives through the whole run for the memory and fd comparison.

Every 10 s, for each member: RSS and open file descriptors of its process;
from a serving member: znodes, watches, ephemerals and connections (mntr).

The report (printed and written to DIR/report.md) gives the load per window,
and per member the median RSS and fds (less its client connections) of the
second `--compare` minutes of each process (the first are warm-up) and of
the last ones, for every process that lived through both (a member that was
killed or restarted is a new process: its samples start again), and the
final counts after the churn stopped. Exit code 1 when memory or fds grew past the bound
(RSS: +25% and +32 MiB; fds: +16), when the znodes or ephemerals left over
are not the ones the load keeps, or a window had no successful operation
while no fault was held; 2 when the harness failed.
"""

import argparse
import json
import logging
import os
import random
import statistics
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "cluster"))
sys.path.insert(0, os.path.join(HERE, "..", "chaos"))

from clusterlib import Cluster, ensemble_bin, four_letter  # noqa: E402
from nemesis import Nemesis  # noqa: E402

RSS_GROWTH = 1.25
RSS_SLACK_KB = 32 * 1024
FD_SLACK = 16
REPAIRS = ("repair-all", "start", "resume", "heal")


def proc_sample(pid):
    """(rss kB, open fds) of a live process, or None."""
    try:
        with open(f"/proc/{pid}/status") as f:
            rss = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
        fds = len(os.listdir(f"/proc/{pid}/fd"))
        return rss, fds
    except (OSError, StopIteration, ValueError):
        return None


def mntr(port):
    try:
        text = four_letter(port, "mntr")
    except OSError:
        return None
    if not text:
        return None
    out = {}
    for line in text.splitlines():
        parts = line.split("\t")
        if len(parts) == 2:
            out[parts[0]] = parts[1]
    return out if "zk_znode_count" in out else None


class Sampler(threading.Thread):
    def __init__(self, cluster, clock, every=10.0):
        super().__init__(daemon=True, name="sampler")
        self.cluster, self.clock, self.every = cluster, clock, every
        self.samples = []  # {"t", "member", "pid", "rss_kb", "fds" (less client connections), "conns"}
        self.counts = []  # {"t", znodes, watches, ephemerals, connections}
        self.errors = []
        self._halt = threading.Event()

    def stop(self):
        self._halt.set()
        self.join(timeout=30)

    def sample_once(self):
        t = round(self.clock(), 1)
        stats = {}
        for i in self.cluster.ids:
            m = self.cluster.member(i)
            if not m.alive() or i in self.cluster.paused:
                continue
            s = proc_sample(m.proc.pid)
            stats[i] = mntr(self.cluster.client_port(i))
            if s and stats[i]:
                # Client connections come and go with the load: what must
                # stay flat is every other descriptor.
                conns = int(stats[i].get("zk_num_alive_connections", 0))
                self.samples.append(dict(t=t, member=i, pid=m.proc.pid, rss_kb=s[0], fds=s[1] - conns, conns=conns))
        for i in self.cluster.ids:
            if stats.get(i):
                m = stats[i]
                if m:
                    self.counts.append(
                        dict(
                            t=t,
                            member=i,
                            znodes=int(m["zk_znode_count"]),
                            watches=int(m.get("zk_watch_count", 0)),
                            ephemerals=int(m.get("zk_ephemerals_count", 0)),
                            connections=int(m.get("zk_num_alive_connections", 0)),
                        )
                    )
                    break

    def run(self):
        while not self._halt.wait(self.every):
            try:
                self.sample_once()
            except Exception as e:  # a member going away mid-sample: sample again later
                self.errors.append(f"{round(self.clock(), 1)}: {type(e).__name__}: {e}")


class Churn(threading.Thread):
    """Sessions, ephemerals and watches that come and go."""

    def __init__(self, cluster, idx, stop):
        super().__init__(daemon=True, name=f"churn-{idx}")
        self.cluster, self.idx, self.stop_event = cluster, idx, stop
        self.ops = 0
        self.errors = 0
        self.sessions = 0

    def run(self):
        from kazoo.client import KazooClient
        from kazoo.exceptions import KazooException

        while not self.stop_event.is_set():
            zk = KazooClient(hosts=self.cluster.connect_string(), timeout=10.0)
            try:
                zk.start(timeout=30)
                self.sessions += 1
                zk.ensure_path("/soak/churn")
                until = time.monotonic() + 30
                while time.monotonic() < until and not self.stop_event.is_set():
                    try:
                        p = zk.create(f"/soak/churn/e{self.idx}-", b"x" * 100, ephemeral=True, sequence=True)
                        zk.exists(p, watch=lambda e: None)
                        zk.get_children("/soak/churn", watch=lambda e: None)
                        zk.delete(p)
                        self.ops += 1
                    except KazooException:
                        self.errors += 1
                        time.sleep(0.5)
                    time.sleep(0.02)
            except Exception:
                self.errors += 1
                time.sleep(1)
            finally:
                try:
                    zk.stop()
                    zk.close()
                except Exception:
                    pass


def bench_window(binary, hosts, seconds, sessions, inflight):
    cmd = [
        binary, "bench", "--hosts", hosts, "--workload", "mixed", "--read-ratio", "0.9",
        "--sessions", str(sessions), "--inflight", str(inflight), "--keys", "1000",
        "--value-size", "100", "--prefix", "/soak/bench", "--duration", str(seconds), "--json",
    ]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 120)
    except subprocess.TimeoutExpired:
        return {"error": "bench did not finish"}
    if out.returncode != 0:
        return {"error": (out.stderr or out.stdout).strip().splitlines()[-1:] or ["exit %d" % out.returncode]}
    try:
        r = json.loads(out.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return {"error": "no JSON from bench"}
    lat = r.get("latency_ms", {})
    return {
        "ops_per_s": r.get("ops_per_s", 0.0),
        "p50_ms": lat.get("p50", float("nan")),
        "p99_ms": lat.get("p99", float("nan")),
        "p999_ms": lat.get("p999", float("nan")),
        "errors": r.get("error_count", 0),
        "error_kinds": r.get("errors", {}),
    }


def faults_between(events, a, b):
    """Fault names injected in [a, b), and whether one was held at any time in it."""
    names, held, active = [], False, 0
    for e in events:
        ev = e["event"]
        if e["time"] >= b:
            break
        if ev in REPAIRS:
            if e["time"] >= a:
                held = held or active > 0
            active = 0
            continue
        active = 1
        if e["time"] >= a:
            names.append(ev)
            held = True
    return names, held or active > 0


def member_growth(samples, first_s, last_s, end_t):
    """Per member: the median RSS/fds of a process in its second `first_s`
    seconds (the first are warm-up: buffers, allocator arenas, caches) and
    in the last `last_s` seconds of the run, for each process that lived
    through both."""
    out = {}
    by_pid = {}
    for s in samples:
        by_pid.setdefault((s["member"], s["pid"]), []).append(s)
    for (member, pid), ss in sorted(by_pid.items()):
        start = ss[0]["t"]
        early = [s for s in ss if start + first_s <= s["t"] <= start + 2 * first_s]
        late = [s for s in ss if s["t"] >= end_t - last_s]
        if not late or not early or ss[-1]["t"] - start < 2 * first_s + last_s:
            continue
        out.setdefault(member, []).append(
            dict(
                pid=pid,
                since=start,
                rss_first=statistics.median(s["rss_kb"] for s in early),
                rss_last=statistics.median(s["rss_kb"] for s in late),
                rss_max=max(s["rss_kb"] for s in ss),
                fds_first=statistics.median(s["fds"] for s in early),
                fds_last=statistics.median(s["fds"] for s in late),
                fds_max=max(s["fds"] for s in ss),
            )
        )
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dir")
    p.add_argument("--minutes", type=float, default=60)
    p.add_argument("--window", type=float, default=60, help="seconds of each bench run")
    p.add_argument("--sessions", type=int, default=32)
    p.add_argument("--inflight", type=int, default=4)
    p.add_argument("--churners", type=int, default=4)
    p.add_argument("--nemesis", default="kill,pause,partition,restart")
    p.add_argument("--hold", default="2,10")
    p.add_argument("--quiet", default="50,110")
    p.add_argument("--compare", type=float, default=10, help="minutes compared: after as many of warm-up, and at the end")
    p.add_argument(
        "--spare",
        default="1",
        help="members never killed or restarted (comma-separated ids, '' for none), so their memory and fds can be compared over the whole run",
    )
    p.add_argument("--seed", type=int, default=None)
    a = p.parse_args()
    seed = a.seed if a.seed is not None else random.randrange(1 << 31)
    rng = random.Random(seed)
    os.makedirs(a.dir, exist_ok=True)
    logging.basicConfig(
        filename=os.path.join(a.dir, "clients.log"), level=logging.WARNING, format="%(asctime)s %(name)s %(message)s"
    )
    binary = ensemble_bin()
    kinds = [k for k in a.nemesis.split(",") if k and k != "none"]
    print(f"soak: {a.minutes:g} min, faults {','.join(kinds) or 'none'}, seed {seed}", flush=True)

    cluster = Cluster("ensemble", 3, proxied="partition" in kinds, base_dir=a.dir)
    t0 = time.monotonic()

    def clock():
        return time.monotonic() - t0

    stop = threading.Event()
    churners = []
    sampler = Sampler(cluster, clock)
    nemesis = None
    windows = []
    try:
        cluster.start_all()
        cluster.wait_serving()
        zk = cluster.client()
        zk.ensure_path("/soak/churn")
        zk.stop()
        sampler.sample_once()
        sampler.start()
        churners = [Churn(cluster, i, stop) for i in range(a.churners)]
        for c in churners:
            c.start()
        hold = tuple(float(x) for x in a.hold.split(","))
        quiet = tuple(float(x) for x in a.quiet.split(","))
        spare = [int(x) for x in a.spare.split(",") if x]
        nemesis = Nemesis(cluster, kinds, rng, clock, hold=hold, quiet=quiet, spare=spare)
        nemesis.start()
        end = a.minutes * 60
        while clock() + 5 < end:
            seconds = min(a.window, end - clock())
            start = clock()
            r = bench_window(binary, cluster.connect_string(), int(max(seconds, 5)), a.sessions, a.inflight)
            r["start"], r["end"] = round(start, 1), round(clock(), 1)
            windows.append(r)
            ops = r.get("ops_per_s", 0)
            p99 = r.get("p99_ms", float("nan"))
            print(
                f"  [{r['start']:7.1f} s] ops/s {ops:9.0f}  p99 {p99:8.2f} ms  errors {r.get('errors', r.get('error'))}",
                flush=True,
            )
        nemesis.stop()
        stop.set()
        for c in churners:
            c.join(timeout=60)
        cluster.wait_serving()
        # A churning session whose close was lost ends by expiry: wait up to
        # two session timeouts (10 s) for its ephemerals to go.
        deadline = time.monotonic() + 25
        final = None
        while time.monotonic() < deadline:
            final = mntr(cluster.client_port(cluster.leader()))
            if final and int(final.get("zk_ephemerals_count", 0)) == 0:
                break
            time.sleep(1)
        leftover = None
        if final and int(final.get("zk_ephemerals_count", 0)) != 0:
            # Keep what each member knows of them, then see whether they go late or never.
            leftover = {i: four_letter(cluster.client_port(i), "dump") for i in cluster.live_ids()}
            waited = time.monotonic()
            while time.monotonic() < waited + 60:
                f = mntr(cluster.client_port(cluster.leader()))
                if f and int(f.get("zk_ephemerals_count", 0)) == 0:
                    break
                time.sleep(1)
            leftover["gone after"] = round(time.monotonic() - waited + 25, 1) if f and int(f.get("zk_ephemerals_count", 0)) == 0 else None
        sampler.sample_once()
        sampler.stop()
        final = mntr(cluster.client_port(cluster.leader())) or final
    except Exception as e:
        print(f"soak: harness failed: {type(e).__name__}: {e}", file=sys.stderr)
        stop.set()
        if nemesis is not None and nemesis.is_alive():
            nemesis.stop()
        cluster.cleanup()
        return 2

    events = nemesis.events
    end_t = clock()
    growth = member_growth(sampler.samples, a.compare * 60, a.compare * 60, end_t)
    problems = []
    lines = [
        "# Soak run",
        "",
        f"{a.minutes:g} minutes, 3 members, seed {seed}, faults: "
        + (", ".join(f"{k} {v}" for k, v in sorted(nemesis.counts.items())) or "none"),
        f"load: `ensemble bench --workload mixed --read-ratio 0.9 --sessions {a.sessions} "
        f"--inflight {a.inflight}` in {a.window:g} s windows; {a.churners} churning kazoo clients "
        f"({sum(c.sessions for c in churners)} sessions, {sum(c.ops for c in churners)} "
        f"create/watch/delete rounds, {sum(c.errors for c in churners)} errors)",
        "",
        "| window (s) | ops/s | p50 ms | p99 ms | p99.9 ms | errors | faults in window |",
        "|---|---|---|---|---|---|---|",
    ]
    quiet_p99 = []
    for w in windows:
        names, held = faults_between(events, w["start"], w["end"])
        if "error" in w:
            lines.append(f"| {w['start']:.0f}-{w['end']:.0f} | - | - | - | - | {w['error']} | {', '.join(names)} |")
            if not held:
                problems.append(f"window {w['start']:.0f} s failed without a fault: {w['error']}")
            continue
        lines.append(
            f"| {w['start']:.0f}-{w['end']:.0f} | {w['ops_per_s']:.0f} | {w['p50_ms']:.2f} | {w['p99_ms']:.2f} "
            f"| {w['p999_ms']:.2f} | {w.get('errors', 0)} | {', '.join(names)} |"
        )
        if not held:
            quiet_p99.append(w["p99_ms"])
            if w["ops_per_s"] <= 0:
                problems.append(f"window {w['start']:.0f} s: no operation succeeded without a fault")
    lines += ["", "| member | process since (s) | RSS first / last / max (MiB) | fds less client connections, first / last / max | flat |", "|---|---|---|---|---|"]
    for member, procs in sorted(growth.items()):
        for g in procs:
            rss_ok = g["rss_last"] <= g["rss_first"] * RSS_GROWTH + RSS_SLACK_KB
            fds_ok = g["fds_last"] <= g["fds_first"] + FD_SLACK
            lines.append(
                f"| {member} | {g['since']:.0f} | {g['rss_first'] / 1024:.1f} / {g['rss_last'] / 1024:.1f} / "
                f"{g['rss_max'] / 1024:.1f} | {g['fds_first']:.0f} / {g['fds_last']:.0f} / {g['fds_max']} "
                f"| {'yes' if rss_ok and fds_ok else 'NO'} |"
            )
            if not rss_ok:
                problems.append(f"member {member}: RSS grew from {g['rss_first']} to {g['rss_last']} kB")
            if not fds_ok:
                problems.append(f"member {member}: fds grew from {g['fds_first']} to {g['fds_last']}")
    if not growth:
        lines.append("| (no process lived long enough to compare) | | | | |")
    if quiet_p99:
        lines += [
            "",
            f"p99 of windows without a fault: median {statistics.median(quiet_p99):.2f} ms, "
            f"worst {max(quiet_p99):.2f} ms ({len(quiet_p99)} of {len(windows)} windows)",
        ]
    if final:
        # What the load keeps: the bench keys (and their parents), /soak/churn; no ephemerals.
        lines += [
            "",
            f"after the load: znodes {final['zk_znode_count']}, ephemerals {final.get('zk_ephemerals_count')}, "
            f"watches {final.get('zk_watch_count')}, connections {final.get('zk_num_alive_connections')}",
        ]
        if leftover is not None:
            gone = leftover.pop("gone after")
            problems.append(
                "ephemerals left 25 s after every churning session closed, "
                + (f"gone {gone} s after" if gone is not None else "still there 85 s after")
            )
            lines += ["", "what each member knew of them (`dump`), 25 s after the churn stopped:", ""]
            for i, text in sorted(leftover.items()):
                lines += [f"member {i}:", "```", (text or "(no answer)").strip(), "```"]
        if int(final["zk_znode_count"]) > 1100:
            problems.append(f"{final['zk_znode_count']} znodes left, more than the load keeps")
    counts = sampler.counts
    if counts:
        lines += [
            "",
            "znodes / watches / ephemerals / connections, min-max over the run: "
            + " / ".join(
                f"{min(c[k] for c in counts)}-{max(c[k] for c in counts)}"
                for k in ("znodes", "watches", "ephemerals", "connections")
            ),
        ]
    lines += ["", f"samples: {len(sampler.samples)} of the members, {len(sampler.counts)} of mntr, {len(sampler.errors)} failed"]
    if len(sampler.errors) > max(3, len(sampler.counts) // 10):
        problems.append(f"{len(sampler.errors)} samples failed, e.g. {sampler.errors[0]}")
    if nemesis.error:
        problems.append(f"nemesis failed: {nemesis.error}")
    lines += ["", "verdict: " + ("ok" if not problems else "PROBLEMS: " + "; ".join(problems))]
    report = "\n".join(lines) + "\n"
    print(report)
    with open(os.path.join(a.dir, "report.md"), "w") as f:
        f.write(report)
    with open(os.path.join(a.dir, "samples.json"), "w") as f:
        json.dump(dict(samples=sampler.samples, counts=counts, windows=windows, events=events), f)
    # A run with problems keeps the members' directories and logs.
    cluster.cleanup(remove=not problems)
    if problems:
        print(f"members' directories and logs kept in {cluster.dir}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
