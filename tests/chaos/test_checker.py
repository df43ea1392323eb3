"""The checker must accept what a linearizable store may answer and reject
what it may not: hand-made histories for each model, a simulated store for
long histories, and one wrong answer planted in them."""

import random
import time

import checker
import linearizability
import models
from history import Op, read_ops, write_jsonl

K = "/k"


def op(f, invoke, complete, outcome="ok", result=None, key=K, process=0, session=1, final=False, **args):
    return Op(
        index=0,
        process=process,
        f=f,
        key=key,
        args=args,
        invoke=invoke,
        complete=None if outcome == "info" else complete,
        outcome=outcome,
        result=result,
        session=session,
        end_session=session,
        final=final,
    )


def numbered(ops):
    ops = sorted(ops, key=lambda o: o.invoke)
    for i, o in enumerate(ops):
        o.index = i
    return ops


def lin(model, ops):
    return linearizability.check(model, [checker.Entry(o) for o in numbered(ops)])


def rd(t0, t1, value, version, **kw):
    return op("read", t0, t1, result={"value": value, "version": version}, **kw)


def wr(t0, t1, value, version=None, outcome="ok", **kw):
    return op("write", t0, t1, outcome, None if version is None else {"version": version}, value=value, **kw)


def cas(t0, t1, expect, value, version=None, outcome="ok", **kw):
    result = {"version": version} if outcome == "ok" else {"error": "BadVersion"} if outcome == "fail" else None
    return op("cas", t0, t1, outcome, result, expect=expect, value=value, **kw)


# ---------------------------------------------------------------------------
# The search itself, on a register


def test_sequential_register_history_is_linearizable():
    ops = [wr(0, 1, "a", 1), rd(2, 3, "a", 1), cas(4, 5, 1, "b", 2), rd(6, 7, "b", 2)]
    assert lin(models.Register(), ops).valid is True


def test_read_of_an_overwritten_value_is_not_linearizable():
    ops = [wr(0, 1, "a", 1), wr(2, 3, "b", 2), rd(4, 5, "a", 1)]
    res = lin(models.Register(), ops)
    assert res.valid is False
    assert numbered(ops)[res.stuck_op].f == "read"


def test_read_may_see_a_write_that_has_not_returned_yet():
    ops = [wr(0, 10, "a", 1), rd(1, 2, "a", 1), rd(3, 4, "a", 1)]
    assert lin(models.Register(), ops).valid is True


def test_new_then_old_reads_in_real_time_order_are_not_linearizable():
    ops = [wr(0, 10, "a", 1), rd(1, 2, "a", 1), rd(3, 4, "", 0)]
    assert lin(models.Register(), ops).valid is False


def test_concurrent_reads_may_disagree_on_a_concurrent_write():
    ops = [wr(0, 10, "a", 1), rd(1, 5, "a", 1), rd(2, 6, "", 0)]
    assert lin(models.Register(), ops).valid is True


def test_write_answer_must_be_the_next_version():
    assert lin(models.Register(), [wr(0, 1, "a", 2)]).valid is False


def test_unknown_write_may_fill_a_version_gap():
    with_unknown = [wr(0, 1, "a", 1), wr(2, None, "x", outcome="info"), wr(3, 4, "b", 3)]
    assert lin(models.Register(), with_unknown).valid is True
    without = [wr(0, 1, "a", 1), wr(3, 4, "b", 3)]
    assert lin(models.Register(), without).valid is False


def test_unknown_write_may_never_take_effect():
    ops = [wr(0, None, "x", outcome="info"), wr(1, 2, "a", 1), rd(3, 4, "a", 1)]
    assert lin(models.Register(), ops).valid is True


def test_unknown_write_cannot_take_effect_before_it_was_invoked():
    ops = [rd(0, 1, "x", 1), wr(2, None, "x", outcome="info")]
    assert lin(models.Register(), ops).valid is False


def test_unknown_cas_that_was_seen_must_fit_somewhere():
    # x was seen, so it took effect; from version 0 it would have had to
    # come before a, whose answer (version 1) leaves no room for it.
    ops = [cas(0, None, 0, "x", outcome="info"), wr(1, 2, "a", 1)]
    entries = [checker.Entry(o) for o in numbered(ops)]
    entries[0].must_apply = True
    assert linearizability.check(models.Register(), entries).valid is False
    entries[0].must_apply = False
    assert linearizability.check(models.Register(), entries).valid is True


def test_refused_cas_must_have_seen_another_version():
    refused_wrongly = [wr(0, 1, "a", 1), cas(2, 3, 1, "b", outcome="fail")]
    assert lin(models.Register(), refused_wrongly).valid is False
    refused = [wr(0, 1, "a", 1), cas(2, 3, 0, "b", outcome="fail")]
    assert lin(models.Register(), refused).valid is True
    # Refused because a concurrent write moved the version on first.
    racing = [wr(0, 1, "a", 1), wr(2, 5, "c", 2), cas(3, 4, 1, "b", outcome="fail")]
    assert lin(models.Register(), racing).valid is True


def test_two_successful_cas_from_the_same_version_are_not_linearizable():
    ops = [cas(0, 2, 0, "a", 1), cas(0.5, 2.5, 0, "b", 1)]
    assert lin(models.Register(), ops).valid is False


def test_unknown_cas_takes_effect_only_from_its_expected_version():
    ops = [cas(0, None, 5, "x", outcome="info"), wr(1, 2, "a", 1), rd(3, 4, "x", 2)]
    assert lin(models.Register(), ops).valid is False
    ops = [cas(0, None, 1, "x", outcome="info"), wr(1, 2, "a", 1), rd(3, 4, "x", 2)]
    assert lin(models.Register(), ops).valid is True


def test_empty_history_is_linearizable():
    assert linearizability.check(models.Register(), []).valid is True


def test_search_budget_gives_unknown_not_valid():
    ops = [wr(i, None, f"x{i}", outcome="info") for i in range(12)] + [rd(20, 21, "nope", 99)]
    res = linearizability.check(models.Register(), [checker.Entry(o) for o in numbered(ops)], max_steps=50)
    assert res.valid == "unknown"


# ---------------------------------------------------------------------------
# A simulated linearizable store: long histories pass, one planted wrong
# answer fails


def simulate_register(seed, processes=5, ops_per_process=400, unknown=0.03):
    """Processes run ops one after another on a register that takes each
    op at a random point inside its interval. Some writes get no answer:
    half of those take effect, half never do. A final read ends it."""
    rng = random.Random(seed)
    plans = []
    end = 0
    for p in range(processes):
        t = rng.random()
        for k in range(ops_per_process):
            t0 = t
            t1 = t0 + rng.uniform(0.001, 0.05)
            point = rng.uniform(t0, t1)
            plans.append((point, p, k, t0, t1))
            t = t1 + rng.uniform(0, 0.01)
        end = max(end, t)
    plans.sort()
    value, version = "", 0
    out = []
    for point, p, k, t0, t1 in plans:
        kind = rng.choice(["read", "write", "cas", "cas"])
        lost = kind != "read" and rng.random() < unknown
        applies = not lost or rng.random() < 0.5
        if kind == "read":
            o = rd(t0, t1, value, version, process=p, session=100 + p)
        elif kind == "write":
            o = wr(t0, t1, f"{p}-{k}", version + 1, process=p, session=100 + p)
            if applies:
                value, version = f"{p}-{k}", version + 1
        else:
            expect = version if rng.random() < 0.6 else max(0, version - 1)
            if expect == version:
                o = cas(t0, t1, expect, f"{p}-{k}", version + 1, process=p, session=100 + p)
                if applies:
                    value, version = f"{p}-{k}", version + 1
            else:
                o = cas(t0, t1, expect, f"{p}-{k}", outcome="fail", process=p, session=100 + p)
        if lost:
            o.outcome, o.result, o.complete = "info", None, None
        out.append(o)
    out.append(rd(end + 1, end + 2, value, version, final=True))
    return numbered(out)


def test_long_simulated_history_is_linearizable_and_fast():
    for seed, unknown in [(1, 0.03), (2, 0.2)]:
        ops = simulate_register(seed, processes=8, ops_per_process=500, unknown=unknown)
        start = time.monotonic()
        v = checker.check("register", ops)
        assert v.valid is True, v.report()
        assert time.monotonic() - start < 10


def test_one_stale_read_planted_in_a_long_history_is_found():
    ops = simulate_register(3, processes=8, ops_per_process=500, unknown=0.1)
    reads = [o for o in ops if o.f == "read" and o.result["version"] >= 2 and not o.final]
    victim = reads[len(reads) // 2]
    victim.result = {"value": "", "version": 0}
    v = checker.check("register", ops)
    assert v.valid is False
    lin = [text for kind, text in v.problems if kind == "linearizability"]
    assert len(lin) == 1 and f"#{victim.index} " in lin[0]


def test_one_lost_write_planted_in_a_long_history_is_found():
    ops = simulate_register(4, processes=8, ops_per_process=500, unknown=0.1)
    final = ops[-1]
    writes = [o for o in ops if o.f in ("write", "cas") and o.outcome == "ok"]
    last = max(writes, key=lambda o: o.result["version"])
    assert final.result["version"] == last.result["version"]
    # The last acknowledged write is gone: the final read sees its predecessor.
    final.result = {"value": "lost", "version": last.result["version"] - 1}
    v = checker.check("register", ops)
    assert {"lost write", "linearizability"} <= {k for k, _ in v.problems}


# ---------------------------------------------------------------------------
# The other models


def add(t0, t1, element, expect, version=None, outcome="ok", key=K, **kw):
    result = {"version": version} if outcome == "ok" else {"error": "BadVersion"} if outcome == "fail" else None
    return op("add", t0, t1, outcome, result, key=key, element=element, expect=expect, **kw)


def sread(t0, t1, elements, version, key=K, **kw):
    return op("read", t0, t1, result={"elements": elements, "version": version}, key=key, **kw)


def test_set_model():
    ok = [add(0, 1, 7, 0, 1), add(2, 3, 8, 1, 2), sread(4, 5, [7, 8], 2)]
    assert lin(models.Set(), ok).valid is True
    lost = [add(0, 1, 7, 0, 1), add(2, 3, 8, 1, 2), sread(4, 5, [8], 2)]
    assert lin(models.Set(), lost).valid is False


def test_set_checker_reports_a_lost_element_and_a_stranger():
    ops = numbered(
        [
            add(0, 1, 7, 0, 1),
            add(2, 3, 8, 1, 2),
            add(2.5, None, 9, 2, outcome="info"),
            sread(10, 11, [8, 9, 42], 3, final=True),
        ]
    )
    v = checker.check("set", ops)
    kinds = {k for k, _ in v.problems}
    assert "lost element" in kinds and "unexpected element" in kinds
    assert v.valid is False


def test_set_checker_accepts_an_unknown_add_that_took_effect():
    ops = numbered(
        [
            add(0, 1, 7, 0, 1),
            add(2, None, 9, 1, outcome="info"),
            add(3, 4, 8, 2, 3),
            sread(10, 11, [7, 8, 9], 3, final=True),
        ]
    )
    v = checker.check("set", ops)
    assert v.valid is True, v.report()


def enq(t0, t1, element, seq=None, outcome="ok", key=K, **kw):
    return op("enqueue", t0, t1, outcome, {"seq": seq} if outcome == "ok" else None, key=key, element=element, **kw)


def deq(t0, t1, seq, element, head_version, outcome="ok", key=K, **kw):
    result = {} if outcome == "ok" else {"error": ["RolledBack"]} if outcome == "fail" else None
    return op("dequeue", t0, t1, outcome, result, key=key, seq=seq, element=element, head_version=head_version, **kw)


def qread(t0, t1, items, key=K, **kw):
    return op("read", t0, t1, result={"items": [s for s, _ in items], "elements": [e for _, e in items]}, key=key, **kw)


def test_queue_model_is_fifo():
    fifo = [enq(0, 1, 10, 0), enq(2, 3, 11, 1), deq(4, 5, 0, 10, 0), deq(6, 7, 1, 11, 1), qread(8, 9, [])]
    assert lin(models.Queue(), fifo).valid is True
    out_of_order = [enq(0, 1, 10, 0), enq(2, 3, 11, 1), deq(4, 5, 1, 11, 0)]
    assert lin(models.Queue(), out_of_order).valid is False
    # Refused because another dequeue moved the head first.
    refused = [enq(0, 1, 10, 0), deq(2, 3, 0, 10, 0), deq(2.5, 4, 0, 10, 0, outcome="fail")]
    assert lin(models.Queue(), refused).valid is True
    refused_wrongly = [enq(0, 1, 10, 0), deq(2, 3, 0, 10, 0, outcome="fail")]
    assert lin(models.Queue(), refused_wrongly).valid is False


def test_queue_checker_finds_double_and_lost_items():
    ops = numbered(
        [
            enq(0, 1, 10, 0),
            enq(2, 3, 11, 1),
            deq(4, 5, 0, 10, 0),
            deq(6, 7, 0, 10, 1),
            qread(10, 11, [], final=True),
        ]
    )
    v = checker.check("queue", ops)
    kinds = {k for k, _ in v.problems}
    assert {"double dequeue", "lost item", "linearizability"} <= kinds


def test_queue_checker_accepts_an_unknown_enqueue_seen_later():
    ops = numbered(
        [
            enq(0, None, 10, outcome="info"),
            enq(2, 3, 11, 3),
            qread(10, 11, [(2, 10), (3, 11)], final=True),
        ]
    )
    v = checker.check("queue", ops)
    assert v.valid is True, v.report()


def create(t0, t1, tag, seq=None, outcome="ok", key=K, **kw):
    result = {"seq": seq, "name": f"id-{tag}-{seq:010d}"} if outcome == "ok" else None
    return op("create", t0, t1, outcome, result, key=key, tag=tag, **kw)


def ids_final(names, t=100):
    return op("read", t, t + 1, result={"names": names}, final=True)


def test_ids_must_grow_in_real_time_order():
    ok = [create(0, 1, "a", 0), create(0.5, 2, "b", 2), create(3, 4, "c", 3)]
    assert lin(models.SequentialIds(), ok).valid is True
    backwards = [create(0, 1, "a", 5), create(2, 3, "b", 3)]
    assert lin(models.SequentialIds(), backwards).valid is False


def test_ids_checker_finds_duplicates_losses_and_strangers():
    ops = numbered(
        [
            create(0, 1, "a", 0),
            create(0.5, 1.5, "b", 0),
            create(2, 3, "c", 1),
            ids_final(["id-a-0000000000", "id-zz-0000000007"]),
        ]
    )
    v = checker.check("ids", ops)
    kinds = {k for k, _ in v.problems}
    assert {"duplicate id", "lost id", "unexpected id"} <= kinds


def test_ids_checker_accepts_unknown_creates_seen_in_the_final_listing():
    ops = numbered(
        [
            create(0, 1, "a", 0),
            create(2, None, "b", outcome="info"),
            create(3, 4, "c", 2),
            ids_final(["id-a-0000000000", "id-b-0000000001", "id-c-0000000002"]),
        ]
    )
    v = checker.check("ids", ops)
    assert v.valid is True, v.report()


# ---------------------------------------------------------------------------
# Session order and lost writes in the register checker


def get(t0, t1, value, version, **kw):
    return op("get", t0, t1, result={"value": value, "version": version}, **kw)


def test_session_reading_an_older_version_than_its_own_write_is_a_violation():
    ops = numbered(
        [
            wr(0, 1, "a", 1, session=7),
            get(2, 3, "", 0, session=7),  # a plain read: not linearizable, but ordered
            rd(10, 11, "a", 1, final=True, session=9),
        ]
    )
    v = checker.check("register", ops, reads="session")
    assert [k for k, _ in v.problems] == ["session order"]
    # Another session may read the old version with a plain read.
    ops[1].session = ops[1].end_session = 8
    assert checker.check("register", ops, reads="session").valid is True


def test_session_order_ignores_ops_across_a_new_session():
    ops = numbered([wr(0, 1, "a", 1, session=7), get(2, 3, "", 0, session=7), rd(10, 11, "a", 1, final=True)])
    ops[1].end_session = 8
    assert checker.check("register", ops, reads="session").valid is True


def test_register_checker_reports_a_lost_write():
    ops = numbered([wr(0, 1, "a", 1), wr(2, 3, "b", 2), rd(10, 11, "a", 1, final=True)])
    v = checker.check("register", ops, reads="session")
    kinds = {k for k, _ in v.problems}
    assert {"lost write", "linearizability"} <= kinds


def test_session_mode_does_not_check_reads_for_linearizability():
    ops = numbered([wr(0, 1, "a", 1), rd(2, 3, "", 0, session=5), rd(10, 11, "a", 1, final=True)])
    assert checker.check("register", ops, reads="session").valid is True
    assert checker.check("register", ops, reads="linearizable").valid is False


def test_missing_final_read_is_a_problem():
    v = checker.check("register", numbered([wr(0, 1, "a", 1)]))
    assert v.valid is False


# ---------------------------------------------------------------------------
# Files


def test_history_round_trips_through_json_lines(tmp_path):
    ops = simulate_register(3, processes=2, ops_per_process=20)
    path = tmp_path / "history.jsonl"
    write_jsonl(path, ops)
    back = read_ops(path)
    assert [o.to_json() for o in back] == [o.to_json() for o in ops]


def test_ranges_round_trip():
    values = [0, 1, 2, 5, 7, 8, 100]
    assert checker.to_ranges(values) == [[0, 2], [5, 5], [7, 8], [100, 100]]
    assert checker.from_ranges(checker.to_ranges(values)) == values


def test_refused_cas_may_rely_on_an_unknown_write_after_the_last_known_version():
    ops = [wr(0, 1, "a", 1), wr(2, None, "x", outcome="info"), cas(3, 4, 1, "b", outcome="fail")]
    v = checker.check("register", numbered(ops))
    assert [k for k, _ in v.problems] == ["final read"]  # and no linearizability problem


def test_ids_checker_finds_a_create_answered_with_another_creates_name():
    wrong = create(2, 3, "b", 1)
    wrong.result["name"] = "id-a-0000000001"
    ops = numbered([create(0, 1, "a", 0), wrong, ids_final(["id-a-0000000000", "id-b-0000000001"])])
    v = checker.check("ids", ops)
    assert "answer of another request" in {k for k, _ in v.problems}


def test_ids_sequence_numbers_may_skip_and_cversion_may_run_ahead_of_them():
    # A leader that fails to commit creates it prepped may skip their
    # numbers; cversion as clients see it (2 * creates - children) then
    # runs ahead of the next number. Neither goes back in the session.
    listing = op("list", 2, 3, result={"cversion": 6, "seqs": [[0, 0], [3, 3]]}, session=7)
    ops = numbered([create(0, 1, "a", 0, session=7), listing, create(4, 5, "c", 4, session=7)])
    ops.append(ids_final(["id-a-0000000000", "id-c-0000000004"]))
    ops = numbered(ops)
    assert checker.check("ids", ops).valid is True


def test_verdict_names_the_op_no_order_could_place():
    ops = numbered([wr(0, 1, "a", 1), cas(2, 3, 1, "b", outcome="fail"), rd(10, 11, "a", 1, final=True)])
    v = checker.check("register", ops)
    assert [k for k, _ in v.problems] == ["linearizability"]
    assert [o.f for o in v.stuck] == ["cas"] and v.stuck[0].outcome == "fail"


def test_ids_checker_finds_numbers_going_back_in_real_time():
    ops = numbered([create(0, 1, "a", 5), create(2, 3, "b", 3), ids_final(["id-a-0000000005", "id-b-0000000003"])])
    v = checker.check("ids", ops)
    assert "linearizability" in {k for k, _ in v.problems}
    assert v.stuck[0].args["tag"] == "b"


def test_ids_checker_is_fast_with_many_unanswered_creates_that_took_effect():
    ops, names, seq = [], [], 0
    for i in range(3000):
        t = i * 0.01
        lost = i % 25 == 0
        tag = f"w{i % 5}n{i}"
        ops.append(create(t, t + 0.015, tag, seq, outcome="info" if lost else "ok", process=i % 5))
        names.append(f"id-{tag}-{seq:010d}")
        seq += 1
    ops.append(ids_final(names, t=100))
    start = time.monotonic()
    v = checker.check("ids", numbered(ops))
    assert v.valid is True, v.report()
    assert time.monotonic() - start < 5
