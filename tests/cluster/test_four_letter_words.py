"""`mntr`, `srvr` and `stat` of quorum members, checked against both
servers: the leader reports its learners and proposal sizes, followers say
follower, the key sets are ZooKeeper 3.8's (tests/interop/fixtures), and a
member that lost its quorum answers that it is not serving.

ZooKeeper prints per-namespace read/write summaries
(`zk_avg_<ns>_write_per_namespace`...) that Ensemble does not keep
(docs/compatibility.md); they are left out of the key comparison."""

import re
import time
from pathlib import Path

import pytest
from kazoo.client import KazooClient

from clusterlib import four_letter, impls

FIXTURES = Path(__file__).resolve().parent.parent / "interop" / "fixtures"

NOT_SERVING = "This ZooKeeper instance is not currently serving requests\n"

PER_NAMESPACE = re.compile(r"^zk_(avg|min|max|cnt|sum)_.+_(read|write)_per_namespace$")
LEARNER_KEY = re.compile(r"^zk_(avg|min|max|cnt|sum|p50|p95|p99|p999)_(\d+)_learner_handler_")


def wait_until(predicate, timeout, what):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def mntr(cluster, i):
    text = four_letter(cluster.client_port(i), "mntr") or ""
    return dict(line.split("\t", 1) for line in text.splitlines() if "\t" in line)


def key_set(m):
    """The keys without per-namespace summaries, learner ids as `<sid>`."""
    out = set()
    for k in m:
        if PER_NAMESPACE.match(k):
            continue
        out.add(re.sub(r"^(zk_[a-z0-9]+)_\d+_learner_handler_", r"\1_<sid>_learner_handler_", k))
    return out


def fixture(role):
    lines = (FIXTURES / f"mntr_keys_zk38_{role}.txt").read_text().splitlines()
    return {k for k in lines if k and not k.startswith("#") and not PER_NAMESPACE.match(k)}


@pytest.mark.parametrize("impl", impls())
def test_leader_mntr_counts_learners_and_followers_say_follower(cluster_factory, impl):
    c = cluster_factory(impl)
    lead = c.leader()
    followers = [i for i in c.ids if i != lead]

    m = wait_until(
        lambda: (lambda m: m if m.get("zk_synced_followers") == "2" else None)(mntr(c, lead)),
        30,
        "the leader to count two synced followers",
    )
    assert m["zk_server_state"] == "leader"
    assert m["zk_peer_state"] == "leading - broadcast"
    assert m["zk_learners"] == "2"
    assert m["zk_synced_non_voting_followers"] == "0"
    assert m["zk_synced_observers"] == "0"
    assert m["zk_pending_syncs"] == "0"
    assert m["zk_quorum_size"] == "3"
    assert int(m["zk_leader_uptime"]) > 0
    assert key_set(m) == fixture("leader"), (
        f"missing {sorted(fixture('leader') - key_set(m))}, "
        f"extra {sorted(key_set(m) - fixture('leader'))}"
    )
    learner_ids = {int(x.group(2)) for x in map(LEARNER_KEY.match, m) if x}
    assert learner_ids == set(followers)

    for f in followers:
        fm = mntr(c, f)
        assert fm["zk_server_state"] == "follower", f
        assert fm["zk_peer_state"] == "following - broadcast", f
        assert fm["zk_quorum_size"] == "3", f
        assert key_set(fm) == fixture("follower"), (
            f"member {f}: missing {sorted(fixture('follower') - key_set(fm))}, "
            f"extra {sorted(key_set(fm) - fixture('follower'))}"
        )
        assert "Proposal sizes" not in four_letter(c.client_port(f), "srvr")

    # Writes through a follower are proposed by the leader.
    zk = KazooClient(hosts=c.host_port(followers[0]), timeout=15.0)
    zk.start(timeout=15)
    try:
        zk.create("/fl-quorum", b"x" * 50)
    finally:
        zk.stop()
        zk.close()
    srvr = four_letter(c.client_port(lead), "srvr")
    sizes = re.search(r"\nProposal sizes last/min/max: (-?\d+)/(-?\d+)/(-?\d+)\n", srvr)
    assert sizes, srvr
    last, lo, hi = map(int, sizes.groups())
    assert 0 < lo <= last <= hi, srvr
    m = mntr(c, lead)
    assert (m["zk_last_proposal_size"], m["zk_min_proposal_size"], m["zk_max_proposal_size"]) == (
        str(last),
        str(lo),
        str(hi),
    )
    stat = four_letter(c.client_port(lead), "stat")
    assert stat.split("\n")[1] == "Clients:", stat
    assert "\nMode: leader\n" in stat and "\nProposal sizes last/min/max: " in stat

    # A learner that dies leaves the leader's counts.
    c.kill(followers[0])
    wait_until(
        lambda: mntr(c, lead).get("zk_synced_followers") == "1"
        and mntr(c, lead).get("zk_learners") == "1",
        30,
        "the leader to count one follower",
    )


@pytest.mark.parametrize("impl", impls())
def test_member_without_quorum_says_not_serving(cluster_factory, impl):
    c = cluster_factory(impl)
    lead = c.leader()
    for i in c.ids:
        if i != lead:
            c.kill(i)
    port = c.client_port(lead)
    wait_until(lambda: four_letter(port, "srvr") == NOT_SERVING, 60, "srvr to say not serving")
    assert four_letter(port, "stat") == NOT_SERVING
    assert four_letter(port, "mntr") == NOT_SERVING
    assert four_letter(port, "isro") == "null"
    assert four_letter(port, "ruok") == "imok"


@pytest.mark.parametrize("impl", impls())
def test_read_only_member_says_so(cluster_factory, impl):
    c = cluster_factory(
        impl,
        extra_cfg="readonlymode.enabled=true\nlocalSessionsEnabled=true\n",
        jvm_flags=["-Dreadonlymode.enabled=true"],
    )
    survivor = c.ids[0]
    for i in c.ids[1:]:
        c.kill(i)
    port = c.client_port(survivor)
    wait_until(lambda: four_letter(port, "isro") == "ro", 30, "isro to answer ro")
    for w in ("srvr", "stat"):
        lines = wait_until(
            lambda: (lambda t: t.split("\n") if t and t != NOT_SERVING else None)(
                four_letter(port, w)
            ),
            30,
            f"{w} of the read-only member",
        )
        assert lines[1] == "READ-ONLY mode; serving only read-only clients", lines
        assert "Mode: read-only" in lines, lines
    m = wait_until(lambda: mntr(c, survivor) or None, 30, "mntr of the read-only member")
    # A read-only server is no quorum server: the standalone keys.
    assert m["zk_server_state"] == "read-only"
    assert key_set(m) == fixture("standalone")
