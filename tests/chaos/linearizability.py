"""A linearizability checker: the Wing & Gong search with Lowe's
memoisation, as in "Testing for linearizability" (Gavin Lowe, 2017).

The history of one object (one key) becomes a list of call and return
entries sorted by time. The search walks the list from the front: at a
call it tries to linearize that operation now (the model must accept it
in the current state); if the pair (set of linearized operations, new
state) was not seen before, the operation's call and return entries are
lifted out of the list, the step is pushed on a stack, and the walk starts
again from the front. Reaching a return entry means that operation had to
take effect before that moment and did not in any order tried so far: the
last step is undone and the walk continues past it. The history is
linearizable when no return entry is left; it is not when a return entry
is reached with nothing left to undo. The memo of (set, state) pairs keeps
the search from exploring the same configuration twice.

Operations whose outcome is unknown ("info") have no return entry: they
may be linearized at any point after their call, or never. An "info"
operation that is known to have taken effect (`must_apply`) gets a return
entry at +infinity: it must be linearized somewhere. An operation marked
`untracked` is left out of the memo's set of linearized operations: the
caller vouches that once the state is known, whether such an operation
can still be linearized does not depend on whether it was (the checker
marks so the unanswered writes that no read saw; see
checker._versioned_groups).

A model is an object with `init()` (the initial state, hashable) and
`step(state, op)`, which returns the state after `op` or None when `op`
cannot take effect with the answer it got in that state.

Histories of different keys are checked one by one (P-compositionality:
a history is linearizable iff the history of every object is), which is
what keeps histories of thousands of operations fast.
"""

from dataclasses import dataclass, field

INF = float("inf")


@dataclass
class Result:
    valid: object  # True, False, or "unknown" when the search budget ran out
    ops: int = 0
    steps: int = 0
    # When not valid: the operation no order could linearize in time, the
    # longest order found (as indices into the op list) and its end state.
    stuck_op: object = None
    best_order: list = field(default_factory=list)
    best_state: object = None


def check(model, ops, max_steps=10_000_000):
    """Checks the history `ops` (objects with invoke, complete, outcome,
    and optionally must_apply) of one object against `model`."""
    n = len(ops)
    events = []
    for i, op in enumerate(ops):
        events.append((op.invoke, 0, i))
        if op.outcome != "info":
            events.append((op.complete, 1, i))
        elif getattr(op, "must_apply", False):
            events.append((INF, 1, i))
    # At equal times a call sorts before a return: such operations count
    # as concurrent, the lenient reading.
    events.sort()
    m = len(events)
    head = m  # the sentinel before the first entry
    nxt = [e + 1 for e in range(m)] + [0 if m else -1]
    prv = [e - 1 for e in range(m)] + [-1]
    if m:
        nxt[m - 1] = -1
        prv[0] = head
    bit = [0 if getattr(op, "untracked", False) else 1 << i for i, op in enumerate(ops)]
    is_call = [kind == 0 for _, kind, _ in events]
    opid = [i for _, _, i in events]
    ret_of = [-1] * m  # call entry -> its return entry
    call_at = [-1] * n
    for e in range(m):
        if is_call[e]:
            call_at[opid[e]] = e
    for e in range(m):
        if not is_call[e]:
            ret_of[call_at[opid[e]]] = e

    def unlink(e):
        nxt[prv[e]] = nxt[e]
        if nxt[e] != -1:
            prv[nxt[e]] = prv[e]

    def relink(e):
        if nxt[e] != -1:
            prv[nxt[e]] = e
        nxt[prv[e]] = e

    remaining = sum(1 for e in range(m) if not is_call[e])
    state = model.init()
    mask = 0
    seen = set()
    stack = []  # (call entry, state before it, whether it kept the state)
    steps = 0
    best_depth = -1
    best = Result(valid=False, ops=n)
    e = nxt[head]
    while remaining:
        steps += 1
        if steps > max_steps:
            return Result(valid="unknown", ops=n, steps=steps)
        assert e != -1, "a return entry is always ahead while one remains"
        if is_call[e]:
            i = opid[e]
            new = model.step(state, ops[i])
            if new is not None:
                key = (mask | bit[i], new)
                if key not in seen:
                    seen.add(key)
                    stack.append((e, state, new is state))
                    state = new
                    mask = key[0]
                    unlink(e)
                    r = ret_of[e]
                    if r != -1:
                        unlink(r)
                        remaining -= 1
                    e = nxt[head]
                    continue
            e = nxt[e]
        else:
            # The operation of this return entry was not linearized in time.
            depth = len(stack)
            if depth > best_depth:
                best_depth = depth
                best = Result(
                    valid=False,
                    ops=n,
                    stuck_op=opid[e],
                    best_order=[opid[c] for c, _, _ in stack],
                    best_state=state,
                )
            if not stack:
                best.steps = steps
                return best
            while True:
                c, state, kept = stack.pop()
                mask &= ~bit[opid[c]]
                r = ret_of[c]
                if r != -1:
                    relink(r)
                    remaining += 1
                relink(c)
                # An op that left the state as it was (a read, a refused
                # write) can always be linearized as soon as it may be:
                # nothing that must precede it is still pending, and moving
                # it earlier changes no state. So if taking it first led
                # nowhere, neither does any other choice here.
                if not kept or not stack:
                    break
            if kept:
                best.steps = steps
                return best
            e = nxt[c]
    return Result(valid=True, ops=n, steps=steps)
