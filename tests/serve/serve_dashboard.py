#!/usr/bin/env python3
"""serve_dashboard.py — the dashboard's read-only JSON (docs/serve.md, "Dashboard"):

GET /v1/dashboard/dataset: `seqrec stats --json` under "stats" (the same object), a histogram of
sequence lengths summing to the users (each user in the bin of its length, counted here from
the log), events over time summing to the events, the top items by events (counted here
from the log) and the most active users. GET /v1/dashboard/runs: a metrics log with a fitted
run, two trainings and a training cut short (no summary) gives four runs with their epochs,
models and outputs; a log that grows is read again; a malformed line is reported with
file:line, not a failure. GET /v1/dashboard/evals: one entry per line of an eval file. GET
/v1/items/{id}: content features (tags from a RecBole .item side file) and statistics; 404 for
an unknown item. Unknown dashboard routes are 404, writes 405. A missing --metrics-log file
stops the server from starting, naming the file. --static serves the files at / and the
default is the built dashboard beside the build directory when there is one."""

import collections
import csv
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from servelib import Checker, Env, Server, watchdog  # noqa: E402


def main():
    chk = Checker("serve_dashboard")
    watchdog(300, "serve_dashboard")
    env = Env()
    log, data = env.path("log.inter"), env.path("data.sqd")
    env.cli("generate", "-q", "--users", 300, "--items", 200, "--events", 8000, "--seed", 3,
            "-o", log)
    env.cli("ingest", "-q", log, "-o", data)
    mlog, model = env.path("metrics.jsonl"), env.path("s.sqm")
    env.cli("train", "-q", data, "--model", "pop", "--metrics-log", mlog, "-o", env.path("p.sqm"))
    env.cli("train", "-q", data, "--model", "sasrec", "--set", "epochs=3", "--set", "hidden=16",
            "--set", "maxlen=20", "--metrics-log", mlog, "-o", model)
    env.cli("train", "-q", data, "--model", "sasrec", "--set", "epochs=2", "--set", "hidden=16",
            "--set", "maxlen=20", "--metrics-log", mlog, "-o", env.path("s2.sqm"))
    with open(mlog, "a") as f:  # a training cut short: epochs, no summary line
        f.write('{"epoch":1,"loss":5.5,"seconds":0.1}\n{"epoch":2,"loss":5.4,"seconds":0.1}\n')
    ev = env.path("eval.json")
    with open(ev, "w") as f:
        f.write(env.cli("eval", "-q", model, data, "--json", "--bootstrap", 20))
        f.write(env.cli("eval", "-q", env.path("p.sqm"), data, "--json", "--bootstrap", 20))
    stats = json.loads(env.cli("stats", data, "--json"))

    # the log as the test reads it: events per user and per item
    per_user, per_item = collections.Counter(), collections.Counter()
    with open(log) as f:
        rd = csv.reader(f, delimiter="\t")
        next(rd)
        for row in rd:
            per_user[row[0]] += 1
            per_item[row[1]] += 1

    srv = Server(env, [model, data, "--port", 0, "--store", env.path("e.db"), "--no-sync",
                       "--metrics-log", mlog, "--eval-json", ev]).start()
    d = srv.get("/v1/dashboard/dataset")
    chk.check("dataset: 200 JSON", d.status == 200 and d.json is not None, d)
    d = d.json
    chk.check("dataset: stats is what `seqrec stats --json` prints", d["stats"] == stats,
              (d["stats"], stats))
    h = d["sequence_lengths"]
    chk.check("dataset: the length histogram counts every user once (%d)" % sum(h["users"]),
              sum(h["users"]) == stats["users"] == len(per_user))
    want = [0] * len(h["lo"])
    for n in per_user.values():
        b = max(i for i in range(len(h["lo"])) if h["lo"][i] <= n)
        want[b] += 1
    chk.check("dataset: each user is in the bin of its length", want == h["users"],
              (want, h["users"]))
    chk.check("dataset: the last bin ends at the longest sequence (%d)" % h["hi"][-1],
              h["hi"][-1] == max(per_user.values()) == stats["sequence_length"]["max"])
    a = d["activity"]
    chk.check("dataset: activity sums to the events (%d in %d bins)"
              % (sum(a["events"]), len(a["events"])),
              sum(a["events"]) == stats["events"] and 1 <= len(a["events"]) <= 100
              and a["start"] == stats["time_min"]
              and a["start"] + a["width"] * len(a["events"]) > stats["time_max"])
    top = d["top_items"]
    best = per_item.most_common(1)[0][1]
    chk.check("dataset: top items in order of events, the first with %d" % best,
              len(top) == 20 and top[0]["events"] == best
              and all(top[i]["events"] >= top[i + 1]["events"] for i in range(19))
              and all(per_item[t["item"]] == t["events"] for t in top), top[:3])
    tu = d["top_users"]
    chk.check("dataset: the most active users, with their events",
              tu and tu[0]["events"] == max(per_user.values())
              and all(per_user[u["user"]] == u["events"] for u in tu), tu[:3])

    r = srv.get("/v1/dashboard/runs").json
    runs = r["runs"]
    chk.check("runs: four runs in the log (pop, sasrec, sasrec, one cut short): %s"
              % [x["name"] for x in runs],
              [x["name"] for x in runs] == ["pop #1", "sasrec #2", "sasrec #3", "run #4"]
              and not r["errors"], r["errors"])
    chk.check("runs: epochs per run 0, 3, 2, 2", [len(x["epochs"]) for x in runs] == [0, 3, 2, 2])
    chk.check("runs: the models' outputs and summaries",
              runs[1]["output"] == model and runs[1]["summary"]["epochs"] == 3
              and runs[3]["summary"] is None and runs[3]["model"] is None, runs[1])
    chk.check("runs: validation metrics in the last epoch of a training",
              "ndcg@10" in runs[1]["epochs"][-1].get("valid", {}), runs[1]["epochs"][-1])
    with open(mlog, "a") as f:
        f.write('{"epoch":3,"loss":5.3,"seconds":0.1}\n')
    r = srv.get("/v1/dashboard/runs").json
    chk.check("runs: the log is read again at each request (a new epoch shows)",
              len(r["runs"][3]["epochs"]) == 3)
    with open(mlog, "a") as f:
        f.write("not json\n")
    r = srv.get("/v1/dashboard/runs")
    chk.check("runs: a malformed line is reported as file:line, the answer still 200",
              r.status == 200 and r.json["errors"] == ["%s:12: not a JSON object" % mlog],
              r.json["errors"])

    e = srv.get("/v1/dashboard/evals").json
    chk.check("evals: one entry per line of the eval file, named by the model evaluated, with "
              "metrics and intervals",
              len(e["evals"]) == 2 and not e["errors"]
              and [x["name"] for x in e["evals"]] == ["s.sqm", "p.sqm"]
              and "ndcg@10" in e["evals"][0]["result"]["metrics"]
              and len(e["evals"][1]["result"]["ci95"]["ndcg@10"]) == 2, e["errors"])

    with open(env.path("log.item")) as f:
        rows = [r for r in csv.reader(f, delimiter="\t")]
    item, tags = rows[1][0], rows[1][2].split()
    it = srv.get("/v1/items/%s" % item)
    chk.check("item %s: its tags %s and its events (%d)" % (item, tags, per_item[item]),
              it.status == 200 and sorted(it.json["tags"]) == sorted(tags)
              and it.json["stats"]["events"] == per_item[item]
              and abs(sum(it.json["stats"]["behaviour_share"].values()) - 1) < 1e-4, it)
    it = srv.get("/v1/items/no-such-item")
    chk.check("an unknown item: 404 naming it", it.status == 404 and "no-such-item" in
              it.json["error"], it)
    chk.check("an unknown dashboard route: 404", srv.get("/v1/dashboard/nope").status == 404)
    chk.check("POST on a dashboard route: 405",
              srv.post("/v1/dashboard/runs", {}).status == 405)
    h = srv.get("/v1/users/%s/history?limit=3" % next(iter(per_user)))
    chk.check("history: dataset events carry their context fields",
              h.status == 200 and all(set(x.get("context", {})) == {"device", "hour"}
                                      for x in h.json["events"]), h)
    chk.check("SIGTERM: exit 0", srv.stop() == 0)

    bad = Server(env, [model, data, "--port", 0, "--store", env.path("f.db"),
                       "--metrics-log", env.path("absent.jsonl")])
    try:
        bad.start()
        chk.fail("a missing --metrics-log file stops the server", "it started")
        bad.stop()
    except RuntimeError as ex:
        chk.check("a missing --metrics-log file stops the server, naming it",
                  "absent.jsonl" in str(ex), ex)

    site = env.path("site")
    os.makedirs(site)
    with open(os.path.join(site, "index.html"), "w") as f:
        f.write("<p>dashboard</p>")
    srv = Server(env, [model, data, "--port", 0, "--store", env.path("g.db"), "--no-sync",
                       "--static", site]).start()
    r = srv.get("/")
    chk.check("--static DIR: / is its index.html", r.status == 200 and b"dashboard" in r.body
              and r.header("content-type").startswith("text/html"), r)
    chk.check("--static: the listening output names the dashboard",
              any("dashboard on http://" in line for line in srv.lines), srv.lines)
    srv.stop()
    dist = os.path.join(os.path.dirname(os.path.dirname(os.path.realpath(env.bin))), "web",
                        "dist", "index.html")
    srv = Server(env, [model, data, "--port", 0, "--store", env.path("h.db"), "--no-sync"]).start()
    r = srv.get("/")
    if os.path.exists(dist):
        chk.check("no --static: the built dashboard (%s) is served at /" % dist,
                  r.status == 200 and open(dist, "rb").read() == r.body, r)
    else:
        chk.check("no --static and no built dashboard: / is 404", r.status == 404, r)
    srv.stop()
    return chk.finish()


if __name__ == "__main__":
    sys.exit(main())
