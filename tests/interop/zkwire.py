"""A tiny raw ZooKeeper wire client for tests that need exact bytes:
handshakes with chosen fields, malformed frames, unknown opcodes."""

import socket
import struct


def frame(body):
    return struct.pack(">i", len(body)) + body


def buf(b):
    return struct.pack(">i", -1) if b is None else struct.pack(">i", len(b)) + b


def ustr(s):
    return buf(s.encode())


def connect_request(session_id=0, passwd=b"\0" * 16, timeout=30000, last_zxid=0, read_only=True):
    body = struct.pack(">iqiq", 0, last_zxid, timeout, session_id) + buf(passwd)
    if read_only is not None:
        body += b"\1" if read_only else b"\0"
    return frame(body)


class Conn:
    def __init__(self, port, timeout=5.0):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=timeout)

    def close(self):
        self.s.close()

    def send(self, data):
        self.s.sendall(data)

    def recv_exact(self, n):
        out = b""
        while len(out) < n:
            chunk = self.s.recv(n - len(out))
            if not chunk:
                raise EOFError("connection closed")
            out += chunk
        return out

    def recv_frame(self):
        (n,) = struct.unpack(">i", self.recv_exact(4))
        return self.recv_exact(n)

    def handshake(self, **kw):
        self.send(connect_request(**kw))
        body = self.recv_frame()
        proto, timeout, sid = struct.unpack(">iiq", body[:16])
        (plen,) = struct.unpack(">i", body[16:20])
        passwd = body[20:20 + plen]
        rest = body[20 + plen:]
        return {"timeout": timeout, "session_id": sid, "passwd": passwd, "trailing": rest}

    def request(self, xid, opcode, body=b""):
        self.send(frame(struct.pack(">ii", xid, opcode) + body))
        return self.reply()

    def reply(self):
        """Returns (xid, zxid, err, body) of the next frame."""
        b = self.recv_frame()
        xid, zxid, err = struct.unpack(">iqi", b[:16])
        return xid, zxid, err, b[16:]

    def is_closed(self, wait=2.0):
        self.s.settimeout(wait)
        try:
            return self.s.recv(1) == b""
        except ConnectionResetError:
            return True
        except socket.timeout:
            return False
