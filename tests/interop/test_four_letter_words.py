"""The monitoring four-letter words `srvr`, `stat` and `mntr`, side by side
with Apache ZooKeeper 3.8: the same client work goes to both servers, then
the answers must have the same lines (values aside), `mntr` the same keys,
and the counters that both servers measure must have moved by the same
amounts.

`fixtures/mntr_keys_zk38_standalone.txt` is the key list of a fresh
ZooKeeper 3.8.0 in standalone mode. ZooKeeper adds keys as clients work:
per-namespace read and write summaries (`zk_avg_<ns>_read_per_namespace`
and friends) for each top-level znode read or written. Ensemble does not keep
those (docs/compatibility.md); `PER_NAMESPACE` below takes them out of the
comparison, and nothing else."""

import math
import os
import re
import socket
import time

import pytest
from kazoo.client import KazooClient

from conftest import Server

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")

# ZooKeeper writes a four-letter word's answer in chunks of this many
# characters, one packet each.
CHUNK = 8192

PER_NAMESPACE = re.compile(r"^zk_(avg|min|max|cnt|sum)_.+_(read|write)_per_namespace$")

CLIENT_LINE = re.compile(
    r"^ /127\.0\.0\.1:(\d+)\[([01])\]\(queued=(\d+),recved=(\d+),sent=(\d+)\)$"
)


def word(server, w, timeout=5.0):
    with socket.create_connection(("127.0.0.1", server.port), timeout=timeout) as s:
        s.sendall(w.encode())
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    return data.decode()


def mntr(server):
    """`mntr` as {key: value text}; every line must be `zk_<key>\\t<value>`."""
    text = word(server, "mntr")
    assert text.endswith("\n")
    out = {}
    for line in text.splitlines():
        key, sep, value = line.partition("\t")
        assert sep and key.startswith("zk_") and "\t" not in value, f"bad mntr line {line!r}"
        assert key not in out, f"{key} printed twice"
        out[key] = value
    return out, text


def settled_mntr(server, timeout=5.0):
    """`mntr` once no request is outstanding: a client may read its answer
    a moment before the server has counted the request as answered."""
    deadline = time.time() + timeout
    while True:
        keys, _ = mntr(server)
        if keys["zk_outstanding_requests"] == "0" or time.time() > deadline:
            return keys
        time.sleep(0.05)


def fixture_keys(name):
    with open(os.path.join(FIXTURES, name)) as f:
        return {line.strip() for line in f if line.strip() and not line.startswith("#")}


def shape(text):
    """The lines of a srvr/stat answer with every number (and the version)
    replaced, to compare their structure."""
    out = []
    for line in text.split("\n"):
        if line.startswith("Zookeeper version: "):
            out.append("Zookeeper version: V")
            continue
        line = re.sub(r"0x[0-9a-f]+", "0xN", line)
        out.append(re.sub(r"\d+(\.\d+)?", "N", line))
    return out


def client_work(server):
    """The same requests on both servers, through one kazoo session that
    stays open (its timeout keeps kazoo from pinging during the test)."""
    zk = KazooClient(hosts=server.hosts, timeout=30.0)
    zk.start(timeout=15)
    zk.create("/fl", b"")
    zk.create("/fl/a", b"x" * 100)
    zk.get("/fl/a", watch=lambda e: None)
    zk.get_children("/fl", watch=lambda e: None)
    zk.exists("/fl/missing", watch=lambda e: None)
    zk.create("/fl/e", b"", ephemeral=True)
    zk.set("/fl/a", b"y")
    for _ in range(10):
        zk.exists("/fl")
    zk.delete("/fl/a")
    return zk


@pytest.fixture
def pair():
    servers = {k: Server(k).start() for k in ("zookeeper", "ensemble")}
    yield servers
    for s in servers.values():
        s.close()


def test_mntr_prints_every_key_of_zookeeper_38_standalone(ensemble):
    keys, _ = mntr(ensemble)
    expected = fixture_keys("mntr_keys_zk38_standalone.txt")
    assert set(keys) == expected, (
        f"missing {sorted(expected - set(keys))}, extra {sorted(set(keys) - expected)}"
    )
    assert keys["zk_server_state"] == "standalone"


def test_mntr_keys_and_counters_match_zookeeper_after_the_same_work(pair):
    before = {}
    chunks = {}
    for kind, s in pair.items():
        before[kind], text = mntr(s)
        chunks[kind] = math.ceil(len(text) / CHUNK)
    clients = {kind: client_work(s) for kind, s in pair.items()}
    try:
        after = {kind: settled_mntr(s) for kind, s in pair.items()}
    finally:
        for zk in clients.values():
            zk.stop()
            zk.close()

    zk_keys = {k for k in after["zookeeper"] if not PER_NAMESPACE.match(k)}
    assert zk_keys == fixture_keys("mntr_keys_zk38_standalone.txt")
    assert set(after["ensemble"]) == zk_keys

    def delta(kind, key):
        return int(after[kind][key]) - int(before[kind][key])

    # The mntr before the work: one packet in, its chunks out.
    for key, extra in [("zk_packets_received", 1), ("zk_bytes_received_count", 4)]:
        assert delta("ensemble", key) == delta("zookeeper", key), key
        assert delta("ensemble", key) > extra
    sent = {kind: delta(kind, "zk_packets_sent") - chunks[kind] for kind in pair}
    assert sent["ensemble"] == sent["zookeeper"]
    for key in [
        "zk_response_bytes",
        "zk_watch_bytes",
        "zk_connection_request_count",
        "zk_cnt_readlatency",
        "zk_cnt_updatelatency",
        "zk_cnt_node_created_watch_count",
        "zk_cnt_node_deleted_watch_count",
        "zk_cnt_node_changed_watch_count",
        "zk_cnt_node_children_watch_count",
        "zk_sum_node_deleted_watch_count",
    ]:
        assert delta("ensemble", key) == delta("zookeeper", key), key
    for key in [
        "zk_znode_count",
        "zk_ephemerals_count",
        "zk_watch_count",
        "zk_global_sessions",
        "zk_approximate_data_size",
        "zk_outstanding_requests",
        "zk_last_client_response_size",
        "zk_min_client_response_size",
        "zk_max_client_response_size",
    ]:
        assert after["ensemble"][key] == after["zookeeper"][key], key
    e = after["ensemble"]
    assert int(e["zk_min_latency"]) <= float(e["zk_avg_latency"]) <= int(e["zk_max_latency"])
    assert int(e["zk_p50_readlatency"]) <= int(e["zk_p999_readlatency"]) <= int(
        e["zk_max_readlatency"]
    )
    assert int(e["zk_uptime"]) > 0
    assert int(e["zk_open_file_descriptor_count"]) > 0
    assert int(e["zk_max_file_descriptor_count"]) >= int(e["zk_open_file_descriptor_count"])


def test_srvr_and_stat_have_zookeepers_lines(pair):
    answers = {}
    clients = {kind: client_work(s) for kind, s in pair.items()}
    try:
        for kind, s in pair.items():
            answers[kind] = {w: word(s, w) for w in ("srvr", "stat")}
    finally:
        for zk in clients.values():
            zk.stop()
            zk.close()
    for w in ("srvr", "stat"):
        z, e = answers["zookeeper"][w], answers["ensemble"][w]
        assert shape(e) == shape(z), f"{w}:\n--- zookeeper\n{z}--- ensemble\n{e}"

    # The client list: the kazoo session with the same counts on both
    # servers, and the stat connection itself (interest set 0, one packet in).
    listed = {}
    for kind in pair:
        lines = answers[kind]["stat"].split("\n")
        clients_at = lines.index("Clients:")
        end = lines.index("", clients_at)
        rows = [CLIENT_LINE.match(line) for line in lines[clients_at + 1 : end]]
        assert all(rows), lines
        listed[kind] = sorted((r.group(2), r.group(3), r.group(4), r.group(5)) for r in rows)
    assert listed["ensemble"] == listed["zookeeper"]
    assert ("0", "0", "1", "0") in listed["ensemble"]


def test_srvr_counts_requests_connections_and_nodes(ensemble):
    def field(text, name):
        return text.split(f"\n{name}: ", 1)[1].split("\n", 1)[0]

    first = word(ensemble, "srvr")
    zk = KazooClient(hosts=ensemble.hosts, timeout=30.0)
    zk.start(timeout=15)
    try:
        zk.create("/srvr", b"")
        n = 25
        for i in range(n):
            zk.create(f"/srvr/n{i}", b"data")
        during = word(ensemble, "srvr")
    finally:
        zk.stop()
        zk.close()
    time.sleep(0.2)
    after = word(ensemble, "srvr")

    # The connect request, n + 1 creates, and this srvr at least.
    assert int(field(during, "Received")) - int(field(first, "Received")) >= n + 3
    assert int(field(during, "Sent")) - int(field(first, "Sent")) >= n + 2
    assert int(field(during, "Connections")) == 2  # kazoo and this srvr
    assert int(field(after, "Connections")) == 1
    assert int(field(after, "Outstanding")) == 0
    assert int(field(after, "Node count")) == int(field(first, "Node count")) + n + 1
    lo, avg, hi = field(after, "Latency min/avg/max").split("/")
    assert int(lo) <= float(avg) <= int(hi)
    assert field(after, "Mode") == "standalone"


def test_words_off_the_whitelist_are_refused(ensemble_and_zookeeper_with_whitelist):
    for kind, s in ensemble_and_zookeeper_with_whitelist.items():
        assert word(s, "srvr").startswith("Zookeeper version: "), kind
        for w in ("stat", "mntr"):
            assert word(s, w) == f"{w} is not executed because it is not in the whitelist.\n", kind


@pytest.fixture
def ensemble_and_zookeeper_with_whitelist():
    servers = {}
    try:
        for kind in ("zookeeper", "ensemble"):
            s = Server(kind)
            with open(s.cfg) as f:
                cfg = f.read().replace("4lw.commands.whitelist=*", "4lw.commands.whitelist=srvr,ruok")
            with open(s.cfg, "w") as f:
                f.write(cfg)
            servers[kind] = s.start()
        yield servers
    finally:
        for s in servers.values():
            s.close()


# ---- conf, cons, crst, srst, envi, dirs, dump, wchs, wchc, wchp, hash, gtmk, stmk ----

HEX = re.compile(r"0x[0-9a-f]+")
DATE = re.compile(r"[A-Z][a-z]{2} [A-Z][a-z]{2} \d\d \d\d:\d\d:\d\d [A-Z]+ \d{4}")


def keys_of(text):
    """The keys of `key=value` lines, in order."""
    return [line.split("=", 1)[0] for line in text.splitlines() if "=" in line]


def normalized(text):
    """Lines with dates, hex numbers and decimal numbers replaced."""
    out = []
    for line in text.split("\n"):
        line = DATE.sub("DATE", line)
        line = HEX.sub("HEX", line)
        out.append(re.sub(r"\d+", "N", line).replace("HEX", "0xN"))
    return out


def watch_work(server):
    """Two sessions: one with data, child and exists watches and an
    ephemeral, one with a data watch; 130 txns so `hash` logs a digest."""
    a = KazooClient(hosts=server.hosts, timeout=30.0)
    b = KazooClient(hosts=server.hosts, timeout=30.0)
    a.start(timeout=15)
    b.start(timeout=15)
    a.create("/w", b"")
    a.create("/w/e", b"", ephemeral=True)
    for i in range(127):
        a.create(f"/w/n{i}", b"")
    a.get("/w", watch=lambda e: None)
    a.get_children("/w", watch=lambda e: None)
    a.exists("/w/missing", watch=lambda e: None)
    b.get("/w/n1", watch=lambda e: None)
    return [a, b]


@pytest.fixture
def watched_pair(pair):
    clients = [zk for s in pair.values() for zk in watch_work(s)]
    yield pair
    for zk in clients:
        zk.stop()
        zk.close()


def test_conf_envi_and_dirs_have_zookeepers_keys_in_order(watched_pair):
    answers = {k: {w: word(s, w) for w in ("conf", "envi", "dirs")} for k, s in watched_pair.items()}
    z, e = answers["zookeeper"], answers["ensemble"]
    assert keys_of(e["conf"]) == keys_of(z["conf"]) == [
        "clientPort", "secureClientPort", "dataDir", "dataDirSize", "dataLogDir",
        "dataLogSize", "tickTime", "maxClientCnxns", "minSessionTimeout",
        "maxSessionTimeout", "clientPortListenBacklog", "serverId",
    ]
    conf = dict(line.split("=", 1) for line in e["conf"].splitlines())
    s = watched_pair["ensemble"]
    assert conf["clientPort"] == str(s.port)
    assert conf["dataDir"] == os.path.join(s.data_dir, "version-2")
    assert (conf["tickTime"], conf["minSessionTimeout"], conf["serverId"]) == ("2000", "4000", "0")
    assert e["envi"].startswith("Environment:\n") and e["envi"].endswith("\n")
    assert keys_of(e["envi"]) == keys_of(z["envi"])
    assert normalized(e["dirs"]) == normalized(z["dirs"]) == [
        "datadir_size: N", "logdir_size: N", ""
    ]
    assert int(e["dirs"].split()[1]) > 0


def test_cons_lists_every_connection_in_full(watched_pair):
    full = re.compile(
        r"^ /127\.0\.0\.1:\d+\[1\]\(queued=0,recved=\d+,sent=\d+,sid=0x[0-9a-f]+,"
        r"lop=[A-Z]+,est=\d+,to=30000,lcxid=0x[0-9a-f]+,lzxid=0x[0-9a-f]+,"
        r"lresp=\d+,llat=\d+,minlat=\d+,avglat=\d+,maxlat=\d+\)$"
    )
    own = re.compile(r"^ /127\.0\.0\.1:\d+\[0\]\(queued=0,recved=1,sent=0\)$")
    for kind, s in watched_pair.items():
        text = word(s, "cons")
        assert text.endswith(")\n\n") and "\n\n" not in text[:-2], (kind, text)
        entries = [l for l in text.split("\n") if l]
        assert sum(bool(full.match(l)) for l in entries) == 2, (kind, text)
        assert sum(bool(own.match(l)) for l in entries) == 1, (kind, text)
        assert len(entries) == 3, (kind, text)
        lops = sorted(re.search(r"lop=([A-Z]+)", l).group(1) for l in entries if "lop=" in l)
        assert lops == ["EXIS", "GETD"], (kind, text)


def test_dump_lists_sessions_ephemerals_and_connections(watched_pair):
    shapes = {}
    for kind, s in watched_pair.items():
        text = word(s, "dump")
        lines = normalized(text)
        # How sessions and connections fall into expiry sets depends on timing.
        assert all(l in ("N expire at DATE:",) for l in lines if "expire at" in l), (kind, text)
        shapes[kind] = sorted(l for l in lines if "expire at" not in l)
        assert "\t/w/e" in text.split("\n"), (kind, text)
    assert shapes["ensemble"] == shapes["zookeeper"]
    assert shapes["ensemble"].count("\tip: /N.N.N.N:N sessionId: 0xN") == 3


def test_watch_words_list_the_data_watches(watched_pair):
    answers = {k: {w: word(s, w) for w in ("wchs", "wchc", "wchp")} for k, s in watched_pair.items()}
    z, e = answers["zookeeper"], answers["ensemble"]
    assert e["wchs"] == z["wchs"] == "2 connections watching 3 paths\nTotal watches:3\n"
    for w in ("wchc", "wchp"):
        assert sorted(normalized(e[w])) == sorted(normalized(z[w])), (w, z[w], e[w])
    paths = sorted(l.strip() for l in e["wchc"].split("\n") if l.startswith("\t"))
    assert paths == ["/w", "/w/missing", "/w/n1"]
    assert e["wchp"].endswith("\n\n")


def test_hash_prints_the_digest_of_every_128th_zxid(watched_pair):
    # ZooKeeper's standalone zxids start at 0x1, Ensemble's in term 1 at 0x100000001.
    for kind, s in watched_pair.items():
        assert re.fullmatch(r"(1000000)?80: -?\d+\n", word(s, "hash")), kind


def test_trace_mask_words_and_resets_answer_as_zookeeper(pair):
    for kind, s in pair.items():
        assert word(s, "gtmk") == "306", kind
        with socket.create_connection(("127.0.0.1", s.port), timeout=5) as c:
            c.sendall(b"stmk" + (12).to_bytes(8, "big"))
            data = b""
            while chunk := c.recv(4096):
                data += chunk
        assert data == b"12", kind
        assert word(s, "gtmk") == "12", kind
        with socket.create_connection(("127.0.0.1", s.port), timeout=5) as c:
            c.sendall(b"stmk" + (306).to_bytes(8, "big"))
            while c.recv(4096):
                pass
        assert word(s, "crst") == "Connection stats reset.\n", kind
        assert word(s, "srst") == "Server stats reset.\n", kind
        srvr = word(s, "srvr")
        # Only this srvr came in since, and the srst answer went out.
        assert "\nReceived: 1\nSent: 1\n" in srvr, (kind, srvr)


def test_reqs_and_kill_are_not_words_in_zookeeper_38(pair):
    for kind, s in pair.items():
        for w in ("reqs", "kill"):
            assert word(s, w) == "", (kind, w)
        assert word(s, "ruok") == "imok", kind
