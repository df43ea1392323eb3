"""The C client's shell `cli_mt` (Debian's zookeeper-bin) against Ensemble
and against Apache ZooKeeper: the same commands give the same output once
times and session ids are normalised."""

import re
import subprocess
import time

from conftest import Server

CLI_MT = "/usr/lib/zookeeper/bin/cli_mt"
COMMANDS = [
    "create /c",
    "create /c",
    "create /c/child",
    "ls /c",
    "get /c",
    "set /c newdata",
    "get /c",
    "exists /c/child",
    "exists /nope",
    "delete /c",
    "delete /c/child",
    "delete /c",
    "ls /",
]


def run(server):
    p = subprocess.Popen(
        [CLI_MT, server.hosts],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    time.sleep(1.0)
    for c in COMMANDS:
        p.stdin.write(c + "\n")
        p.stdin.flush()
        time.sleep(0.3)
    p.stdin.write("quit\n")
    p.stdin.flush()
    out, _ = p.communicate(timeout=20)
    return out


def normalise(out):
    lines = []
    for line in out.splitlines():
        line = line.strip()
        if not line or line.startswith("time = ") or line.startswith("Got a new session id"):
            continue
        if re.search(r"\d\d:\d\d:\d\d \d{4}", line):
            continue  # ctime/mtime lines
        line = re.sub(r"0x[0-9a-f]+", "0x#", line)
        lines.append(line)
    # zxids (printed in hex without 0x): replace each by its rank.
    zx = sorted({int(m, 16) for l in lines for m in re.findall(r"[cm]zxid=([0-9a-f]+)", l)})
    rank = {z: i for i, z in enumerate(zx)}
    return [re.sub(r"([cm]zxid=)([0-9a-f]+)", lambda m: f"{m.group(1)}#{rank[int(m.group(2), 16)]}", l) for l in lines]


def test_cli_mt_matches_zookeeper():
    outs = {}
    for kind in ("zookeeper", "ensemble"):
        s = Server(kind).start()
        try:
            outs[kind] = normalise(run(s))
        finally:
            s.close()
    assert any("rc = 0" in l for l in outs["zookeeper"])
    assert outs["ensemble"] == outs["zookeeper"], "\n".join(
        f"{a!r:60} | {b!r}" for a, b in zip(outs["zookeeper"], outs["ensemble"])
    )
