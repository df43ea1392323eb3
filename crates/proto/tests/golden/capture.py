#!/usr/bin/env python3
"""Captures golden ZooKeeper wire frames from the real Java client and server.

Starts a standalone Apache ZooKeeper server (ZooKeeperServerMain) on a free
port of 127.0.0.1, puts a recording TCP proxy in front of it, drives the
proxy with `zkCli.sh` and with a small Java program (multi, multiRead, create2,
createTTL, watches, ACLs, close), then writes one `<scenario>.hex` file per
client connection next to this script. Each line of a .hex file is

    <direction> <label> <hex of the whole frame, 4-byte length prefix included>

with direction `>` (client to server) or `<` (server to client). The label is
`connect` for the handshake and otherwise the opcode name of the request (the
reply carries the label of the request with the same xid; `notification` and
`ping` for xids -1 and -2). Lines starting with `#` are comments.

Rerun from the workspace root (needs java and an Apache ZooKeeper install):

    python3 crates/proto/tests/golden/capture.py

zkCli.sh is found with `command -v zkCli.sh`, then /usr/share/zookeeper/bin.
The Java classpath is $ZK_CLASSPATH if set, else derived from zkCli's install
(Debian: <prefix>/share/java/zookeeper.jar; tarball: <zk>/lib/*.jar).
Session ids, passwords and timestamps differ on every run, so the tests in
golden.rs pin fields that do not depend on them and re-encode every frame.
"""

import glob
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))

OPCODES = {
    0: "notification", 1: "create", 2: "delete", 3: "exists", 4: "getData",
    5: "setData", 6: "getACL", 7: "setACL", 8: "getChildren", 9: "sync",
    11: "ping", 12: "getChildren2", 13: "check", 14: "multi", 15: "create2",
    16: "reconfig", 17: "checkWatches", 18: "removeWatches",
    19: "createContainer", 20: "deleteContainer", 21: "createTTL",
    22: "multiRead", 100: "auth", 101: "setWatches", 102: "sasl",
    103: "getEphemerals", 104: "getAllChildrenNumber", 105: "setWatches2",
    106: "addWatch", 107: "whoAmI", -10: "createSession", -11: "closeSession",
}

JAVA_PROGRAM = r"""
import java.util.*;
import java.util.concurrent.CountDownLatch;
import org.apache.zookeeper.*;
import org.apache.zookeeper.data.*;

public class Golden {
    static ZooKeeper connect(String hostPort) throws Exception {
        CountDownLatch up = new CountDownLatch(1);
        ZooKeeper zk = new ZooKeeper(hostPort, 30000, e -> {
            if (e.getState() == Watcher.Event.KeeperState.SyncConnected) up.countDown();
        });
        up.await();
        return zk;
    }

    public static void main(String[] args) throws Exception {
        ZooKeeper zk = connect(args[0]);
        List<ACL> open = ZooDefs.Ids.OPEN_ACL_UNSAFE;
        switch (args[1]) {
        case "multi":
            zk.multi(Arrays.asList(
                Op.create("/multi", "m".getBytes(), open, CreateMode.PERSISTENT),
                Op.create("/multi/ttl", "t".getBytes(), open, CreateMode.PERSISTENT_WITH_TTL, 60000),
                Op.check("/multi", 0),
                Op.setData("/multi", "n".getBytes(), 0),
                Op.delete("/multi/ttl", -1)));
            try {
                zk.multi(Arrays.asList(
                    Op.check("/multi", 1),
                    Op.create("/multi", null, open, CreateMode.PERSISTENT),
                    Op.delete("/nonexistent", -1)));
            } catch (KeeperException expected) {
            }
            zk.multi(Arrays.asList(
                Op.getData("/multi"),
                Op.getChildren("/"),
                Op.getData("/nonexistent")));
            break;
        case "misc":
            Stat stat = new Stat();
            zk.create("/create2", null, open, CreateMode.EPHEMERAL_SEQUENTIAL, stat);
            zk.create("/ttl", new byte[0], open, CreateMode.PERSISTENT_WITH_TTL, stat, 5000);
            zk.create("/container", "c".getBytes(), open, CreateMode.CONTAINER);
            zk.exists("/golden", true);
            zk.setData("/golden", "world".getBytes(), -1);
            zk.getChildren("/", false, stat);
            zk.getACL("/golden", stat);
            zk.setACL("/golden", ZooDefs.Ids.READ_ACL_UNSAFE, -1);
            zk.addWatch("/golden", e -> {}, AddWatchMode.PERSISTENT_RECURSIVE);
            zk.getEphemerals("/");
            zk.getAllChildrenNumber("/");
            CountDownLatch synced = new CountDownLatch(1);
            zk.sync("/golden", (rc, path, ctx) -> synced.countDown(), null);
            synced.await();
            zk.delete("/ttl", -1);
            try {
                zk.delete("/nonexistent", -1);
            } catch (KeeperException.NoNodeException expected) {
            }
            zk.addAuthInfo("digest", "user:secret".getBytes());
            zk.exists("/golden", false);
            break;
        default:
            throw new IllegalArgumentException(args[1]);
        }
        zk.close();
    }
}
"""


def find_zkcli():
    found = shutil.which("zkCli.sh")
    if found:
        return os.path.realpath(found)
    fallback = "/usr/share/zookeeper/bin/zkCli.sh"
    if os.path.exists(fallback):
        return fallback
    sys.exit("zkCli.sh not found: install Apache ZooKeeper or put zkCli.sh on PATH")


def find_classpath(zkcli):
    if os.environ.get("ZK_CLASSPATH"):
        return os.environ["ZK_CLASSPATH"]
    bindir = os.path.dirname(zkcli)
    home = os.path.dirname(bindir)
    jars = sorted(glob.glob(os.path.join(home, "lib", "*.jar")))
    if jars:  # tarball layout: <zk>/bin/zkCli.sh, <zk>/lib/*.jar
        return os.pathsep.join(jars)
    # Debian layout: <prefix>/share/zookeeper/bin, <prefix>/share/java/zookeeper.jar
    # (its manifest Class-Path names the dependencies).
    jar = os.path.join(os.path.dirname(home), "java", "zookeeper.jar")
    if os.path.exists(jar):
        return jar
    sys.exit("ZooKeeper jars not found; set ZK_CLASSPATH")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port, timeout=30.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    sys.exit(f"nothing listens on port {port}")


class Recorder:
    """A TCP proxy that splits each direction into length-prefixed frames."""

    def __init__(self, upstream_port):
        self.upstream_port = upstream_port
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.port = self.listener.getsockname()[1]
        self.lock = threading.Lock()
        self.connections = []  # one list of (direction, frame) per connection
        threading.Thread(target=self.accept_loop, daemon=True).start()

    def accept_loop(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.upstream_port))
            with self.lock:
                frames = []
                self.connections.append(frames)
            for src, dst, direction in ((client, server, ">"), (server, client, "<")):
                threading.Thread(
                    target=self.pump, args=(src, dst, direction, frames), daemon=True
                ).start()

    def pump(self, src, dst, direction, frames):
        pending = b""
        while True:
            try:
                data = src.recv(65536)
            except OSError:
                data = b""
            if not data:
                for s in (src, dst):
                    try:
                        s.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                return
            pending += data
            while len(pending) >= 4:
                (length,) = struct.unpack(">i", pending[:4])
                if len(pending) < 4 + length:
                    break
                with self.lock:
                    frames.append((direction, pending[: 4 + length]))
                pending = pending[4 + length :]
            try:
                dst.sendall(data)
            except OSError:
                return

    def take(self):
        """Waits for the connections to settle, then hands them over."""
        time.sleep(0.5)
        with self.lock:
            taken, self.connections = self.connections, []
        return taken


def label_frames(frames):
    """Names each frame after its request's opcode, matching replies by xid."""
    ops_by_xid = {}
    seen = {">": False, "<": False}
    labelled = []
    for direction, frame in frames:
        if not seen[direction]:
            seen[direction] = True
            labelled.append((direction, "connect", frame))
            continue
        (xid,) = struct.unpack(">i", frame[4:8])
        if direction == ">":
            (op,) = struct.unpack(">i", frame[8:12])
            name = OPCODES.get(op, f"op{op}")
            ops_by_xid[xid] = name
        elif xid == -1:
            name = "notification"
        elif xid == -2:
            name = "ping"
        else:
            name = ops_by_xid.get(xid, f"xid{xid}")
        labelled.append((direction, name, frame))
    return labelled


def write_scenario(name, command, connections):
    path = os.path.join(HERE, f"{name}.hex")
    with open(path, "w") as out:
        out.write(f"# {command}\n")
        out.write("# captured by capture.py from Apache ZooKeeper's Java client and server\n")
        for frames in connections:
            for direction, label, frame in label_frames(frames):
                out.write(f"{direction} {label} {frame.hex()}\n")
    print(f"wrote {path}")


def main():
    zkcli = find_zkcli()
    classpath = find_classpath(zkcli)
    workdir = tempfile.mkdtemp(prefix="ensemble-golden-")
    zk_port = free_port()
    server = subprocess.Popen(
        [
            "java", "-cp", classpath,
            "-Dzookeeper.admin.enableServer=false",
            "-Dzookeeper.extendedTypesEnabled=true",
            "org.apache.zookeeper.server.ZooKeeperServerMain",
            str(zk_port), os.path.join(workdir, "data"),
        ],
        stdout=open(os.path.join(workdir, "server.log"), "w"),
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for_port(zk_port)
        time.sleep(1.0)  # let the server finish starting after it listens
        recorder = Recorder(zk_port)
        host_port = f"127.0.0.1:{recorder.port}"
        recorder.take()  # drop wait_for_port's probes, if any reached us

        cli_steps = [
            ("zkcli_create", ["create", "/golden", "hello"]),
            ("zkcli_get", ["get", "/golden"]),
            ("zkcli_ls", ["ls", "/"]),
            ("zkcli_get_missing", ["get", "/missing"]),
            ("zkcli_stat", ["stat", "/golden"]),
        ]
        for name, args in cli_steps:
            subprocess.run(
                [zkcli, "-server", host_port] + args,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60,
            )
            write_scenario(name, "zkCli.sh " + " ".join(args), recorder.take())

        source = os.path.join(workdir, "Golden.java")
        with open(source, "w") as f:
            f.write(JAVA_PROGRAM)
        for step in ("multi", "misc"):
            subprocess.run(
                ["java", "-cp", classpath, source, host_port, step],
                check=True, timeout=120,
            )
            write_scenario(f"java_{step}", f"Golden.java {step} (see capture.py)", recorder.take())
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
