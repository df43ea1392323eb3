"""A harness for quorum tests: a `Cluster` of 3 or 5 members of either
Ensemble (`ensemble server zoo.cfg`) or Apache ZooKeeper 3.8 from Debian's
`zookeeper` package, every member on 127.0.0.1 with ports of its own, plus
helpers that read a member's whole tree and compare members.

Members are numbered 1..n: the number is the N of `server.N` and the content
of the member's `dataDir/myid`. Every method that takes `i` takes that number.

This module is imported by conftest.py (fixtures) and by the tests; it has a
name of its own so that it never clashes with the `conftest` module of
another test folder in the same pytest run.
"""

import atexit
import os
import random
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time

from kazoo.client import KazooClient
from kazoo.exceptions import KazooException

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))

IMPLS_ENV = "ENSEMBLE_CLUSTER_IMPLS"
DEFAULT_IMPLS = "ensemble,zookeeper"

# Apache ZooKeeper from Debian's packages: the classpath zkEnv.sh sets up,
# plus slf4j-simple so that the server logs to stderr (Debian's jar carries
# only slf4j-api, which alone logs nothing).
ZK_MAIN = "org.apache.zookeeper.server.quorum.QuorumPeerMain"
ZK_CLASSPATH = ["/etc/zookeeper/conf", "/usr/share/java/zookeeper.jar"]
ZK_LOG_BINDING = "/usr/share/java/slf4j-simple.jar"
# Small heaps and a quick start: up to five JVMs share the machine.
ZK_JVM_FLAGS = [
    "-Xms32m",
    "-Xmx256m",
    "-XX:+UseSerialGC",
    "-XX:TieredStopAtLevel=1",
    "-Dorg.slf4j.simpleLogger.defaultLogLevel=info",
    "-Dorg.slf4j.simpleLogger.showDateTime=true",
    "-Dorg.slf4j.simpleLogger.dateTimeFormat=HH:mm:ss.SSS",
    # One line per four-letter word would bury the rest: the harness polls srvr.
    "-Dorg.slf4j.simpleLogger.log.org.apache.zookeeper.server.NIOServerCnxn=warn",
    "-Dzookeeper.jmx.log4j.disable=true",
]

SERVING_MODES = ("leader", "follower", "observer", "standalone")


def impls():
    """The implementations the cluster tests run against, from
    ENSEMBLE_CLUSTER_IMPLS (a comma list; default both)."""
    raw = os.environ.get(IMPLS_ENV, DEFAULT_IMPLS)
    out = [x.strip() for x in raw.split(",") if x.strip()]
    for x in out:
        if x not in ("ensemble", "zookeeper"):
            raise ValueError(f"{IMPLS_ENV}: unknown implementation {x!r}")
    return out


def ensemble_bin():
    b = os.environ.get("ENSEMBLE_BIN")
    if b:
        return b
    for kind in ("release", "debug"):
        p = os.path.join(ROOT, "target", kind, "ensemble")
        if os.path.exists(p):
            return p
    raise RuntimeError("build the binary first: cargo build --release")


# ---------------------------------------------------------------------------
# Ports

_taken_ports = set()
_ports_lock = threading.Lock()


def _port_window():
    """Ports below the kernel's ephemeral range: an outgoing connection
    between members never takes one of them, so a killed member can always
    bind its ports again when it restarts."""
    low = 32768
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        pass
    if low > 12000:
        return 10000, low - 1
    return 1024, low - 1 if low > 2048 else 65535


def _bindable(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def free_ports(count):
    """`count` distinct loopback ports that are free now and that no other
    cluster of this process was given."""
    lo, hi = _port_window()
    out = []
    with _ports_lock:
        for _ in range(100000):
            if len(out) == count:
                break
            p = random.randint(lo, hi)
            if p in _taken_ports or p in out or not _bindable(p):
                continue
            out.append(p)
        if len(out) < count:
            raise RuntimeError("no free loopback ports")
        _taken_ports.update(out)
    return out


# ---------------------------------------------------------------------------
# Four-letter words


def four_letter(port, word, timeout=2.0):
    """The answer to a four-letter word, or None when the member does not
    answer (not running, or closed the connection without a word)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(word.encode())
            data = b""
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
    except OSError:
        return None
    return data.decode(errors="replace") if data else None


def parse_mode(srvr):
    """The `Mode:` of a `srvr` answer (leader, follower, observer,
    standalone), or None when there is none (ZooKeeper answers "This
    ZooKeeper instance is not currently serving requests" while it has no
    quorum)."""
    if not srvr:
        return None
    for line in srvr.splitlines():
        if line.startswith("Mode:"):
            mode = line.split(":", 1)[1].strip()
            return mode or None
    return None


# ---------------------------------------------------------------------------
# A fault-injecting TCP proxy between members


class LinkProxy:
    """Forwards connections made to 127.0.0.1:`listen_port` to
    127.0.0.1:`target_port`, one thread pair per connection, until the link
    is cut with `block()`:

    - `block("close")`: every connection it carries is closed and new ones
      are accepted and closed at once, as when a host rejects packets;
    - `block("silent")`: nothing gets through any more, but no connection
      is closed: bytes wait in the proxy and new connections are accepted
      and left hanging, as when a network drops packets. The dialer notices
      only through its own timeouts.

    `heal()` restores the link (after a silent cut, what waited is
    delivered and hanging connections are put through, as TCP would once
    the network is back). `close()` stops it for good.

    `announce`: for an election port, the "host:port" to put in place of
    the election address a ZooKeeper member announces when it dials (see
    `rewrite_election_hello`), so that the member it dialed calls back
    through the proxy the test gave that direction."""

    def __init__(self, listen_port, target_port, name="", announce=None):
        self.listen_port = listen_port
        self.target_port = target_port
        self.name = name
        self.announce = announce
        self.blocked = None  # None, "close" or "silent"
        self.accepted = 0  # connections put through so far
        self._cond = threading.Condition()
        self._conns = set()  # (client socket, upstream socket or None)
        self._closed = False
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", listen_port))
        self._sock.listen(64)
        self._sock.settimeout(0.2)
        self._thread = threading.Thread(target=self._accept_loop, daemon=True, name=f"proxy {name}")
        self._thread.start()

    def _accept_loop(self):
        while not self._closed:
            try:
                conn, _ = self._sock.accept()
            except socket.timeout:
                continue
            except OSError:
                if self._closed:
                    return
                time.sleep(0.05)
                continue
            if self.blocked == "close":
                _close_quietly(conn)
                continue
            threading.Thread(target=self._open, args=(conn,), daemon=True).start()

    def _wait_passable(self, pair):
        """Waits while the link is silently cut; False once the pair or
        the proxy is closed."""
        with self._cond:
            while self.blocked == "silent" and not self._closed and pair in self._conns:
                self._cond.wait(0.5)
            return pair in self._conns and not self._closed

    def _open(self, conn):
        pending = (conn, None)
        with self._cond:
            if self.blocked == "close" or self._closed:
                ok = False
            else:
                ok = True
                self._conns.add(pending)  # a silent cut holds it here
        if not ok or not self._wait_passable(pending):
            self._drop(pending)
            return
        try:
            up = socket.create_connection(("127.0.0.1", self.target_port), timeout=2.0)
        except OSError:
            self._drop(pending)  # the member is down: the dialer sees the link fail
            return
        for s in (conn, up):
            s.settimeout(None)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        pair = (conn, up)
        with self._cond:
            ok = pending in self._conns and not self._closed and self.blocked != "close"
            self._conns.discard(pending)
            if ok:
                self._conns.add(pair)
                self.accepted += 1
        if not ok:
            self._drop(pair)
            return
        threading.Thread(
            target=self._pump, args=(conn, up, pair, self.announce), daemon=True
        ).start()
        self._pump(up, conn, pair)

    def _pump(self, src, dst, pair, announce=None):
        head = b""  # the dialer's first bytes, while `announce` may apply
        try:
            while True:
                data = src.recv(65536)
                if not data or not self._wait_passable(pair):
                    break
                if announce is not None:
                    head += data
                    data = rewrite_election_hello(head, announce)
                    if data is None:
                        continue  # not the whole hello yet
                    announce = None
                dst.sendall(data)
        except OSError:
            pass
        self._drop(pair)

    def _drop(self, pair):
        with self._cond:
            self._conns.discard(pair)
            self._cond.notify_all()
        for s in pair:
            if s is not None:
                _close_quietly(s)

    def connections(self):
        with self._cond:
            return len(self._conns)

    def block(self, how="close"):
        """Cuts the link: "close" closes every connection and refuses new
        ones; "silent" stops every byte without closing anything."""
        if how not in ("close", "silent"):
            raise ValueError(f"block how={how!r}")
        with self._cond:
            self.blocked = how
            pairs = list(self._conns) if how == "close" else []
        for pair in pairs:
            self._drop(pair)

    def heal(self):
        with self._cond:
            self.blocked = None
            self._cond.notify_all()

    def close(self):
        self._closed = True
        self.block("close")
        _close_quietly(self._sock)
        self._thread.join(timeout=2)


def _socket_inodes(pid):
    out = set()
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return out
    for fd in fds:
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            out.add(target[8:-1])
    return out


def _established_tcp():
    """(local port, remote port, inode) of every established TCP socket."""
    out = []
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(name) as f:
                rows = f.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            cols = row.split()
            if len(cols) < 10 or cols[3] != "01":  # 01: ESTABLISHED
                continue
            local = int(cols[1].rsplit(":", 1)[1], 16)
            remote = int(cols[2].rsplit(":", 1)[1], 16)
            out.append((local, remote, cols[9]))
    return out


# QuorumCnxManager's protocol versions that announce an election address.
_ZK_HELLO_VERSIONS = (-65536, -65535)


def rewrite_election_hello(head, announce):
    """A ZooKeeper member that dials another one's election port first
    sends (long protocol version, long sid, int length, "host:port[|...]"):
    its own election address. A member with a greater sid drops such a
    connection and dials back that announced address, not the one in its
    own zoo.cfg, which would bypass the proxies; so the proxy puts the
    address of the proxy for the opposite direction in its place. Returns
    the bytes to forward, or None while `head` is too short to tell.
    Anything that is not such a hello passes unchanged."""
    if len(head) < 8:
        return None
    (version,) = struct.unpack(">q", head[:8])
    if version not in _ZK_HELLO_VERSIONS:
        return head
    if len(head) < 20:
        return None
    (n,) = struct.unpack(">i", head[16:20])
    if not 0 <= n <= 4096:
        return head
    if len(head) < 20 + n:
        return None
    addr = announce.encode()
    return head[:16] + struct.pack(">i", len(addr)) + addr + head[20 + n :]


def _close_quietly(s):
    try:
        s.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    try:
        s.close()
    except OSError:
        pass


# ---------------------------------------------------------------------------
# The cluster

_live_clusters = set()


@atexit.register
def _kill_leftovers():
    for c in list(_live_clusters):
        c.cleanup()


class Member:
    def __init__(self, sid, client_port, peer_port, election_port, directory):
        self.sid = sid
        self.client_port = client_port
        self.peer_port = peer_port
        self.election_port = election_port
        self.dir = directory
        self.data_dir = os.path.join(directory, "data")
        self.cfg = os.path.join(directory, "zoo.cfg")
        self.log_path = os.path.join(directory, "member.log")
        self.proc = None
        self.log = None

    def alive(self):
        return self.proc is not None and self.proc.poll() is None


class Cluster:
    """N members (3 or 5) of one implementation, "ensemble" or "zookeeper".

    The constructor writes every member's zoo.cfg and myid; `start_all()`
    (or `start(i)`) launches them. `cleanup()` kills every process this
    cluster started; the `cluster` fixture calls it, failure or not."""

    def __init__(
        self,
        impl,
        n=3,
        tick_time=200,
        init_limit=10,
        sync_limit=5,
        max_session_timeout=30000,
        extra_cfg="",
        jvm_flags=(),
        base_dir=None,
        proxied=False,
    ):
        if impl not in ("ensemble", "zookeeper"):
            raise ValueError(f"unknown implementation {impl!r}")
        self.impl = impl
        self.n = n
        self.tick_time = tick_time
        self.init_limit = init_limit
        self.sync_limit = sync_limit
        self.max_session_timeout = max_session_timeout
        self.extra_cfg = extra_cfg
        self.jvm_flags = list(jvm_flags)
        self.dir = tempfile.mkdtemp(prefix=f"cluster-{impl}-", dir=base_dir)
        self._clients = []
        self._writers = []
        self.paused = set()  # members stopped with SIGSTOP
        ports = free_ports(3 * n)
        self.members = {}
        for sid in range(1, n + 1):
            k = 3 * (sid - 1)
            d = os.path.join(self.dir, f"m{sid}")
            m = Member(sid, ports[k], ports[k + 1], ports[k + 2], d)
            os.makedirs(m.data_dir)
            self.members[sid] = m
        # proxied: member i reaches member j's peer and election ports only
        # through proxies[(i, j, "peer" | "election")], which the test can
        # block; its own server.i line keeps its real ports.
        self.proxies = {}
        if proxied:
            pairs = [(i, j) for i in self.ids for j in self.ids if i != j]
            pports = free_ports(2 * len(pairs))
            port = {}
            for k, (i, j) in enumerate(pairs):
                port[(i, j, "peer")] = pports[2 * k]
                port[(i, j, "election")] = pports[2 * k + 1]
            try:
                for i, j in pairs:
                    o = self.members[j]
                    self.proxies[(i, j, "peer")] = LinkProxy(
                        port[(i, j, "peer")], o.peer_port, f"{i}->{j} peer"
                    )
                    # i announces its election address to j: j calls back
                    # through the proxy j->i.
                    self.proxies[(i, j, "election")] = LinkProxy(
                        port[(i, j, "election")],
                        o.election_port,
                        f"{i}->{j} election",
                        announce=f"127.0.0.1:{port[(j, i, 'election')]}",
                    )
            except Exception:
                for p in self.proxies.values():
                    p.close()
                raise
        for m in self.members.values():
            self._write_myid(m)
            with open(m.cfg, "w") as f:
                f.write(self._config_text(m))
        _live_clusters.add(self)

    # -- configuration -------------------------------------------------------

    @property
    def ids(self):
        return list(range(1, self.n + 1))

    def _write_myid(self, m):
        with open(os.path.join(m.data_dir, "myid"), "w") as f:
            f.write(f"{m.sid}\n")

    def _config_text(self, m):
        lines = [
            f"tickTime={self.tick_time}",
            f"initLimit={self.init_limit}",
            f"syncLimit={self.sync_limit}",
            f"dataDir={m.data_dir}",
            f"clientPort={m.client_port}",
            "clientPortAddress=127.0.0.1",
            f"maxSessionTimeout={self.max_session_timeout}",
            "4lw.commands.whitelist=*",
            "admin.enableServer=false",
        ]
        # The client address carries the host: `;port` alone means the
        # wildcard address, which both ZooKeeper and Ensemble reject when it
        # differs from clientPortAddress.
        for o in self.members.values():
            peer, election = o.peer_port, o.election_port
            if self.proxies and o.sid != m.sid:
                peer = self.proxies[(m.sid, o.sid, "peer")].listen_port
                election = self.proxies[(m.sid, o.sid, "election")].listen_port
            lines.append(
                f"server.{o.sid}=127.0.0.1:{peer}:{election};127.0.0.1:{o.client_port}"
            )
        text = "\n".join(lines) + "\n"
        if self.extra_cfg:
            text += self.extra_cfg.rstrip("\n") + "\n"
        return text

    def _command(self, m):
        if self.impl == "ensemble":
            return [ensemble_bin(), "server", m.cfg], dict(os.environ)
        cp = list(ZK_CLASSPATH)
        if os.path.exists(ZK_LOG_BINDING):
            cp.append(ZK_LOG_BINDING)
        flags = list(ZK_JVM_FLAGS) + os.environ.get("SERVER_JVMFLAGS", "").split()
        flags += self.jvm_flags
        cmd = (
            ["java", f"-Dzookeeper.log.dir={m.dir}", "-Dzookeeper.log.file=zookeeper.log"]
            + flags
            + ["-cp", ":".join(cp), ZK_MAIN, m.cfg]
        )
        return cmd, dict(os.environ, ZOO_LOG_DIR=m.dir)

    # -- processes -----------------------------------------------------------

    def member(self, i):
        return self.members[i]

    def client_port(self, i):
        return self.members[i].client_port

    def host_port(self, i):
        return f"127.0.0.1:{self.members[i].client_port}"

    def connect_string(self, indices=None):
        ids = self.ids if indices is None else list(indices)
        return ",".join(self.host_port(i) for i in ids)

    def alive(self, i):
        return self.members[i].alive()

    def live_ids(self):
        return [i for i in self.ids if self.alive(i)]

    def start(self, i):
        """Launches member i (without waiting for it to serve)."""
        m = self.members[i]
        if m.alive():
            raise RuntimeError(f"member {i} is already running")
        if m.log is None:
            m.log = open(m.log_path, "a")
        m.log.write(f"===== harness: start member {i} at {time.strftime('%H:%M:%S')}\n")
        m.log.flush()
        cmd, env = self._command(m)
        self.paused.discard(i)
        m.proc = subprocess.Popen(
            cmd,
            stdout=m.log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=m.dir,
            start_new_session=True,
        )

    def start_all(self, timeout=60.0):
        for i in self.ids:
            if not self.alive(i):
                self.start(i)
        self.wait_serving(timeout)
        return self

    def _signal(self, i, sig, timeout):
        m = self.members[i]
        if m.proc is None:
            return
        if m.proc.poll() is None:
            try:
                os.killpg(m.proc.pid, sig)
                if i in self.paused:
                    os.killpg(m.proc.pid, signal.SIGCONT)  # or SIGTERM stays pending
            except ProcessLookupError:
                pass
            try:
                m.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(m.proc.pid, signal.SIGKILL)
                m.proc.wait()
        if m.log is not None:
            m.log.write(
                f"===== harness: member {i} ended ({signal.Signals(sig).name}) "
                f"at {time.strftime('%H:%M:%S')}, exit code {m.proc.returncode}\n"
            )
            m.log.flush()

    def kill(self, i):
        """SIGKILL: the member dies at once, with nothing flushed."""
        self._signal(i, signal.SIGKILL, 10)
        self.paused.discard(i)

    def pause(self, i):
        """SIGSTOP to member i's process group: it freezes with its
        connections open, as a process stalled by the kernel or a long GC
        pause would; `resume(i)` lets it go on."""
        m = self.members[i]
        if not m.alive():
            raise RuntimeError(f"pause of member {i}, which is not running")
        os.killpg(m.proc.pid, signal.SIGSTOP)
        self.paused.add(i)
        m.log.write(f"===== harness: member {i} paused (SIGSTOP) at {time.strftime('%H:%M:%S')}\n")
        m.log.flush()

    def resume(self, i):
        """SIGCONT to a member that `pause(i)` froze."""
        m = self.members[i]
        if i not in self.paused:
            return
        self.paused.discard(i)
        if m.alive():
            os.killpg(m.proc.pid, signal.SIGCONT)
            m.log.write(f"===== harness: member {i} resumed (SIGCONT) at {time.strftime('%H:%M:%S')}\n")
            m.log.flush()

    def stop(self, i, timeout=15.0):
        """SIGTERM, then SIGKILL if the member has not exited in `timeout`."""
        self._signal(i, signal.SIGTERM, timeout)

    def restart(self, i):
        """Stops member i if it runs (SIGTERM) and launches it again."""
        if self.alive(i):
            self.stop(i)
        self.start(i)

    def wipe(self, i):
        """Deletes everything in member i's data directory but `myid`. The
        member must not be running."""
        m = self.members[i]
        if m.alive():
            raise RuntimeError(f"wipe of member {i} while it runs")
        for name in os.listdir(m.data_dir):
            p = os.path.join(m.data_dir, name)
            if name == "myid":
                continue
            if os.path.isdir(p) and not os.path.islink(p):
                shutil.rmtree(p)
            else:
                os.remove(p)
        self._write_myid(m)

    # -- state ---------------------------------------------------------------

    def srvr(self, i):
        return four_letter(self.members[i].client_port, "srvr")

    def mode(self, i):
        """leader / follower / observer / standalone, or None when member i
        is not serving (dead, paused, starting, or without a quorum)."""
        if not self.alive(i) or i in self.paused:
            return None
        return parse_mode(self.srvr(i))

    def modes(self):
        return {i: self.mode(i) for i in self.ids}

    def wait_serving(self, timeout=60.0, indices=None):
        """Waits until every running member (or every one of `indices`)
        reports a serving mode. Raises if a member exits meanwhile."""
        ids = self.live_ids() if indices is None else list(indices)
        deadline = time.time() + timeout
        while True:
            for i in ids:
                m = self.members[i]
                if m.proc is not None and m.proc.poll() is not None:
                    raise RuntimeError(
                        f"member {i} exited with code {m.proc.returncode} "
                        f"while the harness waited for it to serve"
                    )
            modes = {i: self.mode(i) for i in ids}
            self._no_standalone(modes)
            if all(v in SERVING_MODES for v in modes.values()):
                return modes
            if time.time() > deadline:
                raise TimeoutError(f"members not serving after {timeout}s: {modes}")
            time.sleep(0.1)

    @staticmethod
    def _no_standalone(modes):
        """A member of a quorum that says standalone will never join one."""
        alone = [i for i, v in modes.items() if v == "standalone"]
        if alone:
            raise AssertionError(
                f"members {alone} run standalone: their server.N lines were not taken "
                f"as a quorum (modes: {modes})"
            )

    def leader(self, timeout=60.0):
        """Waits until exactly one running member reports leader and every
        other running member follower (or observer); returns the leader's
        number."""
        deadline = time.time() + timeout
        while True:
            live = self.live_ids()
            modes = {i: self.mode(i) for i in live}
            self._no_standalone(modes)
            leaders = [i for i, v in modes.items() if v == "leader"]
            others_ok = all(v in ("follower", "observer") for i, v in modes.items() if v != "leader")
            if len(leaders) == 1 and others_ok:
                return leaders[0]
            if time.time() > deadline:
                raise TimeoutError(f"no single leader after {timeout}s: {modes}")
            time.sleep(0.1)

    def followers(self, timeout=60.0):
        lead = self.leader(timeout)
        return [i for i in self.live_ids() if i != lead]

    # -- partitions (proxied clusters) ---------------------------------------

    def _links(self, i, j):
        if not self.proxies:
            raise RuntimeError("partitions need a cluster made with proxied=True")
        return [self.proxies[(i, j, kind)] for kind in ("peer", "election")]

    def partition(self, groups, how="close"):
        """Cuts every link between members of different groups (a list of
        lists of member numbers; a member in no group is a group of its
        own) and heals every link within a group. `how`: "close" (links
        refuse and reset connections) or "silent" (links drop every byte
        and close nothing); see LinkProxy."""
        group_of = {}
        for g, members in enumerate(groups):
            for i in members:
                group_of[i] = g
        for i in self.ids:
            for j in self.ids:
                if i == j:
                    continue
                same = i in group_of and group_of.get(i) == group_of.get(j)
                for p in self._links(i, j):
                    p.heal() if same else p.block(how)

    def direct_links(self):
        """Established TCP connections from a member's process straight to
        another member's real peer or election port, as [(from, to, port)].
        In a proxied cluster there must be none: all member traffic goes
        through the proxies, or a partition would leak."""
        real = {}
        for j, m in self.members.items():
            real[m.peer_port] = j
            real[m.election_port] = j
        out = []
        for i in self.live_ids():
            inodes = _socket_inodes(self.members[i].proc.pid)
            for local, remote, inode in _established_tcp():
                j = real.get(remote)
                if inode in inodes and j is not None and j != i:
                    out.append((i, j, remote))
        return out

    def cut(self, pairs, how="close"):
        """Cuts the links between the two members of each pair, both ways,
        and heals every other link. Unlike `partition`, the result need not
        be transitive: see `bridge`."""
        cut = {frozenset(p) for p in pairs}
        for i in self.ids:
            for j in self.ids:
                if i == j:
                    continue
                for p in self._links(i, j):
                    p.block(how) if frozenset((i, j)) in cut else p.heal()

    def bridge(self, middle, how="close"):
        """Splits the other members in two halves (in numbering order) that
        cannot reach each other, while `middle` reaches both: each half plus
        the middle member is a majority."""
        others = [j for j in self.ids if j != middle]
        left, right = others[: len(others) // 2], others[len(others) // 2 :]
        self.cut([(a, b) for a in left for b in right], how)

    def isolate(self, i, how="close"):
        """Cuts member i off from every other member, both ways."""
        self.partition([[i], [j for j in self.ids if j != i]], how)

    def heal(self):
        """Restores every link."""
        self.partition([self.ids])

    # -- clients -------------------------------------------------------------

    def client(self, indices=None, timeout=10.0, start_timeout=30.0, **kwargs):
        """A started KazooClient on the given members (all by default), in
        the given order. The caller stops it (or lets `cleanup` do it)."""
        kwargs.setdefault("randomize_hosts", False)
        kwargs.setdefault(
            "connection_retry", {"max_tries": -1, "delay": 0.05, "backoff": 1.5, "max_delay": 1.0}
        )
        c = KazooClient(hosts=self.connect_string(indices), timeout=timeout, **kwargs)
        c.start(timeout=start_timeout)
        self._clients.append(c)
        return c

    # -- logs and cleanup ----------------------------------------------------

    def log_tail(self, i, lines=60):
        m = self.members[i]
        try:
            with open(m.log_path, errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except OSError:
            return "(no log)\n"

    def log_tails(self, lines=60):
        out = [f"cluster of {self.n} {self.impl} members in {self.dir}\n"]
        for i in self.ids:
            m = self.members[i]
            out.append(
                f"----- member {i} (client {m.client_port}, peer {m.peer_port}, "
                f"election {m.election_port}), last {lines} log lines -----\n"
            )
            out.append(self.log_tail(i, lines))
        return "".join(out)

    def cleanup(self, remove=True):
        """Stops the load threads, kills every member process (SIGKILL), then
        stops the clients."""
        for w in self._writers:
            w._stop_event.set()
        for i in self.ids:
            m = self.members[i]
            if m.proc is not None and m.proc.poll() is None:
                try:
                    os.killpg(m.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                m.proc.wait()
            if m.log is not None:
                m.log.close()
                m.log = None
        for c in self._clients:
            try:
                c.stop()
                c.close()
            except Exception:
                pass
        self._clients.clear()
        for p in self.proxies.values():
            p.close()
        _live_clusters.discard(self)
        if remove:
            shutil.rmtree(self.dir, ignore_errors=True)


# ---------------------------------------------------------------------------
# Reading and comparing whole trees


def tree_snapshot(host_port, timeout=30.0):
    """Every znode a member holds (below /, skipping /zookeeper) as
    {path: (data, version, cversion, aversion, ephemeralOwner, czxid, mzxid,
    pzxid)}, read after `sync('/')` through that member only."""
    c = KazooClient(hosts=host_port, timeout=10.0, randomize_hosts=False)
    c.start(timeout=timeout)
    try:
        c.sync("/")
        out = {}
        level = ["/"]
        while level:
            pending = [(p, c.get_async(p), c.get_children_async(p)) for p in level]
            level = []
            for p, g, ch in pending:
                data, st = g.get(timeout=timeout)
                kids = ch.get(timeout=timeout)
                out[p] = (
                    data,
                    st.version,
                    st.cversion,
                    st.aversion,
                    st.ephemeralOwner,
                    st.czxid,
                    st.mzxid,
                    st.pzxid,
                )
                for k in kids:
                    child = ("/" if p == "/" else p + "/") + k
                    if child != "/zookeeper":
                        level.append(child)
        return out
    finally:
        c.stop()
        c.close()


FIELDS = ("data", "version", "cversion", "aversion", "ephemeralOwner", "czxid", "mzxid", "pzxid")


def diff_trees(a, b, limit=10):
    """A short human description of how two tree snapshots differ."""
    lines = []
    only_a = sorted(set(a) - set(b))
    only_b = sorted(set(b) - set(a))
    if only_a:
        lines.append(f"{len(only_a)} paths only in the first: {only_a[:limit]}")
    if only_b:
        lines.append(f"{len(only_b)} paths only in the second: {only_b[:limit]}")
    differing = [p for p in sorted(set(a) & set(b)) if a[p] != b[p]]
    for p in differing[:limit]:
        fields = [
            f"{name} {x!r} != {y!r}" for name, x, y in zip(FIELDS, a[p], b[p]) if x != y
        ]
        lines.append(f"{p}: " + ", ".join(fields))
    if len(differing) > limit:
        lines.append(f"... and {len(differing) - limit} more differing paths")
    return "\n".join(lines)


def assert_members_agree(cluster, indices=None, wait=60.0):
    """Every running member (or every one of `indices`) holds the same tree,
    znode for znode and Stat for Stat. Waits for them to serve first.
    Returns the agreed snapshot."""
    ids = cluster.live_ids() if indices is None else list(indices)
    assert ids, "no running member to compare"
    cluster.wait_serving(wait, indices=ids)
    deadline = time.time() + wait
    while True:
        try:
            snaps = {i: tree_snapshot(cluster.host_port(i)) for i in ids}
            break
        except KazooException:
            # Reading whole trees on a loaded machine can delay heartbeats
            # enough for a member to stop serving for a while: read again.
            if time.time() > deadline:
                raise
            time.sleep(1.0)
            cluster.wait_serving(wait, indices=ids)
    first = ids[0]
    for i in ids[1:]:
        if snaps[i] != snaps[first]:
            raise AssertionError(
                f"member {i} differs from member {first} "
                f"({len(snaps[i])} vs {len(snaps[first])} znodes):\n"
                + diff_trees(snaps[first], snaps[i])
            )
    return snaps[first]


# ---------------------------------------------------------------------------
# A write load


class SequentialWriter(threading.Thread):
    """Sequential creates under `parent` in a loop, through a client on the
    given members, until `stop()`. `acked` lists the paths the servers
    acknowledged, in order; `errors` lists the creates that failed or got
    no answer in time, whose outcome is unknown. The cluster's cleanup stops
    the thread too."""

    def __init__(self, cluster, parent="/load", indices=None, op_timeout=5.0):
        super().__init__(daemon=True)
        self.prefix = parent.rstrip("/") + "/n-"
        self.op_timeout = op_timeout
        self.acked = []
        self.errors = []
        self._stop_event = threading.Event()
        self._lock = threading.Lock()
        cluster._writers.append(self)
        self.client = cluster.client(indices)
        self.client.ensure_path(parent)

    def run(self):
        k = 0
        while not self._stop_event.is_set():
            k += 1
            try:
                path = self.client.create_async(self.prefix, str(k).encode(), sequence=True).get(
                    timeout=self.op_timeout
                )
                with self._lock:
                    self.acked.append(path)
            except Exception as e:  # connection loss, timeout: unknown outcome
                with self._lock:
                    self.errors.append(f"{type(e).__name__}: {e}")
                self._stop_event.wait(0.05)

    def count(self):
        with self._lock:
            return len(self.acked)

    def wait_for(self, n, timeout=30.0):
        """Waits until at least `n` creates were acknowledged in total."""
        deadline = time.time() + timeout
        while self.count() < n:
            if time.time() > deadline:
                raise TimeoutError(
                    f"{self.count()} of {n} writes acknowledged after {timeout}s; "
                    f"last errors: {self.errors[-5:]}"
                )
            if not self.is_alive():
                raise RuntimeError("the writer thread ended")
            time.sleep(0.02)

    def stop(self):
        self._stop_event.set()
        self.join(timeout=self.op_timeout + 5)
        self.client.stop()
        return list(self.acked)
