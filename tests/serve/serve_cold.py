#!/usr/bin/env python3
"""serve_cold.py — new items and new users through the served model's own features
(docs/serve.md, "New items" and "New users").

A generated log in RecBole format: the .item side file gives each item a title and its cluster
tag; a .user file written here gives each user a `taste` (the tag of the items they had most)
and a `gender`. Models: hybrid with ids=0 (every catalogue item is its features alone), hybrid
with ids (trained under cold_items), gru4rec with item_features=on, content, sasrec (no features).

New items: a twin of catalogue item 5 (its title and tags) put with PUT /v1/items answers
recommendable, via "features" for both variants (hybrid, gru4rec), and an item with neither
text nor tags is not recommendable. The twin's served score equals item 5's own for the features-only
hybrid (same feature row, no id part) and, after POST /v1/admin/reload to the content model,
for content too (its featuriser is the new model's); gru4rec scores it through features. A
restart keeps it; reloaded to sasrec, it falls back to the tag rule (via "tags").

New users: PUT /v1/users/{id} {"attributes":{…}} makes a hybrid rank a user without events by
attributes (via "attributes") with exactly the list of `seqrec recommend --attr` for the same
attributes, different from the popularity list and from another taste's; attr.F=V query
parameters rank one request (not remembered); after events, via "events+attributes" equals
`recommend --items … --attr …`; unknown fields and values are 400s naming them; a restart keeps
the attributes, DELETE /v1/users/{id} forgets them (popularity again, also after a restart); a
model that reads no attributes (sasrec) keeps the popularity list."""

import collections
import csv
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from servelib import Checker, Env, Server, watchdog  # noqa: E402


def full(srv, user, **kw):
    r = srv.recs(user, k=1000, keep_seen="true", **kw)
    return {str(i["item"]): i for i in r.json["items"]}, r


def user_of_variant(srv, name):
    for u in range(300):
        r = srv.recs(str(u), k=1)
        if r.json.get("variant") == name:
            return str(u)
    return None


def items_scores(lst):
    return [(str(i["item"]), round(i["score"], 4)) for i in lst]


def main():
    chk = Checker("serve_cold")
    watchdog(600, "serve_cold")
    env = Env()
    log, data = env.path("log.inter"), env.path("data.sqd")
    env.cli("generate", "-q", "--users", 300, "--items", 200, "--events", 8000, "--seed", 3,
            "-o", log)
    title, tags = {}, {}
    with open(env.path("log.item")) as f:
        for row in csv.reader(f, delimiter="\t"):
            if row and row[0] != "item_id:token":
                title[row[0]], tags[row[0]] = row[1], row[2].split()
    had = collections.defaultdict(collections.Counter)
    with open(log) as f:
        for row in csv.reader(f, delimiter="\t"):
            if row and row[0] != "user_id:token":
                had[row[0]][tags[row[1]][0]] += 1
    with open(env.path("log.user"), "w") as f:
        f.write("user_id:token\ttaste:token\tgender:token\n")
        for u, c in had.items():
            f.write("%s\t%s\t%s\n" % (u, c.most_common(1)[0][0], "F" if int(u) % 2 else "M"))
    env.cli("ingest", "-q", log, "-o", data)
    m = {k: env.path(k + ".sqm") for k in ("hy0", "hy", "gru", "content", "sasrec")}
    env.cli("train", "-q", data, "--model", "hybrid", "--set", "ids=0", "--set", "epochs=5",
            "--set", "dim=16", "-o", m["hy0"])
    env.cli("train", "-q", data, "--model", "hybrid", "--protocol", "cold_items", "--set",
            "epochs=5", "--set", "dim=16", "-o", m["hy"])
    env.cli("train", "-q", data, "--model", "gru4rec", "--set", "item_features=on", "--set",
            "epochs=2", "--set", "hidden=16", "--set", "maxlen=20", "-o", m["gru"])
    env.cli("train", "-q", data, "--model", "content", "-o", m["content"])
    env.cli("train", "-q", data, "--model", "sasrec", "--set", "epochs=1", "--set", "hidden=16",
            "--set", "maxlen=20", "-o", m["sasrec"])

    # ============================== new items, through features ==============================
    store = env.path("items.db")
    args = [m["hy0"], data, "--port", 0, "--store", store, "--no-sync", "--variant",
            "gru=" + m["gru"]]
    srv = Server(env, args).start()
    twin = {"text": title["5"], "tags": tags["5"]}
    r = srv.put("/v1/items/twin", twin)
    vias = {v["variant"]: v["via"] for v in r.json.get("variants", [])} if r.json else {}
    chk.check("PUT a twin of item 5: recommendable, via features for both variants",
              r.status == 200 and r.json.get("recommendable") is True
              and r.json.get("via") == "features" and vias.get("gru") == "features"
              and len(vias) == 2, r)
    r = srv.put("/v1/items/blank", {})
    chk.check("PUT an item with neither text nor tags: not recommendable, no via",
              r.status == 200 and r.json.get("recommendable") is False and "via" not in r.json, r)
    u_main, u_gru = user_of_variant(srv, "main"), user_of_variant(srv, "gru")
    chk.check("users of both variants found", u_main is not None and u_gru is not None)
    lst, _ = full(srv, u_main)
    tw, orig = lst.get("twin"), lst.get("5")
    chk.check("hybrid (ids=0): the twin is listed, via features", tw is not None
              and tw.get("via") == "features" and tw.get("content") is True, tw)
    chk.check("hybrid (ids=0): the twin scores exactly as item 5 (%s vs %s)"
              % (tw and tw["score"], orig and orig["score"]),
              tw and orig and abs(tw["score"] - orig["score"]) <= 1e-5 * (1 + abs(orig["score"])))
    chk.check("the blank item is never listed", "blank" not in lst)
    lg, _ = full(srv, u_gru)
    chk.check("gru4rec item_features=on: the twin is listed, via features",
              lg.get("twin", {}).get("via") == "features", lg.get("twin"))
    score_before = tw and tw["score"]
    chk.check("SIGTERM: exit 0", srv.stop() == 0)

    srv = Server(env, args).start()
    lst, _ = full(srv, u_main)
    chk.check("after a restart the twin is still scored through features, the same score",
              lst.get("twin", {}).get("via") == "features"
              and abs(lst["twin"]["score"] - score_before) <= 1e-6, lst.get("twin"))
    r = srv.post("/v1/admin/reload", {"model": m["content"]})
    chk.check("reload main to the content model", r.status == 200, r)
    lst, _ = full(srv, u_main)
    tw, orig = lst.get("twin"), lst.get("5")
    chk.check("content (reloaded): the twin scores exactly as item 5 (%s vs %s), via features"
              % (tw and tw["score"], orig and orig["score"]),
              tw and orig and tw.get("via") == "features"
              and abs(tw["score"] - orig["score"]) <= 1e-6)
    r = srv.post("/v1/admin/reload", {"model": m["sasrec"]})
    lst, _ = full(srv, u_main)
    chk.check("sasrec (reloaded, no item features): the twin falls back to its tags",
              r.status == 200 and lst.get("twin", {}).get("via") == "tags", lst.get("twin"))
    r = srv.put("/v1/users/%s" % "newcomer", {"attributes": {"taste": "tag3"}})
    rr = srv.recs("newcomer", k=5)
    chk.check("sasrec reads no attributes: a new user with attributes gets popularity",
              r.status == 200 and rr.json.get("via") == "popularity"
              and rr.json.get("cold_start") is True, rr)
    chk.check("items server: SIGTERM exit 0", srv.stop() == 0)

    # ================================ new users, by attributes ================================
    ustore = env.path("users.db")
    uargs = [m["hy"], data, "--port", 0, "--store", ustore, "--no-sync"]
    srv = Server(env, uargs).start()

    def cli_list(*extra):
        out = env.cli_json("recommend", m["hy"], data, "-k", 10, "--json", *extra)
        return items_scores(out["items"])

    pop = srv.recs("newbie", k=10).json
    chk.check("an unknown user without attributes: popularity", pop.get("via") == "popularity"
              and pop.get("cold_start") is True, pop)
    r = srv.put("/v1/users/newbie", {"attributes": {"taste": "tag3"}})
    chk.check("PUT attributes: 200", r.status == 200 and r.json.get("attributes")
              == {"taste": "tag3"}, r)
    r = srv.recs("newbie", k=10)
    got = items_scores(r.json["items"])
    want3 = cli_list("--attr", "taste=tag3")
    chk.check("hybrid ranks the new user by attributes (via attributes, not cold start)",
              r.json.get("via") == "attributes" and r.json.get("cold_start") is False, r)
    chk.check("the same list as `recommend --attr taste=tag3`", got == want3, (got, want3))
    chk.check("a different list from popularity",
              [i for i, _ in got] != [str(i["item"]) for i in pop["items"]])
    r5 = srv.recs("newbie", k=10, **{"attr.taste": "tag5"})
    want5 = cli_list("--attr", "taste=tag5")
    chk.check("attr.taste=tag5 for one request: `recommend --attr taste=tag5`'s list, another",
              items_scores(r5.json["items"]) == want5 and want5 != want3, r5)
    r = srv.recs("newbie", k=10)
    chk.check("the next request without it: the stored attributes again",
              items_scores(r.json["items"]) == want3, r)
    for body, name in (({"attributes": {"nosuch": "x"}}, "nosuch"),
                       ({"attributes": {"taste": "tagX"}}, "tagX"),
                       ({"attributes": {"taste": 3}}, "taste"),
                       ({"taste": "tag3"}, "attributes")):
        r = srv.put("/v1/users/newbie", body)
        chk.check("PUT %s: 400 naming %s" % (body, name),
                  r.status == 400 and name in (r.error_msg() or ""), r)
    r = srv.recs("newbie", k=10, **{"attr.nosuch": "1"})
    chk.check("attr.nosuch=1: 400 naming it", r.status == 400
              and "attr.nosuch" in (r.error_msg() or ""), r)
    r = srv.recs("newbie", k=10, **{"attr.gender": "X"})
    chk.check("attr.gender=X: 400 naming the value", r.status == 400
              and "'X'" in (r.error_msg() or ""), r)
    r = srv.recs("newbie", k=10)
    chk.check("refused PUTs changed nothing", items_scores(r.json["items"]) == want3, r)
    ev = [{"user": "newbie", "item": it, "behaviour": "view", "ts": 1712000000 + k}
          for k, it in enumerate(("7", "21"))]
    r = srv.post("/v1/events", ev)
    chk.check("POST two events", r.status == 200, r)
    r = srv.recs("newbie", k=10)
    want_ev = cli_list("--items", "7,21", "--attr", "taste=tag3")
    chk.check("with events: via events+attributes, `recommend --items 7,21 --attr taste=tag3`",
              r.json.get("via") == "events+attributes"
              and items_scores(r.json["items"]) == want_ev, (r, want_ev))
    # a user with events and no attributes, asked first with attr.F=V: that request's vector
    # must not be cached as theirs
    ev = [{"user": "visitor", "item": it, "behaviour": "view", "ts": 1712000000 + k}
          for k, it in enumerate(("7", "21"))]
    srv.post("/v1/events", ev)
    r5 = srv.recs("visitor", k=10, **{"attr.taste": "tag5"})
    want_v5 = cli_list("--items", "7,21", "--attr", "taste=tag5")
    chk.check("visitor with attr.taste=tag5: via events+attributes, the CLI's list",
              r5.json.get("via") == "events+attributes"
              and items_scores(r5.json["items"]) == want_v5, (r5, want_v5))
    r = srv.recs("visitor", k=10)
    want_v = cli_list("--items", "7,21")
    chk.check("visitor without it: via events, `recommend --items 7,21`'s list",
              r.json.get("via") == "events" and items_scores(r.json["items"]) == want_v,
              (r, want_v))
    chk.check("users server: SIGTERM exit 0", srv.stop() == 0)

    srv = Server(env, uargs).start()
    r = srv.recs("newbie", k=10)
    chk.check("after a restart: the attributes and events are kept",
              r.json.get("via") == "events+attributes"
              and items_scores(r.json["items"]) == want_ev, r)
    r = srv.delete("/v1/users/newbie")
    chk.check("DELETE the user", r.status == 200, r)
    r = srv.recs("newbie", k=10)
    chk.check("after DELETE: popularity", r.json.get("via") == "popularity", r)
    chk.check("restarted users server: SIGTERM exit 0", srv.stop() == 0)
    srv = Server(env, uargs).start()
    r = srv.recs("newbie", k=10)
    chk.check("after DELETE and a restart: still popularity (attributes gone from the store)",
              r.json.get("via") == "popularity", r)
    chk.check("last server: SIGTERM exit 0", srv.stop() == 0)
    return chk.finish()


if __name__ == "__main__":
    sys.exit(main())
