"""Quotas through zkCli.sh's setquota/listquota/delquota, with and without
enforceQuota, against both servers: the same output."""

import pytest

from conftest import Server
from test_zkcli import normalise, run_cli_script

SCRIPT = """\
create /q
setquota -N 3 /q
listquota /q
create /q/a 12345
create /q/b 12345
create /q/c x
create /q/d x
get /zookeeper/quota/q/zookeeper_stats
create /qb
setquota -B 10 /qb
create /qb/a 12345
set /qb/a 1234567890123
create /qb/b 1234567890123
set /qb/a 1
get /zookeeper/quota/qb/zookeeper_stats
setquota -n 1 /soft
create /soft
setquota -n 1 /soft
create /soft/x
create /soft/y
listquota /soft
delquota -N /q
listquota /q
create /q/e x
delquota /q
listquota /q
quit
"""


@pytest.mark.parametrize("enforce", [True, False])
def test_quota_commands_match_zookeeper(enforce):
    outs = {}
    for kind in ("zookeeper", "ensemble"):
        s = Server(kind, extra_cfg=f"enforceQuota={'true' if enforce else 'false'}\n").start()
        try:
            outs[kind] = normalise(run_cli_script(s, SCRIPT))
        finally:
            s.close()
    # zkCli.sh prints watch events from its event thread, so where they land
    # among the commands' lines varies from run to run: they are compared
    # apart, as a sorted list.
    zk, ours = (apart_events(outs[k]) for k in ("zookeeper", "ensemble"))
    if enforce:
        assert any("Quota has exceeded" in l or "QuotaExceeded" in l for l in zk), zk
    import difflib

    diff = list(difflib.unified_diff(zk, ours, "zookeeper", "ensemble", lineterm=""))
    assert not diff, "\n".join(diff)


def apart_events(lines):
    """The lines without zkCli.sh's watch event prints, then those events
    sorted. The Closed event of `quit` is left out: the JVM may exit before
    the event thread prints it (a run against ZooKeeper printed it and the
    run against Ensemble after it did not)."""
    events = sorted(l for l in lines
                    if l.startswith("WatchedEvent state:") and not l.startswith("WatchedEvent state:Closed"))
    rest = [l for l in lines if l != "WATCHER::" and not l.startswith("WatchedEvent state:")]
    return rest + ["-- events --"] + events
