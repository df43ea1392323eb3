"""Seeded random operation sequences over a small path space, so collisions,
version mismatches and watch firings are frequent. The same sequence runs on
ZooKeeper and on Ensemble (each started once per run) and the transcripts are
compared step by step.

    ENSEMBLE_DIFF_SEED=<n>       replay one seed (the failing seed is printed)
    ENSEMBLE_DIFF_OPS=<n>        operations per seed (default 1000)
    ENSEMBLE_DIFF_EXTRA_OPS=a,b  switch on ops left out by default (see EXTRA_OPS),
                                 or "all"
    ENSEMBLE_DIFF_WATCH_ROLES=0  let every client use every watch op on every
                                 path, so runs reach the ZooKeeper 3.8/3.9 watch
                                 mode differences (see WATCH_ROLES_DOC)

    python3 random_ops.py [seed] [ops]     runs one seed from the command line
"""

import os
import random
import sys

from kazoo.security import OPEN_ACL_UNSAFE, make_acl

import harness as H

CLIENTS = 3
PATHS = ["/a", "/b", "/a/x", "/a/y", "/b/x", "/a/x/z", "/a/e"]
SEQ_PREFIXES = ["/a/s-", "/b/s-", "/s-"]
SEQ_NAMES = [f"{p}{i:010d}" for p in SEQ_PREFIXES for i in range(4)]
DATA = [b"", b"v", b"value", None]
ACLS = [
    OPEN_ACL_UNSAFE,
    # Never without READ or ADMIN for everybody, so the tree stays usable.
    [make_acl("world", "anyone", read=True, write=True, admin=True)],
    [make_acl("world", "anyone", read=True, create=True, delete=True, admin=True)],
]

# The operations CI compares, with weights.
DEFAULT_OPS = {
    "create": 14, "create2": 5, "delete": 10, "set": 10, "exists": 8, "get": 8,
    "children": 6, "children2": 4, "get_acls": 2, "set_acls": 2, "sync": 2,
    "multi": 8, "get_ephemerals": 2, "all_children_number": 2, "who_am_i": 1,
    "reopen": 1, "multi_read": 2, "create_container": 2, "create_ttl": 2,
}
# Persistent watches and watch removal: ZooKeeper 3.8 (the reference) and 3.9
# (Ensemble) keep watch modes differently, so these are off in CI; switch them
# on with ENSEMBLE_DIFF_EXTRA_OPS (README, "Known version differences").
EXTRA_OPS = {"add_watch": 3, "remove_watches": 2, "check_watches": 2}

# The client that alone holds persistent watches while the watch ops are on.
PERSISTENT_CLIENT = CLIENTS - 1
WATCH_ROLES_DOC = """With the watch ops on, the generator keeps to what ZooKeeper
3.8 and 3.9 answer alike: only PERSISTENT_CLIENT adds persistent watches, it
sets no one-shot watch, re-adds a path only with the mode it holds there and
checks or removes watches by type "any" only (3.9 keeps a set of modes per
session and path and matches data/children types to one-shot watches only;
3.8 keeps one mode, replaced by the last watch set). checkWatches is sent only
by that client for a watch it holds (3.8 answers it for any session's watch on
the path). The other clients set one-shot watches and remove them by any type."""


def op_weights(extra=None):
    if extra is None:
        extra = os.environ.get("ENSEMBLE_DIFF_EXTRA_OPS", "")
    names = list(EXTRA_OPS) if extra.strip() == "all" else [x for x in extra.split(",") if x]
    unknown = [n for n in names if n not in EXTRA_OPS]
    if unknown:
        raise ValueError(f"unknown extra ops {unknown}; known: {sorted(EXTRA_OPS)}")
    w = dict(DEFAULT_OPS)
    w.update({n: EXTRA_OPS[n] for n in names})
    return w


class Generator:
    def __init__(self, seed, weights, watch_roles=True):
        self.rng = random.Random(seed)
        self.names = list(weights)
        self.weights = [weights[n] for n in self.names]
        # See WATCH_ROLES_DOC; only while a watch op is in the mix.
        self.roles = watch_roles and any(n in weights for n in EXTRA_OPS)
        self.held = {}  # path -> mode of PERSISTENT_CLIENT's persistent watches

    def path(self):
        r = self.rng.random()
        if r < 0.15:
            return self.rng.choice(SEQ_NAMES)
        return self.rng.choice(PATHS)

    def version(self):
        return -1 if self.rng.random() < 0.6 else self.rng.randint(0, 2)

    def create_kw(self, allow_ext=False):
        mode = self.rng.choice(["persistent", "persistent", "ephemeral", "persistent_sequential",
                                "ephemeral_sequential"])
        return mode

    def sub_op(self):
        k = self.rng.choice(["create", "create", "delete", "set", "check"])
        if k == "create":
            mode = self.create_kw()
            path = self.rng.choice(SEQ_PREFIXES) if "sequential" in mode else self.path()
            return ("create", path, self.rng.choice(DATA[:3]), {"mode": mode})
        if k == "delete":
            return ("delete", self.path(), self.version())
        if k == "set":
            return ("set", self.path(), self.rng.choice(DATA[:3]), self.version())
        return ("check", self.path(), self.version())

    def step(self):
        rng = self.rng
        c = rng.randrange(CLIENTS)
        name = rng.choices(self.names, self.weights)[0]
        watch = rng.random() < 0.4
        if name in ("create", "create2"):
            mode = self.create_kw()
            path = rng.choice(SEQ_PREFIXES) if "sequential" in mode else self.path()
            return [(c, name, path, rng.choice(DATA), {"mode": mode})]
        if name == "delete":
            return [(c, "delete", self.path(), self.version())]
        if name == "set":
            return [(c, "set", self.path(), rng.choice(DATA), self.version())]
        if name in ("exists", "get", "children", "children2"):
            if self.roles and c == PERSISTENT_CLIENT:
                watch = False
            return [(c, name, self.path(), {"watch": watch})]
        if name == "get_acls":
            return [(c, "get_acls", self.path())]
        if name == "set_acls":
            return [(c, "set_acls", self.path(), rng.choice(ACLS), self.version())]
        if name == "sync":
            return [(c, "sync", self.path())]
        if name == "multi":
            return [(c, "multi", [self.sub_op() for _ in range(rng.randint(1, 4))])]
        if name == "get_ephemerals":
            return [(c, "get_ephemerals", rng.choice(["/", "/a", "/b", "/a/"]))]
        if name == "all_children_number":
            return [(c, "all_children_number", rng.choice(["/", "/a", "/b"]))]
        if name == "who_am_i":
            return [(c, "who_am_i")]
        if name == "reopen":
            if c == PERSISTENT_CLIENT:
                self.held.clear()
            return [(c, "close"), (c, "open")]
        if name == "add_watch":
            path, mode = self.path(), rng.choice(["persistent", "persistent_recursive"])
            if self.roles:
                c, mode = PERSISTENT_CLIENT, self.held.setdefault(path, mode)
            return [(c, "add_watch", path, mode)]
        if name in ("remove_watches", "check_watches"):
            path, kind = self.path(), rng.choice(["data", "children", "any"])
            if self.roles and name == "check_watches":
                if not self.held:
                    return []
                c, path, kind = PERSISTENT_CLIENT, rng.choice(sorted(self.held)), "any"
            elif self.roles and c == PERSISTENT_CLIENT:
                kind = "any"
                self.held.pop(path, None)
            return [(c, name, path, kind)]
        if name == "multi_read":
            return [(c, "multi_read", [(rng.choice(["get", "children"]), self.path())
                                       for _ in range(rng.randint(1, 3))])]
        if name == "create_container":
            return [(c, "create2", self.path(), b"", {"mode": "container"})]
        if name == "create_ttl":
            return [(c, "create2", self.path(), b"", {"mode": "persistent_with_ttl", "ttl": 3600000})]
        raise ValueError(name)

    def steps(self, n):
        out = []
        while len(out) < n:
            out.extend(self.step())
        return out[:n]


def watch_roles_from_env():
    return os.environ.get("ENSEMBLE_DIFF_WATCH_ROLES", "1") != "0"


def generate(seed, n_ops, weights=None, watch_roles=None):
    roles = watch_roles_from_env() if watch_roles is None else watch_roles
    return Generator(seed, weights or op_weights(), roles).steps(n_ops)


def seeds_from_env(default):
    s = os.environ.get("ENSEMBLE_DIFF_SEED")
    return [int(x) for x in s.split(",")] if s else default


def ops_from_env(default=1000):
    return int(os.environ.get("ENSEMBLE_DIFF_OPS", default))


def run_seeds(seeds, n_ops, weights=None):
    """Runs each seed on a fresh pair of servers (started once per seed, not
    per op). Returns a list of (seed, Comparison)."""
    weights = weights or op_weights()
    results = []
    for seed in seeds:
        steps = generate(seed, n_ops, weights)
        servers = H.start_servers("extendedTypesEnabled=true\n" if "create_ttl" in weights else "")
        try:
            out = H.run_pair(servers, steps, CLIENTS)
        finally:
            for s in servers.values():
                s.close()
        cmp = H.Comparison(f"seed {seed}", out["zookeeper"], out["ensemble"])
        results.append((seed, cmp))
    return results


def failure_report(seed, cmp, n_ops, context=8):
    lines = [cmp.report(limit=5), "",
             f"replay: ENSEMBLE_DIFF_SEED={seed} ENSEMBLE_DIFF_OPS={n_ops} "
             f"python3 -m pytest -q tests/differential -k random",
             f"   or: python3 tests/differential/random_ops.py {seed} {n_ops}"]
    if cmp.diffs:
        first = cmp.diffs[0][0]
        lines.append("steps before the first difference (zookeeper's transcript):")
        for i in range(max(0, first - context), first + 1):
            d, r, ev = cmp.zk[i]
            lines.append(f"  {i}: {d} -> {r!r} {ev if ev else ''}")
    return "\n".join(lines)


if __name__ == "__main__":
    seed = int(sys.argv[1]) if len(sys.argv) > 1 else 1
    n = int(sys.argv[2]) if len(sys.argv) > 2 else ops_from_env()
    for seed, cmp in run_seeds([seed], n):
        print(failure_report(seed, cmp, n) if cmp.diffs else f"seed {seed}: {n} ops, no differences")
