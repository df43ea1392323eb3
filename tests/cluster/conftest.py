"""Fixtures for the cluster tests. `cluster_factory(impl, n=3, ...)` builds
and starts a `Cluster` (see clusterlib.py) of Ensemble or Apache ZooKeeper
3.8 members; every cluster a test made is killed when the test ends, pass
or fail, and when a test fails the tail of each member's log is added to
the failure report (section "cluster logs")."""

import os

import pytest

from clusterlib import (  # noqa: F401  (re-exported for the tests)
    Cluster,
    assert_members_agree,
    impls,
    tree_snapshot,
)

KEEP_ENV = "ENSEMBLE_CLUSTER_KEEP"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    rep = yield
    if rep.failed:
        for c in getattr(item, "_clusters", []):
            rep.sections.append((f"cluster logs ({c.impl})", c.log_tails()))
    if rep.when == "call":
        item._call_failed = rep.failed
    return rep


@pytest.fixture
def cluster_factory(request):
    """make(impl, n=3, start=True, **Cluster kwargs) -> Cluster, started and
    serving with a leader unless start=False."""
    made = []
    request.node._clusters = made

    def make(impl, n=3, start=True, **kwargs):
        c = Cluster(impl, n, **kwargs)
        made.append(c)
        if start:
            c.start_all()
            c.leader()
        return c

    yield make
    failed = getattr(request.node, "_call_failed", True)
    keep = failed and os.environ.get(KEEP_ENV) == "1"
    for c in made:
        c.cleanup(remove=not keep)
