#!/usr/bin/env python3
"""serve_api.py — black-box test of every route of `seqrec serve` (docs/serve.md) on a generated
log: health, info and Prometheus metrics; recommendations (k, distinct items, ordered scores, no
seen items unless keep_seen, explain, same answers as `seqrec recommend`, same answers when
requests are batched together); read-your-writes; negative feedback; cold start; batches;
similar items; history; user deletion; item metadata; API keys and reload; every documented
limit and error; rate limiting; A/B variants with their metrics and hits; the access log's
hashed ids; SIGTERM (exit 0, the store keeps every acknowledged event, readable by sqlite3)
and a restart on the same store.

Prints `ok - …` / `FAIL - …: …` per check, goes on after a failure, exits 1 if any failed.
Environment: SEQREC_BIN, SEQREC_SOURCE, SEQREC_TEST_TMP (see servelib.py)."""

import collections
import json
import math
import os
import random
import re
import shutil
import sqlite3
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from servelib import (Checker, Env, Server, auth, deltas, fmt_key,  # noqa: E402
                      histogram_problems, is_histogram_part, parse_metrics, q, watchdog)

WRITE_KEY = "wk-7f3a9c2e41b86d05e1c4a7f2"
ADMIN_KEY = "ak-0d9e8f7a6b5c4e3d2c1b0a99"
SECRET_USER = "zq-secret-user-8675309"


def items_of(r):
    return [str(i["item"]) for i in r.json["items"]]


def scores_of(r):
    return [i["score"] for i in r.json["items"]]


def close(a, b, tol=1e-4):
    return abs(a - b) <= tol * max(1.0, abs(a), abs(b))


def same_ranking(a, b, tol=1e-4):
    """Two lists of {"item","score"}: the same scores position by position, and the same items
    except where two scores are within tol (a tie may order either way)."""
    if len(a) != len(b):
        return False
    for x, y in zip(a, b):
        if not close(x["score"], y["score"], tol):
            return False
    sa = {str(x["item"]): x["score"] for x in a}
    sb = {str(x["item"]): x["score"] for x in b}
    for it in set(sa) ^ set(sb):
        s = sa.get(it, sb.get(it))
        if not close(s, a[-1]["score"], tol):
            return False
    return True


def json_numbers(o):
    if isinstance(o, bool):
        return
    if isinstance(o, (int, float)):
        yield o
    elif isinstance(o, dict):
        for v in o.values():
            yield from json_numbers(v)
    elif isinstance(o, list):
        for v in o:
            yield from json_numbers(v)


def json_strings(o):
    if isinstance(o, str):
        yield o
    elif isinstance(o, dict):
        for k, v in o.items():
            yield k
            yield from json_strings(v)
    elif isinstance(o, list):
        for v in o:
            yield from json_strings(v)


class ApiTest:
    def __init__(self):
        self.chk = Checker("serve_api")
        self.env = Env()
        self.acked = []          # (user, item, behaviour, ts or None) of every 200 POST
        self.deleted = set()     # users deleted (no rows may remain)
        self.never = set()       # users whose posts were all refused (no rows may exist)

    # ------------------------------------------------------------------ helpers
    def ok(self, what):
        self.chk.ok(what)

    def check(self, what, cond, details=""):
        return self.chk.check(what, cond, details)

    def expect_status(self, what, r, statuses, need_error=None):
        """r.status in statuses; for 4xx/5xx an {"error": str} body; need_error: words the
        error message must contain (case-insensitive)."""
        if isinstance(statuses, int):
            statuses = (statuses,)
        if r.status not in statuses:
            return self.chk.fail(what, "expected %s, got %r" % ("/".join(map(str, statuses)), r))
        if r.status >= 400:
            msg = r.error_msg()
            if msg is None:
                return self.chk.fail(what, 'no {"error": "…"} body: %r' % r)
            for w in need_error or ():
                if w.lower() not in msg.lower():
                    return self.chk.fail(what, "error %r does not name %r" % (msg, w))
        self.chk.ok(what)
        return True

    def post_events(self, srv, body, key=None):
        """POSTs; on 200 records the events as acknowledged. Returns the response."""
        r = srv.events(body, key)
        if r.status == 200:
            evs = body if isinstance(body, list) else [body]
            for e in evs:
                self.acked.append((str(e["user"]), str(e["item"]), e["behaviour"], e.get("ts")))
        return r

    def post_ok(self, what, srv, body, key=None):
        r = self.post_events(srv, body, key)
        n = len(body) if isinstance(body, list) else 1
        good = (r.status == 200 and isinstance(r.json, dict) and r.json.get("accepted") == n
                and isinstance(r.json.get("first_seq"), int))
        self.check(what, good, "expected 200 {accepted:%d, first_seq:int}, got %r" % (n, r))
        return r

    def live(self, hist):
        return [e for e in hist.json["events"] if e.get("source") == "live"]

    # ------------------------------------------------------------------ data
    def setup(self):
        env = self.env
        ok, p = env.serve_available()
        if not self.check("serve --help prints 'usage: seqrec serve'", ok,
                          "exit %d: %s %s" % (p.returncode, p.stdout.decode(errors="replace"),
                                              p.stderr.decode(errors="replace"))):
            return False
        t = time.time()
        env.make_data()
        self.chk.note("data and models made in %.1f s" % (time.time() - t))
        self.rows = env.read_log()
        self.stats = env.cli_json("stats", env.data, "--json")
        self.n_items = self.stats["items"]
        self.by_user = collections.defaultdict(list)
        for r in self.rows:
            self.by_user[r["user_id"]].append(r)
        self.catalogue = sorted({r["item_id"] for r in self.rows})
        self.behaviours = sorted({r["behaviour"] for r in self.rows})
        self.item_count = collections.Counter(r["item_id"] for r in self.rows)
        self.scene_count = collections.defaultdict(collections.Counter)
        for r in self.rows:
            self.scene_count[r["scene"]][r["item_id"]] += 1
        users = sorted(self.by_user, key=lambda u: (len(self.by_user[u]), u))
        mid = [u for u in users if 15 <= len(self.by_user[u]) <= 40]
        random.Random(5).shuffle(mid)
        self.U, self.V, self.W, self.U2, self.U3, self.U4 = mid[:6]
        self.others = mid[6:]
        self.Ubig = users[-1]  # more than 100 events
        self.chk.note("users: U=%s V=%s W=%s U2=%s U3=%s Ubig=%s (%d events); %d items; "
                      "behaviours %s" % (self.U, self.V, self.W, self.U2, self.U3, self.Ubig,
                                         len(self.by_user[self.Ubig]), self.n_items,
                                         ",".join(self.behaviours)))
        return True

    def seen(self, user):
        return {r["item_id"] for r in self.by_user.get(user, [])}

    # ------------------------------------------------------------------ server A
    def main_server(self):
        env, chk = self.env, self.chk
        self.store_a = env.path("a.db")
        self.alog = env.path("access.log")
        self.args_a = [env.sasrec, env.data, "--store", self.store_a, "--port", 0,
                       "--negative", "dislike", "--max-body", 4096, "--max-batch", 20,
                       "--max-depth", 8, "--access-log", self.alog]
        A = Server(env, self.args_a, "A").start()
        self.check("server starts and prints 'listening on http://ADDR:PORT'", A.port, A.lines)
        self.check("binds to 127.0.0.1 by default", A.bound == "127.0.0.1", A.lines)
        for name, fn in [("healthz", self.t_health), ("info", self.t_info),
                         ("metrics", self.t_metrics), ("history", self.t_history),
                         ("recommendations", self.t_recs), ("score scan", self.t_scan),
                         ("explain", self.t_explain),
                         ("batched scoring", self.t_concurrent),
                         ("read-your-writes", self.t_ryw),
                         ("concurrent read-your-writes", self.t_ryw_concurrent),
                         ("event fields", self.t_fields),
                         ("negative feedback", self.t_negative), ("cold start", self.t_cold),
                         ("batch of events", self.t_batch), ("similar", self.t_similar),
                         ("delete user", self.t_delete), ("put item", self.t_put_item),
                         ("bad input", self.t_bad_input), ("limits", self.t_limits),
                         ("routes and methods", self.t_routes),
                         ("access log requests", self.t_access_requests),
                         ("port taken", self.t_port_taken)]:
            chk.run("%s (exception)" % name, fn, A)
        chk.run("SIGTERM and the store", self.t_sigterm, A)
        chk.run("restart on the same store", self.t_restart)
        chk.run("access log", self.t_access_log)

    def t_health(self, A):
        r = A.get("/healthz")
        j = r.json if isinstance(r.json, dict) else {}
        self.check("GET /healthz: 200 {status:ok, events:int, model_version:int}",
                   r.status == 200 and j.get("status") == "ok"
                   and isinstance(j.get("events"), int) and isinstance(j.get("model_version"), int),
                   r)
        self.check("GET /healthz: JSON content type", "json" in r.header("content-type", ""),
                   r.headers)
        self.check("GET /healthz: a new store has 0 events", j.get("events") == 0, r)
        self.version_a = j.get("model_version")

    def t_info(self, A):
        r = A.get("/v1/info")
        nums = set(json_numbers(r.json)) if r.status == 200 else set()
        self.check("GET /v1/info: 200, a JSON object", r.status == 200 and isinstance(r.json, dict),
                   r)
        self.check("GET /v1/info: dataset shape (%d users, %d items)" % (self.stats["users"],
                                                                         self.n_items),
                   self.stats["users"] in nums and self.n_items in nums, r)
        self.check("GET /v1/info: names the variant 'main'",
                   r.status == 200 and "main" in set(json_strings(r.json)), r)

    def t_metrics(self, A):
        r = A.get("/metrics")
        self.check("GET /metrics: 200 text/plain", r.status == 200
                   and r.header("content-type", "").startswith("text/plain"), r.headers)
        m0 = parse_metrics(r.text)
        self.check("/metrics: every line is Prometheus text format", not m0.bad_lines,
                   m0.bad_lines[:5])
        n_hist, probs = histogram_problems(m0)
        self.check("/metrics: latency histograms with le=\"+Inf\" buckets, cumulative, _count = "
                   "+Inf bucket", n_hist > 0 and not probs and re.search(
                       r'_bucket\{[^}]*le="\+Inf"', r.text), probs or "no histogram")
        N = 7
        item = self.catalogue[0]
        for _ in range(N):
            A.get("/v1/items/%s/similar?k=3" % q(item))
        m1 = A.metrics()
        d = deltas(m0, m1, "(?i)request", any="(?i)similar")
        cnt = {k: v for k, v in d.items() if not is_histogram_part(k[0])}
        self.check("/metrics: a request counter for the similar route grew by %d after %d "
                   "requests" % (N, N), any(v == N for v in cnt.values()),
                   {fmt_key(k): v for k, v in d.items()} or "no series named *request* with a "
                   "label value matching 'similar'")
        hb = {k: v for k, v in deltas(m0, m1, "_bucket$", any="(?i)similar").items()
              if dict(k[1]).get("le") in ("+Inf", "Inf")}
        self.check("/metrics: the similar route's latency histogram +Inf bucket grew by %d" % N,
                   any(v == N for v in hb.values()), {fmt_key(k): v for k, v in hb.items()}
                   or "no similar-route _bucket{le=\"+Inf\"}")
        M = 3
        evs = [{"user": "metrics-user", "item": self.catalogue[i], "behaviour": "view"}
               for i in range(M)]
        self.post_ok("POST %d events (for the events counter)" % M, A, evs)
        m2 = A.metrics()
        de = {k: v for k, v in deltas(m1, m2, "(?i)event").items()
              if not is_histogram_part(k[0])}
        self.check("/metrics: an events counter grew by %d after %d events" % (M, M),
                   any(v == M for v in de.values()),
                   {fmt_key(k): v for k, v in de.items()} or "no series named *event*")
        mv = m2.find("(?i)version")
        self.check("/metrics: a model version series equal to /healthz model_version (%s)"
                   % self.version_a, any(v == self.version_a for v in mv.values()),
                   {fmt_key(k): v for k, v in mv.items()} or "no series named *version*")
        h = A.get("/healthz").json
        self.check("/healthz events grew by %d" % M, h.get("events") == M, h)

    def t_history(self, A):
        U = self.U
        r = A.history(U)
        j = r.json or {}
        self.check("GET history: 200 {user, known:true, events}", r.status == 200
                   and str(j.get("user")) == U and j.get("known") is True
                   and isinstance(j.get("events"), list), r)
        evs = j.get("events", [])
        got = collections.Counter((str(e.get("item")), e.get("behaviour"), e.get("ts"),
                                   e.get("scene")) for e in evs)
        want = collections.Counter((x["item_id"], x["behaviour"], int(x["timestamp"]), x["scene"])
                                   for x in self.by_user[U])
        self.check("GET history: the dataset user's events = the log's rows (item, behaviour, ts, "
                   "scene), all source 'dataset'", got == want
                   and all(e.get("source") == "dataset" for e in evs),
                   "missing %s, extra %s" % (list((want - got).items())[:3],
                                             list((got - want).items())[:3]))
        self.check("GET history: every event has item, behaviour, ts, source",
                   evs and all(all(f in e for f in ("item", "behaviour", "ts", "source"))
                               for e in evs), evs[:2])
        ts = [e.get("ts") for e in evs]
        self.check("GET history: oldest first", ts == sorted(ts), ts)
        r5 = A.history(U, limit=5)
        self.check("GET history?limit=5: the 5 most recent", r5.status == 200
                   and r5.json["events"] == evs[-5:], r5)
        big = A.get("/v1/users/%s/history" % q(self.Ubig))
        full = A.history(self.Ubig).json["events"]
        self.check("GET history without limit: the 100 most recent (user with %d events)"
                   % len(full), big.status == 200 and len(full) > 100
                   and big.json["events"] == full[-100:], "%d events" % len(big.json["events"])
                   if big.json else big)
        un = A.history("no-such-user-h1")
        self.check("GET history of an unknown user: known false and no events (or 404)",
                   (un.status == 200 and un.json.get("known") is False and un.json.get("events")
                    == []) or (un.status == 404 and un.error_msg()), un)
        self.expect_status("GET history?limit=abc: 400",
                           A.get("/v1/users/%s/history?limit=abc" % q(U)), 400)

    def t_recs(self, A):
        U = self.U
        seen = self.seen(U)
        r = A.recs(U)
        j = r.json or {}
        self.check("GET recommendations: 200 {user, variant:main, model_version, cold_start:false,"
                   " items}", r.status == 200 and str(j.get("user")) == U
                   and j.get("variant") == "main" and j.get("model_version") == self.version_a
                   and j.get("cold_start") is False and isinstance(j.get("items"), list), r)
        self.check("GET recommendations: default k is 10", len(j.get("items", [])) == 10, r)
        self.check("GET recommendations: X-Seqrec-Variant header = body variant",
                   r.header("x-seqrec-variant") == j.get("variant"), r.headers)
        r15 = A.recs(U, k=15)
        it, sc = items_of(r15), scores_of(r15)
        self.check("k=15: 15 items", len(it) == 15, r15)
        self.check("k=15: items distinct", len(set(it)) == len(it), it)
        self.check("k=15: scores non-increasing", all(a >= b for a, b in zip(sc, sc[1:])), sc)
        hist_items = {str(e["item"]) for e in A.history(U).json["events"]}
        self.check("k=15: none of the user's history items", not (set(it) & hist_items),
                   set(it) & hist_items)
        rall = A.recs(U, k=1000)
        ia = items_of(rall)
        self.check("k=1000: the whole catalogue but the user's items (%d - %d seen)"
                   % (self.n_items, len(seen)), len(ia) == self.n_items - len(seen)
                   and len(set(ia)) == len(ia) and not set(ia) & seen,
                   "%d items, %d seen among them" % (len(ia), len(set(ia) & seen)))
        rk = A.recs(U, k=1000, keep_seen="true")
        ik = items_of(rk)
        self.check("keep_seen=true, k=1000: every catalogue item, seen ones included",
                   len(ik) == self.n_items and len(set(ik)) == len(ik) and seen <= set(ik),
                   "%d items" % len(ik))
        cli = self.env.cli_json("recommend", self.env.sasrec, self.env.data, "--user", U,
                                "-k", 10, "--json")
        self.check("the same items and scores as `seqrec recommend` for a dataset user",
                   same_ranking(r.json["items"], cli["items"]),
                   "server %s\ncli %s" % (r.json["items"], cli["items"]))
        for k in ("0", "abc", "1001", "-3", "2.5"):
            self.expect_status("k=%r: 400" % k, A.get("/v1/users/%s/recommendations?k=%s"
                                                      % (q(U), k)), 400)
        r1 = A.recs(U, k=1)
        self.check("k=1: one item", r1.status == 200 and len(r1.json["items"]) == 1, r1)

    def t_scan(self, A):
        """The default scan (bf16 where the CPU has it, then the candidates in fp32) answers
        exactly as --score-scan fp32: the same items, order and scores."""
        env = self.env
        F = Server(env, [env.sasrec, env.data, "--store", env.path("f.db"), "--port", 0,
                         "--score-scan", "fp32"], "F").start()
        users = sorted(self.by_user, key=lambda u: (len(self.by_user[u]), u))[:30]
        diff = []
        for i, u in enumerate(users):
            k = (3, 10, 1000)[i % 3]
            ra, rf = A.recs(u, k=k), F.recs(u, k=k)
            if ra.status != 200 or rf.status != 200 or ra.json["items"] != rf.json["items"]:
                diff.append((u, k, ra, rf))
        self.check("the default scan answers as --score-scan fp32 (items, order, scores to the "
                   "bit) for 30 dataset users at k = 3, 10, 1000", not diff, diff[:2])
        re_a = A.metrics().find("rescored")
        re_f = F.metrics().find("rescored")
        self.check("--score-scan fp32 re-scores nothing (seqrec_score_rescored_items_total 0)",
                   re_f and all(v == 0 for v in re_f.values()), re_f)
        self.chk.note("candidates re-scored in fp32 by the default scan: %s"
                      % {fmt_key(k): v for k, v in re_a.items()})
        rc = F.stop()
        self.check("--score-scan fp32 server: SIGTERM exit 0", rc == 0 and not F.died_early,
                   "exit %s; %s" % (rc, F.stderr()))
        r = subprocess.run([env.bin, "serve", env.sasrec, env.data, "--score-scan", "fp16"],
                           env=env.environ, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=30)
        self.check("--score-scan fp16: exit 2 naming the option", r.returncode == 2
                   and b"--score-scan" in r.stderr, (r.returncode, r.stderr))

    def t_explain(self, A):
        U = self.U
        hist = {(str(e["item"]), e["behaviour"], e["ts"]) for e in A.history(U).json["events"]}
        plain = A.recs(U, k=5)
        r = A.recs(U, k=5, explain="true")
        self.check("explain=true: 200, the same items as without", r.status == 200
                   and items_of(r) == items_of(plain), r)
        probs = []
        for it in (r.json or {}).get("items", []):
            ex = it.get("explain")
            if not isinstance(ex, list) or not ex:
                probs.append("item %s: explain %r" % (it.get("item"), ex))
                continue
            for e in ex:
                if not all(k in e for k in ("item", "behaviour", "ts", "position",
                                            "contribution")):
                    probs.append("fields: %r" % e)
                elif (str(e["item"]), e["behaviour"], e["ts"]) not in hist:
                    probs.append("not in the history: %r" % e)
                elif not (isinstance(e["position"], int) and e["position"] >= 0
                          and isinstance(e["contribution"], (int, float))
                          and math.isfinite(e["contribution"])):
                    probs.append("position/contribution: %r" % e)
        self.check("explain=true: every item has a non-empty explain list of the user's history "
                   "events {item, behaviour, ts, position, contribution}", not probs, probs[:5])

    def t_concurrent(self, A):
        users = self.others[:16]
        base = {u: A.recs(u, k=10).json["items"] for u in users}
        results, errors = [], []

        def worker(us):
            for u in us:
                try:
                    results.append((u, A.recs(u, k=10)))
                except Exception as e:  # noqa: BLE001
                    errors.append(repr(e))
        work = users * 3
        random.Random(1).shuffle(work)
        ths = [threading.Thread(target=worker, args=(work[i::8],)) for i in range(8)]
        for t in ths:
            t.start()
        for t in ths:
            t.join()
        bad = [(u, r) for u, r in results if r.status != 200
               or not same_ranking(r.json["items"], base[u])]
        self.check("%d concurrent requests (8 threads, batched scoring): all 200 and the same "
                   "answers as one at a time" % len(work), not errors and not bad
                   and len(results) == len(work), errors[:3] or bad[:3])

    def t_ryw(self, A):
        U = self.U
        r0 = A.recs(U, k=10)
        X = items_of(r0)[0]
        t = time.time()
        p = self.post_ok("POST an event for the user's top item", A,
                         {"user": U, "item": X, "behaviour": "view"})
        r1 = A.recs(U, k=10)
        self.check("read-your-writes: the posted item is no longer recommended",
                   r1.status == 200 and X not in items_of(r1), r1)
        self.check("read-your-writes: the list changed", items_of(r1) != items_of(r0), r1)
        s0 = dict(zip(items_of(r0), scores_of(r0)))
        s1 = dict(zip(items_of(r1), scores_of(r1)))
        common = set(s0) & set(s1)
        self.check("read-your-writes: the scores changed (the event entered the model's input)",
                   common and any(not close(s0[i], s1[i], 1e-6) for i in common),
                   (s0, s1))
        h = A.history(U).json["events"]
        last = h[-1]
        self.check("history: the live event is last, source 'live', ts ≈ now",
                   str(last.get("item")) == X and last.get("behaviour") == "view"
                   and last.get("source") == "live" and isinstance(last.get("ts"), int)
                   and abs(last["ts"] - t) < 120, last)
        self.check("history: earlier events are the dataset's",
                   all(e.get("source") == "dataset" for e in h[:-1]), h[-3:])
        self.X, self.first_seq_x = X, (p.json or {}).get("first_seq")

    def t_ryw_concurrent(self, A):
        users = self.others[30:38]
        bad, errors = [], []
        lock = threading.Lock()

        def worker(u):
            try:
                for _ in range(5):
                    r0 = A.recs(u, k=10)
                    x = items_of(r0)[0]
                    p = A.events({"user": u, "item": x, "behaviour": "view"})
                    r1 = A.recs(u, k=10)
                    with lock:
                        if p.status == 200:
                            self.acked.append((u, x, "view", None))
                        if p.status != 200 or r1.status != 200 or x in items_of(r1):
                            bad.append((u, x, p, r1))
            except Exception as e:  # noqa: BLE001
                errors.append(repr(e))
        ths = [threading.Thread(target=worker, args=(u,)) for u in users]
        for t in ths:
            t.start()
        for t in ths:
            t.join()
        self.check("read-your-writes under concurrency: 8 users x 5 (post the top item, ask "
                   "again): the item is gone every time", not bad and not errors,
                   errors[:3] or bad[:3])

    def t_fields(self, A):
        # integer ids, every optional field
        U2 = self.U2
        item = self.catalogue[3]
        ts0 = 1712000000
        self.post_ok("POST an event with integer user/item ids, ts, scene, context, value", A,
                     {"user": int(U2), "item": int(item), "behaviour": self.behaviours[0],
                      "ts": ts0, "scene": "search", "context": {"device": "mobile"},
                      "value": 2.5})
        last = A.history(U2).json["events"][-1]
        self.check("history shows it: item, behaviour, ts, scene, value, source live",
                   str(last.get("item")) == item and last.get("behaviour") == self.behaviours[0]
                   and last.get("ts") == ts0 and last.get("scene") == "search"
                   and last.get("value") == 2.5 and last.get("source") == "live", last)
        # events outside the catalogue / vocabulary: stored and shown, no effect on the model
        U3 = self.U3
        r11 = A.recs(U3, k=11)
        z = items_of(r11)[10]
        before = A.recs(U3, k=10)
        self.post_ok("POST events on an item outside the catalogue and with a behaviour outside "
                     "the vocabulary", A,
                     [{"user": U3, "item": "zz-not-an-item", "behaviour": "view"},
                      {"user": U3, "item": z, "behaviour": "like"}])
        after = A.recs(U3, k=10)
        self.check("they do not change the recommendations (not in the model's input)",
                   after.status == 200 and same_ranking(after.json["items"],
                                                        before.json["items"], 1e-5),
                   "before %s\nafter %s" % (before, after))
        lv = self.live(A.history(U3))
        self.check("they are stored and shown in the history",
                   [(str(e["item"]), e["behaviour"]) for e in lv]
                   == [("zz-not-an-item", "view"), (z, "like")], lv)

    def t_negative(self, A):
        V = self.V
        r = A.recs(V, k=10, keep_seen="true")
        Y = items_of(r)[0]
        self.post_ok("POST a 'dislike' (--negative dislike) on the user's top item", A,
                     {"user": V, "item": Y, "behaviour": "dislike"})
        r1 = A.recs(V, k=1000, keep_seen="true")
        self.check("negative feedback: the item is gone even with keep_seen=true",
                   r1.status == 200 and Y not in items_of(r1) and len(items_of(r1)) > 10, r1)
        r2 = A.recs(V, k=1000)
        self.check("negative feedback: gone without keep_seen too",
                   r2.status == 200 and Y not in items_of(r2), r2)
        other = self.others[20]
        ro = A.recs(other, k=1000, keep_seen="true")
        self.check("negative feedback is per user: another user can still get the item",
                   Y in items_of(ro), ro)
        self.Y = Y

    def top_items(self, counter, n):
        return [i for i, _ in sorted(counter.items(), key=lambda x: (-x[1], x[0]))[:n]]

    def t_cold(self, A):
        cu = "cold-user-%d" % random.randrange(10**9)
        r = A.recs(cu, k=7)
        j = r.json or {}
        it = items_of(r) if r.status == 200 else []
        self.check("unknown user: 200, cold_start true, k=7 distinct items",
                   r.status == 200 and j.get("cold_start") is True and len(it) == 7
                   and len(set(it)) == 7 and str(j.get("user")) == cu, r)
        need = ("user", "variant", "model_version", "cold_start", "items")
        self.check("unknown user: the answer has every documented field (%s)" % ",".join(need),
                   r.status == 200 and all(f in j for f in need),
                   "missing %s: %r" % ([f for f in need if f not in j], r))
        rd = A.recs(cu)
        self.check("unknown user: default k 10", rd.status == 200 and len(items_of(rd)) == 10, rd)
        top = set(self.top_items(self.item_count, 20))
        self.check("unknown user: popular items (at least 5 of 10 among the log's 20 most "
                   "frequent)", len(set(items_of(rd)) & top) >= 5, (items_of(rd), sorted(top)))
        for scene in sorted(self.scene_count):
            rs = A.recs(cu, k=10, scene=scene)
            tops = set(self.top_items(self.scene_count[scene], 20))
            self.check("unknown user, scene=%s: cold_start true, 10 items, popular in that scene"
                       % scene, rs.status == 200 and rs.json.get("cold_start") is True
                       and len(items_of(rs)) == 10 and len(set(items_of(rs)) & tops) >= 5,
                       (rs, sorted(tops)))
        rn = A.recs(cu, k=10, scene="no-such-scene")
        self.check("unknown user, a scene without events: all scenes' popular items",
                   rn.status == 200 and rn.json.get("cold_start") is True
                   and items_of(rn) == items_of(rd), rn)
        h = A.history(cu)
        self.check("asking does not make a user known",
                   h.status == 404 or (h.status == 200 and h.json.get("known") is False), h)

    def t_batch(self, A):
        nu = "batch-user-%d" % random.randrange(10**9)
        its = self.catalogue[10:15]
        evs = [{"user": nu, "item": it, "behaviour": "view", "ts": 1712000100 + i}
               for i, it in enumerate(its)]
        r = self.post_ok("POST an array of 5 events: {accepted:5, first_seq}", A, evs)
        s = (r.json or {}).get("first_seq")
        rr = A.recs(nu, k=10)
        self.check("a new user with posted events: cold_start false, none of their items",
                   rr.status == 200 and rr.json.get("cold_start") is False
                   and not set(items_of(rr)) & set(its) and len(items_of(rr)) == 10, rr)
        h = A.history(nu)
        self.check("their history: known, the 5 live events in order",
                   h.status == 200 and h.json.get("known") is True
                   and [(str(e["item"]), e["ts"], e["source"]) for e in h.json["events"]]
                   == [(e["item"], e["ts"], "live") for e in evs], h)
        r2 = self.post_ok("POST one more event", A, {"user": nu, "item": its[0],
                                                     "behaviour": "view"})
        s2 = (r2.json or {}).get("first_seq")
        self.check("first_seq grows past the previous batch (%s + 5 <= %s)" % (s, s2),
                   isinstance(s, int) and isinstance(s2, int) and s2 >= s + 5, (s, s2))
        full = [{"user": "batch-max", "item": self.catalogue[i % len(self.catalogue)],
                 "behaviour": "view"} for i in range(20)]
        self.post_ok("POST exactly --max-batch (20) events: accepted", A, full)

    def t_similar(self, A):
        I = self.top_items(self.item_count, 1)[0]
        r = A.get("/v1/items/%s/similar?k=5" % q(I))
        j = r.json or {}
        it = items_of(r) if r.status == 200 else []
        sc = scores_of(r) if r.status == 200 else []
        self.check("GET similar: 200 {item, variant, items}", r.status == 200
                   and str(j.get("item")) == I and isinstance(j.get("variant"), str), r)
        self.check("GET similar k=5: 5 distinct items, not the item itself, scores "
                   "non-increasing", len(it) == 5 and len(set(it)) == 5 and I not in it
                   and all(a >= b for a, b in zip(sc, sc[1:])), r)
        cli = self.env.cli_json("similar", self.env.sasrec, self.env.data, "--item", I,
                                "-k", 5, "--json")
        self.check("GET similar: the same as `seqrec similar`",
                   r.status == 200 and same_ranking(j["items"], cli["items"]),
                   "server %s\ncli %s" % (j.get("items"), cli["items"]))
        rd = A.get("/v1/items/%s/similar" % q(I))
        self.check("GET similar: default k 10", rd.status == 200 and len(items_of(rd)) == 10, rd)
        self.expect_status("GET similar of an unknown item: 404",
                           A.get("/v1/items/no-such-item-77/similar"), 404)
        self.expect_status("GET similar k=0: 400",
                           A.get("/v1/items/%s/similar?k=0" % q(I)), 400)

    def t_delete(self, A):
        W = self.W
        self.post_ok("POST 2 events for a dataset user", A,
                     [{"user": W, "item": self.catalogue[1], "behaviour": "view"},
                      {"user": W, "item": self.catalogue[2], "behaviour": "view"}])
        r = A.delete("/v1/users/%s" % q(W))
        self.check("DELETE user: 200 {user, deleted:2}", r.status == 200 and r.json
                   and str(r.json.get("user")) == W and r.json.get("deleted") == 2, r)
        h = A.history(W)
        # docs/serve.md: a deleted dataset user is forgotten, their dataset history unused
        self.check("after DELETE: no events at all in the history, known false",
                   h.status == 200 and h.json.get("events") == [] and h.json.get("known") is False,
                   h)
        self.check("after DELETE: a deleted dataset user gets cold start",
                   A.recs(W).json.get("cold_start") is True)
        self.forgotten_dataset_user = W
        con = sqlite3.connect(self.store_a, timeout=30)  # WAL: a reader beside the server
        try:
            n = con.execute("SELECT count(*) FROM events WHERE user = ?", (W,)).fetchone()[0]
        finally:
            con.close()
        self.check("after DELETE: the store has no events of the user (sqlite3, server running)",
                   n == 0, "%d rows" % n)
        nu = "delete-me-%d" % random.randrange(10**9)
        self.post_ok("POST 3 events for a new user", A,
                     [{"user": nu, "item": self.catalogue[i], "behaviour": "view"}
                      for i in range(3)])
        self.check("the new user is known (cold_start false)",
                   A.recs(nu).json.get("cold_start") is False)
        r = A.delete("/v1/users/%s" % q(nu))
        self.check("DELETE new user: deleted 3", r.status == 200 and r.json.get("deleted") == 3, r)
        h = A.history(nu)
        self.check("after DELETE: the new user is unknown again (history)",
                   h.status == 404 or (h.status == 200 and h.json.get("known") is False
                                       and h.json.get("events") == []), h)
        rr = A.recs(nu)
        self.check("after DELETE: the new user gets cold start (cache dropped)",
                   rr.status == 200 and rr.json.get("cold_start") is True, rr)
        self.deleted |= {W, nu}

    def t_put_item(self, A):
        I = self.catalogue[5]
        r = A.put("/v1/items/%s" % q(I), {"tags": ["red", "sale"], "text": "a red thing"})
        self.check("PUT item (known): 200 {item, known:true}", r.status == 200 and r.json
                   and str(r.json.get("item")) == I and r.json.get("known") is True, r)
        r = A.put("/v1/items/new-item-zz", {"tags": ["blue"], "text": "brand new"})
        self.check("PUT item (new): 200 {item, known:false}", r.status == 200 and r.json
                   and r.json.get("item") == "new-item-zz" and r.json.get("known") is False, r)
        for what, body in [("invalid JSON", '{"tags": ['), ("tags not an array", {"tags": "red"}),
                           ("text not a string", {"text": 5}), ("an array body", [1, 2])]:
            self.expect_status("PUT item, %s: 400" % what, A.put("/v1/items/%s" % q(I), body),
                               400)

    def t_bad_input(self, A):
        E = "/v1/events"
        good = {"user": "bad-input-user", "item": self.catalogue[0], "behaviour": "view"}
        self.never.add("bad-input-user")
        self.expect_status("invalid JSON: 400", A.post(E, '{"user": "a", "item":'), 400)
        self.expect_status("not an object: 400", A.post(E, "42"), 400)
        for f in ("user", "item", "behaviour"):
            b = dict(good)
            del b[f]
            self.expect_status("missing %s: 400 naming it" % f, A.post(E, b), 400, [f])
        bad_batch = [dict(good), dict(good), {"user": "bad-input-user", "behaviour": "view"},
                     dict(good)]
        r = A.post(E, bad_batch)
        self.expect_status("a batch whose 3rd event lacks item: 400 naming events[…] and item", r,
                           400, ["events[", "item"])
        for what, patch in [("user an array", {"user": [1]}), ("user an object", {"user": {}}),
                            ("ts a string", {"ts": "yesterday"}), ("value a string",
                                                                   {"value": "x"}),
                            ("context not an object", {"context": "ctx"}),
                            ("scene a number", {"scene": 3}),
                            ("user id over 256 bytes", {"user": "u" * 300}),
                            ("item id over 256 bytes", {"item": "i" * 300})]:
            b = dict(good)
            b.update(patch)
            self.expect_status("%s: 400" % what, A.post(E, b), 400)
        self.expect_status("GET recommendations for an id over 256 bytes: 400",
                           A.recs("u" * 300), 400)
        h = A.history("bad-input-user")
        self.check("nothing of a refused body is stored",
                   h.status == 404 or (h.status == 200 and not h.json.get("events")), h)
        self.check("the server is alive after bad input", A.get("/healthz").status == 200)

    def t_limits(self, A):
        E = "/v1/events"
        host = "Host: %s:%d\r\n" % (A.host, A.port)
        body = json.dumps([{"user": "big-body", "item": "1", "behaviour": "view",
                            "pad": "x" * 7000}]).encode()
        st, raw = A.raw(("POST /v1/events HTTP/1.1\r\n" + host + "Content-Type: application/json"
                         "\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % len(body))
                        .encode(), [body])
        self.check("body over --max-body (4096) with Content-Length: 413", st == 413, raw[:300])
        chunks = []
        for _ in range(100):
            c = b"[" + b" " * 998 + b"]"
            chunks.append(b"%x\r\n%s\r\n" % (len(c), c))
        st, raw = A.raw(("POST /v1/events HTTP/1.1\r\n" + host + "Content-Type: application/json"
                         "\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n").encode(),
                        chunks + [b"0\r\n\r\n"])
        self.check("chunked body over --max-body: 413", st == 413, raw[:300])
        over = [{"user": "batch-over", "item": "1", "behaviour": "view"} for _ in range(21)]
        self.never.add("batch-over")
        self.expect_status("batch of 21 events over --max-batch 20: 413", A.post(E, over), 413)

        def nested(n):
            c = {"a": 1}
            for _ in range(n):
                c = {"a": c}
            return c
        shallow = {"user": "depth-ok", "item": self.catalogue[0], "behaviour": "view",
                   "context": {"device": "mobile", "geo": {"city": "x"}}}
        self.post_ok("JSON nested 3 deep (under --max-depth 8): accepted", A, shallow)
        deep = {"user": "depth-user", "item": "1", "behaviour": "view", "context": nested(12)}
        self.never.add("depth-user")
        self.expect_status("JSON nested 14 deep (over --max-depth 8): 400", A.post(E, deep), 400)
        self.expect_status("2000 nested arrays: 400", A.post(E, "[" * 2000 + "]" * 2000), 400)
        self.check("the server is alive after the limits", A.get("/healthz").status == 200)

    def t_routes(self, A):
        for path in ("/v1/nope", "/nothing", "/v1/users", "/v1/items/1/nope", "/v2/events"):
            self.expect_status("GET %s: 404" % path, A.get(path), 404)
        for method, path in [("GET", "/v1/events"), ("DELETE", "/v1/events"),
                             ("POST", "/healthz"), ("PUT", "/v1/users/%s/recommendations"
                                                    % q(self.U)),
                             ("GET", "/v1/admin/reload"), ("POST", "/metrics"),
                             ("POST", "/v1/items/1/similar"), ("GET", "/v1/users/%s" % q(self.U)),
                             ("PATCH", "/v1/items/1")]:
            r = A.request(method, path)
            self.check("%s %s: 405 or 404" % (method, path), r.status in (404, 405), r)

    def t_access_requests(self, A):
        S = SECRET_USER
        self.post_ok("POST an event for the access-log user", A,
                     {"user": S, "item": self.catalogue[0], "behaviour": "view"})
        self.check("recommendations for the access-log user", A.recs(S).status == 200)
        self.check("history of the access-log user", A.history(S).status == 200)
        self.check("a 400 for the access-log user", A.recs(S, k=0).status == 400)

    def t_port_taken(self, A):
        p = subprocess.Popen([self.env.bin, "serve", self.env.sasrec, self.env.data, "--store",
                              self.env.path("port.db"), "--port", str(A.port)],
                             env=self.env.environ, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
        try:
            out, err = p.communicate(timeout=30)
            self.check("a second server on a taken port exits non-zero with a message",
                       p.returncode != 0 and err.strip() and b"listening on" not in out,
                       (p.returncode, out, err))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
            self.chk.fail("a second server on a taken port exits non-zero", "it kept running")

    def t_sigterm(self, A):
        h = A.get("/healthz").json
        self.events_before_stop = h.get("events")
        rc = A.stop()
        self.check("SIGTERM: exit code 0", rc == 0 and not A.died_early,
                   "exit %s; stderr: %s" % (rc, A.stderr()))
        self.check_store(self.store_a, "after SIGTERM")

    def check_store(self, path, when):
        self.check("%s: the store file exists" % when, os.path.exists(path), path)
        con = sqlite3.connect(path, timeout=30)
        try:
            ic = con.execute("PRAGMA integrity_check").fetchall()
            self.check("%s: PRAGMA integrity_check = ok" % when, ic == [("ok",)], ic)
            cols = [r[1] for r in con.execute("PRAGMA table_info(events)")]
            want = ["seq", "user", "item", "behaviour", "ts", "scene", "context", "value"]
            self.check("%s: table events has columns %s" % (when, ",".join(want)),
                       all(c in cols for c in want), cols)
            rows = con.execute("SELECT user, item, behaviour, ts FROM events").fetchall()
        finally:
            con.close()
        have = collections.Counter((str(u), str(i), b) for u, i, b, _ in rows)
        have_ts = collections.Counter((str(u), str(i), b, t) for u, i, b, t in rows)
        want = collections.Counter((u, i, b) for u, i, b, _ in self.acked if u not in self.deleted)
        want_ts = collections.Counter((u, i, b, t) for u, i, b, t in self.acked
                                      if u not in self.deleted and t is not None)
        missing = (want - have) + (want_ts - have_ts)
        self.check("%s: every acknowledged event is a row (%d)" % (when, sum(want.values())),
                   not missing, list(missing.items())[:5])
        bad = [r for r in rows if str(r[0]) in self.deleted | self.never]
        self.check("%s: no rows of deleted users or refused bodies" % when, not bad, bad[:5])
        self.check("%s: as many rows as acknowledged events not deleted" % when,
                   len(rows) == sum(want.values()), (len(rows), sum(want.values())))
        self.check("%s: /healthz events before the stop = rows in the store" % when,
                   self.events_before_stop == len(rows), (self.events_before_stop, len(rows)))

    def t_restart(self):
        A = Server(self.env, self.args_a, "A2").start()
        h = A.history(self.U).json["events"]
        self.check("restart: the live event is still last in the history",
                   str(h[-1].get("item")) == self.X and h[-1].get("source") == "live", h[-2:])
        r = A.recs(self.U, k=1000)
        self.check("restart: the posted item is still excluded", r.status == 200
                   and self.X not in items_of(r), r)
        r = A.recs(self.V, k=1000, keep_seen="true")
        self.check("restart: the disliked item is still excluded (keep_seen=true)",
                   r.status == 200 and self.Y not in items_of(r), r)
        fu = getattr(self, "forgotten_dataset_user", None)
        if fu is not None:
            h = A.history(fu)
            self.check("restart: a deleted dataset user stays forgotten (store's forgotten table)",
                       h.status == 200 and h.json.get("events") == []
                       and h.json.get("known") is False, h)
        hz = A.get("/healthz").json
        self.check("restart: /healthz events = the store's (%s)" % self.events_before_stop,
                   hz.get("events") == self.events_before_stop, hz)
        rc = A.stop()
        self.check("restart: SIGTERM exit code 0", rc == 0 and not A.died_early,
                   "exit %s; %s" % (rc, A.stderr()))

    def t_access_log(self):
        ok = os.path.exists(self.alog)
        self.check("--access-log: the file exists", ok, self.alog)
        if not ok:
            return
        text = open(self.alog, "rb").read().decode(errors="replace")
        lines = text.splitlines()
        self.check("--access-log: one line per request (>= 100 lines)", len(lines) >= 100,
                   len(lines))
        self.check("--access-log: never holds the raw id of a user it logged",
                   SECRET_USER not in text and SECRET_USER.lower() not in text.lower(),
                   [l for l in lines if SECRET_USER in l][:3])
        paths = ["/v1/users/%s/" % u for u in (self.U, self.V, self.W, self.U2, self.U3)]
        self.check("--access-log: no request path with a user id",
                   not any(p in text for p in paths), [l for l in lines
                                                       if any(p in l for p in paths)][:3])

    # ------------------------------------------------------------------ server B: keys, reload
    def auth_server(self):
        env = self.env
        keys = env.path("keys.txt")
        with open(keys, "w") as f:
            f.write("# keys for serve_api.py\n\n%s\n%s admin\n" % (WRITE_KEY, ADMIN_KEY))
        os.chmod(keys, 0o600)
        static = env.path("static")
        os.makedirs(static, exist_ok=True)
        with open(os.path.join(static, "index.html"), "w") as f:
            f.write("<html>seqrec dashboard test</html>\n")
        with open(env.path("secret.txt"), "w") as f:
            f.write("TOP-SECRET-CONTENT\n")
        self.model_copy = env.path("sasrec-copy.sqm")
        shutil.copy(env.sasrec, self.model_copy)
        B = Server(env, [env.sasrec, env.data, "--store", env.path("b.db"), "--port", 0,
                         "--api-key-file", keys, "--static", static], "B").start()
        self.chk.run("API keys (exception)", self.t_auth, B)
        self.chk.run("reload (exception)", self.t_reload, B)
        self.chk.run("static files (exception)", self.t_static, B)
        rc = B.stop()
        self.check("server with keys: SIGTERM exit 0", rc == 0 and not B.died_early,
                   "exit %s; %s" % (rc, B.stderr()))

    def t_auth(self, B):
        ev = {"user": self.U, "item": self.catalogue[0], "behaviour": "view"}
        self.expect_status("keys: POST events without Authorization: 401", B.events(ev), 401)
        self.expect_status("keys: POST events with a wrong key: 401", B.events(ev, "nope"), 401)
        self.expect_status("keys: POST events with a comment line as key: 401",
                           B.events(ev, "#"), 401)
        self.expect_status("keys: POST events with the key as Basic auth: 401",
                           B.post("/v1/events", ev, {"Authorization": "Basic " + WRITE_KEY}), 401)
        self.expect_status("keys: POST events with a key prefix: 401",
                           B.events(ev, WRITE_KEY[:-1]), 401)
        self.expect_status("keys: POST events with the write key: 200", B.events(ev, WRITE_KEY),
                           200)
        self.expect_status("keys: POST events with the admin key: 200", B.events(ev, ADMIN_KEY),
                           200)
        body = {"tags": ["x"], "text": "t"}
        self.expect_status("keys: PUT item without a key: 401",
                           B.put("/v1/items/%s" % q(self.catalogue[0]), body), 401)
        self.expect_status("keys: PUT item with the write key: 200",
                           B.put("/v1/items/%s" % q(self.catalogue[0]), body, auth(WRITE_KEY)),
                           200)
        self.expect_status("keys: DELETE user without a key: 401",
                           B.delete("/v1/users/%s" % q(self.U)), 401)
        h = B.history(self.U)
        self.check("keys: the refused DELETE deleted nothing", h.status == 200
                   and len(self.live(h)) == 2, h)
        self.expect_status("keys: DELETE user with the write key: 200",
                           B.delete("/v1/users/%s" % q(self.U), auth(WRITE_KEY)), 200)
        for path in ("/healthz", "/metrics", "/v1/info", "/v1/users/%s/recommendations" % q(self.U),
                     "/v1/users/%s/history" % q(self.U), "/v1/items/%s/similar"
                     % q(self.catalogue[0])):
            r = B.get(path)
            self.check("keys: GET %s needs no key (200)" % path, r.status == 200, r)

    def t_reload(self, B):
        v0 = B.get("/healthz").json["model_version"]
        R = "/v1/admin/reload"
        self.expect_status("reload without a key: 401", B.post(R), 401)
        r = B.post(R, headers=auth(WRITE_KEY))
        self.check("reload with the write key: 401 or 403", r.status in (401, 403)
                   and r.error_msg(), r)
        self.check("refused reloads left the version alone",
                   B.get("/healthz").json["model_version"] == v0)
        r = B.post(R, headers=auth(ADMIN_KEY))
        v1 = (r.json or {}).get("model_version")
        self.check("reload with the admin key: 200 {variant:main, model_version > %s}" % v0,
                   r.status == 200 and r.json.get("variant") == "main" and isinstance(v1, int)
                   and v1 > v0, r)
        self.check("after reload: /healthz model_version = %s" % v1,
                   B.get("/healthz").json.get("model_version") == v1)
        rr = B.recs(self.V)
        self.check("after reload: recommendations carry model_version %s" % v1,
                   rr.status == 200 and rr.json.get("model_version") == v1, rr)
        mv = B.metrics().find("(?i)version")
        self.check("after reload: a /metrics version series = %s" % v1,
                   any(v == v1 for v in mv.values()), {fmt_key(k): v for k, v in mv.items()})
        # reload under load: no request dropped
        stop = threading.Event()
        results = []

        def load():
            while not stop.is_set():
                try:
                    results.append(B.recs(self.others[len(results) % 10], k=10).status)
                except Exception as e:  # noqa: BLE001
                    results.append(repr(e))
        ths = [threading.Thread(target=load) for _ in range(4)]
        for t in ths:
            t.start()
        vs = []
        try:
            for _ in range(3):
                time.sleep(0.15)
                vs.append(B.post(R, {"variant": "main", "model": self.model_copy},
                                 auth(ADMIN_KEY)))
            time.sleep(0.15)
        finally:
            stop.set()
            for t in ths:
                t.join()
        self.check("reload with {variant, model}: 200 and the version grows each time",
                   all(x.status == 200 for x in vs)
                   and [x.json["model_version"] for x in vs] == [v1 + 1, v1 + 2, v1 + 3], vs)
        bad = [x for x in results if x != 200]
        self.check("no request dropped during 3 reloads (%d requests)" % len(results),
                   results and not bad, bad[:5])
        v4 = B.get("/healthz").json["model_version"]
        r = B.post(R, {"variant": "main", "model": self.env.path("no-such-model.sqm")},
                   auth(ADMIN_KEY))
        self.check("reload of a missing file: an error, the version unchanged, still serving",
                   r.status >= 400 and r.error_msg()
                   and B.get("/healthz").json["model_version"] == v4
                   and B.recs(self.V).status == 200, r)
        r = B.post(R, {"variant": "no-such-variant"}, auth(ADMIN_KEY))
        self.check("reload of an unknown variant: 4xx", 400 <= r.status < 500 and r.error_msg(), r)

    def t_static(self, B):
        r = B.get("/index.html")
        self.check("--static: GET /index.html serves the file", r.status == 200
                   and "seqrec dashboard test" in r.text, r)
        for path in ("/../secret.txt", "/%2e%2e/secret.txt", "/..%2fsecret.txt",
                     "/%2e%2e%2fsecret.txt", "//../secret.txt"):
            try:
                r = B.get(path)
                ok = "TOP-SECRET" not in r.text
            except Exception as e:  # noqa: BLE001
                ok, r = True, e
            self.check("--static: GET %s does not escape the directory" % path, ok, r)

    # ------------------------------------------------------------------ server C: rate limit
    def rate_server(self):
        C = Server(self.env, [self.env.sasrec, self.env.data, "--store", self.env.path("c.db"),
                              "--port", 0, "--rate-limit", 5], "C").start()
        try:
            st = []
            t0 = time.time()
            for i in range(50):
                st.append(C.recs(self.U, k=5))
            took = time.time() - t0
            codes = [r.status for r in st]
            n429 = codes.count(429)
            n200 = codes.count(200)
            self.check("--rate-limit 5: a burst of 50 requests gets 429s (%d of 50, %.2f s)"
                       % (n429, took), n429 > 0 and n200 + n429 == 50, codes)
            self.check("--rate-limit 5: the first 5 requests pass", codes[:5] == [200] * 5, codes)
            self.check("--rate-limit 5: at most a burst of 2N plus the refill pass (%d)" % n200,
                       n200 <= 10 + 5 * took + 1, codes)
            e = [r for r in st if r.status == 429][:1]
            self.check("429 answers are {\"error\": …}", e and e[0].error_msg(), e)
            time.sleep(1.5)
            r = C.recs(self.U, k=5)
            self.check("--rate-limit 5: requests pass again after 1.5 s", r.status == 200, r)
        finally:
            rc = C.stop()
            self.check("rate-limited server: SIGTERM exit 0", rc == 0 and not C.died_early,
                       "exit %s" % rc)

    # ------------------------------------------------------------------ server D: A/B
    def ab_server(self):
        env = self.env
        D = Server(env, [env.sasrec, env.data, "--store", env.path("d.db"), "--port", 0,
                         "--variant", "b=%s:1" % env.knn], "D").start()
        try:
            self.chk.run("A/B (exception)", self.t_ab, D)
        finally:
            rc = D.stop()
            self.check("A/B server: SIGTERM exit 0", rc == 0 and not D.died_early,
                       "exit %s; %s" % (rc, D.stderr()))

    def t_ab(self, D):
        users = sorted(self.by_user, key=int)[:60]
        variant = {}
        bad_header, unstable, bad = [], [], []
        count = collections.Counter()
        first = {}
        for rnd in range(3):
            for u in users:
                r = D.recs(u, k=10)
                if r.status != 200 or r.json.get("variant") not in ("main", "b"):
                    bad.append(r)
                    continue
                v = r.json["variant"]
                count[v] += 1
                if r.header("x-seqrec-variant") != v:
                    bad_header.append((u, v, r.header("x-seqrec-variant")))
                if variant.setdefault(u, v) != v:
                    unstable.append(u)
                first.setdefault(u, r)
        self.check("A/B: every answer 200 with variant main or b", not bad, bad[:3])
        n_main = sum(1 for v in variant.values() if v == "main")
        n_b = sum(1 for v in variant.values() if v == "b")
        self.check("A/B 1:1: several users in each variant (main %d, b %d of 60)" % (n_main, n_b),
                   n_main >= 10 and n_b >= 10, (n_main, n_b))
        self.check("A/B: a user's variant is stable over 3 requests", not unstable, unstable[:5])
        self.check("A/B: X-Seqrec-Variant header = body variant", not bad_header, bad_header[:5])
        ub = next((u for u in users if variant.get(u) == "b"), None)
        um = next((u for u in users if variant.get(u) == "main"), None)
        if ub:
            cli = self.env.cli_json("recommend", self.env.knn, self.env.data, "--user", ub,
                                    "-k", 10, "--json")
            self.check("A/B: variant b answers with the item-kNN model (= `seqrec recommend "
                       "knn.sqm`)", same_ranking(first[ub].json["items"], cli["items"]),
                       (first[ub].json["items"], cli["items"]))
        if um:
            cli = self.env.cli_json("recommend", self.env.sasrec, self.env.data, "--user", um,
                                    "-k", 10, "--json")
            self.check("A/B: variant main answers with the SASRec model",
                       same_ranking(first[um].json["items"], cli["items"]),
                       (first[um].json["items"], cli["items"]))
        m = D.metrics()
        for v in ("main", "b"):
            s = {k: x for k, x in m.find("(?i)request", variant="^%s$" % v).items()
                 if not is_histogram_part(k[0])}
            self.check("A/B /metrics: a per-variant request counter for %s = %d"
                       % (v, count[v]), any(x == count[v] for x in s.values()),
                       {fmt_key(k): x for k, x in s.items()} or "no *request* series with "
                       "variant=\"%s\"" % v)
            hb = m.find("_bucket$", variant="^%s$" % v)
            self.check("A/B /metrics: a latency histogram for variant %s" % v, hb,
                       "no _bucket series with variant=\"%s\"" % v)
        for v, u in (("b", ub), ("main", um)):
            if not u:
                continue
            m0 = D.metrics()
            r = D.recs(u, k=10)
            it = items_of(r)[0]
            self.post_ok("A/B: POST an event on the item just recommended (variant %s)" % v, D,
                         {"user": u, "item": it, "behaviour": "view"})
            m1 = D.metrics()
            d = {k: x for k, x in deltas(m0, m1, "(?i)hit", variant="^%s$" % v).items()
                 if not is_histogram_part(k[0])}
            self.check("A/B /metrics: variant %s's hit counter rose" % v,
                       any(x >= 1 for x in d.values()), {fmt_key(k): x for k, x in d.items()}
                       or "no *hit* series with variant=\"%s\"" % v)
            recommended = set(items_of(D.recs(u, k=10)))
            m2 = D.metrics()
            self.post_ok("A/B: POST an event on an item never recommended", D,
                         {"user": u, "item": "zz-never-recommended", "behaviour": "view"})
            m3 = D.metrics()
            d = {k: x for k, x in deltas(m2, m3, "(?i)hit", variant="^%s$" % v).items()
                 if not is_histogram_part(k[0])}
            self.check("A/B /metrics: no hit for an item not recommended (variant %s)" % v,
                       d and all(x == 0 for x in d.values()) and
                       "zz-never-recommended" not in recommended,
                       {fmt_key(k): x for k, x in d.items()})
        r = D.get("/v1/items/%s/similar?k=3" % q(self.catalogue[0]))
        self.check("A/B: similar names a variant", r.status == 200
                   and r.json.get("variant") in ("main", "b"), r)
        r = D.get("/v1/info")
        self.check("A/B: /v1/info names both variants", r.status == 200
                   and {"main", "b"} <= set(json_strings(r.json)), r)

    # ------------------------------------------------------------------ bad start-ups
    def startup_failures(self):
        env = self.env
        other_log, other_sqd, other_m = (env.path("o.csv"), env.path("o.sqd"), env.path("o.sqm"))
        env.cli("generate", "-q", "--users", 100, "--items", 50, "--events", 2000, "--seed", 9,
                "-o", other_log)
        env.cli("ingest", "-q", other_log, "-o", other_sqd)
        env.cli("train", "-q", other_sqd, "--model", "pop", "-o", other_m)
        cases = [("a missing model file", [env.path("missing.sqm"), env.data]),
                 ("a model of another dataset", [other_m, env.data]),
                 ("a bad --rate-limit", [env.sasrec, env.data, "--rate-limit", "abc"]),
                 ("a missing --api-key-file", [env.sasrec, env.data, "--api-key-file",
                                               env.path("no-keys.txt")]),
                 ("a --variant without a path", [env.sasrec, env.data, "--variant", "b"])]
        for what, args in cases:
            p = subprocess.Popen([env.bin, "serve"] + [str(a) for a in args] +
                                 ["--port", "0", "--store", env.path("fail.db")],
                                 env=env.environ, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            try:
                out, err = p.communicate(timeout=30)
                self.check("serve with %s: exits non-zero with a message" % what,
                           p.returncode != 0 and err.strip() and b"listening on" not in out,
                           (p.returncode, out[-300:], err[-300:]))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
                self.chk.fail("serve with %s: exits non-zero" % what, "it kept running")

    # ------------------------------------------------------------------
    def main(self):
        if not self.chk.run("setup: generate, ingest, train (exception)", self.setup):
            return self.chk.finish()
        self.chk.run("server A (exception)", self.main_server)
        self.chk.run("server B (exception)", self.auth_server)
        self.chk.run("server C (exception)", self.rate_server)
        self.chk.run("server D (exception)", self.ab_server)
        self.chk.run("start-up failures (exception)", self.startup_failures)
        return self.chk.finish()


if __name__ == "__main__":
    watchdog(420, "serve_api")
    sys.exit(ApiTest().main())
