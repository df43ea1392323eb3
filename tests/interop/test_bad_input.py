"""Hostile or broken input: the connection gets ZooKeeper's answer or is
closed, and the server keeps serving everyone else."""

import struct

from kazoo.client import KazooClient

import zkwire


def still_serving(server):
    k = KazooClient(hosts=server.hosts, timeout=5)
    k.start(timeout=10)
    k.ensure_path("/alive")
    assert k.exists("/alive") is not None
    k.stop()


def test_garbage_before_handshake_closes_only_that_connection(ensemble):
    c = zkwire.Conn(ensemble.port)
    c.send(b"\x00\x00\x00\x10" + b"\xff" * 16)
    assert c.is_closed()
    c = zkwire.Conn(ensemble.port)
    c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert c.is_closed()
    still_serving(ensemble)


def test_frame_longer_than_jute_maxbuffer_closes_the_connection(ensemble):
    c = zkwire.Conn(ensemble.port)
    c.handshake()
    c.send(struct.pack(">i", 2 * 1024 * 1024) + b"x" * 100)
    assert c.is_closed()
    c = zkwire.Conn(ensemble.port)
    c.send(struct.pack(">i", -5))
    assert c.is_closed()
    assert "jute.maxbuffer" in ensemble.log_text()
    still_serving(ensemble)


def test_truncated_frame_then_hangup_is_harmless(ensemble):
    c = zkwire.Conn(ensemble.port)
    c.handshake()
    c.send(struct.pack(">i", 100) + b"short")
    c.close()
    still_serving(ensemble)


def test_truncated_request_body_gets_marshalling_error(any_server):
    c = zkwire.Conn(any_server.port)
    c.handshake()
    # getData with a path length that runs past the frame.
    c.send(zkwire.frame(struct.pack(">ii", 5, 4) + struct.pack(">i", 50) + b"/a"))
    xid, _, err, _ = c.reply()
    assert (xid, err) == (5, -5)
    still_serving(any_server)


def test_unknown_opcode_is_unimplemented_then_closed(any_server):
    # As ZooKeeper's UnimplementedRequestProcessor: answer, then hang up.
    for opcode in (999, 0, -3):
        c = zkwire.Conn(any_server.port)
        c.handshake()
        xid, zxid, err, _ = c.request(7, opcode)
        assert (xid, zxid, err) == (7, -1, -6)
        assert c.is_closed()
    still_serving(any_server)


def test_undecodable_bodies_get_zookeepers_error_codes(any_server):
    c = zkwire.Conn(any_server.port)
    c.handshake()
    # setData whose path runs past the frame: MarshallingError.
    c.send(zkwire.frame(struct.pack(">ii", 5, 5) + struct.pack(">i", 50) + b"/a"))
    assert c.reply()[2] == -5
    # create with a relative path: BadArguments.
    body = zkwire.ustr("bad") + zkwire.buf(b"") + struct.pack(">i", 0) + struct.pack(">i", 0)
    assert c.request(6, 1, body)[2] == -8
    # a multi cut short: MarshallingError.
    assert c.request(7, 14, b"\0\0")[2] == -5
    # getData of a relative path: NoNode.
    assert c.request(8, 4, zkwire.ustr("bad") + b"\0")[2] == -101
    # sasl with no mechanism configured: OK with a null token.
    assert c.request(9, 102, zkwire.buf(b"xx")) == (9, 0, 0, b"\xff\xff\xff\xff")
    assert not c.is_closed(0.3)


def test_request_before_handshake_is_refused(ensemble):
    c = zkwire.Conn(ensemble.port)
    # A getData request where a ConnectRequest must come.
    c.send(zkwire.frame(struct.pack(">ii", 1, 4) + zkwire.ustr("/") + b"\0"))
    assert c.is_closed()
    still_serving(ensemble)


def test_too_many_connections_from_one_ip(tmp_path):
    from conftest import Server

    s = Server("ensemble", extra_cfg="maxClientCnxns=3\n").start()
    try:
        conns = [zkwire.Conn(s.port) for _ in range(3)]
        for c in conns:
            c.handshake()
        extra = zkwire.Conn(s.port)
        try:
            extra.send(zkwire.connect_request())
        except OSError:
            pass
        assert extra.is_closed()
        assert "too many connections" in s.log_text().lower()
        conns[0].close()
        import time

        time.sleep(0.3)
        ok = zkwire.Conn(s.port)
        assert ok.handshake()["session_id"] != 0
    finally:
        s.close()


def vm_rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def test_a_client_that_never_reads_is_dropped_at_the_output_limit(ensemble):
    """64 MB of unread answers: the server drops that connection, without
    flushing, instead of holding its answers without bound."""
    import socket
    import time

    k = KazooClient(hosts=ensemble.hosts, timeout=10)
    k.start(timeout=10)
    k.create("/big", b"x" * 1_000_000)
    k.stop()
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.settimeout(10)
    s.connect(("127.0.0.1", ensemble.port))
    c = zkwire.Conn.__new__(zkwire.Conn)
    c.s = s
    c.handshake()
    get_big = zkwire.ustr("/big") + b"\0"
    # 200 replies of 1 MB: far more than the limit and the socket buffers hold.
    dropped = False
    try:
        for xid in range(1, 201):
            c.send(zkwire.frame(struct.pack(">ii", xid, 4) + get_big))
    except OSError:
        dropped = True
    deadline = time.time() + 20
    while "left more than" not in ensemble.log_text() and time.time() < deadline:
        time.sleep(0.2)
    assert "left more than 67108864 bytes of answers unread" in ensemble.log_text()
    # Its queued answers are freed: far less than 200 MB stays resident.
    assert vm_rss_kib(ensemble.proc.pid) < 150 * 1024
    # The socket itself is let go, though the session lives on: what the
    # client reads comes to an end (EOF or reset) instead of hanging.
    ended = False
    try:
        while s.recv(65536):
            pass
        ended = True
    except (ConnectionResetError, BrokenPipeError):
        ended = True
    except socket.timeout:
        pass
    assert ended, "the server still holds the dropped connection open"
    if not dropped:
        try:
            for _ in range(100):
                s.sendall(b"\0" * 65536)
                time.sleep(0.01)
        except OSError:
            dropped = True
    assert dropped, "the connection was closed by the server"
    s.close()
    still_serving(ensemble)


def test_a_four_letter_word_gives_its_place_back_before_it_closes():
    """Under maxCnxns=1 a word asked right after another's answer is served:
    the first connection's place is free once the client sees it close."""
    import socket

    from conftest import Server

    s = Server("ensemble", extra_cfg="maxCnxns=1\n").start()
    try:
        answers = []
        for _ in range(200):
            with socket.create_connection(("127.0.0.1", s.port), timeout=5) as c:
                c.sendall(b"ruok")
                data = b""
                while chunk := c.recv(64):
                    data += chunk
            answers.append(data)
        assert answers == [b"imok"] * 200, (
            f"{sum(a != b'imok' for a in answers)} of 200 refused"
        )
    finally:
        s.close()


def test_max_cnxns_limits_the_connections_in_all():
    from conftest import Server

    s = Server("ensemble", extra_cfg="maxCnxns=3\n").start()
    try:
        conns = [zkwire.Conn(s.port) for _ in range(3)]
        for c in conns:
            c.handshake()
        extra = zkwire.Conn(s.port)
        try:
            extra.send(zkwire.connect_request())
        except OSError:
            pass
        assert extra.is_closed()
        assert "max is 3 (maxCnxns)" in s.log_text()
        conns[0].close()
        import time

        time.sleep(0.3)
        ok = zkwire.Conn(s.port)
        assert ok.handshake()["session_id"] != 0
    finally:
        s.close()
