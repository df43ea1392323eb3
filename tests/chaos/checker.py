"""Checks the history of a chaos run. Three kinds of check:

1. Linearizability, per key, with `linearizability.check` against the
   workload's model (`models.py`): every write, and every sync + read when
   reads are checked as linearizable (see `READ_MODES`).
2. Session order: each ZooKeeper session sees its own operations in order.
   Whatever a session observed of a znode's version (from a write's answer,
   a sync + read or a plain read) never goes backwards in that session's
   later operations, and its plain reads contain its own acknowledged
   elements and ids.
3. Nothing acknowledged is lost: the final reads, made after every fault
   was healed and every member restarted, hold every acknowledged write,
   element, queue item and id (and nothing that was never written).

`python3 checker.py DIR` checks the history a run wrote to DIR again.
"""

import bisect
import json
import os
import sys
from collections import defaultdict

import linearizability
import models
from history import read_ops

# "linearizable": a sync followed by a read on the same connection is
#   checked as one linearizable operation (Ensemble's sync is a
#   quorum-confirmed read index).
# "session": such reads are checked only for session order, as ZooKeeper
#   promises (its sync is not a barrier: ZOOKEEPER-1675). Writes are
#   linearizable in both modes, and so are the final reads, made once the
#   cluster is healed and quiet.
READ_MODES = ("linearizable", "session")

MAX_EXCERPT = 14


class Entry:
    """What the linearizability search needs of an op; `must_apply` marks
    an op without an answer that certainly took effect (its value, element
    or item was seen)."""

    __slots__ = ("op", "f", "args", "result", "outcome", "invoke", "complete", "must_apply", "untracked")

    def __init__(self, op, args=None, must_apply=False, untracked=False):
        self.op = op
        self.f = op.f
        self.args = op.args if args is None else args
        self.result = op.result
        self.outcome = op.outcome
        self.invoke = op.invoke
        self.complete = op.complete
        self.must_apply = must_apply
        self.untracked = untracked


class Verdict:
    def __init__(self, workload, reads):
        self.workload = workload
        self.reads = reads
        self.problems = []  # (kind, text)
        self.stuck = []  # per linearizability problem, the op no order could place
        self.warnings = []  # odd things that are not violations
        self.unknown = []  # keys whose search ran out of budget
        self.stats = {}

    @property
    def valid(self):
        if self.problems:
            return False
        return "unknown" if self.unknown else True

    def add(self, kind, text):
        self.problems.append((kind, text))

    def report(self):
        lines = []
        s = self.stats
        lines.append(
            f"checked {s.get('ops', 0)} operations ({s.get('ok', 0)} ok, {s.get('fail', 0)} failed, "
            f"{s.get('info', 0)} unknown) of workload {self.workload}; reads checked as {self.reads}"
        )
        lines.append(
            f"linearizability: {s.get('keys', 0)} keys, {s.get('lin_ops', 0)} operations, "
            f"{s.get('lin_steps', 0)} search steps"
        )
        for k in sorted(s):
            if k.startswith("final_"):
                lines.append(f"{k[6:].replace('_', ' ')}: {s[k]}")
        for key in self.unknown:
            lines.append(f"UNKNOWN: the search for {key} ran out of budget")
        for text in self.warnings:
            lines.append(f"warning: {text}")
        for kind, text in self.problems:
            lines.append(f"VIOLATION ({kind}): {text}")
        v = self.valid
        lines.append("verdict: " + ("valid" if v is True else "UNKNOWN" if v == "unknown" else "INVALID"))
        return "\n".join(lines)


# ---------------------------------------------------------------------------
# Helpers


def to_ranges(values):
    """Sorted ints as [[first, last], ...] runs (sequence numbers are dense)."""
    out = []
    for v in sorted(values):
        if out and v == out[-1][1] + 1:
            out[-1][1] = v
        else:
            out.append([v, v])
    return out


def from_ranges(ranges):
    return [v for a, b in ranges for v in range(a, b + 1)]


def _ok(op):
    return op.outcome == "ok"


def _excerpt(entries, res):
    """The op no order could linearize, the end of the longest order found,
    and the ops concurrent with the stuck one."""
    stuck = entries[res.stuck_op].op
    lines = [f"  cannot linearize: {stuck.short()}"]
    lines.append(f"  longest linearizable order ({len(res.best_order)} ops) ends with:")
    for i in res.best_order[-5:]:
        lines.append(f"    {entries[i].op.short()}")
    lines.append(f"  model state there: {_fmt_state(res.best_state)}")
    lo, hi = stuck.invoke, stuck.complete if stuck.complete is not None else float("inf")
    around = [
        e.op
        for e in entries
        if e.op is not stuck
        and e.op.invoke <= hi
        and (e.op.complete is None or e.op.complete >= lo)
    ]
    lines.append(f"  {len(around)} ops concurrent with it:")
    for op in around[:MAX_EXCERPT]:
        lines.append(f"    {op.short()}")
    if len(around) > MAX_EXCERPT:
        lines.append(f"    ... {len(around) - MAX_EXCERPT} more")
    return "\n".join(lines)


def _fmt_state(state):
    if isinstance(state, tuple) and state and isinstance(state[0], frozenset):
        return f"({len(state[0])} elements, version {state[1]})"
    text = repr(state)
    return text if len(text) < 300 else text[:300] + "..."


def _linearize(verdict, model, groups, max_steps):
    steps = ops = 0
    for key in sorted(groups):
        entries = sorted(groups[key], key=lambda e: e.invoke)
        res = linearizability.check(model, entries, max_steps=max_steps)
        steps += res.steps
        ops += len(entries)
        if res.valid == "unknown":
            verdict.unknown.append(key)
        elif not res.valid:
            verdict.add("linearizability", f"{key} is not linearizable\n" + _excerpt(entries, res))
            verdict.stuck.append(entries[res.stuck_op].op)
    verdict.stats.update(keys=len(groups), lin_ops=ops, lin_steps=steps)


def _session_order(verdict, ops, observe):
    """Per session (acknowledged ops whose session did not change while
    they ran), versions observed per key never go backwards."""
    by_session = defaultdict(list)
    for op in ops:
        if _ok(op) and not op.final and op.session and op.session == op.end_session:
            by_session[op.session].append(op)
    bad = 0
    for sess, lst in by_session.items():
        lst.sort(key=lambda o: o.invoke)
        last = {}
        for op in lst:
            for key, v in observe(op):
                prev = last.get(key)
                if prev is not None and v < prev[0]:
                    bad += 1
                    if bad <= 5:
                        verdict.add(
                            "session order",
                            f"session {sess:#x} saw version {v} of {key} after version {prev[0]}:\n"
                            f"    {prev[1].short()}\n    {op.short()}",
                        )
                if prev is None or v >= prev[0]:
                    last[key] = (v, op)
    verdict.stats["sessions"] = len(by_session)
    return by_session


def _count(verdict, ops):
    verdict.stats["ops"] = len(ops)
    for o in ("ok", "fail", "info"):
        verdict.stats[o] = sum(1 for op in ops if op.outcome == o)


def _final_reads(verdict, ops, keys):
    """The one acknowledged final read of each key."""
    finals = {}
    for op in ops:
        if op.final and _ok(op):
            finals[op.key] = op
    missing = sorted(k for k in keys if k not in finals)
    if missing:
        verdict.add("final read", f"no final read of {len(missing)} keys: {missing[:5]}")
    return finals


# ---------------------------------------------------------------------------
# Workloads


def _versioned_groups(ops, reads, write_fs, seen, pin, accumulates=False):
    """The ops of each key for the search, for objects whose every write
    makes the version one greater (register, set).

    Writes without an answer need care, or the search tries each of them
    at every step. One whose value (or element) some read saw took effect:
    it must be linearized (`must_apply`), at the version a checked read saw
    it at if one did (`pin(op)`). For the others (`seen(op)` false):

    - In any linearization every version 1..V (V: the last one known)
      comes from exactly one write. Versions that acknowledged writes
      answered and that checked reads saw are taken; the rest are holes,
      and an unseen write that took effect before V filled one. It can
      fill hole h only if it was invoked before the earliest completion of
      an op that saw version h or later; a CAS only the hole right after
      the version it expected. Past V, the only holes are those a refused
      CAS may need (it expected a version that then moved on). A write
      that fits no hole took effect in no linearization: it is left out.
      The others carry the holes they may fill (`fills`).
    - No checked op sees the value at a hole, so unseen writes are
      interchangeable but for their invocation times, and one invoked
      earlier fits wherever a later one does. The search may therefore
      take them in order of invocation only (`rank`: the model counts
      those applied), and of unseen CASes expecting the same version only
      the first invoked. Whether such a write can still be applied then
      depends on the state alone (a CAS only at its expected version, a
      ranked write only at its rank), so the memo need not tell which of
      them were applied (`untracked`). Together this removes the
      permutations that make the search explode when a history is not
      linearizable.
    - For a set (`accumulates`), an add that took effect shows in every
      later read, so an unseen one can only fill holes past V."""
    groups = defaultdict(list)
    for op in ops:
        if op.f == "read":
            if _ok(op) and (reads == "linearizable" or op.final):
                groups[op.key].append(op)
        elif op.f in write_fs:
            if op.outcome in ("ok", "info") or op.result.get("error") == "BadVersion":
                groups[op.key].append(op)
    out = {}
    for key, lst in groups.items():
        lst.sort(key=lambda o: o.invoke)
        known = [o for o in lst if o.outcome == "ok"]
        taken = {o.result["version"] for o in known}
        top = max(taken, default=0)
        refused = [o.args["expect"] for o in lst if o.outcome == "fail"]
        end = max([top] + [e + 1 for e in refused])
        # before[v]: earliest completion of a known op that saw version >= v
        before = [float("inf")] * (end + 2)
        for o in known:
            v = o.result["version"]
            before[v] = min(before[v], o.complete)
        for v in range(top - 1, -1, -1):
            before[v] = min(before[v], before[v + 1])
        holes = [v for v in range(1, end + 1) if v not in taken and (v > top or not accumulates)]
        entries = []
        ranked = 0
        first_cas = {}  # expected version -> invocation of the first unseen CAS
        for o in lst:
            e = o.args.get("expect")
            if o.outcome == "info" and e is not None and not seen(o) and e + 1 in holes:
                first_cas.setdefault(e, o.invoke)
        used_cas = set()
        for o in lst:
            if o.outcome != "info":
                entries.append(Entry(o))
                continue
            if seen(o):
                v = pin(o)
                args = o.args if v is None else dict(o.args, fills=(v,))
                entries.append(Entry(o, args=args, must_apply=True))
                continue
            e = o.args.get("expect")
            # A plain write need not fill a hole that a CAS invoked no later
            # could fill instead: that CAS fits wherever it does, and keeps
            # the write for a later hole.
            fills = tuple(
                h
                for h in holes
                if o.invoke < before[h]
                and (h == e + 1 if e is not None else first_cas.get(h - 1, float("inf")) > o.invoke)
            )
            if not fills:
                continue
            args = dict(o.args, fills=fills)
            if "value" in args:
                args["value"] = None
            if e is None:
                args["rank"] = ranked
                ranked += 1
            elif e in used_cas:
                continue
            else:
                used_cas.add(e)
            entries.append(Entry(o, args=args, untracked=True))
        out[key] = entries
    return out


def check_register(verdict, ops, reads, max_steps):
    seen_values = set()
    pinned = {}  # (key, value) -> version a checked read saw it at
    for op in ops:
        if op.f in ("read", "get") and _ok(op):
            seen_values.add((op.key, op.result["value"]))
            if op.f == "read" and (reads == "linearizable" or op.final):
                pinned[(op.key, op.result["value"])] = op.result["version"]
    keys = {op.key for op in ops}
    groups = _versioned_groups(
        ops,
        reads,
        ("write", "cas"),
        lambda o: (o.key, o.args["value"]) in seen_values,
        lambda o: pinned.get((o.key, o.args["value"])),
    )
    _linearize(verdict, models.Register(), groups, max_steps)

    def observe(op):
        if op.f in ("read", "get", "write", "cas"):
            yield op.key, op.result["version"]

    _session_order(verdict, ops, observe)

    finals = _final_reads(verdict, ops, keys)
    lost = []
    by_version = defaultdict(set)
    for op in ops:
        if op.f in ("write", "cas") and _ok(op):
            by_version[(op.key, op.result["version"])].add(op.args["value"])
            fin = finals.get(op.key)
            if fin is not None and fin.result["version"] < op.result["version"]:
                lost.append(op)
    for (key, version), values in sorted(by_version.items()):
        if len(values) > 1:
            verdict.add("duplicate version", f"{key} version {version} acknowledged for {sorted(values)}")
    if lost:
        verdict.add(
            "lost write",
            f"{len(lost)} acknowledged writes are newer than the final reads:\n"
            + "\n".join(f"    {op.short()}   final: {finals[op.key].result}" for op in lost[:MAX_EXCERPT]),
        )
    acked = sum(1 for op in ops if op.f in ("write", "cas") and _ok(op))
    verdict.stats["final_acknowledged_writes_kept"] = f"{acked - len(lost)} of {acked}"


def check_set(verdict, ops, reads, max_steps):
    seen = defaultdict(set)  # key -> every element any read saw
    for op in ops:
        if op.f in ("read", "get") and _ok(op):
            seen[op.key].update(op.result["elements"])
    keys = {op.key for op in ops}
    groups = _versioned_groups(
        ops, reads, ("add",), lambda o: o.args["element"] in seen[o.key], lambda o: None, accumulates=True
    )
    _linearize(verdict, models.Set(), groups, max_steps)

    def observe(op):
        if op.f in ("read", "get", "add"):
            yield op.key, op.result["version"]

    sessions = _session_order(verdict, ops, observe)
    # Read your own writes: a session's reads hold its acknowledged adds.
    missing_own = 0
    for sess, lst in sessions.items():
        mine = defaultdict(set)
        for op in lst:
            if op.f in ("read", "get"):
                gone = mine[op.key] - set(op.result["elements"])
                if gone:
                    missing_own += 1
                    if missing_own <= 5:
                        verdict.add(
                            "session order",
                            f"session {sess:#x} read {op.key} without its own acknowledged "
                            f"elements {sorted(gone)[:10]}:\n    {op.short()[:400]}",
                        )
            elif op.f == "add":
                mine[op.key].add(op.args["element"])

    finals = _final_reads(verdict, ops, keys)
    attempted = defaultdict(set)
    refused = defaultdict(set)
    for op in ops:
        if op.f == "add":
            attempted[op.key].add(op.args["element"])
            if op.outcome == "fail":
                refused[op.key].add(op.args["element"])
    lost, total, recovered = [], 0, 0
    for op in ops:
        if op.f != "add" or op.key not in finals:
            continue
        present = op.args["element"] in set(finals[op.key].result["elements"])
        if _ok(op):
            total += 1
            if not present:
                lost.append(op)
        elif op.outcome == "info" and present:
            recovered += 1
    for key, fin in sorted(finals.items()):
        final = set(fin.result["elements"])
        unexpected = final - attempted[key]
        if unexpected:
            verdict.add("unexpected element", f"{key} holds elements never added: {sorted(unexpected)[:10]}")
        took = (seen[key] | final) & refused[key]
        if took:
            verdict.add("refused add took effect", f"{key}: {sorted(took)[:10]} were refused with BadVersion")
    if lost:
        verdict.add(
            "lost element",
            f"{len(lost)} acknowledged adds are missing from the final reads:\n"
            + "\n".join(f"    {op.short()}" for op in lost[:MAX_EXCERPT]),
        )
    verdict.stats["final_acknowledged_elements_present"] = f"{total - len(lost)} of {total}"
    verdict.stats["final_unacknowledged_adds_present"] = recovered


def check_queue(verdict, ops, reads, max_steps):
    # Where each element was seen, and under which sequence number.
    seq_of = defaultdict(dict)  # queue -> element -> seq
    conflicts = []

    def saw(key, element, seq, op):
        prev = seq_of[key].setdefault(element, seq)
        if prev != seq:
            conflicts.append((key, element, prev, seq, op))

    misanswered = []
    for op in ops:
        if op.f == "enqueue" and _ok(op) and op.result.get("element", op.args["element"]) != op.args["element"]:
            misanswered.append(op)
        elif op.f == "enqueue" and _ok(op):
            saw(op.key, op.args["element"], op.result["seq"], op)
        elif op.f in ("read", "list") and _ok(op):
            for seq, el in zip(op.result["items"], op.result["elements"]):
                saw(op.key, el, seq, op)
        elif op.f == "dequeue":
            saw(op.key, op.args["element"], op.args["seq"], op)
    if misanswered:
        verdict.add(
            "answer of another request",
            f"{len(misanswered)} enqueues were answered with the path of another item:\n"
            + "\n".join(f"    {op.short()}" for op in misanswered[:MAX_EXCERPT]),
        )
    for key, el, a, b, op in conflicts[:5]:
        verdict.add("queue item", f"{key}: element {el} seen as item {a} and as item {b}: {op.short()}")

    groups = defaultdict(list)
    keys = set()
    for op in ops:
        keys.add(op.key)
        if op.f == "read":
            if _ok(op) and (reads == "linearizable" or op.final):
                groups[op.key].append(Entry(op))
        elif op.f == "enqueue":
            if _ok(op):
                groups[op.key].append(Entry(op))
            elif op.outcome == "info":
                seq = seq_of[op.key].get(op.args["element"])
                # An item nobody ever saw was never created: the final read
                # lists whatever is left, and a dequeue names its item.
                if seq is not None:
                    groups[op.key].append(Entry(op, args=dict(op.args, seq=seq), must_apply=True))
        elif op.f == "dequeue" and op.outcome in ("ok", "fail", "info"):
            groups[op.key].append(Entry(op))
    _linearize(verdict, models.Queue(), groups, max_steps)

    def observe(op):
        if op.f == "get":
            yield op.key + "/head", op.result["version"]
        elif op.f == "dequeue":
            yield op.key + "/head", op.args["head_version"] + 1
        elif op.f == "list":
            # Not compared with the sequence numbers of enqueues: a delete
            # moves cversion on, but (in ZooKeeper 3.8, and so here) not
            # always the next sequence number.
            yield op.key + "/items", op.result["cversion"]

    _session_order(verdict, ops, observe)

    finals = _final_reads(verdict, ops, keys)
    taken = defaultdict(list)  # (queue, seq) -> ok dequeues
    maybe_taken = set()
    for op in ops:
        if op.f == "dequeue" and _ok(op):
            taken[(op.key, op.args["seq"])].append(op)
        elif op.f == "dequeue" and op.outcome == "info":
            maybe_taken.add((op.key, op.args["seq"]))
    for (key, seq), lst in sorted(taken.items()):
        if len(lst) > 1:
            verdict.add(
                "double dequeue",
                f"{key} item {seq} dequeued {len(lst)} times:\n" + "\n".join(f"    {o.short()}" for o in lst),
            )
    enqueued = defaultdict(set)
    for op in ops:
        if op.f == "enqueue":
            enqueued[op.key].add(op.args["element"])
    lost, total = [], 0
    for op in ops:
        if op.f != "enqueue" or not _ok(op) or op.key not in finals:
            continue
        total += 1
        seq = op.result["seq"]
        left = seq in set(finals[op.key].result["items"])
        if not left and (op.key, seq) not in taken and (op.key, seq) not in maybe_taken:
            lost.append(op)
    for key, fin in sorted(finals.items()):
        stray = set(fin.result["elements"]) - enqueued[key]
        if stray:
            verdict.add("unexpected item", f"{key} holds elements never enqueued: {sorted(stray)[:10]}")
    if lost:
        verdict.add(
            "lost item",
            f"{len(lost)} acknowledged enqueues were neither dequeued nor left in the queue:\n"
            + "\n".join(f"    {op.short()}" for op in lost[:MAX_EXCERPT]),
        )
    verdict.stats["final_acknowledged_enqueues_accounted_for"] = f"{total - len(lost)} of {total}"
    verdict.stats["final_items_left"] = sum(len(f.result["items"]) for f in finals.values())


def check_ids(verdict, ops, reads, max_steps):
    keys = set(op.key for op in ops)
    finals = _final_reads(verdict, ops, keys)
    final_by_tag = defaultdict(dict)  # parent -> tag -> seq
    final_seqs = {}
    for key, fin in finals.items():
        seqs = set()
        for name in fin.result["names"]:
            tag, seq = parse_id_name(name)
            final_by_tag[key][tag] = seq
            seqs.add(seq)
        final_seqs[key] = seqs
        if len(seqs) != len(fin.result["names"]):
            verdict.add("duplicate id", f"{key}: two children share a sequence number")

    groups = defaultdict(list)
    for op in ops:
        if op.f != "create":
            continue
        if _ok(op):
            groups[op.key].append((op.invoke, op.complete, op.result["seq"], op))
        elif op.outcome == "info":
            seq = final_by_tag[op.key].get(op.args["tag"])
            if seq is not None:  # it took effect, at some time after its invocation
                groups[op.key].append((op.invoke, float("inf"), seq, op))
    _increasing_in_real_time(verdict, groups)

    def observe(op):
        # Sequence numbers and cversion are compared each with its own kind
        # only: numbers a leader handed out to creates that never committed
        # are skipped, and each one skipped raises the cversion clients see
        # (2 * creates - children) above the next number.
        if op.f == "create":
            yield op.key + " (sequence number)", op.result["seq"]
        elif op.f == "list":
            yield op.key + " (cversion)", op.result["cversion"]

    sessions = _session_order(verdict, ops, observe)
    missing_own = 0
    for sess, lst in sessions.items():
        mine = defaultdict(set)
        for op in lst:
            if op.f == "list":
                gone = mine[op.key] - set(from_ranges(op.result["seqs"]))
                if gone:
                    missing_own += 1
                    if missing_own <= 5:
                        verdict.add(
                            "session order",
                            f"session {sess:#x} listed {op.key} without its own ids {sorted(gone)[:10]}",
                        )
            elif op.f == "create":
                mine[op.key].add(op.result["seq"])

    owners = defaultdict(list)
    lost, total = [], 0
    tags = defaultdict(set)
    misanswered = []
    for op in ops:
        if op.f != "create":
            continue
        tags[op.key].add(op.args["tag"])
        if not _ok(op):
            continue
        if parse_id_name(op.result["name"])[0] != op.args["tag"]:
            misanswered.append(op)
        total += 1
        seq = op.result["seq"]
        owners[(op.key, seq)].append(op)
        if op.key in final_seqs:
            if seq not in final_seqs[op.key]:
                lost.append(op)
            elif final_by_tag[op.key].get(op.args["tag"]) != seq:
                verdict.add("wrong id", f"final child with id {seq} is not the one created by {op.short()}")
    for (key, seq), lst in sorted(owners.items()):
        if len(lst) > 1:
            verdict.add(
                "duplicate id",
                f"{key} id {seq} given to {len(lst)} creates:\n" + "\n".join(f"    {o.short()}" for o in lst),
            )
    for key, by_tag in sorted(final_by_tag.items()):
        stray = set(by_tag) - tags[key]
        if stray:
            verdict.add("unexpected id", f"{key} has children no create made: {sorted(stray)[:10]}")
    if misanswered:
        verdict.add(
            "answer of another request",
            f"{len(misanswered)} creates were answered with the name of another create:\n"
            + "\n".join(f"    {op.short()}" for op in misanswered[:MAX_EXCERPT]),
        )
    if lost:
        verdict.add(
            "lost id",
            f"{len(lost)} acknowledged creates are missing from the final listing:\n"
            + "\n".join(f"    {op.short()}" for op in lost[:MAX_EXCERPT]),
        )
    verdict.stats["final_acknowledged_ids_present"] = f"{total - len(lost)} of {total}"
    verdict.stats["final_ids"] = sum(len(s) for s in final_seqs.values())


def _increasing_in_real_time(verdict, groups):
    """Linearizability of sequential creates (models.SequentialIds) without
    the search: the model accepts only growing numbers, so the order is
    forced, and a history is linearizable iff no create that completed
    before another was invoked got the greater number (creates without an
    answer that took effect complete at +infinity). The search would get
    the same answer, but tries the unanswered creates at every step."""
    steps = 0
    for key in sorted(groups):
        lst = groups[key]
        done = sorted(lst, key=lambda x: x[1])
        ends = [x[1] for x in done]
        best = []  # best[i]: the op with the greatest number among done[:i+1]
        for x in done:
            best.append(x if not best or x[2] > best[-1][2] else best[-1])
        bad = []
        for x in lst:
            k = bisect.bisect_left(ends, x[0])
            steps += 1
            if k and best[k - 1][2] > x[2]:
                bad.append((best[k - 1][3], x[3]))
        if bad:
            verdict.add(
                "linearizability",
                f"{key}: {len(bad)} creates got a smaller number than a create that had completed "
                "before they were invoked:\n"
                + "\n".join(f"    {a.short()}\n    then {b.short()}" for a, b in bad[:5]),
            )
            verdict.stuck.append(bad[0][1])
    verdict.stats.update(keys=len(groups), lin_ops=sum(len(v) for v in groups.values()), lin_steps=steps)


def parse_id_name(name):
    """`id-<tag>-<seq>` -> (tag, seq)."""
    body, seq = name.rsplit("-", 1)
    return body.split("-", 1)[1], int(seq)


CHECKS = {"register": check_register, "set": check_set, "queue": check_queue, "ids": check_ids}


def check(workload, ops, reads="linearizable", max_steps=10_000_000):
    if reads not in READ_MODES:
        raise ValueError(f"reads must be one of {READ_MODES}")
    verdict = Verdict(workload, reads)
    _count(verdict, ops)
    CHECKS[workload](verdict, ops, reads, max_steps)
    return verdict


def main(argv):
    if len(argv) != 2:
        print("usage: checker.py DIR  (a directory written by run.py)", file=sys.stderr)
        return 2
    d = argv[1]
    with open(os.path.join(d, "run.json")) as f:
        meta = json.load(f)
    ops = read_ops(os.path.join(d, "history.jsonl"))
    verdict = check(meta["workload"], ops, meta["reads"])
    print(verdict.report())
    return 0 if verdict.valid is True else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
