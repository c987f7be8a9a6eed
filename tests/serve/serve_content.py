#!/usr/bin/env python3
"""serve_content.py — new items put with PUT /v1/items/{id} become recommendable through their
tags (docs/serve.md, "New items").

A generated log in RecBole format, whose .item side file gives every item a cluster tag. A
new item put with the tag of some cluster must: answer recommendable:true; appear in a
user's full list marked content:true; score exactly the mean of the scores of the catalogue
items with that tag (its content neighbours, equal weights: one shared tag each); stay after a
restart (the store keeps put items). An item whose tags the catalogue lacks is stored but not
recommendable and never listed. A server scoring with --score-threads 2 (the catalogue split
between threads, their top-k lists merged) gives the same full list as one thread."""

import csv
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from servelib import Checker, Env, Server, watchdog  # noqa: E402


def full(srv, user):
    r = srv.recs(user, k=1000, keep_seen="true")
    return {str(i["item"]): i for i in r.json["items"]}


def main():
    chk = Checker("serve_content")
    watchdog(300, "serve_content")
    env = Env()
    log, data, model = env.path("log.inter"), env.path("data.sqd"), env.path("s.sqm")
    env.cli("generate", "-q", "--users", 300, "--items", 200, "--events", 8000, "--seed", 3,
            "-o", log)
    env.cli("ingest", "-q", log, "-o", data)
    env.cli("train", "-q", data, "--model", "sasrec", "--set", "epochs=2", "--set", "hidden=16",
            "--set", "maxlen=20", "-o", model)
    tags = {}
    with open(env.path("log.item")) as f:
        for row in csv.reader(f, delimiter="\t"):
            if row and row[0] != "item_id:token":
                tags[row[0]] = row[2].split()
    tag = tags["0"][0]
    mates = [i for i, t in tags.items() if tag in t]
    store = env.path("content.db")
    srv = Server(env, [model, data, "--port", 0, "--store", store]).start()
    r = srv.put("/v1/items/brand-new", {"tags": [tag], "text": "a new thing"})
    chk.check("PUT a new item with a catalogue tag: known false, recommendable true",
              r.status == 200 and r.json.get("known") is False
              and r.json.get("recommendable") is True, r)
    r = srv.put("/v1/items/orphan", {"tags": ["no-such-tag"]})
    chk.check("PUT a new item whose tags the catalogue lacks: recommendable false",
              r.status == 200 and r.json.get("recommendable") is False, r)
    r = srv.put("/v1/items/0", {"tags": ["whatever"]})
    chk.check("PUT a catalogue item: known true", r.status == 200 and r.json.get("known") is True,
              r)
    lst = full(srv, "0")
    new = lst.get("brand-new")
    chk.check("the new item is in the user's full list, marked content", new is not None
              and new.get("content") is True, sorted(lst)[:5])
    chk.check("the orphan item is never listed", "orphan" not in lst)
    if new is not None:
        mean = sum(lst[m]["score"] for m in mates) / len(mates)
        chk.check("its score = the mean score of the %d items tagged %s (%.5f vs %.5f)"
                  % (len(mates), tag, new["score"], mean), abs(new["score"] - mean) < 1e-4)
    r = srv.recs("0", k=1000, keep_seen="true", explain="true")
    ex = [i for i in r.json["items"] if str(i["item"]) == "brand-new"]
    chk.check("explain: the new item has no event reasons (its score is its neighbours')",
              ex and ex[0].get("explain") == [], ex)
    chk.check("SIGTERM: exit 0", srv.stop() == 0)
    srv = Server(env, [model, data, "--port", 0, "--store", store]).start()
    lst = full(srv, "0")
    chk.check("after a restart the new item is still recommendable (from the store)",
              "brand-new" in lst and "orphan" not in lst)
    chk.check("restarted server: SIGTERM exit 0", srv.stop() == 0)
    # the catalogue split across 2 threads, their lists and the new items' merged: the same
    # full list, in the same order, as one thread scoring the whole row
    srv = Server(env, [model, data, "--port", 0, "--store", store, "--score-threads", 2,
                       "--score-workers", 1]).start()
    split = srv.recs("0", k=1000, keep_seen="true").json["items"]
    one = Server(env, [model, data, "--port", 0, "--store", env.path("one.db")]).start()
    one.put("/v1/items/brand-new", {"tags": [tag]})
    whole = one.recs("0", k=1000, keep_seen="true").json["items"]
    chk.check("--score-threads 2: the same list (ids, order, scores) as one thread (%d items)"
              % len(whole), [(str(i["item"]), round(i["score"], 5)) for i in split]
              == [(str(i["item"]), round(i["score"], 5)) for i in whole])
    chk.check("split servers: SIGTERM exit 0", srv.stop() == 0 and one.stop() == 0)
    return chk.finish()


if __name__ == "__main__":
    sys.exit(main())
