"""Where ZooKeeper 3.8 and 3.9 answer differently, and Ensemble follows 3.9.

The differential suite (tests/differential) compares Ensemble with Debian's
ZooKeeper 3.8.0, but Ensemble implements ZooKeeper 3.9.5. Each behaviour that
changed between the two is taken out of the compared scripts and pinned here:
the same steps run on both servers, and the test asserts ZooKeeper 3.8's
answer and Ensemble's (3.9's) answer, citing the 3.9 change. If the reference
server is upgraded, the 3.8 assertions fail: move the steps back into
tests/differential/scripts.py then.

Steps and transcripts are those of the differential harness (see its README):
results are normalised, events are per client, with the client's own reply."""

import os
import struct
import sys

import pytest
from kazoo.security import OPEN_ACL_UNSAFE, make_acl, make_digest_acl

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "differential"))

import harness as H  # noqa: E402
import zkproto as P  # noqa: E402

ALICE = make_digest_acl("alice", "secret", all=True)
WORLD_NO_READ = make_acl("world", "anyone", write=True, create=True, delete=True, admin=True)


@pytest.fixture(scope="module")
def servers():
    """One ZooKeeper 3.8 and one Ensemble for the whole module; every test
    works under its own top-level path."""
    pair = H.start_servers()
    yield pair
    for s in pair.values():
        s.close()


def run(servers, steps):
    """Runs the steps on both servers; returns {kind: [(result, events)]}."""
    out = H.run_pair(servers, steps)
    return {k: [(r, ev) for _, r, ev in t] for k, t in out.items()}


def results(transcript):
    return [r for r, _ in transcript]


def events(transcript, step, client):
    """The watch events (type, path) client received at the step."""
    return [(e[1], e[2]) for e in transcript[step][1].get(client, []) if e[0] == "event"]


def stat_field(stat_text, name):
    return stat_text.split(f"{name}=", 1)[1].split()[0].rstrip(")")


# --- multi ---------------------------------------------------------------------------

def _raw_multi_create2(path):
    """A multi request body holding one create2, to read the reply's header."""
    return P.Multi([P.Create(15, path, b"x", OPEN_ACL_UNSAFE, 0)]).serialize()


def test_create2_inside_multi_answers_path_and_stat(servers):
    """ZOOKEEPER-4026 (3.9.0, backported to 3.8.2): MultiOperationRecord keeps
    the sub-op's type, so create2 in a multi answers a Create2Response (result
    header type 15: path and Stat). 3.8.0 decays create2 to create and answers
    the path only (header type 1)."""
    t = run(servers, [
        (0, "multi", [("create2", "/c2m", b"x"), ("create", "/c2m/kid", b"")]),
        (0, "raw", 14, _raw_multi_create2("/c2raw")),
    ])
    zk, ens = t["zookeeper"], t["ensemble"]

    assert results(zk)[0] == ["/c2m", "/c2m/kid"]
    (path, stat), kid = results(ens)[0]
    assert (path, kid) == ("/c2m", "/c2m/kid")
    assert stat_field(stat, "dataLength") == "1" and stat_field(stat, "version") == "0"

    # kazoo passes every multi reply through Transaction.unchroot, which turns
    # the raw body into a list of byte values.
    header_type = lambda body: struct.unpack_from(">i", bytes(body))[0]  # noqa: E731
    assert header_type(results(zk)[1]) == 1
    assert header_type(results(ens)[1]) == 15


# --- ACLs ----------------------------------------------------------------------------

def test_ip_acl_accepts_ipv6_addresses(servers):
    """ZOOKEEPER-4240 (3.9.4): IPAuthenticationProvider accepts IPv6 addresses
    (and prefixes) in ip ACLs. 3.8 rejects `ip:::1` as InvalidACL. The client
    connects from 127.0.0.1, so on Ensemble the node exists but is not
    readable for it."""
    ipv6 = make_acl("ip", "::1", all=True)
    t = run(servers, [
        (0, "create", "/ipv6", b"", {"acl": [ipv6]}),
        (1, "get", "/ipv6"),
        (1, "get_acls", "/ipv6"),
    ])
    zk, ens = results(t["zookeeper"]), results(t["ensemble"])

    assert zk == [("error", "InvalidACLError"), ("error", "NoNodeError"), ("error", "NoNodeError")]
    assert ens[0] == "/ipv6"
    assert ens[1] == ("error", "NoAuthError")
    assert ens[2] == ("error", "NoAuthError")


def test_exists_needs_read_permission(servers):
    """ZOOKEEPER-2590 (3.9.2, backported to 3.8.4): exists() checks READ on
    an existing node and answers NoAuth without it (and sets no watch);
    3.8.0 returns the Stat to anybody. A missing node is not checked."""
    t = run(servers, [
        (0, "create", "/xs", b"secret", {"acl": [ALICE]}),
        (0, "create", "/xnoread", b"r", {"acl": [WORLD_NO_READ]}),
        (1, "exists", "/xs"),
        (1, "exists", "/xnoread"),
        (1, "exists", "/xnoread", {"watch": True}),
        (0, "set", "/xnoread", b"changed"),
        (1, "exists", "/xnoread/missing"),
    ])
    zk, ens = t["zookeeper"], t["ensemble"]

    for step in (2, 3, 4):
        assert results(zk)[step].startswith("Stat(")
        assert results(ens)[step] == ("error", "NoAuthError")
    # No event either way: 3.9 set no watch; Debian's 3.8.0 carries the fix
    # of CVE-2024-23944 (ZOOKEEPER-4799), which drops events on nodes the
    # watching session cannot read.
    assert events(zk, 5, 1) == events(ens, 5, 1) == []
    assert results(zk)[6] is None and results(ens)[6] is None


# --- watch modes -----------------------------------------------------------------------
# 3.8's WatchManager keeps one WatcherMode per (session, path), which the last
# addWatch or one-shot watch replaces. 3.9.5 keeps a set of modes (WatchStats)
# per (session, path) (ZOOKEEPER-4466, 3.9.0), matches the data/children
# watcher types of checkWatches/removeWatches to the one-shot (STANDARD) mode
# only (ZOOKEEPER-4471, 3.9.0) and never files a recursive watch in the child
# watch table (DataTree.addWatch).

def test_data_and_children_types_do_not_match_a_persistent_watch(servers):
    """ZOOKEEPER-4471 (3.9.0): checkWatches/removeWatches of type data or
    children look for a one-shot watch only (DataTree.containsWatcher/
    removeWatch with WatcherMode.STANDARD), so a persistent watch is
    NoWatcher for them, stays in place and keeps firing; type any still
    finds it. 3.8 matches them to the persistent watch and removeWatches
    removes that half of it."""
    t = run(servers, [
        (0, "create", "/pw", b""),
        (1, "add_watch", "/pw", "persistent"),
        (1, "check_watches", "/pw", "data"),
        (1, "check_watches", "/pw", "children"),
        (1, "remove_watches", "/pw", "data"),
        (0, "set", "/pw", b"1"),
        (1, "remove_watches", "/pw", "children"),
        (0, "create", "/pw/c", b""),
        (1, "check_watches", "/pw", "any"),
    ])
    zk, ens = t["zookeeper"], t["ensemble"]

    assert results(zk)[2:5] == [None, None, None]
    assert events(zk, 5, 1) == []
    assert results(zk)[6] is None
    assert events(zk, 7, 1) == []
    assert results(zk)[8] == ("error", "NoWatcherError")

    no_watcher = ("error", "NoWatcherError")
    assert results(ens)[2:5] == [no_watcher, no_watcher, no_watcher]
    assert events(ens, 5, 1) == [("NodeDataChanged", "/pw")]
    assert results(ens)[6] == no_watcher
    assert events(ens, 7, 1) == [("NodeChildrenChanged", "/pw")]
    assert results(ens)[8] is None


def test_re_adding_a_watch_with_the_other_mode_keeps_both_modes(servers):
    """ZOOKEEPER-4466 (3.9.0): addWatch adds a mode to the (session, path)
    WatchStats, so a recursive watch re-added as persistent stays recursive
    (grandchildren still fire), and a persistent watch re-added as recursive
    still hears child changes (the persistent mode stays in the child watch
    table). 3.8 replaces the mode with the last one added."""
    t = run(servers, [
        (0, "create", "/rw", b""),
        (1, "add_watch", "/rw", "persistent_recursive"),
        (1, "add_watch", "/rw", "persistent"),
        (0, "create", "/rw/a", b""),
        (0, "create", "/rw/a/deep", b""),
        (0, "create", "/pr", b""),
        (2, "add_watch", "/pr", "persistent"),
        (2, "add_watch", "/pr", "persistent_recursive"),
        (0, "create", "/pr/a", b""),
    ])
    zk, ens = t["zookeeper"], t["ensemble"]

    assert events(zk, 3, 1) == [("NodeChildrenChanged", "/rw")]
    assert events(zk, 4, 1) == []
    assert events(ens, 3, 1) == [("NodeCreated", "/rw/a"), ("NodeChildrenChanged", "/rw")]
    assert events(ens, 4, 1) == [("NodeCreated", "/rw/a/deep")]

    assert events(zk, 8, 2) == [("NodeCreated", "/pr/a")]
    assert events(ens, 8, 2) == [("NodeCreated", "/pr/a"), ("NodeChildrenChanged", "/pr")]


def test_a_one_shot_watch_does_not_end_a_persistent_one(servers):
    """ZOOKEEPER-4466 (3.9.0): a one-shot data watch beside the session's
    persistent watch on the same path is a second mode; when it fires only
    the STANDARD mode is removed and the persistent watch keeps firing. In
    3.8 the one-shot watch replaces the persistent mode of the data watch,
    which then ends with the first event."""
    t = run(servers, [
        (0, "create", "/ow", b""),
        (1, "add_watch", "/ow", "persistent"),
        (1, "get", "/ow", {"watch": True}),
        (0, "set", "/ow", b"1"),
        (0, "set", "/ow", b"2"),
        (0, "create", "/ow/c", b""),
    ])
    zk, ens = t["zookeeper"], t["ensemble"]

    for tr in (zk, ens):
        assert events(tr, 3, 1) == [("NodeDataChanged", "/ow")]
        assert events(tr, 5, 1) == [("NodeChildrenChanged", "/ow")]
    assert events(zk, 4, 1) == []
    assert events(ens, 4, 1) == [("NodeDataChanged", "/ow")]


def test_check_watches_answers_for_the_asking_session_only(servers):
    """ZOOKEEPER-4466 (3.9.0) rewrote WatchManager.containsWatcher to look at
    the asking session's own watches. 3.8's answers true at the node when any
    session watches the path ("at the leaf node, all watcher types match"),
    so checkWatches succeeds for a session that set no watch there."""
    t = run(servers, [
        (0, "create", "/cw", b""),
        (0, "create", "/cw2", b""),
        (1, "add_watch", "/cw", "persistent"),
        (2, "check_watches", "/cw", "any"),
        (1, "get", "/cw2", {"watch": True}),
        (2, "check_watches", "/cw2", "data"),
        (2, "remove_watches", "/cw2", "data"),
    ])
    zk, ens = results(t["zookeeper"]), results(t["ensemble"])

    assert zk[3] is None and zk[5] is None
    assert ens[3] == ("error", "NoWatcherError") and ens[5] == ("error", "NoWatcherError")
    # removeWatches did look at the session's own watches in 3.8 already.
    assert zk[6] == ens[6] == ("error", "NoWatcherError")
