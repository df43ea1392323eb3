"""zkCli.sh, Apache ZooKeeper's own shell, runs the same session against
Apache ZooKeeper and against Ensemble; the outputs must be the same once
zxids, times and session ids are normalised."""

import re
import subprocess

from conftest import Server, ZK_HOME

SCRIPT = """\
ls /
ls /zookeeper
create /app
create /app/config hello
create -e /app/eph ephemeral-data
create -s /app/seq- one
create -s /app/seq- two
create -e -s /app/eseq- x
create /app/config again
create /missing/child x
ls /app
ls -s /app
get /app/config
get -s /app/config
set /app/config world
set -v 0 /app/config stale
set -s /app/config again
stat /app/config
stat /nope
get /nope
getAcl /app/config
create /app/eph/child x
addauth digest alice:secret
setAcl /app/config auth::cdrwa
getAcl /app/config
setAcl /app/config digest:bob:Jq7wMyA/w2Vd5WIDAKdu4OIIFEQ=:r
getAcl /app/config
get /app/config
set /app/config denied
delete /app
delete -v 7 /app/seq-0000000002
delete /app/seq-0000000002
deleteall /app
ls /
sync /
create /ipnode data
setAcl /ipnode ip:127.0.0.1:cdrwa
getAcl /ipnode
get /ipnode
quit
"""


def run_cli(server):
    return run_cli_script(server, SCRIPT)


def run_cli_script(server, script):
    p = subprocess.run(
        [f"{ZK_HOME}/bin/zkCli.sh", "-server", server.hosts],
        input=script,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return p.stdout + p.stderr


def normalise(text):
    lines = []
    for line in text.splitlines():
        if line.startswith("SLF4J") or "log4j" in line.lower() or not line.strip():
            continue
        lines.append(line)
    text = "\n".join(lines)
    # zxids and session ids: replace each by its rank in numeric order.
    hexes = sorted({int(h, 16) for h in re.findall(r"(?:[cmp]Zxid|ephemeralOwner) = 0x([0-9a-f]+)", text)})
    rank = {h: i for i, h in enumerate(hexes)}
    text = re.sub(
        r"((?:[cmp]Zxid|ephemeralOwner) = )0x([0-9a-f]+)",
        lambda m: f"{m.group(1)}#{rank[int(m.group(2), 16)]}",
        text,
    )
    text = re.sub(r"([cm]time = ).*", r"\1<time>", text)
    text = re.sub(r"Connecting to .*", "Connecting", text)
    return text.splitlines()


def test_zkcli_session_matches_zookeeper():
    outs = {}
    for kind in ("zookeeper", "ensemble"):
        s = Server(kind).start()
        try:
            outs[kind] = normalise(run_cli(s))
        finally:
            s.close()
    zk, ours = outs["zookeeper"], outs["ensemble"]
    assert "Created /app/config" in zk  # the script really ran
    import difflib

    diff = list(difflib.unified_diff(zk, ours, "zookeeper", "ensemble", lineterm=""))
    assert not diff, "\n".join(diff)
