"""The Apache ZooKeeper Java client (Debian's libzookeeper-java) against
Ensemble and Apache ZooKeeper: identical output."""

import os
import subprocess
import tempfile

from conftest import Server

HERE = os.path.dirname(__file__)
CP = "/usr/share/java/zookeeper.jar:/usr/share/java/zookeeper-jute.jar:/usr/share/java/*"


def compile_smoke(out_dir):
    subprocess.run(
        ["javac", "-cp", CP, "-d", out_dir, os.path.join(HERE, "java", "ClientSmoke.java")],
        check=True,
    )


def run(server, classes):
    p = subprocess.run(
        ["java", "-cp", classes + ":" + CP, "ClientSmoke", server.hosts],
        capture_output=True,
        text=True,
        timeout=120,
    )
    return [l for l in p.stdout.splitlines() if l.strip()], p.returncode


def test_java_client_behaves_the_same():
    classes = tempfile.mkdtemp(prefix="java-smoke-")
    compile_smoke(classes)
    outs = {}
    for kind in ("zookeeper", "ensemble"):
        s = Server(kind).start()
        try:
            outs[kind] = run(s, classes)
        finally:
            s.close()
    zk_lines, zk_rc = outs["zookeeper"]
    assert zk_rc == 0 and zk_lines[-1] == "DONE", zk_lines
    lines, rc = outs["ensemble"]
    assert lines == zk_lines
    assert rc == 0
