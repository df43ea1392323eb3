#!/usr/bin/env python3
"""Regenerates testdata/zk38/: runs Apache ZooKeeper 3.8 (Debian's `zookeeper`
package) on a free 127.0.0.1 port with snapCount=10 and preAllocSize=64 KB,
writes znodes with kazoo (persistent, ephemeral, sequential, ACLs, multis,
setData, delete, a closed session) and zkCli.sh (container, TTL), records
the tree kazoo sees in expected_tree.txt, kills the server with SIGKILL and
keeps its data directory with the zero padding of the log files trimmed.
"""
import os, shutil, signal, socket, subprocess, sys, tempfile, time
from kazoo.client import KazooClient
from kazoo.security import make_digest_acl, make_acl, OPEN_ACL_UNSAFE

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "zk38")

def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p

def main():
    tmp = tempfile.mkdtemp(prefix="zkfix")
    data = os.path.join(tmp, "data")
    os.makedirs(data)
    port = free_port()
    cfg = os.path.join(tmp, "zoo.cfg")
    with open(cfg, "w") as f:
        f.write(f"tickTime=2000\ndataDir={data}\nclientPort={port}\nclientPortAddress=127.0.0.1\n"
                "snapCount=10\npreAllocSize=64\nadmin.enableServer=false\n"
                "extendedTypesEnabled=true\n4lw.commands.whitelist=*\n")
    env = dict(os.environ)
    log = open(os.path.join(tmp, "zk.log"), "w")
    zk = subprocess.Popen(["java", "-Dzookeeper.extendedTypesEnabled=true",
                           "-Dlog4j.configuration=file:/etc/zookeeper/conf/log4j.properties",
                           "-cp", "/usr/share/java/*:/etc/zookeeper/conf",
                           "org.apache.zookeeper.server.ZooKeeperServerMain", cfg],
                          stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        hosts = f"127.0.0.1:{port}"
        c = KazooClient(hosts=hosts, timeout=30)
        c.start(timeout=60)
        keeper = KazooClient(hosts=hosts, timeout=20)
        keeper.start(timeout=30)
        gone = KazooClient(hosts=hosts, timeout=15)
        gone.start(timeout=30)
        c.create("/app", b"root of app")
        c.create("/app/config", b'{"k": 1}')
        c.set("/app/config", b'{"k": 2}')
        c.set("/app/config", b"")
        for i in range(5):
            c.create("/app/seq-", b"s%d" % i, sequence=True)
        c.create("/app/empty", b"")
        digest = make_digest_acl("user", "pw", all=True)
        ro = make_acl("world", "anyone", read=True)
        c.create("/secure", b"secret", acl=[digest, ro])
        c.create("/app/acl2", b"x", acl=[make_acl("world", "anyone", read=True, admin=True)])
        c.set_acls("/app/acl2", [make_acl("world", "anyone", read=True, write=True, admin=True)])
        keeper.create("/app/eph", b"ephemeral", ephemeral=True)
        keeper.create("/app/eph-seq-", b"e", ephemeral=True, sequence=True)
        gone.create("/app/gone", b"bye", ephemeral=True)
        t = c.transaction()
        t.create("/multi", b"m")
        t.create("/multi/a", b"a")
        t.set_data("/app/empty", b"now full")
        t.check("/app", 0)
        print("multi ok:", t.commit())
        t = c.transaction()
        t.create("/multi/b", b"b")
        t.delete("/does/not/exist")
        print("failing multi:", t.commit())
        c.create("/app/tmp", b"t")
        c.delete("/app/tmp")
        c.create("/big", b"B" * 3000)
        for i in range(12):
            c.create("/bulk%02d" % i, ("v%d" % i).encode())
        c.set("/bulk03", "ünïcödé".encode())
        gone.stop(); gone.close()
        # containers and TTL nodes need the Java CLI: kazoo cannot create them
        for cmd in (["create", "-c", "/cont", "c"], ["create", "-c", "/cont/child", "cc"],
                    ["create", "-t", "600000", "/ttl", "t"]):
            subprocess.run(["/usr/share/zookeeper/bin/zkCli.sh", "-server", hosts] + cmd,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        c.set("/app", b"last write")
        time.sleep(0.5)
        dump(c, keeper)
        zk.send_signal(signal.SIGKILL)
        zk.wait()
        c.stop(); keeper.stop()
    finally:
        if zk.poll() is None:
            zk.kill(); zk.wait()
    if os.path.exists(OUT):
        shutil.rmtree(OUT)
    shutil.copytree(os.path.join(data, "version-2"), os.path.join(OUT, "version-2"))
    for name in os.listdir(os.path.join(OUT, "version-2")):
        if name.startswith("log."):
            p = os.path.join(OUT, "version-2", name)
            b = open(p, "rb").read()
            end = len(b.rstrip(b"\0"))
            open(p, "wb").write(b[:end + 8])  # a short zero tail, as a torn preallocation
    shutil.rmtree(tmp)
    print("fixture in", OUT)

def dump(c, keeper):
    lines = []
    sid, _ = keeper.client_id
    lines.append("session %d %d" % (sid, keeper._session_timeout))
    sid, _ = c.client_id
    lines.append("session %d %d" % (sid, c._session_timeout))
    def walk(p):
        data, st = c.get(p)
        acls, _ = c.get_acls(p)
        acl = ";".join("%d:%s:%s" % (a.perms, a.id.scheme, a.id.id) for a in acls)
        lines.append("node\t%s\t%s\t%d %d %d %d %d %d %d %d %d %d %d\t%s" % (
            p, (data or b"").hex(), st.czxid, st.mzxid, st.ctime, st.mtime, st.version,
            st.cversion, st.aversion, st.ephemeralOwner, st.dataLength, st.numChildren,
            st.pzxid, acl))
        for ch in sorted(c.get_children(p)):
            walk(("" if p == "/" else p) + "/" + ch)
    walk("/")
    with open(os.path.join(HERE, "zk38_expected_tree.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")

if __name__ == "__main__":
    main()
