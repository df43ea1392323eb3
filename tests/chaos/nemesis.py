"""The nemesis: a thread that injects one fault at a time into a Cluster
(tests/cluster/clusterlib.py), holds it, repairs it, waits, and starts
again, until stopped. Every fault and repair is logged with its time on
the history's clock.

Kinds (`--nemesis` takes a comma list of these):

- kill: SIGKILL the leader, a random member, or (one time in five) a
  majority; they are started again after the hold.
- pause: SIGSTOP the leader or a random member; SIGCONT after the hold.
- partition: through the link proxies, one of: random halves, the leader
  isolated, or a bridge (two halves that only a middle member reaches);
  links either refuse connections ("close") or drop bytes ("silent").
  Healed after the hold.
- restart: SIGTERM a member (the leader or a random one) and start it
  again at once.
"""

import threading

KINDS = ("kill", "pause", "partition", "restart")


class Nemesis(threading.Thread):
    def __init__(self, cluster, kinds, rng, clock, hold=(1.0, 6.0), quiet=(1.0, 4.0), spare=()):
        """`spare`: members never killed or restarted (they are still paused
        and partitioned), so that one process lives through a whole run."""
        super().__init__(daemon=True, name="nemesis")
        for k in kinds:
            if k not in KINDS:
                raise ValueError(f"unknown nemesis {k!r}; known: {', '.join(KINDS)}")
        self.cluster = cluster
        self.kinds = list(kinds)
        self.rng = rng
        self.clock = clock  # seconds since the run started
        self.hold = hold
        self.quiet = quiet
        self.spare = set(spare)
        self.events = []  # {"time", "event", ...}
        self.counts = {}  # fault name -> times injected
        self.error = None
        self._stop_event = threading.Event()
        self._lock = threading.Lock()

    def log(self, event, **kw):
        with self._lock:
            self.events.append(dict(time=round(self.clock(), 6), event=event, **kw))

    def stop(self):
        """Stops injecting, repairs whatever is broken, and waits."""
        self._stop_event.set()
        self.join(timeout=120)

    def run(self):
        try:
            while not self._stop_event.wait(self.rng.uniform(*self.quiet)):
                if not self.kinds:
                    continue
                kind = self.rng.choice(self.kinds)
                repair = getattr(self, "_" + kind)()
                self._stop_event.wait(self.rng.uniform(*self.hold))
                repair()
        except Exception as e:  # a bug of the harness: the run fails
            self.error = f"{type(e).__name__}: {e}"
            raise
        finally:
            self.repair_all()

    # -- helpers ---------------------------------------------------------

    def leader(self):
        """The member that says it leads now, if exactly one does."""
        c = self.cluster
        leaders = [i for i in c.live_ids() if c.mode(i) == "leader"]
        return leaders[0] if len(leaders) == 1 else None

    def _victim(self, replaces=False):
        """The leader half of the time (when there is one), else any
        running member; not a spared one when the fault `replaces` the
        process (kill, restart)."""
        live = [i for i in self.cluster.live_ids() if i not in self.cluster.paused]
        lead = self.leader() if self.rng.random() < 0.5 else None
        if replaces:
            live = [i for i in live if i not in self.spare]
            if lead in self.spare:
                lead = None
        if lead is not None:
            return lead, "leader"
        return (self.rng.choice(live) if live else None), "member"

    def _count(self, name):
        with self._lock:
            self.counts[name] = self.counts.get(name, 0) + 1

    def repair_all(self):
        c = self.cluster
        for i in sorted(c.paused):
            c.resume(i)
        if c.proxies:
            c.heal()
        for i in c.ids:
            if not c.alive(i):
                c.start(i)
        self.log("repair-all")

    # -- faults: each injects and returns its repair ------------------------

    def _kill(self):
        c = self.cluster
        if self.rng.random() < 0.2:
            spared = [i for i in c.ids if i not in self.spare]
            victims = self.rng.sample(spared, min(len(spared), c.n // 2 + 1))
            name = "kill-majority"
        else:
            v, who = self._victim(replaces=True)
            victims = [v] if v is not None else []
            name = f"kill-{who}"
        for i in victims:
            c.kill(i)
        self._count(name)
        self.log(name, members=victims)

        def repair():
            for i in victims:
                if not c.alive(i):
                    c.start(i)
            self.log("start", members=victims)

        return repair

    def _pause(self):
        c = self.cluster
        v, who = self._victim()
        if v is None:
            return lambda: None
        c.pause(v)
        name = f"pause-{who}"
        self._count(name)
        self.log(name, members=[v])

        def repair():
            c.resume(v)
            self.log("resume", members=[v])

        return repair

    def _partition(self, how=None):
        c = self.cluster
        how = how or self.rng.choice(["close", "silent"])
        shape = self.rng.choice(["halves", "leader", "bridge"])
        ids = list(c.ids)
        self.rng.shuffle(ids)
        if shape == "leader":
            lead = self.leader()
            if lead is None:
                shape = "halves"
            else:
                c.isolate(lead, how)
                detail = {"isolated": lead}
        if shape == "halves":
            groups = [sorted(ids[: len(ids) // 2]), sorted(ids[len(ids) // 2 :])]
            c.partition(groups, how)
            detail = {"groups": groups}
        elif shape == "bridge":
            middle = ids[0]
            c.bridge(middle, how)
            detail = {"middle": middle}
        name = f"partition-{shape}"
        self._count(name)
        self.log(name, how=how, **detail)

        def repair():
            c.heal()
            self.log("heal")

        return repair

    def _restart(self):
        c = self.cluster
        v, who = self._victim(replaces=True)
        if v is None:
            return lambda: None
        c.restart(v)
        name = f"restart-{who}"
        self._count(name)
        self.log(name, members=[v])
        return lambda: None
