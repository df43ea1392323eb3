"""Stopping the server: SIGTERM or SIGINT under write load ends it with exit code 0
within a few seconds and keeps every acknowledged write; a second signal ends it at
once; the log goes to a file under ZOO_LOG_DIR; systemd hears READY=1."""

import os
import signal
import socket
import subprocess
import threading
import time

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import KazooException
from kazoo.handlers.threading import KazooTimeoutError

from conftest import Server, ensemble_bin, wait_port


def writer(hosts, acked, stop):
    """Creates nodes one after another and records each acknowledged one."""
    zk = KazooClient(hosts=hosts, timeout=10, connection_retry=None, command_retry=None)
    zk.start(timeout=10)
    i = 0
    try:
        while not stop.is_set():
            path = f"/load/n{threading.get_ident()}-{i}"
            try:
                # Bounded: a create sent as the server stops would otherwise wait for a
                # reconnection that never comes, and the thread would outlive the test.
                zk.create_async(path, b"x" * 100, makepath=True).get(timeout=10)
            except (KazooException, KazooTimeoutError):
                return
            acked.append(path)
            i += 1
    finally:
        try:
            zk.stop()
            zk.close()
        except Exception:
            pass


@pytest.mark.parametrize("signo", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_under_write_load_exits_0_and_keeps_every_acknowledged_write(signo):
    s = Server("ensemble").start()
    try:
        acked, stop = [], threading.Event()
        threads = [
            threading.Thread(target=writer, args=(s.hosts, acked, stop), daemon=True)
            for _ in range(4)
        ]
        for t in threads:
            t.start()
        time.sleep(1.5)
        assert len(acked) > 20, "the writers got going"
        started = time.time()
        s.proc.send_signal(signo)
        rc = s.proc.wait(timeout=10)
        took = time.time() - started
        stop.set()
        for t in threads:
            t.join(timeout=15)
        assert rc == 0, s.log_text()[-2000:]
        assert took < 5, f"stopping took {took:.1f} s"
        assert "shut down cleanly" in s.log_text()

        s.start()
        zk = KazooClient(hosts=s.hosts, timeout=10)
        zk.start(timeout=10)
        try:
            missing = [p for p in acked if zk.exists(p) is None]
            assert not missing, f"{len(missing)} of {len(acked)} acknowledged writes lost"
        finally:
            zk.stop()
            zk.close()
    finally:
        s.close()


def test_a_second_signal_exits_at_once():
    s = Server("ensemble").start()
    try:
        s.proc.send_signal(signal.SIGTERM)
        time.sleep(0.02)
        s.proc.send_signal(signal.SIGTERM)
        started = time.time()
        rc = s.proc.wait(timeout=5)
        assert time.time() - started < 1
        # 128 + SIGTERM when the second signal cut the clean stop short.
        assert rc in (0, 143)
        assert rc == 143 or "shut down cleanly" in s.log_text()
    finally:
        s.close()


def test_the_log_goes_to_a_daily_file_under_zoo_log_dir(tmp_path):
    s = Server("ensemble")
    logs = tmp_path / "logs"
    env = dict(os.environ, ZOO_LOG_DIR=str(logs), ZOO_LOG_FILE="zookeeper-test-server-host.log")
    env.pop("ENSEMBLE_LOG", None)
    try:
        s.proc = subprocess.Popen([ensemble_bin(), "server", s.cfg], stdout=s.log,
                                  stderr=subprocess.STDOUT, env=env, start_new_session=True)
        wait_port(s.port, s.proc)
        s.proc.send_signal(signal.SIGTERM)
        assert s.proc.wait(timeout=10) == 0
        current = logs / "zookeeper-test-server-host.log"
        assert current.exists(), os.listdir(logs)
        dated = [n for n in os.listdir(logs) if n.startswith("zookeeper-test-server-host.log.")]
        assert len(dated) == 1, os.listdir(logs)
        text = current.read_text()
        assert "ensemble is ready" in text and "shut down cleanly" in text
        assert "ensemble is ready" not in s.log_text(), "nothing logged to stderr"
    finally:
        s.close()


def test_log_level_option_and_rust_log(tmp_path):
    s = Server("ensemble")
    env = dict(os.environ, RUST_LOG="warn")
    env.pop("ENSEMBLE_LOG", None)
    env.pop("ZOO_LOG_DIR", None)
    try:
        s.proc = subprocess.Popen([ensemble_bin(), "server", s.cfg], stdout=s.log,
                                  stderr=subprocess.STDOUT, env=env, start_new_session=True)
        wait_port(s.port, s.proc)
        s.proc.send_signal(signal.SIGTERM)
        assert s.proc.wait(timeout=10) == 0
        assert "ensemble is ready" not in s.log_text()
        s.proc = subprocess.Popen([ensemble_bin(), "server", "--log-level", "info", s.cfg],
                                  stdout=s.log, stderr=subprocess.STDOUT, env=env,
                                  start_new_session=True)
        wait_port(s.port, s.proc)
        s.proc.send_signal(signal.SIGTERM)
        assert s.proc.wait(timeout=10) == 0
        assert "ensemble is ready" in s.log_text()
    finally:
        s.close()


def test_systemd_hears_ready(tmp_path):
    sock_path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(sock_path)
    sock.settimeout(20)
    s = Server("ensemble")
    try:
        env = dict(os.environ, NOTIFY_SOCKET=sock_path)
        s.proc = subprocess.Popen([ensemble_bin(), "server", s.cfg], stdout=s.log,
                                  stderr=subprocess.STDOUT, env=env, start_new_session=True)
        assert sock.recv(64) == b"READY=1"
        s.proc.send_signal(signal.SIGTERM)
        assert sock.recv(64) == b"STOPPING=1"
        assert s.proc.wait(timeout=10) == 0
    finally:
        sock.close()
        s.close()
