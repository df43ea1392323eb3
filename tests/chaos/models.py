"""Sequential models of the objects the workloads build out of znodes, for
the linearizability checker. A state is a hashable value; `step(state,
op)` returns the state after `op` took effect with the answer it got, or
None when that answer is impossible in `state`.

Only outcomes the checker keeps reach a model: "ok" and "fail" answers,
and "info" operations that may have taken effect (for those, `step`
describes the effect had they taken it; leaving them out is the other
possibility, which the search tries by itself).
"""


class Register:
    """A znode's data and version. read (sync + getData) answers both;
    write is setData with version -1; cas is setData with the version a
    getData saw (`expect`), refused with BadVersion when it moved on. A
    successful setData answers the new version, always the old one + 1.

    The state also counts the unanswered, unseen writes applied so far
    (see `checker._versioned_groups`): such a write carries the versions
    it may make (`fills`) and, if it is a plain write, its `rank` among
    them, which must equal that count."""

    def init(self):
        return ("", 0, 0)

    def step(self, s, op):
        value, version, unseen = s
        f, out = op.f, op.outcome
        if f == "read":
            r = op.result
            return s if (r["value"], r["version"]) == (value, version) else None
        if out == "info":
            if version + 1 not in op.args.get("fills", (version + 1,)):
                return None
            if "rank" in op.args:
                if op.args["rank"] != unseen:
                    return None
                unseen += 1
        if f == "write":
            if out == "ok" and op.result["version"] != version + 1:
                return None
            return (op.args["value"], version + 1, unseen)
        if f == "cas":
            e = op.args["expect"]
            if out == "fail":
                return s if version != e else None
            if version != e:
                return None
            if out == "ok" and op.result["version"] != e + 1:
                return None
            return (op.args["value"], e + 1, unseen)
        raise ValueError(f"register: no operation {f!r}")


class Set:
    """A set kept in one znode by compare-and-set appends: add(e) is
    getData, then setData(data + e) with the version it saw (`expect`).
    The state is (elements, version)."""

    def init(self):
        return (frozenset(), 0)

    def step(self, s, op):
        elements, version = s
        f, out = op.f, op.outcome
        if f == "read":
            r = op.result
            return s if r["version"] == version and frozenset(r["elements"]) == elements else None
        if f == "add":
            e = op.args["expect"]
            if out == "info" and version + 1 not in op.args.get("fills", (version + 1,)):
                return None
            if out == "fail":
                return s if version != e else None
            if version != e:
                return None
            if out == "ok" and op.result["version"] != e + 1:
                return None
            return (elements | {op.args["element"]}, e + 1)
        raise ValueError(f"set: no operation {f!r}")


class Queue:
    """A FIFO queue: items are sequential znodes under `items` (enqueue is a
    sequential create, so the sequence number is the item's place), and a
    `head` znode whose version counts the dequeues. dequeue is one multi:
    check(item, 0) + setData(head, version=head_version) + delete(item),
    which commits only when the item is still there and no other dequeue
    came between; it must then have taken the oldest item. read is sync +
    getChildren(items). State: (items in order, dequeues, last sequence
    number given out)."""

    def init(self):
        return ((), 0, -1)

    def step(self, s, op):
        items, ndeq, last = s
        f, out = op.f, op.outcome
        if f == "enqueue":
            seq = op.args["seq"] if out == "info" else op.result["seq"]
            if seq <= last:
                return None
            return (items + (seq,), ndeq, seq)
        if f == "dequeue":
            seq, hv = op.args["seq"], op.args["head_version"]
            if out == "fail":
                return s if (seq not in items or ndeq != hv) else None
            if not items or items[0] != seq or ndeq != hv:
                return None
            return (items[1:], ndeq + 1, last)
        if f == "read":
            return s if tuple(op.result["items"]) == items else None
        raise ValueError(f"queue: no operation {f!r}")


class SequentialIds:
    """Sequential creates under one parent: each takes the parent's next
    child version as its sequence number, so in a linearizable order the
    numbers grow (creates without an answer may leave gaps). State: the
    last number given out."""

    def init(self):
        return -1

    def step(self, s, op):
        if op.f != "create":
            raise ValueError(f"ids: no operation {op.f!r}")
        seq = op.args["seq"] if op.outcome == "info" else op.result["seq"]
        return seq if seq > s else None
