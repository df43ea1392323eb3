#!/usr/bin/env python3
"""The long chaos run: every workload under two fault mixes, one after the
other, against a 3-member cluster, then a summary table (Markdown) of
operations, faults and verdicts, printed and written to DIR/summary.md.

- "all": kill, pause, partition and restart, kazoo numbering its requests
  per connection (as it does);
- "ci": kill, partition and restart, requests numbered per session (as
  the Java client does): what the CI runs use.

    python3 tests/chaos/long_run.py --minutes 32 --seed 1 DIR
"""

import argparse
import json
import os
import random
import sys
import time
import traceback

import run as chaos
import workloads

MIXES = {
    "all": (["kill", "pause", "partition", "restart"], "connection"),
    "ci": (["kill", "partition", "restart"], "session"),
}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dir")
    p.add_argument("--impl", default="ensemble", choices=["ensemble", "zookeeper"])
    p.add_argument("--minutes", type=float, default=32.0, help="total time of load and faults")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--workloads", default=",".join(sorted(workloads.WORKLOADS)))
    p.add_argument("--mixes", default="all,ci")
    a = p.parse_args()
    seed = random.randrange(1 << 31) if a.seed is None else a.seed
    rng = random.Random(seed)
    plan = [(w, m) for m in a.mixes.split(",") for w in a.workloads.split(",")]
    each = a.minutes * 60 / len(plan)
    os.makedirs(a.dir, exist_ok=True)
    print(f"long run: {len(plan)} runs of {each:.0f} s against {a.impl}, seed {seed}, in {a.dir}", flush=True)
    rows = []
    started = time.monotonic()
    for n, (workload, mix) in enumerate(plan, 1):
        nemesis, xids = MIXES[mix]
        run_seed = rng.randrange(1 << 31)
        out = os.path.join(a.dir, f"{n:02d}-{workload}-{mix}")
        row = dict(workload=workload, mix=mix, seed=run_seed, out=out, duration=each)
        t0 = time.monotonic()
        try:
            res = chaos.run(
                impl=a.impl,
                workload=workload,
                nemesis=nemesis,
                duration=each,
                seed=run_seed,
                out_dir=out,
                xids=xids,
                log=lambda line: print(line, flush=True),
            )
            row.update(
                stats=res.verdict.stats,
                faults=res.faults,
                verdict={True: "valid", False: "INVALID", "unknown": "UNKNOWN"}[res.valid],
                problems=sorted({k for k, _ in res.verdict.problems}),
            )
        except Exception as e:
            # Where in the harness it was raised: the last frame of ours.
            frames = [f for f in traceback.extract_tb(e.__traceback__) if "/tests/" in f.filename]
            where = f" at {os.path.basename(frames[-1].filename)}:{frames[-1].lineno}" if frames else ""
            row.update(stats={}, faults={}, verdict="harness error", problems=[f"{type(e).__name__}: {e}{where}"])
        row["wall"] = round(time.monotonic() - t0)
        rows.append(row)
        with open(os.path.join(a.dir, "rows.json"), "w") as f:
            json.dump(rows, f, indent=1)
    text = summary(rows, a.impl, seed, time.monotonic() - started)
    with open(os.path.join(a.dir, "summary.md"), "w") as f:
        f.write(text)
    print(text)
    return 0 if all(r["verdict"] == "valid" for r in rows) else 1


def summary(rows, impl, seed, wall):
    out = [
        f"Long run against {impl}, seed {seed}: {len(rows)} runs, "
        f"{sum(r['duration'] for r in rows) / 60:.0f} minutes of load and faults, "
        f"{wall / 60:.0f} minutes in all.",
        "",
        "| # | workload | faults | xids | seed | ops ok / failed / unknown | faults injected | verdict |",
        "|---|---|---|---|---|---|---|---|",
    ]
    totals = {}
    ops = [0, 0, 0]
    for n, r in enumerate(rows, 1):
        s = r["stats"]
        counts = [s.get("ok", 0), s.get("fail", 0), s.get("info", 0)]
        ops = [x + y for x, y in zip(ops, counts)]
        for k, v in r["faults"].items():
            totals[k] = totals.get(k, 0) + v
        faults = ", ".join(f"{k} {v}" for k, v in sorted(r["faults"].items()))
        verdict = r["verdict"] + (f" ({', '.join(r['problems'])})" if r["problems"] else "")
        nemesis, xids = MIXES[r["mix"]]
        out.append(
            f"| {n} | {r['workload']} | {','.join(nemesis)} | {xids} | {r['seed']} | "
            f"{counts[0]} / {counts[1]} / {counts[2]} | {faults} | {verdict} |"
        )
    out += [
        "",
        f"Operations: {sum(ops)} ({ops[0]} ok, {ops[1]} failed, {ops[2]} unknown).",
        "Faults injected: " + ", ".join(f"{k} {v}" for k, v in sorted(totals.items())) + ".",
        "",
    ]
    return "\n".join(out)


if __name__ == "__main__":
    sys.exit(main())
