#!/usr/bin/env python3
"""serve_online.py — online learning in `seqrec serve` (docs/serve.md, "Online learning").

A small SASRec; a probe user whose only event is item A; item B sits far down their list.
80 new users then post the pattern A → B four times each. After POST /v1/admin/learn the
model version grows and B must have climbed into the probe's top 10 (the model learnt the new
transition); a second learn with nothing new changes nothing; an item-kNN variant (not trained
batch by batch) is refused with 409; the background thread (--online-learning 1) updates the
model by itself once events arrive."""

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from servelib import Checker, Env, Server, watchdog  # noqa: E402


def items_of(r):
    return [str(x["item"]) for x in r.json["items"]]


def teach(srv, a, b, users=80, prefix="teach"):
    evs = []
    for u in range(users):
        for _ in range(4):
            evs += [{"user": "%s%d" % (prefix, u), "item": a, "behaviour": "view"},
                    {"user": "%s%d" % (prefix, u), "item": b, "behaviour": "view"}]
    for i in range(0, len(evs), 500):
        r = srv.post("/v1/events", evs[i:i + 500])
        if r.status != 200:
            raise RuntimeError("POST /v1/events: %s" % r)


def rank(srv, user, item):
    r = srv.recs(user, k=1000, keep_seen="true")
    lst = items_of(r)
    return lst.index(item) if item in lst else len(lst)


def main():
    chk = Checker("serve_online")
    watchdog(400, "serve_online")
    env = Env()
    chk.run("setup: generate, ingest, train", env.make_data)
    behaviour = "view"
    # manual rounds
    srv = Server(env, [env.sasrec, env.data, "--port", 0, "--store", env.path("online.db"),
                       "--variant", "knn=%s:0.000001" % env.knn, "--online-lr", 1]).start()
    a = str(env.cli_json("recommend", env.sasrec, env.data, "--user", "0", "-k", "1",
                         "--json")["items"][0]["item"])
    srv.post("/v1/events", {"user": "probe", "item": a, "behaviour": behaviour})
    lst = items_of(srv.recs("probe", k=1000, keep_seen="true"))
    b = lst[min(150, len(lst) - 1)]
    before = rank(srv, "probe", b)
    chk.note("A=%s B=%s: rank of B for a user whose last event is A: %d" % (a, b, before))
    v0 = srv.get("/healthz").json["model_version"]
    teach(srv, a, b)
    r = srv.post("/v1/admin/learn", {"variant": "main"})
    j = r.json or {}
    v = (j.get("variants") or [{}])[0]
    chk.check("learn: 200, updated, 80+ sequences, ≥ 50 steps, a finite loss",
              r.status == 200 and v.get("updated") is True and v.get("sequences", 0) >= 80
              and v.get("steps", 0) >= 50 and 0 < v.get("loss", -1) < 100, r)
    chk.check("learn: the model version grew by one",
              srv.get("/healthz").json["model_version"] == v0 + 1)
    after = rank(srv, "probe", b)
    chk.check("the new transition A → B was learnt: B from rank %d into the top 10 (%d)"
              % (before, after), before >= 100 and after < 10, (before, after))
    r = srv.post("/v1/admin/learn", {"variant": "main"})
    v = ((r.json or {}).get("variants") or [{}])[0]
    chk.check("a second learn with no new events: nothing updated, same version",
              r.status == 200 and v.get("updated") is False
              and srv.get("/healthz").json["model_version"] == v0 + 1, r)
    r = srv.post("/v1/admin/learn", {"variant": "knn"})
    chk.check("learn on an item-kNN variant: 409 with a reason", r.status == 409
              and "cannot learn online" in (r.json or {}).get("error", ""), r)
    chk.check("learn on an unknown variant: 404", srv.post("/v1/admin/learn",
                                                          {"variant": "nope"}).status == 404)
    chk.check("SIGTERM: exit 0", srv.stop() == 0)
    chk.check("the fine-tuned model was saved beside the store",
              os.path.isfile(env.path("online.db.online-main.sqm")))
    # the background thread
    srv = Server(env, [env.sasrec, env.data, "--port", 0, "--store", env.path("bg.db"),
                       "--online-learning", 1]).start()
    v0 = srv.get("/healthz").json["model_version"]
    teach(srv, a, b, users=20, prefix="bg")
    deadline = time.time() + 60
    while time.time() < deadline and srv.get("/healthz").json["model_version"] == v0:
        time.sleep(0.2)
    chk.check("--online-learning 1: the model updated by itself after events arrived",
              srv.get("/healthz").json["model_version"] > v0)
    chk.check("background server: SIGTERM exit 0", srv.stop() == 0)
    return chk.finish()


if __name__ == "__main__":
    sys.exit(main())
