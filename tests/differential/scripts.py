"""Operation scripts for the differential harness, one per behaviour family.
Each step is (client, op, *args[, kwargs]); see harness.OPS for the ops.
`xfail` names the Ensemble feature a script waits for (see the README)."""

from kazoo.security import (OPEN_ACL_UNSAFE, READ_ACL_UNSAFE, make_acl,
                            make_digest_acl, make_digest_acl_credential)

from harness import Script

EXT = "extendedTypesEnabled=true\n"
SUPER = make_digest_acl_credential("super", "superpw")  # "super:<base64 sha1>"
# ZooKeeper reads the container/TTL reaper interval only as a JVM property.
FAST_REAPER_JVM = "-Dznode.container.checkIntervalMs=100"
FAST_REAPER_CFG = "znode.container.checkIntervalMs=100\n"

ALICE = make_digest_acl("alice", "secret", all=True)
ALICE_READ = make_digest_acl("alice", "secret", read=True)
BOB = make_digest_acl("bob", "pw", all=True)
WORLD_READ = make_acl("world", "anyone", read=True)
WORLD_CREATE_ONLY = make_acl("world", "anyone", create=True)
WORLD_NO_DELETE = make_acl("world", "anyone", read=True, write=True, create=True, admin=True)
WORLD_NO_READ = make_acl("world", "anyone", write=True, create=True, delete=True, admin=True)
AUTH_ALL = make_acl("auth", "", all=True)
IP_LOCAL = make_acl("ip", "127.0.0.1", all=True)
IP_NET = make_acl("ip", "127.0.0.0/8", all=True)
IP_OTHER = make_acl("ip", "10.0.0.0/8", all=True)

SCRIPTS = []


def script(name, steps, **kw):
    SCRIPTS.append(Script(name, steps, **kw))


def stats(*paths, c=2):
    return [(c, "exists", p) for p in paths]


# --- plain reads and writes ------------------------------------------------------------

script("initial_tree", [
    (0, "exists", "/"), (0, "exists", "/zookeeper"), (0, "exists", "/zookeeper/quota"),
    (0, "exists", "/zookeeper/config"), (0, "children", "/"), (0, "children2", "/zookeeper"),
    (0, "get", "/"), (0, "get", "/zookeeper/config"), (0, "get_acls", "/"),
    (0, "get_acls", "/zookeeper"), (0, "get_acls", "/zookeeper/config"),
    (0, "all_children_number", "/"), (0, "all_children_number", "/zookeeper"),
    (0, "get_ephemerals", "/"), (0, "who_am_i"),
])

script("create_delete_get_set", [
    (0, "create", "/a", b"hello"),
    (0, "create2", "/b", b""),
    (0, "create2", "/n", None),
    (1, "get", "/n"),
    (0, "create", "/a/x", b"1" * 1000),
    (1, "get", "/a"), (1, "get", "/a/x"),
    (1, "children2", "/a"),
    (0, "set", "/a", b"v1", 0),
    (0, "set", "/a", b"v2", 1),
    (0, "set", "/a", b"", -1),
    (0, "set", "/a", None),
    (1, "get", "/a"),
    (0, "delete", "/a/x", 0),
    (0, "exists", "/a/x"),
    (1, "children2", "/a"),
    (0, "delete", "/a"),
    *stats("/", "/b", "/n"),
    (0, "sync", "/"), (0, "sync", "/b"), (0, "sync", "/missing"),
    (0, "create", "/big", b"x" * 500000),
    (1, "get", "/big"),
    (0, "set", "/big", b"y" * 1000000),
    (0, "exists", "/big"),
])

script("create_modes", [
    (0, "create", "/p", b"a"),
    (0, "create", "/p/e", b"", {"mode": "ephemeral"}),
    (0, "create", "/p/s-", b"", {"mode": "persistent_sequential"}),
    (0, "create", "/p/es-", b"", {"mode": "ephemeral_sequential"}),
    (0, "create2", "/p/e2", b"x", {"mode": "ephemeral"}),
    (0, "create2", "/p/s2-", b"x", {"mode": "persistent_sequential"}),
    (0, "create2", "/p/es2-", b"x", {"mode": "ephemeral_sequential"}),
    (0, "create", "/c", b"", {"mode": "container"}),
    (0, "create2", "/c2", b"", {"mode": "container"}),
    (0, "create", "/c/child", b""),
    (0, "exists", "/c"), (0, "exists", "/c2"),
    (1, "children2", "/p"),
    (1, "get_ephemerals", "/"), (0, "get_ephemerals", "/"), (0, "get_ephemerals", "/p/e"),
    (0, "get_ephemerals", "/nope"),
    # create/create2 opcodes with the container flag, createContainer with other flags
    (0, "create", "/cf1", b"", {"flags": 4, "opcode": 1}),
    (0, "create2", "/cf2", b"", {"flags": 4, "opcode": 15}),
    (0, "create", "/cf3", b"", {"flags": 0, "opcode": 19}),
    (0, "create", "/cf4", b"", {"flags": 1, "opcode": 19}),
    # unknown flags
    (0, "create", "/bad7", b"", {"flags": 7, "opcode": 1}),
    (0, "create", "/bad99", b"", {"flags": 99, "opcode": 1}),
    (0, "create", "/badneg", b"", {"flags": -1, "opcode": 15}),
    # TTL without extendedTypesEnabled
    (0, "create", "/ttl", b"", {"mode": "persistent_with_ttl", "ttl": 1000}),
    (0, "create", "/ttl", b"", {"flags": 5, "opcode": 1}),
    (0, "close"),
    (1, "children2", "/p"),
    (1, "get_ephemerals", "/"),
])

script("ttl_nodes", [
    (0, "create2", "/t", b"x", {"mode": "persistent_with_ttl", "ttl": 100000}),
    (0, "create2", "/ts-", b"x", {"mode": "persistent_sequential_with_ttl", "ttl": 100000}),
    (0, "create", "/t/child", b""),
    (0, "exists", "/t"), (0, "get", "/t"),
    (0, "create2", "/t0", b"", {"mode": "persistent_with_ttl", "ttl": 0}),
    (0, "create2", "/tneg", b"", {"mode": "persistent_with_ttl", "ttl": -5}),
    (0, "create2", "/thuge", b"", {"mode": "persistent_with_ttl", "ttl": 1 << 40}),
    (0, "create2", "/tmax", b"", {"mode": "persistent_with_ttl", "ttl": (1 << 40) - 1}),
    (0, "create2", "/tnotttl", b"", {"flags": 0, "opcode": 21, "ttl": 1000}),
    (0, "create2", "/tephem", b"", {"flags": 1, "opcode": 21, "ttl": 1000}),
    (0, "create", "/tplain", b"", {"flags": 5, "opcode": 1}),
    (0, "create2", "/tplain2", b"", {"flags": 6, "opcode": 15}),
    (0, "multi", [("create2", "/tm", b"", {"mode": "persistent_with_ttl", "ttl": 5000}),
                  ("create", "/tm/x", b"")]),
    (0, "exists", "/tm"),
    (0, "get_ephemerals", "/"),
], cfg=EXT)

script("container_and_ttl_reaping", [
    (0, "create", "/c", b"", {"mode": "container"}),
    (0, "create", "/c-never-used", b"", {"mode": "container"}),
    (0, "create", "/c/x", b""),
    (1, "exists", "/c", {"watch": True}),
    (0, "create2", "/t", b"", {"mode": "persistent_with_ttl", "ttl": 300}),
    (0, "create2", "/t-busy", b"", {"mode": "persistent_with_ttl", "ttl": 300}),
    (0, "create", "/t-busy/kid", b""),
    (2, "exists", "/t", {"watch": True}),
    (0, "delete", "/c/x", {"hold_events": True}),
    (None, "sleep", 2.0),
    (0, "exists", "/c"), (0, "exists", "/c-never-used"),
    (0, "exists", "/t"), (0, "exists", "/t-busy"),
    (0, "children", "/"),
], cfg=EXT + FAST_REAPER_CFG, jvm_flags=FAST_REAPER_JVM)

script("sequential_naming", [
    (0, "create", "/s", b""),
    (0, "create", "/s/n-", b"", {"mode": "persistent_sequential"}),
    (0, "create", "/s/n-", b"", {"mode": "persistent_sequential"}),
    (0, "create", "/s/x", b""),
    (0, "create", "/s/n-", b"", {"mode": "ephemeral_sequential"}),
    (0, "delete", "/s/n-0000000001"),
    (0, "delete", "/s/x"),
    (0, "create", "/s/n-", b"", {"mode": "persistent_sequential"}),
    (0, "create", "/s/", b"", {"mode": "persistent_sequential"}),
    (0, "create", "/s/m", b"", {"mode": "persistent_sequential"}),
    (0, "set", "/s", b"data changes do not count"),
    (0, "set_acls", "/s", OPEN_ACL_UNSAFE),
    (0, "create", "/s/n-", b"", {"mode": "persistent_sequential"}),
    (0, "create", "/s/n-0000000007", b""),
    (0, "create", "/s/n-", b"", {"mode": "persistent_sequential"}),
    (0, "create", "/s/n-", b"", {"mode": "persistent_sequential"}),
    (0, "multi", [("create", "/s/m-", b"", {"mode": "persistent_sequential"}),
                  ("create", "/s/m-", b"", {"mode": "persistent_sequential"})]),
    (0, "multi", [("create", "/s/f-", b"", {"mode": "persistent_sequential"}),
                  ("check", "/s", 99)]),
    (0, "create", "/s/after-failed-multi-", b"", {"mode": "persistent_sequential"}),
    (1, "children2", "/s"),
    (0, "create", "/seq-at-root-", b"", {"mode": "persistent_sequential"}),
    (0, "delete", "/s/n-0000000000"),
    (0, "create", "/s/n-0000000000", b""),
    (1, "children2", "/s"),
])

# --- error paths -------------------------------------------------------------------------

script("error_paths", [
    (0, "create", "/a", b""),
    (0, "create", "/a/b", b""),
    (0, "create", "/e", b"", {"mode": "ephemeral"}),
    (0, "create", "/a", b""),  # NodeExists
    (0, "create2", "/a", b""),
    (0, "create", "/x/y", b""),  # NoNode parent
    (0, "create2", "/x/y", b""),
    (0, "create", "/e/c", b""),  # NoChildrenForEphemerals
    (0, "create", "/e/s", b"", {"mode": "persistent_sequential"}),
    (0, "create", "/e/es", b"", {"mode": "ephemeral_sequential"}),
    (0, "delete", "/a"),  # NotEmpty
    (0, "delete", "/a/b", 5),  # BadVersion
    (0, "delete", "/nope"),
    (0, "delete", "/nope", 3),
    (0, "set", "/nope", b""),
    (0, "set", "/a", b"", 7),
    (0, "get", "/nope"),
    (0, "exists", "/nope"),
    (0, "children", "/nope"),
    (0, "children2", "/nope"),
    (0, "get_acls", "/nope"),
    (0, "set_acls", "/nope", OPEN_ACL_UNSAFE),
    (0, "set_acls", "/a", OPEN_ACL_UNSAFE, 4),
    (0, "set_acls", "/a", []),  # InvalidACL
    (0, "create", "/emptyacl", b"", {"acl": []}),
    (0, "all_children_number", "/nope"),
    (0, "delete", "/"),
    (0, "delete", "/zookeeper"),
    (0, "delete", "/zookeeper/quota"),
    (0, "set", "/zookeeper/config", b"x"),
    (0, "create", "/zookeeper/mine", b""),
    (0, "set", "/zookeeper", b"x"),
    (0, "create", "/", b"", {"raw": True}),
    (0, "check_watches", "/a", "data"),
    (0, "check_watches", "/nope", "any"),
    (0, "remove_watches", "/a", "children"),
    (0, "exists", "/a"), (0, "exists", "/"),
])

BAD_PATHS = ["", "a", "/a/", "//a", "/a//b", "/a/./b", "/a/../b", "/.", "/..", "/a/.",
             "/nul\u0000l", "/tab\u0009", "/del\u007f",
             "/\u00e9t\u00e9", "/\ufff0", "/ok"]

script("bad_paths_sent_raw", [
    (0, "create", "/a", b""),
    *[(0, "create", p, b"", {"raw": True}) for p in BAD_PATHS],
    *[(0, "create2", p, b"", {"raw": True, "mode": "persistent_sequential"}) for p in ["/a/", "a", "/a//"]],
    *[(0, "delete", p, {"raw": True}) for p in ["", "a", "/a/", "//a", "/a/."]],
    *[(0, "set", p, b"x", {"raw": True}) for p in ["", "a", "/a/", "//a"]],
    *[(0, "get", p, {"raw": True}) for p in ["a", "/a/", "//a"]],
    *[(0, "exists", p, {"raw": True}) for p in ["a", "/a/", "//a"]],
    *[(0, "children", p, {"raw": True}) for p in ["a", "/a/"]],
    *[(0, "get_acls", p, {"raw": True}) for p in ["a/"]],
    *[(0, "set_acls", p, OPEN_ACL_UNSAFE, {"raw": True}) for p in ["", "a/", "/a/"]],
    (0, "sync", "a", {"raw": True}),
    (0, "sync", "", {"raw": True}),
    (0, "multi", [("create", "/ok2", b""), ("create", "bad", b"")]),
    (0, "multi", [("delete", "/a/"), ("create", "/ok3", b"")]),
    (0, "children", "/"),
])

# ZooKeeper's DataTree also files the root under "", so reads of "" see "/".
script("reads_of_the_empty_path", [
    (0, "create", "/a", b""),
    (0, "get", "", {"raw": True}), (0, "exists", "", {"raw": True}),
    (0, "children", "", {"raw": True}), (0, "children2", "", {"raw": True}),
    (0, "get_acls", "", {"raw": True}), (0, "all_children_number", ""),
    (1, "exists", "", {"raw": True, "watch": True}),
    (0, "set", "/", b"root data"),
])

# --- multi ----------------------------------------------------------------------------------

def _multi_fail_at(pos, failing):
    ops = [("create", "/m/new", b"n"), ("set", "/m", b"s"), ("check", "/m/k", 0),
           ("delete", "/m/k")]
    ops.insert(pos, failing)
    return ops


_FAILURES = [("check", "/m", 99), ("create", "/m", b""), ("delete", "/nope"),
             ("set", "/m/k", b"", 42), ("delete", "/m"), ("create", "/x/y", b"")]

script("multi_failure_at_each_position", [
    (0, "create", "/m", b"0"),
    (0, "create", "/m/k", b"0"),
    (1, "get", "/m", {"watch": True}),
    (1, "children", "/m", {"watch": True}),
    (2, "exists", "/m/new", {"watch": True}),
    *[(0, "multi", _multi_fail_at(pos, f)) for f in _FAILURES for pos in range(5)],
    (0, "exists", "/m"), (0, "exists", "/m/k"), (0, "exists", "/m/new"),
    (0, "multi", [("create", "/m/new", b"n"), ("set", "/m", b"s"), ("check", "/m/k", 0),
                  ("delete", "/m/k")]),
    (0, "multi", []),
    (0, "multi", [("create", "/z", b""), ("delete", "/z")]),
    (0, "multi", [("create", "/z", b""), ("create", "/z/y", b""), ("set", "/z", b"1", 0),
                  ("check", "/z", 1), ("check", "/z/y", 0)]),
    (0, "multi", [("create", "/eph", b"", {"mode": "ephemeral"}),
                  ("create", "/eph/x", b"")]),
    (0, "multi", [("delete", "/z/y"), ("delete", "/z"), ("create", "/z", b"again")]),
    # create2 inside a multi: tests/interop/test_version_differences.py (3.8.0 and 3.9 differ)
    (0, "multi", [("create", "/c2m", b"x"), ("create", "/cm", b"", {"mode": "container"})]),
    (0, "multi", [("create2", "/c2m-fail", b"x"), ("check", "/nope", 0)]),
    (0, "multi", [("check", "/m", -1), ("check", "/m", 1)]),
    *stats("/", "/m", "/z", "/c2m", "/cm"),
    (1, "children2", "/"),
])

# --- watches -------------------------------------------------------------------------------

script("one_shot_watches", [
    (1, "exists", "/w", {"watch": True}),
    (2, "exists", "/w", {"watch": True}),
    (0, "create", "/w", b"0"),
    (1, "get", "/w", {"watch": True}),
    (1, "exists", "/w", {"watch": True}),
    (2, "children", "/w", {"watch": True}),
    (0, "set", "/w", b"1"),
    (0, "set", "/w", b"2"),
    (0, "create", "/w/c", b""),
    (0, "create", "/w/d", b""),
    (2, "children2", "/w", {"watch": True}),
    (1, "get", "/w", {"watch": True}),
    (0, "delete", "/w/c"),
    (1, "get", "/w/d", {"watch": True}),
    (2, "children", "/w/d", {"watch": True}),
    (0, "delete", "/w/d"),
    (1, "get", "/w", {"watch": True}),
    (2, "children", "/w", {"watch": True}),
    (0, "delete", "/w"),
    (0, "exists", "/w", {"watch": True}),
    (0, "create", "/w", b"self"),  # the creator's own watch fires before its reply
    (0, "get", "/w", {"watch": True}),
    (0, "set", "/w", b"own"),
    (0, "set_acls", "/w", OPEN_ACL_UNSAFE),  # ACL changes fire nothing
    (1, "get", "/w", {"watch": True}),
    (0, "set_acls", "/w", READ_ACL_UNSAFE + [make_acl("world", "anyone", write=True)]),
    (0, "sync", "/w"),
    (0, "set", "/w", b"after-acl"),
    (1, "get", "/nope", {"watch": True}),  # failed getData leaves no watch
    (0, "create", "/nope", b""),
    (1, "children", "/nope2", {"watch": True}),
    (0, "create", "/nope2", b""),
    (1, "exists", "/nope2/x", {"watch": True}),
    (0, "create", "/nope2/x", b"", {"mode": "ephemeral"}),
    (0, "close"),
])

script("watches_through_multi", [
    (0, "create", "/a", b""),
    (0, "create", "/a/1", b""),
    (1, "get", "/a", {"watch": True}),
    (1, "children", "/a", {"watch": True}),
    (1, "exists", "/b", {"watch": True}),
    (2, "get", "/a/1", {"watch": True}),
    (2, "exists", "/a/2", {"watch": True}),
    (0, "multi", [("create", "/b", b""), ("set", "/a", b"x"), ("delete", "/a/1"),
                  ("create", "/a/2", b"")]),
    (1, "get", "/a", {"watch": True}),
    (2, "exists", "/c", {"watch": True}),
    (0, "multi", [("create", "/c", b""), ("set", "/a", b"y"), ("check", "/a", 0)]),
    (0, "set", "/a", b"z"),
    (2, "exists", "/c", {"watch": True}),
])

script("session_close_fires_watches", [
    (2, "create", "/e", b"", {"mode": "ephemeral"}),
    (2, "create", "/p", b""),
    (2, "create", "/p/e1", b"", {"mode": "ephemeral"}),
    (2, "create", "/p/e-", b"", {"mode": "ephemeral_sequential"}),
    (0, "exists", "/e", {"watch": True}),
    (0, "children", "/p", {"watch": True}),
    (1, "get", "/p/e1", {"watch": True}),
    (1, "children", "/", {"watch": True}),
    (0, "get_ephemerals", "/"),
    (2, "get_ephemerals", "/p"),
    (2, "close"),
    (0, "exists", "/e"),
    (0, "children2", "/p"),
    (3, "open"),
    (3, "create", "/e", b"", {"mode": "ephemeral"}),
    (3, "exists", "/e"),
    (3, "get_ephemerals", "/"),
])

# Only what ZooKeeper 3.8 and 3.9 agree on. A session never holds two watch
# modes on one path here (3.9 keeps a set of modes per session and path, 3.8
# one mode that the last addWatch or one-shot watch replaces), never checks or
# removes a data/children watch it holds only as a persistent one, and never
# checks a path only another session watches (3.8's WatchManager answers for
# any session). Those cases: tests/interop/test_version_differences.py.
script("persistent_watches", [
    (1, "add_watch", "/p", "persistent"),
    (2, "add_watch", "/p", "persistent_recursive"),
    (0, "create", "/p", b""),
    (0, "set", "/p", b"1"),
    (0, "create", "/p/a", b""),
    (0, "create", "/p/a/b", b""),
    (0, "set", "/p/a/b", b"x"),
    (0, "delete", "/p/a/b"),
    (0, "set", "/p", b"2"),
    (2, "get", "/p/a", {"watch": True}),  # a one-shot watch below a recursive one
    (0, "set", "/p/a", b"y"),
    (1, "get", "/p/a", {"watch": True}),  # a one-shot watch beside another session's
    (0, "set", "/p", b"3"),
    (0, "multi", [("create", "/p/m", b""), ("set", "/p/m", b"x"), ("delete", "/p/m")]),
    (0, "create", "/p/e", b"", {"mode": "ephemeral"}),
    (1, "check_watches", "/p", "any"),
    (2, "check_watches", "/p", "any"),
    (2, "check_watches", "/p/e", "any"),  # below its recursive watch: not a watch on /p/e
    (1, "check_watches", "/p/a", "data"),
    (1, "remove_watches", "/p/a", "data"),
    (1, "remove_watches", "/p", "any"),
    (0, "set", "/p", b"4"),
    (0, "set", "/p/a", b"z"),
    (0, "create", "/p/c", b""),
    (1, "remove_watches", "/p", "any"),
    (0, "create", "/p/d", b""),
    (0, "create", "/p/a/deep", b""),
    (0, "close"),
    (2, "add_watch", "/missing", "persistent"),
    (2, "add_watch", "/", "persistent_recursive"),
    (1, "create", "/missing", b""),
    (1, "set", "/missing", b"m"),
    (1, "create", "/missing/kid", b""),
    (1, "delete", "/missing/kid"),
    (1, "delete", "/missing"),
    (2, "remove_watches", "/", "any"),
    (2, "remove_watches", "/", "any"),
    (1, "create", "/after", b""),
    (2, "add_watch", "/zz", "persistent"),
    (2, "check_watches", "/zz", "any"),
    (2, "remove_watches", "/zz", "any"),
    (2, "check_watches", "/zz", "any"),
    (1, "create", "/zz", b""),
])

script("remove_and_check_one_shot_watches", [
    (0, "create", "/r", b""),
    (1, "check_watches", "/r", "data"),
    (1, "get", "/r", {"watch": True}),
    (1, "check_watches", "/r", "data"),
    (1, "check_watches", "/r", "children"),
    (1, "check_watches", "/r", "any"),
    (1, "children", "/r", {"watch": True}),
    (1, "remove_watches", "/r", "data"),
    (0, "set", "/r", b"nobody hears this"),
    (1, "check_watches", "/r", "children"),
    (0, "create", "/r/x", b""),
    (1, "check_watches", "/r", "children"),
    (1, "exists", "/nothere", {"watch": True}),
    (1, "check_watches", "/nothere", "data"),
    (1, "remove_watches", "/nothere", "any"),
    (0, "create", "/nothere", b""),
    (2, "remove_watches", "/r", "any"),
    (1, "get", "/r", {"watch": True}),
    (1, "remove_watches", "/r", "children"),
    (1, "remove_watches", "/r", "any"),
    (1, "remove_watches", "/r", "any"),
    (0, "set", "/r", b"silence"),
])

script("multi_read", [
    (0, "create", "/a", b"A"),
    (0, "create", "/a/1", b""),
    (0, "multi_read", [("get", "/a"), ("children", "/a"), ("get", "/nope"),
                       ("children", "/nope"), ("get", "/a/1")]),
    (0, "multi_read", []),
    (0, "multi_read", [("get", "/a")]),
])

# --- ACLs and auth -----------------------------------------------------------------------

script("acl_digest_and_auth", [
    (0, "create", "/s", b"secret", {"acl": [ALICE]}),
    (1, "get", "/s"), (1, "get_acls", "/s"), (1, "children", "/s"),
    (1, "set", "/s", b"x"), (1, "create", "/s/c", b""), (1, "delete", "/s"),
    (1, "set_acls", "/s", OPEN_ACL_UNSAFE),
    (1, "who_am_i"),
    (1, "add_auth", "digest", "alice:wrong"),
    (1, "get", "/s"),
    (1, "add_auth", "digest", "alice:secret"),
    (1, "who_am_i"),
    (1, "get", "/s"), (1, "get_acls", "/s"),
    (1, "create", "/s/c", b""),
    (1, "set_acls", "/s", [ALICE_READ, WORLD_CREATE_ONLY], 0),
    (1, "set_acls", "/s", [ALICE_READ], 0),
    (1, "set", "/s", b"y"),
    (1, "get", "/s"),
    (1, "create", "/s/d", b""),
    (2, "create", "/s/e", b""),
    (2, "delete", "/s/c"),
    (1, "delete", "/s/c"),
    (0, "create", "/auth", b"", {"acl": [AUTH_ALL]}),  # no auth: InvalidACL
    (1, "create", "/auth", b"", {"acl": [AUTH_ALL]}),
    (1, "get_acls", "/auth"),
    (1, "add_auth", "digest", "bob:pw"),
    (1, "create", "/auth2", b"", {"acl": [AUTH_ALL, WORLD_READ]}),
    (1, "get_acls", "/auth2"),
    (1, "who_am_i"),
    (0, "get", "/auth2"), (0, "set", "/auth2", b"x"),
    (0, "create", "/dup", b"", {"acl": [ALICE, ALICE]}),
    (0, "get_acls", "/dup"),
    (0, "create", "/bad", b"", {"acl": [make_acl("world", "someone", all=True)]}),
    (0, "create", "/bad", b"", {"acl": [make_acl("nosuch", "x", all=True)]}),
    (0, "create", "/bad", b"", {"acl": [make_acl("digest", "nocolon", all=True)]}),
    (0, "create", "/bad", b"", {"acl": [make_acl("ip", "not-an-ip", all=True)]}),
    (0, "create", "/bad", b"", {"acl": [make_acl("ip", "10.0.0.0/99", all=True)]}),
    (0, "create", "/perm0", b"", {"acl": [make_acl("world", "anyone")]}),
    (0, "get", "/perm0"), (0, "get_acls", "/perm0"),
    (0, "create", "/nodelete", b"", {"acl": [WORLD_NO_DELETE]}),
    (0, "create", "/nodelete/kid", b""),
    (0, "delete", "/nodelete/kid"),
    (0, "create", "/noread", b"r", {"acl": [WORLD_NO_READ]}),
    (0, "get", "/noread"), (0, "children", "/noread"),
    # exists on an unreadable node: tests/interop/test_version_differences.py;
    # on a missing node below one, both versions answer None.
    (0, "exists", "/noread/missing"), (1, "exists", "/s"),
    (0, "get_acls", "/noread"), (0, "all_children_number", "/noread"),
    (0, "get_ephemerals", "/noread"),
    (0, "sync", "/noread"),
    (0, "set_acls", "/", [WORLD_READ, make_acl("world", "anyone", admin=True)]),
    (0, "create", "/rootro", b""),
    (0, "set_acls", "/", OPEN_ACL_UNSAFE),
    (0, "multi", [("create", "/mx", b""), ("set", "/s", b"no")]),
    # The server closes the socket; how kazoo's reconnect falls around the
    # barrier is a race, so its session events are taken after the sleep.
    (2, "add_auth", "nosuchscheme", "x", {"hold_events": True}),
    (None, "sleep", 0.5),  # let kazoo settle after the server closes the socket
    (2, "get", "/"),
])

script("acl_ip", [
    (0, "create", "/ip", b"", {"acl": [IP_LOCAL]}),
    (0, "create", "/ipnet", b"", {"acl": [IP_NET]}),
    (0, "create", "/ipother", b"", {"acl": [IP_OTHER]}),
    # IPv6 ip ACLs: tests/interop/test_version_differences.py (3.9.4 accepts them)
    (1, "get", "/ip"), (1, "get", "/ipnet"), (1, "get", "/ipother"),
    (1, "get_acls", "/ipnet"),
    (1, "add_auth", "ip", "127.0.0.1"),
    (1, "who_am_i"),
    (1, "create", "/ip/kid", b""),
    (1, "set_acls", "/ipother", OPEN_ACL_UNSAFE),
])

script("super_digest", [
    (0, "create", "/s", b"x", {"acl": [ALICE_READ]}),
    (0, "create", "/locked", b"x", {"acl": [make_acl("world", "anyone")]}),
    (1, "add_auth", "digest", "super:superpw"),
    (1, "who_am_i"),
    (1, "get", "/s"), (1, "set", "/s", b"super"), (1, "get", "/locked"),
    (1, "get_acls", "/locked"),
    (1, "create", "/locked/kid", b""),
    (1, "set_acls", "/locked", OPEN_ACL_UNSAFE),
    (1, "create", "/auth", b"", {"acl": [AUTH_ALL]}),
    (1, "get_acls", "/auth"),
    (2, "add_auth", "digest", "super:wrong"),
    (2, "get", "/s"),
    (0, "get", "/locked"),
], cfg=f"DigestAuthenticationProvider.superDigest={SUPER}\n")

# --- sessions ------------------------------------------------------------------------------

script("session_expiry", [
    (3, "open", "raw", 400),
    (3, "create", "/e", b"", {"mode": "ephemeral"}),
    (3, "create", "/p", b""),
    (3, "create", "/p/e-", b"", {"mode": "ephemeral_sequential"}),
    (3, "get", "/p", {"watch": True}),
    (0, "exists", "/e", {"watch": True}),
    (1, "children", "/p", {"watch": True}),
    (2, "get", "/p/e-0000000000", {"watch": True}),
    (0, "get_ephemerals", "/"),
    (3, "get_ephemerals", "/"),
    (None, "sleep", 2.5),
    (0, "exists", "/e"),
    (0, "children2", "/p"),
    (3, "get", "/p"),
    (4, "open", "raw", 400, 3),  # resume the expired session
    (5, "open", "raw", 100000),
    (5, "create", "/e", b"again", {"mode": "ephemeral"}),
    (5, "get_ephemerals", "/"),
    (5, "drop"),
    (6, "open", "raw", 100000, 5),  # resume a live session on a new socket
    (6, "get_ephemerals", "/"),
    (6, "close"),
    (0, "exists", "/e"),
], tick_time=200)

SCRIPTS_BY_NAME = {s.name: s for s in SCRIPTS}
