"""The history of a chaos run: one record per client operation, with the
time it was invoked, the time it completed and its outcome.

Outcomes, as the checker reads them:

- "ok": the server answered and the operation took effect; `result` holds
  the answer (a version, a value, a sequence number...).
- "fail": the server answered that the operation did not take effect
  (BadVersion, NoNode, a multi that rolled back); `result["error"]` names
  the error. Such an answer is still an observation: a setData refused
  with BadVersion saw another version.
- "info": no answer (connection loss, timeout, session expiry): the
  operation may or may not have taken effect, now or later. The checker
  lets it complete at +infinity. Reads without an answer are simply
  dropped, since they change nothing.

Times are seconds since the start of the run, from one monotonic clock
shared by every worker thread. A history is written as JSON lines, one
operation a line, in the order of invocation.
"""

import json
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Optional

OUTCOMES = ("ok", "fail", "info")


@dataclass
class Op:
    index: int  # position in the history, in order of invocation
    process: int  # the worker that ran it: one thread, one client
    f: str  # read, write, cas, get, add, enqueue, dequeue, list, create
    key: str  # the znode (or queue, or parent) it is about
    args: dict = field(default_factory=dict)
    invoke: float = 0.0
    complete: Optional[float] = None  # None while pending and for "info"
    outcome: Optional[str] = None  # ok, fail, info; None while pending
    result: Any = None
    session: Optional[int] = None  # ZooKeeper session id when invoked
    end_session: Optional[int] = None  # ... and when the answer came
    final: bool = False  # a read of the final check, after every fault healed

    def to_json(self):
        return json.dumps(asdict(self), separators=(",", ":"), sort_keys=True)

    @staticmethod
    def from_json(line):
        return Op(**json.loads(line))

    def short(self):
        """One line for reports."""
        end = "inf" if self.complete is None else f"{self.complete:.6f}"
        sess = f" session {self.session:#x}" if self.session else ""
        fin = " final" if self.final else ""
        return (
            f"#{self.index} p{self.process}{sess}{fin} {self.f} {self.key} "
            f"{json.dumps(self.args, sort_keys=True)} [{self.invoke:.6f}, {end}] "
            f"{self.outcome} {json.dumps(self.result, sort_keys=True)}"
        )


class History:
    """A thread-safe recorder: `invoke` opens a record, `complete` closes
    it. The run's clock starts when the History is made."""

    def __init__(self):
        self.t0 = time.monotonic()
        self.ops = []
        self._lock = threading.Lock()

    def now(self):
        return time.monotonic() - self.t0

    def invoke(self, process, f, key, args=None, session=None, final=False):
        with self._lock:
            op = Op(
                index=len(self.ops),
                process=process,
                f=f,
                key=key,
                args=dict(args or {}),
                invoke=self.now(),
                session=session,
                final=final,
            )
            self.ops.append(op)
        return op

    def complete(self, op, outcome, result=None, session=None):
        if outcome not in OUTCOMES:
            raise ValueError(f"outcome {outcome!r}")
        t = self.now()
        with self._lock:
            op.outcome = outcome
            op.result = result
            op.end_session = session
            op.complete = None if outcome == "info" else t

    def snapshot(self):
        """Every record so far; ops still pending are returned as "info"
        (a run ends with some requests unanswered)."""
        with self._lock:
            out = []
            for op in self.ops:
                if op.outcome is None:
                    op = Op(**asdict(op))
                    op.outcome = "info"
                out.append(op)
            return out


def write_jsonl(path, records):
    with open(path, "w") as f:
        for r in records:
            f.write((r.to_json() if isinstance(r, Op) else json.dumps(r, sort_keys=True)) + "\n")


def read_ops(path):
    with open(path) as f:
        return [Op.from_json(line) for line in f if line.strip()]
