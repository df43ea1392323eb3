"""The same operations against Apache ZooKeeper and Ensemble: every return
value, error and Stat field must match once zxids, times and session ids are
normalised (each is replaced by its rank among the values the run saw)."""

from kazoo.client import KazooClient
from kazoo.exceptions import KazooException
from kazoo.security import make_digest_acl, OPEN_ACL_UNSAFE, make_acl

from conftest import Server

STAT_FIELDS = [
    "czxid", "mzxid", "ctime", "mtime", "version", "cversion", "aversion",
    "ephemeralOwner", "dataLength", "numChildren", "pzxid",
]


def run_script(server):
    """Runs the script and returns a list of (step, outcome) with raw stats."""
    out = []
    c = KazooClient(hosts=server.hosts, timeout=10)
    c.start(timeout=15)
    c2 = KazooClient(hosts=server.hosts, timeout=10)
    c2.start(timeout=15)

    def step(name, fn):
        try:
            r = fn()
        except KazooException as e:
            r = ("error", type(e).__name__)
        out.append((name, r))

    def stat(path, cl=c):
        return lambda: tuple(getattr(cl.exists(path), f) for f in STAT_FIELDS) if cl.exists(path) else None

    step("stat /", stat("/"))
    step("stat /zookeeper", stat("/zookeeper"))
    step("stat /zookeeper/quota", stat("/zookeeper/quota"))
    step("stat /zookeeper/config", stat("/zookeeper/config"))
    step("ls /zookeeper", lambda: sorted(c.get_children("/zookeeper")))
    step("acl /zookeeper", lambda: c.get_acls("/zookeeper"))
    step("create /a", lambda: c.create("/a", b"hello"))
    step("create /a again", lambda: c.create("/a", b"x"))
    step("create /a/b/c no parent", lambda: c.create("/a/b/c", b"x"))
    step("stat /a", stat("/a"))
    step("create /a/s- seq", lambda: c.create("/a/s-", b"", sequence=True))
    step("create /a/s- seq 2", lambda: c.create("/a/s-", b"", sequence=True))
    step("delete /a/s-0000000000", lambda: c.delete("/a/s-0000000000"))
    step("create /a/s- seq 3", lambda: c.create("/a/s-", b"", sequence=True))
    step("stat /a after seq", stat("/a"))
    step("create /a/e ephemeral", lambda: c.create("/a/e", b"eph", ephemeral=True))
    step("stat /a/e owner is c", lambda: c.exists("/a/e").ephemeralOwner == c.client_id[0])
    step("create child of ephemeral", lambda: c.create("/a/e/x", b""))
    step("create /a/es ephemeral seq", lambda: c.create("/a/es", b"", ephemeral=True, sequence=True))
    step("get /a", lambda: (c.get("/a")[0], tuple(getattr(c.get("/a")[1], f) for f in STAT_FIELDS)))
    step("set /a v0", lambda: tuple(getattr(c.set("/a", b"v1", version=0), f) for f in STAT_FIELDS))
    step("set /a bad version", lambda: c.set("/a", b"v2", version=5))
    step("set /a any version", lambda: tuple(getattr(c.set("/a", b"", version=-1), f) for f in STAT_FIELDS))
    step("set missing", lambda: c.set("/nope", b""))
    step("delete /a not empty", lambda: c.delete("/a"))
    step("delete /a/s-0000000001 bad version", lambda: c.delete("/a/s-0000000001", version=3))
    step("delete missing", lambda: c.delete("/nope"))
    step("children /a", lambda: sorted(c.get_children("/a")))
    step("children2 /a", lambda: (sorted(c.get_children("/a", include_data=True)[0]),
                                   tuple(getattr(c.get_children("/a", include_data=True)[1], f) for f in STAT_FIELDS)))
    step("children missing", lambda: c.get_children("/nope"))
    step("get missing", lambda: c.get("/nope"))
    step("exists missing", lambda: c.exists("/nope"))
    step("sync", lambda: c.sync("/a"))
    step("null data", lambda: c.create("/nulldata", None))
    step("get null data", lambda: c.get("/nulldata")[0])
    # ACLs
    digest = make_digest_acl("alice", "secret", all=True)
    step("create with digest acl", lambda: c.create("/secret", b"s", acl=[digest]))
    step("get secret without auth", lambda: c2.get("/secret"))
    step("getAcl secret without auth", lambda: c2.get_acls("/secret"))
    step("addauth", lambda: c2.add_auth("digest", "alice:secret"))
    step("get secret with auth", lambda: c2.get("/secret")[0])
    step("getAcl secret with auth", lambda: c2.get_acls("/secret")[0])
    step("set acl read only", lambda: tuple(getattr(c2.set_acls("/secret", [make_acl("world", "anyone", read=True)]), f) for f in STAT_FIELDS))
    step("write after read-only acl", lambda: c2.set("/secret", b"x"))
    step("set acl bad version", lambda: c.set_acls("/a", OPEN_ACL_UNSAFE, version=7))
    step("create with auth acl", lambda: c2.create("/authacl", b"", acl=[make_acl("auth", "", all=True)]))
    step("getAcl authacl", lambda: c2.get_acls("/authacl")[0])
    step("create with auth acl unauthenticated", lambda: c.create("/authacl2", b"", acl=[make_acl("auth", "", all=True)]))
    step("create with bad world id", lambda: c.create("/badacl", b"", acl=[make_acl("world", "someone", all=True)]))
    step("create with unknown scheme", lambda: c.create("/badacl", b"", acl=[make_acl("nosuch", "x", all=True)]))
    step("ip acl", lambda: c.create("/ipacl", b"", acl=[make_acl("ip", "127.0.0.1", all=True)]))
    step("read ip acl", lambda: c2.get("/ipacl")[0])
    step("ip acl other net", lambda: c.create("/ipacl2", b"", acl=[make_acl("ip", "10.0.0.0/8", all=True)]))
    step("read ip acl other net", lambda: c2.get("/ipacl2"))
    # multi
    def txn(ops):
        t = c.transaction()
        for o in ops:
            o(t)
        return t.commit()

    step("multi ok", lambda: [r if not isinstance(r, Exception) else type(r).__name__ for r in txn([
        lambda t: t.create("/m", b"1"),
        lambda t: t.create("/m/x", b"2"),
        lambda t: t.set_data("/m", b"3"),
        lambda t: t.check("/m", 1),
        lambda t: t.delete("/m/x"),
    ])])
    for pos in range(3):
        ops = [lambda t: t.create("/mf1", b""), lambda t: t.set_data("/m", b"z"), lambda t: t.delete("/m2")]
        ops[pos] = lambda t: t.check("/m", 99)
        step(f"multi fail at {pos}", lambda ops=ops: [type(r).__name__ if isinstance(r, Exception) else r for r in txn(ops)])
    step("multi left nothing", lambda: (c.exists("/mf1") is None, c.get("/m")[0]))
    step("stat /m", stat("/m"))
    step("stat / end", stat("/"))
    c.stop()
    c2.stop()
    return out


def normalise(steps):
    """Replaces zxids, times and session ids by their ranks."""
    zxids = set()

    def collect(r):
        if isinstance(r, tuple) and len(r) == 11 and all(isinstance(x, int) for x in r):
            zxids.update([r[0], r[1], r[10]])
        elif isinstance(r, (tuple, list)):
            for x in r:
                collect(x)

    for _, r in steps:
        collect(r)
    zr = {z: i for i, z in enumerate(sorted(zxids))}

    def fix(r):
        if isinstance(r, tuple) and len(r) == 11 and all(isinstance(x, int) for x in r):
            r = list(r)
            r[0], r[1], r[10] = zr[r[0]], zr[r[1]], zr[r[10]]
            # Times: only whether they are set and whether ctime == mtime.
            r[2], r[3] = (r[2] != 0, r[2] == r[3]), r[3] != 0
            r[7] = "session" if r[7] not in (0,) else 0
            return tuple(r)
        if isinstance(r, tuple):
            return tuple(fix(x) for x in r)
        if isinstance(r, list):
            return [fix(x) for x in r]
        return r

    return [(n, fix(r)) for n, r in steps]


def test_same_answers_as_zookeeper():
    results = {}
    for kind in ("zookeeper", "ensemble"):
        s = Server(kind).start()
        try:
            results[kind] = normalise(run_script(s))
        finally:
            s.close()
    zk, ours = results["zookeeper"], results["ensemble"]
    diffs = [(a[0], a[1], b[1]) for a, b in zip(zk, ours) if a != b]
    assert not diffs, "\n".join(f"{n}:\n  zookeeper: {x}\n  ensemble:  {y}" for n, x, y in diffs)
    assert len(zk) == len(ours)
