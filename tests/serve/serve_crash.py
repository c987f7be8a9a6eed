#!/usr/bin/env python3
"""serve_crash.py — durability of `seqrec serve` under kill -9 (docs/serve.md: "an acknowledged
event survives kill -9 and power loss").

One small model, one event store, 4 rounds, alternately with --sync full (an fsync per commit)
and --sync normal (synced at checkpoints: must still keep every ack through a kill -9, since
the kernel keeps what was written);
4 client threads post single events and small batches as fast as they can, for new users,
a few hot users shared by the threads and dataset users, recording every event whose POST
answered 200; after a random 0.5–2.5 s the server gets SIGKILL. Then:
  - a copy of the store files as the crash left them opens in sqlite3: PRAGMA integrity_check
    is ok, every acknowledged event (of every round so far) is a row, at the seq its answer's
    first_seq gave, and no event is stored twice;
  - the server restarts on the store and GET /v1/users/{id}/history?limit=100000 shows every
    acknowledged event of a sample of users (every hot user and dataset user, 150 others).
At the end a SIGTERM must exit 0 and leave the store complete.
Exit 1 on any loss. SEQREC_CRASH_SEED fixes the random choices (printed otherwise)."""

import collections
import http.client
import itertools
import json
import os
import random
import shutil
import sqlite3
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from servelib import Checker, Env, Server, watchdog  # noqa: E402

ROUNDS = 4
SYNC = ["full", "normal"]  # round r runs with --sync SYNC[r % 2]: both must keep every ack
THREADS = 4
HOT_USERS = ["hot-%d" % i for i in range(8)]


class Crash:
    def __init__(self):
        self.chk = Checker("serve_crash")
        self.env = Env()
        seed = os.environ.get("SEQREC_CRASH_SEED")
        self.seed = int(seed) if seed else random.randrange(1 << 30)
        self.rng = random.Random(self.seed)
        self.acked = []       # (user, item, behaviour, ts, seq)
        self.ts = itertools.count(1_800_000_000)
        self.ts_lock = threading.Lock()

    def next_ts(self):
        with self.ts_lock:
            return next(self.ts)

    # ------------------------------------------------------------------ writers
    def writer(self, srv, rnd, t, stop, out, unexpected):
        rng = random.Random(self.seed * 31 + rnd * 7 + t)
        conn = None
        n = 0
        while not stop.is_set():
            if rng.random() < 0.6:
                size = 1
            else:
                size = rng.randint(2, 5)
            evs = []
            for _ in range(size):
                n += 1
                x = rng.random()
                if x < 0.5:
                    user = "c%d-%d-%d" % (rnd, t, n)
                elif x < 0.8:
                    user = rng.choice(HOT_USERS)
                else:
                    user = rng.choice(self.dataset_users)
                item = rng.choice(self.items) if rng.random() < 0.9 else "x-%d" % rng.randrange(50)
                ev = {"user": user, "item": item, "behaviour": rng.choice(self.behaviours),
                      "ts": self.next_ts()}
                if rng.random() < 0.3:
                    ev["scene"] = "home"
                    ev["value"] = 1.5
                evs.append(ev)
            body = json.dumps(evs if size > 1 or rng.random() < 0.5 else evs[0])
            try:
                if conn is None:
                    conn = http.client.HTTPConnection(srv.host, srv.port, timeout=30)
                conn.request("POST", "/v1/events", body=body,
                             headers={"Content-Type": "application/json"})
                r = conn.getresponse()
                data = r.read()
            except Exception:  # noqa: BLE001 — the server was killed (or the connection closed)
                if conn is not None:
                    conn.close()
                conn = None
                if stop.is_set() or not srv.alive():
                    break
                time.sleep(0.01)
                continue
            if r.status != 200:
                unexpected.append((r.status, data[:200]))
                continue
            try:
                j = json.loads(data)
                first = j["first_seq"]
                ok = j["accepted"] == size
            except (ValueError, KeyError, TypeError):
                unexpected.append((r.status, data[:200]))
                continue
            if not ok:
                unexpected.append(("accepted", data[:200]))
            for i, e in enumerate(evs):
                out.append((e["user"], e["item"], e["behaviour"], e["ts"],
                            first + i if isinstance(first, int) else None))
        if conn is not None:
            conn.close()

    def round(self, srv, rnd):
        stop = threading.Event()
        outs = [[] for _ in range(THREADS)]
        unexpected = []
        ths = [threading.Thread(target=self.writer, args=(srv, rnd, t, stop, outs[t], unexpected))
               for t in range(THREADS)]
        for t in ths:
            t.start()
        delay = self.rng.uniform(0.5, 2.5)
        time.sleep(delay)
        alive = srv.alive()
        srv.kill()
        stop.set()
        for t in ths:
            t.join(60)
        new = [e for o in outs for e in o]
        self.acked.extend(new)
        print("# round %d: killed after %.2f s; %d events acknowledged (%d in all)"
              % (rnd + 1, delay, len(new), len(self.acked)), flush=True)
        self.chk.check("round %d: the server ran until the kill" % (rnd + 1), alive,
                       "exit %s; stderr: %s" % (srv.proc.returncode, srv.stderr()))
        self.chk.check("round %d: events were acknowledged before the kill" % (rnd + 1), new,
                       srv.stderr())
        self.chk.check("round %d: every POST answered 200 {accepted, first_seq} while the server "
                       "lived" % (rnd + 1), not unexpected, unexpected[:5])

    # ------------------------------------------------------------------ checks
    def check_sqlite(self, path, when):
        chk = self.chk
        con = sqlite3.connect(path, timeout=30)
        try:
            ic = con.execute("PRAGMA integrity_check").fetchall()
            chk.check("%s: PRAGMA integrity_check = ok" % when, ic == [("ok",)], ic)
            rows = con.execute("SELECT seq, user, item, behaviour, ts FROM events").fetchall()
        finally:
            con.close()
        have = collections.Counter((str(u), str(i), b, t) for _, u, i, b, t in rows)
        by_seq = {s: (str(u), str(i), b, t) for s, u, i, b, t in rows}
        lost = [e for e in self.acked if have[e[:4]] < 1]
        chk.check("%s: every acknowledged event (%d) is a row" % (when, len(self.acked)),
                  not lost, "%d lost, e.g. %s" % (len(lost), lost[:5]))
        wrong_seq = [e for e in self.acked if e[4] is not None and by_seq.get(e[4]) != e[:4]]
        chk.check("%s: each acknowledged event is at the seq first_seq + i of its answer" % when,
                  not wrong_seq, [(e, by_seq.get(e[4])) for e in wrong_seq[:5]])
        ours = [k for k, c in have.items() if k[3] >= 1_800_000_000 and c > 1]
        chk.check("%s: no event stored twice" % when, not ours, ours[:5])
        return len(rows)

    def check_snapshot(self, rnd):
        """Checks a copy of the store as the kill left it (the server will recover the original)."""
        snap = self.env.path("snap%d" % rnd)
        os.makedirs(snap, exist_ok=True)
        for suffix in ("", "-wal", "-journal"):
            src = self.store + suffix
            if os.path.exists(src):
                shutil.copy(src, os.path.join(snap, "crash.db" + suffix))
        self.check_sqlite(os.path.join(snap, "crash.db"), "round %d, the store after kill -9"
                          % (rnd + 1))
        shutil.rmtree(snap, ignore_errors=True)

    def check_http(self, srv, rnd):
        by_user = collections.defaultdict(list)
        for e in self.acked:
            by_user[e[0]].append(e)
        fixed = [u for u in by_user if u in HOT_USERS or u in self.dataset_set]
        others = [u for u in by_user if u not in fixed]
        self.rng.shuffle(others)
        users = fixed + others[:150]
        lost, errors = [], []
        checked = 0
        for u in users:
            try:
                r = srv.history(u, limit=100000)
            except Exception as e:  # noqa: BLE001
                errors.append((u, repr(e)))
                continue
            if r.status != 200 or not isinstance(r.json, dict):
                errors.append((u, r))
                continue
            got = collections.Counter((str(e.get("item")), e.get("behaviour"), e.get("ts"))
                                      for e in r.json.get("events", [])
                                      if e.get("source") == "live")
            want = collections.Counter((e[1], e[2], e[3]) for e in by_user[u])
            miss = want - got
            if miss:
                lost.append((u, list(miss)[:3]))
            checked += sum(want.values())
        self.chk.check("round %d, after restart: GET history of %d users answers 200"
                       % (rnd + 1, len(users)), not errors, errors[:5])
        self.chk.check("round %d, after restart: every acknowledged event of those users is in "
                       "their history (%d events)" % (rnd + 1, checked), not lost,
                       "%d users lost events, e.g. %s" % (len(lost), lost[:3]))

    # ------------------------------------------------------------------
    def main(self):
        chk, env = self.chk, self.env
        ok, p = env.serve_available()
        if not chk.check("serve --help prints 'usage: seqrec serve'", ok,
                         (p.returncode, p.stderr.decode(errors="replace"))):
            return chk.finish()
        print("# seed %d (SEQREC_CRASH_SEED=%d repeats it)" % (self.seed, self.seed), flush=True)
        if not chk.run("setup: generate, ingest, train (exception)", env.make_data, knn=False):
            return chk.finish()
        rows = env.read_log()
        self.items = sorted({r["item_id"] for r in rows})
        self.behaviours = sorted({r["behaviour"] for r in rows})
        self.dataset_users = sorted({r["user_id"] for r in rows})[:20]
        self.dataset_set = set(self.dataset_users)
        self.store = env.path("crash.db")
        args = [env.sasrec, env.data, "--store", self.store, "--port", 0]
        srv = chk.run("the server starts (exception)",
                      Server(env, args + ["--sync", SYNC[0]], "crash0").start)
        if srv is None:
            return chk.finish()
        for rnd in range(ROUNDS):
            print("# round %d: --sync %s" % (rnd + 1, SYNC[rnd % 2]), flush=True)
            chk.run("round %d (exception)" % (rnd + 1), self.round, srv, rnd)
            chk.run("round %d snapshot (exception)" % (rnd + 1), self.check_snapshot, rnd)
            try:
                srv = Server(env, args + ["--sync", SYNC[(rnd + 1) % 2]],
                             "crash%d" % (rnd + 1)).start()
            except Exception as e:  # noqa: BLE001
                chk.fail("round %d: the server restarts on the store" % (rnd + 1), e)
                return chk.finish()
            chk.ok("round %d: the server restarts on the store" % (rnd + 1))
            chk.run("round %d history (exception)" % (rnd + 1), self.check_http, srv, rnd)
        h = chk.run("GET /healthz before the stop (exception)", srv.get, "/healthz")
        rc = srv.stop()
        chk.check("SIGTERM after the last restart: exit 0", rc == 0 and not srv.died_early,
                  "exit %s; %s" % (rc, srv.stderr()))
        n = chk.run("final store (exception)", self.check_sqlite, self.store,
                    "after SIGTERM, the store")
        chk.check("/healthz events before the stop = rows in the store (%s)" % n,
                  h is not None and h.status == 200 and h.json.get("events") == n, h)
        return chk.finish()


if __name__ == "__main__":
    watchdog(420, "serve_crash")
    sys.exit(Crash().main())
