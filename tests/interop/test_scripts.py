"""bin/zkServer.sh and bin/zkCli.sh, and the systemd units they serve.

The lifecycle (start, start again, status, stop, stop again, status when down) and
the stale pid file run through Debian's zkServer.sh against Apache ZooKeeper 3.8 and
through ours against Ensemble; stdout and exit codes must be the same once paths,
ports and pids are normalised. Then what ZooKeeper's script does not promise:
`start` returns only once the server answers (systemd's Type=forking contract),
a start that fails says so, restart, start-foreground, print-cmd, ZOOCFGDIR and
ZOO_LOG_DIR, a quorum member's Mode line, zkCli.sh, and both systemd units.

Every script runs in a session of its own; whatever is left in those sessions at
the end of a test (the servers the scripts started) is killed. While a test runs,
this process is a child subreaper and reaps the servers that exit, as init does on
a real machine: otherwise a killed server would linger as a zombie, and `kill -0`
in ZooKeeper's script would take it for a live process."""

import ctypes
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass

import pytest

from conftest import ROOT, ZK_HOME, ensemble_bin, free_port

ZKSERVER = os.path.join(ROOT, "bin", "zkServer.sh")
ZKCLI = os.path.join(ROOT, "bin", "zkCli.sh")
ZK_ZKSERVER = os.path.join(ZK_HOME, "bin", "zkServer.sh")
SERVICE = os.path.join(ROOT, "deploy", "ensemble.service")

# The variables the scripts read: a test sets the ones it means.
SCRIPT_VARS = (
    "ZOOCFGDIR", "ZOOCFG", "ZOO_LOG_DIR", "ZOO_LOG_FILE", "ZOOPIDFILE", "ZOO_NOEXEC",
    "ENSEMBLE_BIN", "NOTIFY_SOCKET", "ZOO_DATADIR_AUTOCREATE_DISABLE",
)

PR_SET_CHILD_SUBREAPER = 36

# The seed's unit for ZooKeeper; only its paths change.
SEED_UNIT = """\
[Unit]
Description=ZooKeeper Service
Requires=network.target
After=network.target
[Service]
Type=forking
User=zookeeper
Group=zookeeper
Environment=JAVA_HOME=/usr/local/jdk
ExecStart=/home/zookeeper/zookeeper/bin/zkServer.sh start
ExecStop=/home/zookeeper/zookeeper/bin/zkServer.sh stop
ExecReload=/home/zookeeper/zookeeper/bin/zkServer.sh restart
WorkingDirectory=/home/zookeeper/zookeeper
[Install]
WantedBy=default.target
"""


@dataclass
class Result:
    rc: int
    out: str
    err: str


def proc_stat(pid):
    """(state, ppid, session) of a process, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            text = f.read()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()
    return fields[0], int(fields[1]), int(fields[3])


def cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return [a.decode() for a in f.read().split(b"\0") if a]
    except OSError:
        return []


def alive(pid):
    st = proc_stat(pid)
    return st is not None and st[0] != "Z"


class Procs:
    """Runs the scripts, each in a new session, and ends what they leave behind."""

    def __init__(self):
        self.sessions = set()
        self.popens = set()
        libc = ctypes.CDLL(None, use_errno=True)
        self._prctl = libc.prctl
        self._prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)

    def run(self, args, env, cwd=None, timeout=90):
        p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                             cwd=cwd, text=True, start_new_session=True)
        self.sessions.add(p.pid)
        try:
            out, err = p.communicate(timeout=timeout)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        self.reap()
        return Result(p.returncode, out, err)

    def popen(self, args, env, **kw):
        p = subprocess.Popen(args, env=env, start_new_session=True, **kw)
        self.sessions.add(p.pid)
        self.popens.add(p.pid)
        return p

    def members(self, session):
        out = []
        for name in os.listdir("/proc"):
            if name.isdigit():
                st = proc_stat(int(name))
                if st and st[2] == session:
                    out.append(int(name))
        return out

    def reap(self):
        """Reaps the servers of our sessions that exited (they are our children now)."""
        me = os.getpid()
        for session in self.sessions:
            for pid in self.members(session):
                st = proc_stat(pid)
                if st and st[0] == "Z" and st[1] == me and pid not in self.popens:
                    try:
                        os.waitpid(pid, os.WNOHANG)
                    except ChildProcessError:
                        pass

    def kill9(self, pid):
        os.kill(pid, signal.SIGKILL)
        deadline = time.time() + 10
        while alive(pid) and time.time() < deadline:
            self.reap()
            time.sleep(0.02)
        self.reap()
        assert not alive(pid)

    def cleanup(self):
        for session in self.sessions:
            for pid in self.members(session):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        deadline = time.time() + 10
        while time.time() < deadline and any(
            alive(p) for s in self.sessions for p in self.members(s)
        ):
            time.sleep(0.05)
        self.reap()
        self._prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)


@pytest.fixture
def procs():
    p = Procs()
    try:
        yield p
    finally:
        p.cleanup()


def user_and_host():
    user = os.environ.get("USER") or pwd.getpwuid(os.getuid()).pw_name
    return user, socket.gethostname()


def base_env(**extra):
    env = {k: v for k, v in os.environ.items() if k not in SCRIPT_VARS}
    env.update(extra)
    return env


def srvr(port, host="127.0.0.1", timeout=2.0):
    """srvr's answer, or "" when nothing answers."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            s.sendall(b"srvr")
            data = b""
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    return data.decode()
                data += chunk
    except OSError:
        return ""


def wait_mode(port, timeout=30.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        answer = srvr(port)
        m = re.search(r"^Mode: (\w+)", answer, re.M)
        if m:
            return m.group(1)
        time.sleep(0.1)
    raise AssertionError(f"nothing serves on port {port}")


def wait_down(port, timeout=15.0):
    """ZooKeeper's stop does not wait for the JVM to exit."""
    deadline = time.time() + timeout
    while srvr(port, timeout=0.5) and time.time() < deadline:
        time.sleep(0.1)


class Site:
    """A config file with its dataDir and log directory under one folder."""

    def __init__(self, root, name, extra=""):
        self.dir = os.path.join(str(root), name)
        self.data = os.path.join(self.dir, "data")
        self.logs = os.path.join(self.dir, "logs")
        os.makedirs(self.data)
        self.port = free_port()
        self.cfg = os.path.join(self.dir, "zoo.cfg")
        with open(self.cfg, "w") as f:
            f.write(
                "tickTime=2000\n"
                f"dataDir={self.data}\n"
                f"clientPort={self.port}\n"
                "clientPortAddress=127.0.0.1\n"
                "admin.enableServer=false\n" + extra
            )
        self.pidfile = os.path.join(self.data, "zookeeper_server.pid")

    def env(self, **extra):
        return base_env(ENSEMBLE_BIN=ensemble_bin(), ZOO_LOG_DIR=self.logs, **extra)

    def pid(self):
        with open(self.pidfile) as f:
            return int(f.read().strip())

    def norm(self, text):
        text = text.replace(self.dir, "<DIR>").replace(str(self.port), "<PORT>")
        return re.sub(r"process \d+\.", "process <PID>.", text)


def run_steps(procs, script, site, steps):
    """Runs `script <step> cfg` for each step; "wait" waits for the server to
    serve, "down" for nothing to answer on its port, and "kill" SIGKILLs the pid of the pid file. Returns
    (step, exit code, stdout, stderr lines) with paths, ports and pids normalised,
    leaving out the JVM's JMX line."""
    out = []
    for step in steps:
        if step == "wait":
            wait_mode(site.port)
        elif step == "down":
            wait_down(site.port)
        elif step == "kill":
            procs.kill9(site.pid())
        else:
            r = procs.run([script, step, site.cfg], env=site.env())
            err = [site.norm(line) for line in r.err.splitlines() if "JMX" not in line]
            out.append((step, r.rc, site.norm(r.out), err))
    return out


def need_zookeeper_script():
    if not os.path.exists(ZK_ZKSERVER):
        pytest.skip("Debian's zookeeper package is not installed")
    # Debian's zkEnv.sh fixes ZOO_LOG_DIR at /var/log/zookeeper, where `start`
    # writes the JVM's output.
    if not os.access("/var/log/zookeeper", os.W_OK):
        pytest.skip("/var/log/zookeeper is not writable: Debian's zkServer.sh start cannot run")


# --- beside ZooKeeper ----------------------------------------------------------------


def test_lifecycle_prints_what_zookeepers_script_prints(procs, tmp_path):
    need_zookeeper_script()
    steps = ["stop", "start", "wait", "start", "status", "stop", "stop", "down", "status"]
    zk = run_steps(procs, ZK_ZKSERVER, Site(tmp_path, "zookeeper"), steps)
    ours = run_steps(procs, ZKSERVER, Site(tmp_path, "ensemble"), steps)
    for z, o in zip(zk, ours):
        assert o[:3] == z[:3], f"{o[0]}: ours {o[1:3]!r}, ZooKeeper's {z[1:3]!r}"
        assert o[3] == z[3], f"{o[0]}: stderr ours {o[3]!r}, ZooKeeper's {z[3]!r}"
    # What was compared, spelled out once.
    assert [o[1:3] for o in ours] == [
        (0, "Stopping zookeeper ... no zookeeper to stop (could not find file "
            "<DIR>/data/zookeeper_server.pid)\n"),
        (0, "Starting zookeeper ... STARTED\n"),
        (1, "Starting zookeeper ... already running as process <PID>.\n"),
        (0, "Client port found: <PORT>. Client address: 127.0.0.1. Client SSL: false.\n"
            "Mode: standalone\n"),
        (0, "Stopping zookeeper ... STOPPED\n"),
        (0, "Stopping zookeeper ... no zookeeper to stop (could not find file "
            "<DIR>/data/zookeeper_server.pid)\n"),
        (1, "Client port found: <PORT>. Client address: 127.0.0.1. Client SSL: false.\n"
            "Error contacting service. It is probably not running.\n"),
    ]


def test_a_stale_pid_file_is_handled_as_zookeepers_script_does(procs, tmp_path):
    need_zookeeper_script()
    # The server dies by SIGKILL and leaves its pid file: status says it is down,
    # start starts it anew, stop of a dead pid says STOPPED and removes the file.
    steps = ["start", "wait", "kill", "status", "start", "wait", "kill", "stop", "stop"]
    zk_site, our_site = Site(tmp_path, "zookeeper"), Site(tmp_path, "ensemble")
    zk = run_steps(procs, ZK_ZKSERVER, zk_site, steps)
    ours = run_steps(procs, ZKSERVER, our_site, steps)
    assert [o[:3] for o in ours] == [z[:3] for z in zk]
    assert [o[1] for o in ours] == [0, 1, 0, 0, 0]
    assert ours[4][2].endswith("no zookeeper to stop (could not find file "
                               "<DIR>/data/zookeeper_server.pid)\n")
    assert not os.path.exists(our_site.pidfile)


def test_zookeepers_status_and_ours_agree_on_an_ensemble_server(procs, tmp_path):
    need_zookeeper_script()
    site = Site(tmp_path, "ensemble")
    assert procs.run([ZKSERVER, "start", site.cfg], env=site.env()).rc == 0
    theirs = procs.run([ZK_ZKSERVER, "status", site.cfg], env=site.env())
    ours = procs.run([ZKSERVER, "status", site.cfg], env=site.env())
    assert (ours.rc, ours.out) == (theirs.rc, theirs.out) == (
        0,
        f"Client port found: {site.port}. Client address: 127.0.0.1. Client SSL: false.\n"
        "Mode: standalone\n",
    )


# --- start and stop ------------------------------------------------------------------


def test_start_returns_once_the_pid_file_names_the_serving_server(procs, tmp_path):
    """systemd's Type=forking: when ExecStart exits, the daemon is in place."""
    site = Site(tmp_path, "s")
    started = time.time()
    r = procs.run([ZKSERVER, "start", site.cfg], env=site.env(), timeout=60)
    assert (r.rc, r.out) == (0, "Starting zookeeper ... STARTED\n"), r.err
    assert time.time() - started < 10
    pid = site.pid()
    # At once, without retrying: the pid is the live server, and it answers.
    assert alive(pid)
    args = cmdline(pid)
    assert os.path.basename(args[0]) == "ensemble" and args[1] == "server", args
    assert args[-1] == site.cfg
    assert "Mode: standalone" in srvr(site.port)
    # The script is gone and the server is the one process left of its session,
    # so systemd can tell the main process without a PIDFile=.
    session = proc_stat(pid)[2]
    assert procs.members(session) == [pid]
    assert r.err == f"Using config: {site.cfg}\n"


def test_start_when_the_port_is_taken_fails_even_though_the_port_answers(procs, tmp_path):
    """Another server holds the client port: its answer to srvr must not pass for ours."""
    first = Site(tmp_path, "first")
    assert procs.run([ZKSERVER, "start", first.cfg], env=first.env()).rc == 0
    second = Site(tmp_path, "second")
    with open(second.cfg, "w") as f:
        f.write(f"tickTime=2000\ndataDir={second.data}\nclientPort={first.port}\n"
                "clientPortAddress=127.0.0.1\nadmin.enableServer=false\n")
    r = procs.run([ZKSERVER, "start", second.cfg], env=second.env())
    assert (r.rc, r.out) == (1, "Starting zookeeper ... FAILED TO START\n")
    assert "zookeeper-" in r.err and ".out ends:" in r.err, r.err
    assert not os.path.exists(second.pidfile)
    assert wait_mode(first.port) == "standalone"


def test_stop_waits_for_the_server_to_exit(procs, tmp_path):
    site = Site(tmp_path, "s")
    assert procs.run([ZKSERVER, "start", site.cfg], env=site.env()).rc == 0
    pid = site.pid()
    r = procs.run([ZKSERVER, "stop", site.cfg], env=site.env())
    assert (r.rc, r.out) == (0, "Stopping zookeeper ... STOPPED\n")
    assert not alive(pid)
    assert not os.path.exists(site.pidfile)
    # A clean stop: the log says so.
    user, host = user_and_host()
    with open(os.path.join(site.logs, f"zookeeper-{user}-server-{host}.log")) as f:
        assert "shut down cleanly" in f.read()


def test_restart_replaces_the_server_and_starts_one_when_none_runs(procs, tmp_path):
    site = Site(tmp_path, "s")
    r = procs.run([ZKSERVER, "restart", site.cfg], env=site.env())
    assert (r.rc, r.out) == (0, "Stopping zookeeper ... no zookeeper to stop (could not "
                                f"find file {site.pidfile})\nStarting zookeeper ... STARTED\n")
    first = site.pid()
    r = procs.run([ZKSERVER, "restart", site.cfg], env=site.env())
    assert (r.rc, r.out) == (0, "Stopping zookeeper ... STOPPED\nStarting zookeeper ... STARTED\n")
    second = site.pid()
    assert second != first and not alive(first) and alive(second)
    assert wait_mode(site.port, timeout=1) == "standalone"


def test_a_pid_file_naming_an_unrelated_process_is_not_a_running_server(procs, tmp_path):
    """After a reboot the pid in the file may belong to anything: ZooKeeper's script
    would report it as running, and stop would signal it."""
    site = Site(tmp_path, "s")
    other = procs.popen(["sleep", "60"], env=base_env())
    with open(site.pidfile, "w") as f:
        f.write(str(other.pid))
    r = procs.run([ZKSERVER, "start", site.cfg], env=site.env())
    assert (r.rc, r.out) == (0, "Starting zookeeper ... STARTED\n")
    assert site.pid() != other.pid
    with open(site.pidfile, "w") as f:
        f.write(str(other.pid))
    r = procs.run([ZKSERVER, "stop", site.cfg], env=site.env())
    assert (r.rc, r.out) == (0, "Stopping zookeeper ... STOPPED\n")
    assert "not running this server" in r.err
    assert other.poll() is None, "the unrelated process was signalled"


def test_start_foreground_execs_the_server_and_logs_to_stderr(procs, tmp_path):
    site = Site(tmp_path, "s")
    log = open(tmp_path / "fg.log", "w+")
    env = base_env(ENSEMBLE_BIN=ensemble_bin(), ENSEMBLE_LOG="info")
    p = procs.popen([ZKSERVER, "start-foreground", site.cfg], env=env,
                    stdout=log, stderr=subprocess.STDOUT)
    assert wait_mode(site.port) == "standalone"
    assert os.path.basename(cmdline(p.pid)[0]) == "ensemble", "exec'd, not a child"
    assert not os.path.exists(site.pidfile)
    p.send_signal(signal.SIGTERM)
    assert p.wait(timeout=15) == 0
    log.seek(0)
    text = log.read()
    assert "ensemble is ready" in text and "shut down cleanly" in text
    assert not os.path.exists(site.logs), "no log directory unless ZOO_LOG_DIR is set"


def test_start_foreground_logs_to_zoo_log_dir_when_it_is_set(procs, tmp_path):
    site = Site(tmp_path, "s")
    p = procs.popen([ZKSERVER, "start-foreground", site.cfg],
                    env=site.env(ZOO_LOG_FILE="fg.log"),
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_mode(site.port)
    p.send_signal(signal.SIGTERM)
    assert p.wait(timeout=15) == 0
    with open(os.path.join(site.logs, "fg.log")) as f:
        assert "ensemble is ready" in f.read()


def test_print_cmd_prints_a_command_that_runs_the_server(procs, tmp_path):
    site = Site(tmp_path, "s")
    r = procs.run([ZKSERVER, "print-cmd", site.cfg], env=site.env())
    assert r.rc == 0
    user, host = user_and_host()
    line = r.out.strip()
    assert "\n" not in line
    assert f"{ensemble_bin()} server --log-dir {site.logs} {site.cfg}" in line
    assert line.endswith(f"> {site.logs}/zookeeper-{user}-server-{host}.out 2>&1 < /dev/null")
    os.makedirs(site.logs)
    p = procs.popen(["bash", "-c", "exec " + line], env=base_env())
    assert wait_mode(site.port) == "standalone"
    p.send_signal(signal.SIGTERM)
    assert p.wait(timeout=15) == 0
    assert os.path.exists(os.path.join(site.logs, f"zookeeper-{user}-server-{host}.log"))


def test_zoocfgdir_zoo_log_dir_zoo_log_file_and_zoopidfile_are_honoured(procs, tmp_path):
    conf = tmp_path / "conf"
    conf.mkdir()
    site = Site(tmp_path, "s")
    shutil.copy(site.cfg, conf / "zoo.cfg")
    logs = tmp_path / "elsewhere" / "logs"
    env = base_env(ENSEMBLE_BIN=ensemble_bin(), ZOOCFGDIR=str(conf), ZOO_LOG_DIR=str(logs))
    # No cfg argument: $ZOOCFGDIR/zoo.cfg.
    r = procs.run([ZKSERVER, "start"], env=env)
    assert (r.rc, r.out, r.err) == (0, "Starting zookeeper ... STARTED\n",
                                    f"Using config: {conf}/zoo.cfg\n")
    user, host = user_and_host()
    with open(logs / f"zookeeper-{user}-server-{host}.log") as f:
        assert "ensemble is ready" in f.read()
    assert os.path.exists(logs / f"zookeeper-{user}-server-{host}.out")
    assert procs.run([ZKSERVER, "status"], env=env).out.endswith("Mode: standalone\n")
    assert procs.run([ZKSERVER, "stop"], env=env).out == "Stopping zookeeper ... STOPPED\n"

    # A name inside ZOOCFGDIR, --config naming the directory, ZOO_LOG_FILE, ZOOPIDFILE.
    shutil.move(str(conf / "zoo.cfg"), str(conf / "other.cfg"))
    pidfile = tmp_path / "run" / "ensemble.pid"
    env2 = base_env(ENSEMBLE_BIN=ensemble_bin(), ZOO_LOG_DIR=str(logs),
                    ZOO_LOG_FILE="mine.log", ZOOPIDFILE=str(pidfile))
    r = procs.run([ZKSERVER, "--config", str(conf), "start", "other.cfg"], env=env2)
    assert (r.rc, r.err) == (0, f"Using config: {conf}/other.cfg\n")
    assert alive(int(pidfile.read_text()))
    with open(logs / "mine.log") as f:
        assert "ensemble is ready" in f.read()
    r = procs.run([ZKSERVER, "--config", str(conf), "restart", "other.cfg"], env=env2)
    assert r.out == "Stopping zookeeper ... STOPPED\nStarting zookeeper ... STARTED\n"
    r = procs.run([ZKSERVER, "--config", str(conf), "stop", "other.cfg"], env=env2)
    assert r.out == "Stopping zookeeper ... STOPPED\n"
    assert not pidfile.exists()


def test_usage_and_a_missing_config(procs, tmp_path):
    r = procs.run([ZKSERVER, "frobnicate"], env=base_env(ENSEMBLE_BIN=ensemble_bin()))
    assert r.rc == 1 and "Usage:" in r.err and r.out == ""
    r = procs.run([ZKSERVER, "start", str(tmp_path / "none.cfg")],
                  env=base_env(ENSEMBLE_BIN=ensemble_bin()))
    assert r.rc == 1 and "cannot read the config file" in r.err
    r = procs.run([ZKSERVER, "version"], env=base_env(ENSEMBLE_BIN=ensemble_bin()))
    assert r.rc == 0 and r.out.startswith("ensemble ")


# --- a quorum ------------------------------------------------------------------------


def test_quorum_members_report_leader_and_follower(procs, tmp_path):
    """The client ports are only in the server.N lines: status finds each member's
    through dataDir/myid, as ZooKeeper's does."""
    ids = (1, 2, 3)
    ports = {i: (free_port(), free_port(), free_port()) for i in ids}
    servers = "".join(
        f"server.{i}=127.0.0.1:{p}:{e};127.0.0.1:{c}\n" for i, (p, e, c) in ports.items()
    )
    cfgs = {}
    for i in ids:
        d = tmp_path / f"m{i}"
        (d / "data").mkdir(parents=True)
        (d / "data" / "myid").write_text(f"{i}\n")
        cfgs[i] = str(d / "zoo.cfg")
        with open(cfgs[i], "w") as f:
            f.write(f"tickTime=200\ninitLimit=10\nsyncLimit=5\ndataDir={d}/data\n"
                    f"admin.enableServer=false\n{servers}")
    env = base_env(ENSEMBLE_BIN=ensemble_bin(), ZOO_LOG_DIR=str(tmp_path / "logs"))
    for i in ids:
        r = procs.run([ZKSERVER, "start", cfgs[i]], env=env)
        assert (r.rc, r.out) == (0, "Starting zookeeper ... STARTED\n"), r.err
    modes = {}
    deadline = time.time() + 30
    while len(modes) < 3 and time.time() < deadline:
        for i in ids:
            r = procs.run([ZKSERVER, "status", cfgs[i]], env=env)
            head = (f"Client port found: {ports[i][2]}. Client address: 127.0.0.1. "
                    "Client SSL: false.\n")
            assert r.out.startswith(head), r.out
            m = re.fullmatch(r"Mode: (leader|follower)\n", r.out[len(head):])
            if r.rc == 0 and m:
                modes[i] = m.group(1)
        time.sleep(0.2)
    assert sorted(modes.values()) == ["follower", "follower", "leader"], modes
    if os.path.exists(ZK_ZKSERVER):
        for i in ids:
            theirs = procs.run([ZK_ZKSERVER, "status", cfgs[i]], env=env)
            assert (theirs.rc, theirs.out) == (0, f"Client port found: {ports[i][2]}. Client "
                                               "address: 127.0.0.1. Client SSL: false.\n"
                                               f"Mode: {modes[i]}\n")
    for i in ids:
        assert procs.run([ZKSERVER, "stop", cfgs[i]], env=env).out == \
            "Stopping zookeeper ... STOPPED\n"


# --- zkCli.sh ------------------------------------------------------------------------


def test_zkcli_runs_ensemble_cli_with_the_same_arguments(procs, tmp_path):
    site = Site(tmp_path, "s")
    assert procs.run([ZKSERVER, "start", site.cfg], env=site.env()).rc == 0
    server = ["-server", f"127.0.0.1:{site.port}"]
    r = procs.run([ZKCLI, *server, "create", "/scripts", "hello"], env=site.env())
    assert r.rc == 0 and "Created /scripts" in r.out + r.err, r.out + r.err
    via_script = procs.run([ZKCLI, *server, "get", "/scripts"], env=site.env())
    direct = procs.run([ensemble_bin(), "cli", *server, "get", "/scripts"], env=site.env())
    port = str(site.port)
    assert (via_script.rc, via_script.out, via_script.err) == (direct.rc, direct.out, direct.err)
    assert via_script.rc == 0 and "hello" in via_script.out.splitlines()
    assert f"Connecting to 127.0.0.1:{port}" in via_script.out


# --- an installed tree and the systemd units -----------------------------------------


def install_tree(root, cfg_text):
    """bin/ with the scripts and the binary, conf/zoo.cfg: an installation without
    ENSEMBLE_BIN."""
    home = root / "home" / "zookeeper" / "zookeeper"
    (home / "bin").mkdir(parents=True)
    (home / "conf").mkdir()
    for name in ("zkServer.sh", "zkEnv.sh", "zkCli.sh"):
        shutil.copy2(os.path.join(ROOT, "bin", name), home / "bin" / name)
    os.symlink(ensemble_bin(), home / "bin" / "ensemble")
    (home / "conf" / "zoo.cfg").write_text(cfg_text)
    return home


def unit_value(unit, key):
    return [line.split("=", 1)[1] for line in unit.splitlines() if line.startswith(key + "=")]


def systemd_verify(path):
    if shutil.which("systemd-analyze") is None:
        return
    r = subprocess.run(["systemd-analyze", "verify", str(path)], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr


def test_the_seed_type_forking_unit_works_with_only_its_paths_changed(procs, tmp_path):
    """Runs the unit's ExecStart, ExecReload and ExecStop as systemd does: in
    WorkingDirectory, with the unit's environment and nothing of ours."""
    port = free_port()
    home = install_tree(tmp_path, f"tickTime=2000\ndataDir={tmp_path}/var/zookeeper\n"
                                  f"clientPort={port}\nclientPortAddress=127.0.0.1\n"
                                  "admin.enableServer=false\n")
    unit = SEED_UNIT.replace("/home/zookeeper/zookeeper", str(home))
    unit_file = tmp_path / "zookeeper.service"
    unit_file.write_text(unit)
    systemd_verify(unit_file)
    cwd = unit_value(unit, "WorkingDirectory")[0]
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": str(tmp_path)}
    for assignment in unit_value(unit, "Environment"):
        k, v = assignment.split("=", 1)
        env[k] = v
    pidfile = tmp_path / "var" / "zookeeper" / "zookeeper_server.pid"

    def run(key):
        return procs.run(unit_value(unit, key)[0].split(), env=env, cwd=cwd)

    r = run("ExecStart")
    assert (r.rc, r.out) == (0, "Starting zookeeper ... STARTED\n"), r.err
    pid = int(pidfile.read_text())
    assert procs.members(proc_stat(pid)[2]) == [pid], "one process left: the main PID"
    assert "Mode: standalone" in srvr(port)
    assert os.path.isdir(home / "logs"), "ZOO_LOG_DIR defaults to logs/ of the install"

    r = run("ExecReload")
    assert (r.rc, r.out) == (0, "Stopping zookeeper ... STOPPED\nStarting zookeeper ... STARTED\n")
    new_pid = int(pidfile.read_text())
    assert new_pid != pid and not alive(pid)
    assert procs.members(proc_stat(new_pid)[2]) == [new_pid]
    assert "Mode: standalone" in srvr(port)

    # The installed zkCli.sh finds the binary beside it too.
    r = procs.run([str(home / "bin" / "zkCli.sh"), "-server", f"127.0.0.1:{port}", "ls", "/"],
                  env=env, cwd=cwd)
    assert r.rc == 0 and r.out.endswith("\n[zookeeper]\n"), r.out + r.err

    r = run("ExecStop")
    assert (r.rc, r.out) == (0, "Stopping zookeeper ... STOPPED\n")
    assert not alive(new_pid)


def test_the_notify_unit_verifies_and_its_exec_start_sends_ready(procs, tmp_path):
    with open(SERVICE) as f:
        unit = f.read()
    assert unit_value(unit, "Type") == ["notify"]
    site = Site(tmp_path, "s")
    unit = unit.replace("/opt/ensemble/bin/ensemble", ensemble_bin())
    unit = unit.replace("/opt/ensemble/conf/zoo.cfg", site.cfg)
    unit_file = tmp_path / "ensemble.service"
    unit_file.write_text(unit)
    systemd_verify(unit_file)

    sock_path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(sock_path)
    sock.settimeout(20)
    try:
        p = procs.popen(unit_value(unit, "ExecStart")[0].split(),
                        env=base_env(NOTIFY_SOCKET=sock_path),
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        assert sock.recv(64) == b"READY=1"
        assert "Mode: standalone" in srvr(site.port)
        p.send_signal(signal.SIGTERM)
        assert sock.recv(64) == b"STOPPING=1"
        assert p.wait(timeout=15) == 0
    finally:
        sock.close()


def test_zkserver_start_keeps_notify_socket_from_the_server(procs, tmp_path):
    """Under `start` the server is not the unit's main process: it must not speak
    for it on a NOTIFY_SOCKET the caller inherited."""
    sock_path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(sock_path)
    sock.settimeout(0.5)
    site = Site(tmp_path, "s")
    try:
        r = procs.run([ZKSERVER, "start", site.cfg], env=site.env(NOTIFY_SOCKET=sock_path))
        assert r.rc == 0
        with pytest.raises(socket.timeout):
            sock.recv(64)
    finally:
        sock.close()


def test_shellcheck_is_clean():
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck is not installed")
    scripts = [os.path.join(ROOT, "bin", n) for n in ("zkServer.sh", "zkEnv.sh", "zkCli.sh")]
    r = subprocess.run(["shellcheck", "-x", *scripts], capture_output=True, text=True,
                       cwd=ROOT, timeout=60)
    assert r.returncode == 0, r.stdout


def test_zoo_log4j_prop_sets_the_log_level(procs, tmp_path):
    site = Site(tmp_path, "s")
    r = procs.run([ZKSERVER, "print-cmd", site.cfg],
                  env=dict(site.env(), ZOO_LOG4J_PROP="DEBUG, ROLLINGFILE"))
    assert r.rc == 0
    assert f"server --log-level debug --log-dir {site.logs} {site.cfg}" in r.out
    r = procs.run([ZKSERVER, "print-cmd", site.cfg], env=dict(site.env(), ZOO_LOG4J_PROP="bogus"))
    assert "--log-level" not in r.out
