"""`/metrics` with `metricsProvider.className=...PrometheusMetricsProvider`.

Debian's ZooKeeper 3.8 ships without the Prometheus provider's jars, so the
names cannot be read off a running ZooKeeper. They are taken from its
sources instead: the provider exports ZooKeeper's metrics registry, the same
one `mntr` dumps, each gauge and counter under its name and each summary
(`avg_`/`min_`/`max_`/`cnt_`/`sum_`[`/p50_`..]`X` in mntr) as a Prometheus
summary `X` with `X_count` and `X_sum`. So the expected families are derived
from `fixtures/mntr_keys_zk38_standalone.txt`, a real ZooKeeper's key list.
"""

import math
import os
import re
import socket
import urllib.request

import pytest
from kazoo.client import KazooClient

from conftest import Server, free_port

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")
PROMETHEUS = "org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider"

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
SAMPLE = re.compile(
    rf"^(?P<name>{NAME})(?:\{{(?P<labels>(?:{NAME}=\"(?:[^\"\\]|\\.)*\",?)*)\}})? "
    r"(?P<value>[-+]?(?:\d+(?:\.\d+)?(?:[eE][-+]?\d+)?|Inf|NaN))$"
)
LABEL = re.compile(rf"({NAME})=\"((?:[^\"\\]|\\.)*)\"")
SUMMARY_PREFIX = re.compile(r"^(avg|min|max|cnt|sum|p50|p95|p99|p999)_(.+)$")

# What the community ZooKeeper Grafana dashboard plots, with their types.
DASHBOARD = {
    "znode_count": "gauge",
    "watch_count": "gauge",
    "ephemerals_count": "gauge",
    "approximate_data_size": "gauge",
    "num_alive_connections": "gauge",
    "outstanding_requests": "gauge",
    "global_sessions": "gauge",
    "avg_latency": "gauge",
    "max_latency": "gauge",
    "min_latency": "gauge",
    "packets_received": "gauge",
    "packets_sent": "gauge",
    "uptime": "gauge",
    "open_file_descriptor_count": "gauge",
    "max_file_descriptor_count": "gauge",
    "readlatency": "summary",
    "updatelatency": "summary",
    "fsynctime": "summary",
    "snapshottime": "summary",
    "election_time": "summary",
    "bytes_received_count": "counter",
    "response_bytes": "counter",
    "connection_request_count": "counter",
    "stale_sessions_expired": "counter",
}


def parse(text):
    """Checks the exposition format and returns {family: (type, [(name,
    labels, value)])}."""
    families = {}
    current = None
    assert text.endswith("\n")
    for line in text.splitlines():
        if line.startswith("# HELP "):
            name = line.split(" ")[2]
            assert name not in families, f"{name} appears twice"
            current = name
            families[name] = [None, []]
        elif line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            assert name == current, line
            assert kind in ("counter", "gauge", "summary", "histogram", "untyped"), line
            families[name][0] = kind
        else:
            m = SAMPLE.match(line)
            assert m, f"not a sample line: {line!r}"
            name = m.group("name")
            base = re.sub(r"_(count|sum)$", "", name)
            assert current in (name, base), f"{name} outside its family {current}"
            labels = dict(LABEL.findall(m.group("labels") or ""))
            value = m.group("value")
            families[current][1].append(
                (name, labels, float("nan") if value == "NaN" else float(value))
            )
    for name, (kind, samples) in families.items():
        assert kind, f"{name} has no TYPE"
        assert samples, f"{name} has no sample"
        if kind == "summary":
            names = {s[0] for s in samples}
            assert {f"{name}_count", f"{name}_sum"} <= names, name
            quantiles = [s[1]["quantile"] for s in samples if s[0] == name]
            assert quantiles in (["0.5"], ["0.5", "0.9", "0.99"]), (name, quantiles)
    return {k: (v[0], v[1]) for k, v in families.items()}


def expected_families():
    with open(os.path.join(FIXTURES, "mntr_keys_zk38_standalone.txt")) as f:
        keys = [l.strip()[3:] for l in f if l.strip() and not l.startswith("#")]
    keys = [k for k in keys if k not in ("version", "server_state")]
    # A summary X has cnt_X and sum_X; avg_latency and friends are gauges.
    summaries = {k[4:] for k in keys if k.startswith("cnt_") and "sum_" + k[4:] in keys}
    plain = {
        k
        for k in keys
        if not (m := SUMMARY_PREFIX.match(k)) or m.group(2) not in summaries
    }
    return summaries, plain


def scrape(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        assert r.headers.get("Content-Type").startswith("text/plain")
        return r.read().decode()


@pytest.fixture(scope="module")
def prometheus_server():
    port = free_port()
    s = Server(
        "ensemble",
        extra_cfg=f"metricsProvider.className={PROMETHEUS}\n"
        "metricsProvider.httpHost=127.0.0.1\n"
        f"metricsProvider.httpPort={port}\n",
    ).start()
    s.metrics_port = port
    yield s
    s.close()


def test_metrics_are_valid_prometheus_text_with_zookeepers_names(prometheus_server):
    families = parse(scrape(prometheus_server.metrics_port))
    summaries, plain = expected_families()
    ours = {n for n in families if not n.startswith("process_")}
    assert ours == summaries | plain, (
        f"missing {sorted((summaries | plain) - ours)}, extra {sorted(ours - summaries - plain)}"
    )
    for name in summaries:
        assert families[name][0] == "summary", name
    for name in plain:
        assert families[name][0] in ("gauge", "counter"), name
    for name, kind in DASHBOARD.items():
        assert families[name][0] == kind, name
    assert families["process_resident_memory_bytes"][0] == "gauge"
    assert families["process_cpu_seconds_total"][0] == "counter"


def test_values_follow_the_load(prometheus_server):
    s = prometheus_server
    before = parse(scrape(s.metrics_port))
    zk = KazooClient(hosts=s.hosts, timeout=30.0)
    zk.start(timeout=15)
    try:
        zk.create("/prom", b"")
        for i in range(50):
            zk.create(f"/prom/n{i}", b"x" * 10)
        for i in range(100):
            zk.get(f"/prom/n{i % 50}")
        zk.get("/prom", watch=lambda e: None)
        after = parse(scrape(s.metrics_port))
        mntr = mntr_values(s)
    finally:
        zk.stop()
        zk.close()

    def value(fams, family, name=None, **labels):
        for n, l, v in fams[family][1]:
            if n == (name or family) and all(l.get(k) == w for k, w in labels.items()):
                return v
        raise KeyError((family, name, labels))

    assert value(after, "znode_count") == value(before, "znode_count") + 51
    assert value(after, "znode_count") == float(mntr["zk_znode_count"])
    assert value(after, "num_alive_connections") >= 1
    assert value(after, "watch_count") == 1
    assert value(after, "approximate_data_size") > value(before, "approximate_data_size") + 500
    reads = value(after, "readlatency", "readlatency_count") - value(
        before, "readlatency", "readlatency_count"
    )
    assert reads >= 101
    writes = value(after, "updatelatency", "updatelatency_count") - value(
        before, "updatelatency", "updatelatency_count"
    )
    assert writes >= 51
    p50 = value(after, "readlatency", quantile="0.5")
    p99 = value(after, "readlatency", quantile="0.99")
    assert not math.isnan(p50) and 0 <= p50 <= p99
    assert value(after, "bytes_received_count") > value(before, "bytes_received_count")
    assert value(after, "packets_received") > value(before, "packets_received")
    assert math.isnan(value(after, "fsynctime", quantile="0.5")) or value(after, "fsynctime", quantile="0.5") >= 0
    assert value(after, "process_open_fds") > 0


def mntr_values(server):
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as c:
        c.sendall(b"mntr")
        data = b""
        while chunk := c.recv(65536):
            data += chunk
    return dict(line.split("\t", 1) for line in data.decode().splitlines())


def test_taken_metrics_port_stops_the_server():
    """ZooKeeper cannot boot its metrics provider then, and exits."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        s = Server(
            "ensemble",
            extra_cfg=f"metricsProvider.className={PROMETHEUS}\n"
            f"metricsProvider.httpHost=127.0.0.1\nmetricsProvider.httpPort={port}\n",
        )
        try:
            with pytest.raises(RuntimeError, match="exited early"):
                s.start()
            assert (
                f"cannot start the Prometheus /metrics endpoint on 127.0.0.1:{port}: "
                "Address already in use (os error 98)"
            ) in s.log_text()
        finally:
            s.close()


def test_default_provider_serves_no_metrics_port():
    port = free_port()
    s = Server("ensemble", extra_cfg=f"metricsProvider.httpPort={port}\n").start()
    try:
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
    finally:
        s.close()
