"""`ensemble cli` beside zkCli.sh: the same command scripts run through Apache
ZooKeeper's shell against ZooKeeper 3.8, and through `ensemble cli` against
ZooKeeper 3.8 and against Ensemble; stdout, stderr and the exit code must be the
same once times, ports, zxids and the version line are normalised. One-shot mode
is compared command by command, exit codes included; a terminal session checks
the prompt and tab completion."""

import os
import pty
import re
import select
import subprocess
import time

import pytest

from conftest import Server, ZK_HOME, ensemble_bin

ZKCLI = os.path.join(ZK_HOME, "bin", "zkCli.sh")

# Every command of zkCli.sh 3.8 with its flags, the failures included.
SCRIPT = """\
ls /
create /a hello
create /a again
create -s /a/s- x
create -e /a/e y
create -e -s /a/es- z
create -c /cont
create -t 5000 /ttl x
create -c -e /bad
create -t x /bad
create /a/e/child x
create a
create /a/
create /a//b
create /acl x world:anyone:r
create /badacl x foo
ls -s /a
ls -R /
ls -w /a
create /a/n2 z
ls -Q /
ls
get -s /a
get -w /a
set /a v2
set -s -v 1 /a v3
set -v 9 /a v4
set /a
stat /a
stat /zz
stat -w /zz
create /zz 1
getAcl /a
getAcl -s /acl
setAcl /a world:anyone:cdrwa,ip:127.0.0.1:r
getAcl /a
setAcl -s -v 1 /a world:anyone:cdrwa
setAcl -R /a world:anyone:cdrwa
setAcl /a foo
setAcl /a world:anyone:cdrwx
getAcl /nope
addauth digest u:p
whoami
sync /a
sync /nope
addWatch /a
addWatch -m persistent /zz
addWatch -m bogus /zz
set /a qq
create /a/deep x
removewatches /a
removewatches /nothing
get -w /zz
removewatches /zz -d
getEphemerals
getEphemerals /a
getAllChildrenNumber /a
getAllChildrenNumber /
getAllChildrenNumber
setquota -n 10 /a
setquota -b 100 /a
setquota -N 3 /a
setquota -n 1 -b 1 /a
setquota /a
setquota -n 5 /nope
setquota -n 5 /a/n2
listquota /a
listquota /zz
delquota -n /a
listquota /a
delquota /a
listquota /a
delquota /a
config
config -s
config -c
reconfig -add server.5=127.0.0.1:1234:1235;1236
reconfig
version
printwatches
delete /a
delete -v 7 /zz
delete /zz 3
deleteall /a
deleteall /a -b 2
deleteall /nope
ls /
history
redo 1
redo 99
nosuch cmd
close
ls /
connect {hosts}
ls /
"""


def run_shell(cmd, script, timeout=120):
    p = subprocess.run(cmd, input=script, capture_output=True, text=True, timeout=timeout)
    return p.stdout, p.stderr, p.returncode


def normalise(text, hosts):
    lines = []
    for line in text.replace(hosts, "HOST").splitlines():
        if line.startswith("SLF4J"):
            continue
        line = re.sub(r"^(ctime|mtime) = .*", r"\1 = TIME", line)
        line = re.sub(r"^ZooKeeper CLI version: .*", "ZooKeeper CLI version: V", line)
        if line.startswith("[/"):
            # getEphemerals: ZooKeeper answers in its hash set's order.
            line = "[" + ", ".join(sorted(line[1:-1].split(", "))) + "]"
        line = re.sub(r"^ephemeralOwner = 0x[0-9a-f]{6,}", "ephemeralOwner = SESSION", line)
        lines.append(line)
    text = "\n".join(lines)
    # Ensemble's zxids carry its Raft term: compare zxids by their rank.
    zxids = sorted({int(h, 16) for h in re.findall(r"[cmp]Zxid = 0x([0-9a-f]+)", text)})
    rank = {z: i for i, z in enumerate(zxids)}
    return re.sub(r"([cmp]Zxid = )0x([0-9a-f]+)",
                  lambda m: f"{m.group(1)}Z{rank[int(m.group(2), 16)]}", text)


def split_events(text):
    """Watch events print from another thread in zkCli.sh: compare them as a sorted
    list, apart from the rest."""
    events = sorted(re.findall(r"WatchedEvent state:\S+ type:\S+ path:\S+", text))
    # The event's lines may land between the lines of a command's output, so
    # they go line by line, with the blank lines around them.
    rest = "\n".join(
        line for line in text.splitlines()
        if line and line != "WATCHER::" and not line.startswith("WatchedEvent state:"))
    return rest, events


def events_but_connected(text):
    rest, events = split_events(text)
    return rest, [e for e in events if e != "WatchedEvent state:SyncConnected type:None path:null"]


def three_ways(script):
    """(zkCli.sh vs ZooKeeper, ensemble cli vs ZooKeeper, ensemble cli vs Ensemble)."""
    results = []
    for kind, shell in (("zookeeper", "zkcli"), ("zookeeper", "ensemble"), ("ensemble", "ensemble")):
        s = Server(kind).start()
        try:
            text = script.replace("{hosts}", s.hosts)
            cmd = [ZKCLI, "-server", s.hosts] if shell == "zkcli" else [
                ensemble_bin(), "cli", "-server", s.hosts]
            out, err, rc = run_shell(cmd, text)
            results.append((normalise(out, s.hosts), normalise(err, s.hosts), rc))
        finally:
            s.close()
    return results


def test_every_command_prints_what_zkcli_prints():
    (zk_out, zk_err, zk_rc), *ours = three_ways(SCRIPT)
    zk_rest, zk_events = split_events(zk_out)
    assert "Output quota for /a count=10" in zk_out, "the script ran through"
    for name, (out, err, rc) in zip(("ZooKeeper", "Ensemble"), ours):
        rest, events = split_events(out)
        assert rest == zk_rest, f"stdout against {name}"
        assert events == zk_events, f"watch events against {name}"
        assert err == zk_err, f"stderr against {name}"
        assert rc == zk_rc, f"exit code against {name}"


ONE_SHOT = [
    "ls /",
    "ls -s /zookeeper",
    "get /nope",
    "create /x data",
    "create /zookeeper x",
    "stat /",
    "nosuch",
    "ls",
    "ls -Q /",
    "set -v x /x y",
    "version",
    "history",
    "printwatches",
    "quit",
    "close",
    "delete /",
    "sync /",
    "whoami",
    "getAcl /zookeeper",
]


def test_one_shot_commands_exit_as_zkcli_does():
    # zkCli.sh on one ZooKeeper; ensemble cli on another and on Ensemble.
    zk, *servers = [Server(k).start() for k in ("zookeeper", "zookeeper", "ensemble")]
    try:
        for command in ONE_SHOT:
            args = command.split()
            want = run_shell([ZKCLI, "-server", zk.hosts] + args, "")
            want = (normalise(want[0], zk.hosts), normalise(want[1], zk.hosts), want[2])
            for s in servers:
                got = run_shell([ensemble_bin(), "cli", "-server", s.hosts] + args, "")
                got = (normalise(got[0], s.hosts), normalise(got[1], s.hosts), got[2])
                if command == "set -v x /x y":
                    # zkCli.sh dies with a Java stack trace here; the exit code is the same.
                    assert got[2] == want[2] == 1
                    continue
                # Whether the connection event prints before a one-shot command ends
                # is a race in zkCli.sh itself.
                assert events_but_connected(got[0]) == events_but_connected(want[0]), (
                    command, s.kind)
                assert got[1:] == want[1:], (command, s.kind)
    finally:
        for s in [zk] + servers:
            s.close()


def test_a_server_that_is_down_is_a_connection_loss():
    out, err, rc = run_shell([ensemble_bin(), "cli", "-server", "127.0.0.1:1", "ls", "/"], "")
    assert out.startswith("Connecting to 127.0.0.1:1")
    assert err.strip() == "KeeperErrorCode = ConnectionLoss for /"
    assert rc == 1


def test_quit_exits_with_the_code_of_the_command_before(ensemble):
    _, _, rc = run_shell([ensemble_bin(), "cli", "-server", ensemble.hosts], "get /nope\nquit\n")
    assert rc == 1
    _, _, rc = run_shell([ensemble_bin(), "cli", "-server", ensemble.hosts], "ls /\nquit\n")
    assert rc == 0


def test_a_session_follows_its_server_through_a_restart():
    s = Server("ensemble").start()
    try:
        p = subprocess.Popen([ensemble_bin(), "cli", "-server", s.hosts, "-timeout", "10000"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
        p.stdin.write("create -e /eph x\nget -w /eph\n")
        p.stdin.flush()
        time.sleep(1)
        s.kill()
        s.start()
        time.sleep(3)
        p.stdin.write("get /eph\nset /eph y\nquit\n")
        p.stdin.flush()
        out, _ = p.communicate(timeout=60)
        assert "state:Disconnected type:None" in out
        assert out.count("state:SyncConnected type:None") == 2
        assert "type:NodeDataChanged path:/eph" in out, "the watch was set again"
        assert p.returncode == 0
    finally:
        s.close()


class Terminal:
    """The far side of a pty: what the program wrote, read as it comes."""

    def __init__(self, fd):
        self.fd = fd
        self.buf = b""
        self.pos = 0

    def expect(self, needle, timeout=15):
        deadline = time.time() + timeout
        while time.time() < deadline:
            i = self.buf.find(needle, self.pos)
            if i >= 0:
                self.pos = i + len(needle)
                return
            r, _, _ = select.select([self.fd], [], [], 0.2)
            if r:
                try:
                    chunk = os.read(self.fd, 4096)
                except OSError:
                    break
                if not chunk:
                    break
                self.buf += chunk
        raise AssertionError(f"{needle!r} not seen in {self.buf[self.pos:]!r}")


def test_at_a_terminal_the_prompt_completes_commands_and_znode_paths(ensemble):
    pid, fd = pty.fork()
    if pid == 0:
        os.execv(ensemble_bin(), [ensemble_bin(), "cli", "-server", ensemble.hosts])
    term = Terminal(fd)
    try:
        term.expect(b"JLine support is enabled")
        term.expect(b"WatchedEvent state:SyncConnected type:None path:null")
        os.write(fd, b"\r")
        term.expect(f"[zk: {ensemble.hosts}(CONNECTED) 0]".encode())
        os.write(fd, b"cre\t/comp x\r")
        term.expect(b"Created /comp")
        os.write(fd, b"get /co\t\r")
        term.expect(b"get /comp")
        term.expect(b"x\r\n")
        os.write(fd, b"ls /zoo\t\r")
        term.expect(b"[config, quota]")
        os.write(fd, b"\x1b[A\x1b[A\r")  # the history: up twice is the get again
        term.expect(b"x\r\n")
        os.write(fd, b"quit\r")
        _, status = os.waitpid(pid, 0)
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    finally:
        try:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
        except OSError:
            pass
        os.close(fd)
