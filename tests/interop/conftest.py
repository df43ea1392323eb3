"""Fixtures that start real servers for the interop tests: the `ensemble`
binary and, for side-by-side comparisons, Apache ZooKeeper from Debian's
`zookeeper` package. Every server binds 127.0.0.1 on a free port, lives in a
temporary directory and is killed at the end of its test."""

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
ZK_HOME = "/usr/share/zookeeper"


def ensemble_bin():
    b = os.environ.get("ENSEMBLE_BIN")
    if b:
        return b
    for kind in ("release", "debug"):
        p = os.path.join(ROOT, "target", kind, "ensemble")
        if os.path.exists(p):
            return p
    raise RuntimeError("build the binary first: cargo build --release")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, timeout=30.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited early with code {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
                # A four-letter word proves the server loop is answering.
                s.sendall(b"srvr")
                data = b""
                while True:
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    data += chunk
                # ZooKeeper answers srvr before it serves; "Mode:" means ready.
                if b"Mode:" in data:
                    return
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"server did not open port {port}")


class Server:
    """A server process with its config and data directory."""

    def __init__(self, kind, extra_cfg="", tick_time=2000, jvm_flags=""):
        """`jvm_flags` reach Apache ZooKeeper only: settings it reads as
        system properties and not from zoo.cfg."""
        self.kind = kind
        self.jvm_flags = jvm_flags
        self.dir = tempfile.mkdtemp(prefix=f"{kind}-test-")
        self.port = free_port()
        self.data_dir = os.path.join(self.dir, "data")
        os.makedirs(self.data_dir)
        self.cfg = os.path.join(self.dir, "zoo.cfg")
        with open(self.cfg, "w") as f:
            f.write(
                f"tickTime={tick_time}\n"
                f"dataDir={self.data_dir}\n"
                f"clientPort={self.port}\n"
                "clientPortAddress=127.0.0.1\n"
                "admin.enableServer=false\n"
                "4lw.commands.whitelist=*\n" + extra_cfg
            )
        self.log = open(os.path.join(self.dir, "server.log"), "w")
        self.proc = None
        # Added to the server process's environment.
        self.extra_env = {}

    @property
    def hosts(self):
        return f"127.0.0.1:{self.port}"

    def start(self):
        if self.kind == "ensemble":
            cmd = [ensemble_bin(), "server", "--config", self.cfg]
            env = dict(os.environ, **self.extra_env)
        else:
            cmd = [os.path.join(ZK_HOME, "bin", "zkServer.sh"), "start-foreground", self.cfg]
            env = dict(os.environ, ZOO_LOG_DIR=self.dir, SERVER_JVMFLAGS=self.jvm_flags)
        first = self.proc is None
        for attempt in range(3):
            self.proc = subprocess.Popen(
                cmd, stdout=self.log, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )
            try:
                wait_port(self.port, self.proc)
                return self
            except RuntimeError as e:
                text = self.log_text()
                # Another process took the free port between its choice and
                # the bind: a first start moves to another one.
                taken = (
                    f"cannot listen for clients on 127.0.0.1:{self.port}" in text
                    if self.kind == "ensemble"
                    else "Address already in use" in text
                )
                if first and attempt < 2 and taken:
                    self.kill()
                    self._move_port()
                    continue
                tail = "\n".join(text.splitlines()[-15:])
                raise RuntimeError(f"{e}; the end of its log:\n{tail}") from None

    def _move_port(self):
        old = self.port
        self.port = free_port()
        with open(self.cfg) as f:
            text = f.read()
        with open(self.cfg, "w") as f:
            f.write(text.replace(f"clientPort={old}\n", f"clientPort={self.port}\n"))

    def kill(self):
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def close(self):
        self.kill()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def log_text(self):
        self.log.flush()
        with open(os.path.join(self.dir, "server.log")) as f:
            return f.read()


@pytest.fixture
def ensemble():
    s = Server("ensemble").start()
    yield s
    s.close()


@pytest.fixture
def ensemble_fast_ticks():
    """An ensemble server with a 200 ms tick, so sessions expire quickly."""
    s = Server("ensemble", tick_time=200).start()
    yield s
    s.close()


@pytest.fixture
def zookeeper():
    s = Server("zookeeper").start()
    yield s
    s.close()


@pytest.fixture(params=["ensemble", "zookeeper"])
def any_server(request):
    """Runs a test against both servers, to prove the test itself passes
    against Apache ZooKeeper."""
    s = Server(request.param).start()
    yield s
    s.close()
