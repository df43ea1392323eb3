"""The AdminServer (`admin.serverPort`, `/commands`) beside Apache ZooKeeper 3.8.

`fixtures/admin_keys_zk38_standalone.json` holds, for every command of a real
ZooKeeper 3.8.0 in standalone mode, the key set of its JSON answer after the
client work below (nested objects and the first element of lists of objects
as `outer.inner` and `outer[].inner`). Regenerate it with
`python3 tests/interop/test_admin_server.py capture`.

Debian's ZooKeeper leaves the servlet API off its class path, so its
AdminServer would not start; `ZK_ADMIN_JVM_FLAGS` puts it back.

Differences the tests allow, each explained in docs/compatibility.md:
`system_properties` (a JVM's properties; only the `zookeeper.*` keys from
zoo.cfg are compared) and `monitor`'s per-namespace keys (as for mntr)."""

import json
import os
import re
import socket
import sys
import urllib.error
import urllib.request

import pytest
from kazoo.client import KazooClient

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from conftest import Server, free_port  # noqa: E402

FIXTURE = os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "fixtures", "admin_keys_zk38_standalone.json"
)

ZK_ADMIN_JVM_FLAGS = (
    "-cp /etc/zookeeper/conf:/usr/share/java/zookeeper.jar:/usr/share/java/servlet-api.jar"
)

ALIASES = {
    "connection_stat_reset": ["crst"],
    "configuration": ["conf", "config"],
    "connections": ["cons"],
    "environment": ["env", "envi"],
    "get_trace_mask": ["gtmk"],
    "initial_configuration": ["icfg"],
    "is_read_only": ["isro"],
    "last_snapshot": ["lsnp"],
    "leader": ["lead"],
    "monitor": ["mntr"],
    "observer_connection_stat_reset": ["orst"],
    "set_trace_mask": ["stmk"],
    "server_stats": ["srvr"],
    "stats": ["stat"],
    "stat_reset": ["srst"],
    "observers": ["obsr"],
    "system_properties": ["sysp"],
    "watches": ["wchc"],
    "watches_by_path": ["wchp"],
    "watch_summary": ["wchs"],
}

# Objects keyed by data (session ids, paths, times, server ids): their own
# keys are values, not part of the format.
DATA_KEYED = {
    "expiry_time_to_session_ids",
    "session_id_to_ephemeral_paths",
    "session_id_to_watched_paths",
    "path_to_session_ids",
    "current_config",
}

PER_NAMESPACE = re.compile(r"^(avg|min|max|cnt|sum)_.+_(read|write)_per_namespace$")

# Commands that change state, run last so the others see the client work.
RESETS = ["connection_stat_reset", "stat_reset", "observer_connection_stat_reset"]


def admin_server(kind, extra=""):
    s = Server(kind, jvm_flags=ZK_ADMIN_JVM_FLAGS if kind == "zookeeper" else "")
    s.admin_port = free_port()
    with open(s.cfg) as f:
        cfg = f.read()
    cfg = cfg.replace(
        "admin.enableServer=false\n",
        f"admin.serverAddress=127.0.0.1\nadmin.serverPort={s.admin_port}\n" + extra,
    )
    with open(s.cfg, "w") as f:
        f.write(cfg)
    return s


def get(server, path, timeout=10):
    url = f"http://127.0.0.1:{server.admin_port}{path}"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.headers.get("Content-Type"), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type"), e.read().decode()


def command(server, name, query=""):
    status, ctype, body = get(server, f"/commands/{name}{query}")
    assert status == 200, (name, status, body)
    assert ctype.startswith("application/json"), (name, ctype)
    return json.loads(body)


def shape(value, prefix=""):
    """The key paths of a JSON answer."""
    out = set()
    if isinstance(value, dict):
        for k, v in value.items():
            if prefix == "" and k in DATA_KEYED:
                out.add(k)
                continue
            out.add(prefix + k)
            out |= shape(v, prefix + k + ".")
    elif isinstance(value, list) and value and isinstance(value[0], dict):
        out |= shape(value[0], prefix[:-1] + "[].")
    return out


def command_shape(name, answer):
    keys = shape(answer)
    if name == "monitor":
        keys = {k for k in keys if not PER_NAMESPACE.match(k)}
    if name == "system_properties":
        # zkServer.sh sets zookeeper.log.dir and zookeeper.log.file on the
        # java command line; the rest come from zoo.cfg.
        keys = {
            k
            for k in keys
            if (k.startswith("zookeeper.") and not k.startswith("zookeeper.log."))
            or k in ("command", "error")
        }
    return keys


def client_work(server):
    """Sessions with watches and an ephemeral, 130 txns so that `hash` has a
    digest (one every 128 zxids), kept open while the commands run."""
    clients = []
    for _ in range(2):
        zk = KazooClient(hosts=server.hosts, timeout=30.0)
        zk.start(timeout=15)
        clients.append(zk)
    a, b = clients
    a.create("/adm", b"")
    a.create("/adm/e", b"x", ephemeral=True)
    for i in range(128):
        a.create(f"/adm/n{i}", b"")
    a.get("/adm", watch=lambda e: None)
    a.get_children("/adm", watch=lambda e: None)
    a.exists("/adm/missing", watch=lambda e: None)
    b.get("/adm/n1", watch=lambda e: None)
    return clients


def all_shapes(server):
    names = sorted(
        set(re.findall(r'href="/commands/([a-z_]+)"', get(server, "/commands")[2])) - set(RESETS)
    ) + RESETS
    return {name: sorted(command_shape(name, command(server, name))) for name in names}


@pytest.fixture(scope="module")
def ensemble_admin():
    s = admin_server("ensemble").start()
    clients = client_work(s)
    yield s
    for zk in clients:
        zk.stop()
        zk.close()
    s.close()


def fixture():
    with open(FIXTURE) as f:
        return json.load(f)


def test_commands_lists_zookeepers_commands_as_links(ensemble_admin):
    expected = sorted(fixture())
    for path in ("/commands", "/commands/"):
        status, _, body = get(ensemble_admin, path)
        assert status == 200
        assert body == "".join(f'<a href="/commands/{n}">{n}</a>\n<br/>\n' for n in expected)


def test_every_command_has_zookeepers_keys(ensemble_admin):
    expected = fixture()
    got = all_shapes(ensemble_admin)
    assert sorted(got) == sorted(expected)
    for name in expected:
        assert got[name] == expected[name], f"{name}: missing {sorted(set(expected[name]) - set(got[name]))}, extra {sorted(set(got[name]) - set(expected[name]))}"


def test_aliases_answer_as_their_command(ensemble_admin):
    for name, aliases in ALIASES.items():
        if name in RESETS:
            continue
        for alias in aliases:
            answer = command(ensemble_admin, alias)
            assert answer["command"] == name, alias
            # Standalone has no leader; set_trace_mask wants an argument.
            assert (answer["error"] is None) == (name not in ("leader", "set_trace_mask")), alias
            assert command_shape(name, answer) == set(fixture()[name]), alias


def test_values_describe_the_server(ensemble_admin):
    s = ensemble_admin
    conf = command(s, "configuration")
    assert conf["client_port"] == s.port
    assert conf["data_dir"] == os.path.join(s.data_dir, "version-2")
    assert conf["server_id"] == 0
    assert command(s, "ruok") == {"command": "ruok", "error": None}
    cons = command(s, "connections")["connections"]
    sessions = [c for c in cons if c["session_id"] != 0]
    assert len(sessions) == 2
    assert all(c["session_timeout"] == 30000 for c in sessions)
    watches = command(s, "watches")["session_id_to_watched_paths"]
    assert sorted(p for paths in watches.values() for p in paths) == [
        "/adm", "/adm/missing", "/adm/n1"
    ]
    by_path = command(s, "watches_by_path")["path_to_session_ids"]
    assert sorted(by_path) == ["/adm", "/adm/missing", "/adm/n1"]
    summary = command(s, "watch_summary")
    assert (summary["num_connections"], summary["num_paths"], summary["num_total_watches"]) == (2, 3, 3)
    dump = command(s, "dump")
    assert sum(len(ids) for ids in dump["expiry_time_to_session_ids"].values()) == 2
    assert list(dump["session_id_to_ephemeral_paths"].values()) == [["/adm/e"]]
    digests = command(s, "hash")["digests"]
    assert digests and digests[0]["zxid"] % 128 == 0 and digests[0]["digest_version"] == 2
    stats = command(s, "server_stats")
    assert stats["node_count"] == 5 + 1 + 1 + 128
    assert stats["server_stats"]["server_state"] == "standalone"
    monitor = command(s, "monitor")
    assert monitor["znode_count"] == stats["node_count"]
    assert isinstance(monitor["avg_latency"], float)
    icfg = command(s, "initial_configuration")["initial_configuration"]
    assert f"admin.serverPort={s.admin_port}\n" in icfg
    props = command(s, "system_properties")
    assert props["zookeeper.admin.serverPort"] == str(s.admin_port)
    assert props["zookeeper.4lw.commands.whitelist"] == "*"
    assert command(s, "leader")["error"] == "server is not initialized"


def test_trace_mask_is_kept_and_bad_arguments_are_errors(ensemble_admin):
    s = ensemble_admin
    assert command(s, "get_trace_mask")["tracemask"] == 306
    assert command(s, "set_trace_mask", "?traceMask=12")["tracemask"] == 12
    assert command(s, "gtmk")["tracemask"] == 12
    assert command(s, "set_trace_mask")["error"] == "setTraceMask requires long traceMask argument"
    assert (
        command(s, "stmk", "?traceMask=abc")["error"]
        == "setTraceMask requires long traceMask argument, got abc"
    )
    command(s, "set_trace_mask", "?traceMask=306")


def test_unknown_commands_and_other_urls(ensemble_admin):
    assert command(ensemble_admin, "nonexistent") == {
        "command": "nonexistent",
        "error": "Unknown command: nonexistent",
    }
    assert get(ensemble_admin, "/")[0] == 404


def test_admin_command_url_moves_the_commands():
    s = admin_server("ensemble", extra="admin.commandURL=/zk\n").start()
    try:
        status, _, body = get(s, "/zk")
        assert status == 200 and '<a href="/zk/ruok">ruok</a>' in body
        assert json.loads(get(s, "/zk/ruok")[2])["command"] == "ruok"
        assert get(s, "/commands/ruok")[0] == 404
    finally:
        s.close()


def test_disabled_admin_server_does_not_listen():
    s = Server("ensemble")  # the harness writes admin.enableServer=false
    port = free_port()
    with open(s.cfg, "a") as f:
        f.write(f"admin.serverPort={port}\nadmin.serverAddress=127.0.0.1\n")
    s.start()
    try:
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
    finally:
        s.close()


def test_taken_admin_port_stops_a_standalone_server_with_one_line():
    """As ZooKeeper 3.8 standalone, which exits (code 4) when its AdminServer
    cannot bind; Ensemble says why in one line."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        s = admin_server("ensemble")
        with open(s.cfg) as f:
            cfg = re.sub(r"admin.serverPort=\d+", f"admin.serverPort={taken.getsockname()[1]}", f.read())
        with open(s.cfg, "w") as f:
            f.write(cfg)
        try:
            with pytest.raises(RuntimeError, match="exited early"):
                s.start()
            lines = [l for l in s.log_text().splitlines() if "AdminServer" in l]
            assert lines == [
                f"cannot start AdminServer on 127.0.0.1:{taken.getsockname()[1]}: "
                "Address already in use (os error 98)"
            ], s.log_text()
            assert s.proc.returncode != 0
        finally:
            s.close()


def capture():
    """Writes the fixture from a real ZooKeeper 3.8."""
    s = admin_server("zookeeper").start()
    try:
        clients = client_work(s)
        shapes = all_shapes(s)
        for zk in clients:
            zk.stop()
            zk.close()
    finally:
        s.close()
    with open(FIXTURE, "w") as f:
        json.dump(shapes, f, indent=1, sort_keys=True)
        f.write("\n")
    print(f"wrote {FIXTURE}: {len(shapes)} commands")


if __name__ == "__main__" and sys.argv[1:] == ["capture"]:
    capture()
