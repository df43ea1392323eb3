"""The Apache ZooKeeper Java client (Debian's libzookeeper-java) against
Ensemble and Apache ZooKeeper: identical output."""

import os
import subprocess
import tempfile

from conftest import Server

HERE = os.path.dirname(__file__)
CP = "/usr/share/java/zookeeper.jar:/usr/share/java/zookeeper-jute.jar:/usr/share/java/*"


def compile_smoke(out_dir):
    sources = [os.path.join(HERE, "java", f) for f in ("ClientSmoke.java", "ApiSmoke.java")]
    subprocess.run(["javac", "-cp", CP, "-d", out_dir, *sources], check=True)


def run(server, classes, main="ClientSmoke"):
    p = subprocess.run(
        ["java", "-cp", classes + ":" + CP, main, server.hosts],
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


def test_newer_api_recursive_watch_multiread_ephemerals_container_ttl():
    classes = tempfile.mkdtemp(prefix="java-api-")
    compile_smoke(classes)
    outs = {}
    for kind in ("zookeeper", "ensemble"):
        s = Server(
            kind,
            extra_cfg="extendedTypesEnabled=true\nznode.container.checkIntervalMs=300\n",
            jvm_flags="-Dznode.container.checkIntervalMs=300",
        ).start()
        try:
            outs[kind] = run(s, classes, "ApiSmoke")
        finally:
            s.close()
    zk_lines, zk_rc = outs["zookeeper"]
    assert zk_rc == 0 and zk_lines[-1] == "DONE", zk_lines
    assert "container removed true" in zk_lines and "ttl removed true" in zk_lines
    lines, rc = outs["ensemble"]
    assert lines == zk_lines
    assert rc == 0
