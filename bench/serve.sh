#!/usr/bin/env bash
# serve.sh — the serving benchmark of docs/benchmarks.md: `seqrec serve` with a SASRec model of
# Amazon Beauty (../shared/data/beauty, 54,542 items), wrk on loopback, bounded in time. The floor
# of the issue: ≥ 5,000 recommendation requests/s with p99 < 20 ms on 2 cores while events are
# also being posted.
#
#   bench/serve.sh [--model M.sqm --data D.sqd] [--epochs N] [--duration 20] [--repeat 3]
#                  [--connections 32] [--wrk-threads 1] [--sample N] [--sweep] [--events-rate N]
#                  [--event-connections 2] [--out DIR] [--server-arg ARG]...
#
# Without --model it ingests beauty.txt and trains SASRec (~20 min on 2 cores; --epochs N trains
# N epochs only, a quick model: throughput does not depend on how well the model is trained,
# only on its shape). A trained model is kept in --out and reused (delete it to retrain).
# Then: a fresh server; a cold run, one pass over a sample of --sample users (default: all)
# each asked once (a store lookup and a forward pass a request), which also warms the per-user
# cache; then --repeat runs of --duration seconds asking random users of the sample (k=10) over
# --connections while a second wrk (1 thread, --event-connections, default 2) posts events for
# random users: each connection posts as soon as its last post is acknowledged (closed loop: one
# commit, one fsync, per event and connection) or, with --events-rate N, waits between posts so
# that all together post about N a second (e.g. --event-connections 16 --events-rate 1000: many
# users' clients posting at a fixed total rate, which group commit can batch).
# Prints the median req/s, wrk's p50/p99, the events/s posted, the server's own latency
# histogram quantiles and scoring batch size, and the CPU the server, wrk and every other process
# of the machine used (a shared machine: others' load shows there); --sweep does it again with
# --score-threads 1 (and, when the binary has --score-workers, with --score-workers 1
# --score-threads 2) and compares.
# Last line: one JSON object. wrk shares the cores with the server (it is loopback). Files (the
# ingested data, a trained model, wrk scripts, the store, server stderr) go to --out
# (default out/bench-serve); SEQREC_BIN and SEQREC_DATA as in bench/models.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${SEQREC_BIN:-build/seqrec}
DATA=${SEQREC_DATA:-../shared/data}
MODEL=""
SQD=""
EPOCHS=""
DURATION=20
REPEAT=3
CONNS=32
WRK_THREADS=1
SAMPLE=0
SWEEP=0
EVENTS_RATE=0
EVENT_CONNS=2
OUT=out/bench-serve
SERVER_ARGS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --model) MODEL=$2; shift 2 ;;
    --data) SQD=$2; shift 2 ;;
    --epochs) EPOCHS=$2; shift 2 ;;
    --duration) DURATION=$2; shift 2 ;;
    --repeat) REPEAT=$2; shift 2 ;;
    --connections) CONNS=$2; shift 2 ;;
    --wrk-threads) WRK_THREADS=$2; shift 2 ;;
    --sample) SAMPLE=$2; shift 2 ;;
    --sweep) SWEEP=1; shift ;;
    --events-rate) EVENTS_RATE=$2; shift 2 ;;
    --event-connections) EVENT_CONNS=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --server-arg) SERVER_ARGS+=("$2"); shift 2 ;;
    -h|--help) sed -n '2,29p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "serve.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
[ -x "$BIN" ] || { echo "serve.sh: $BIN not built (scripts/build.sh)" >&2; exit 2; }
command -v wrk > /dev/null || { echo "serve.sh: wrk not found (apt-get install wrk)" >&2; exit 2; }
command -v python3 > /dev/null || { echo "serve.sh: python3 not found" >&2; exit 2; }
TXT=$DATA/beauty/beauty.txt
if [ ! -f "$TXT" ]; then
  echo "serve.sh: $TXT not found: skipping the serving benchmark" >&2
  exit 0
fi
if [ -n "$MODEL" ] && [ ! -f "$MODEL" ]; then echo "serve.sh: no model $MODEL" >&2; exit 2; fi
if [ -n "$SQD" ] && [ ! -f "$SQD" ]; then echo "serve.sh: no dataset $SQD" >&2; exit 2; fi
mkdir -p "$OUT"

# The external ids of the file (`user item`, integers): the users and items the load asks for.
awk '{ print $1 }' "$TXT" | sort -un > "$OUT/users.txt"
awk '{ print $2 }' "$TXT" | sort -un > "$OUT/items.txt"
N_USERS=$(wc -l < "$OUT/users.txt")
N_ITEMS=$(wc -l < "$OUT/items.txt")
echo "beauty: $N_USERS users (ids $(head -1 "$OUT/users.txt")..$(tail -1 "$OUT/users.txt")), $N_ITEMS items (ids $(head -1 "$OUT/items.txt")..$(tail -1 "$OUT/items.txt")), $(wc -l < "$TXT") events"

if [ -z "$SQD" ]; then
  SQD=$OUT/beauty.sqd
  [ -f "$SQD" ] || "$BIN" ingest -q "$TXT" -o "$SQD"
fi
if [ -z "$MODEL" ]; then
  if [ -n "$EPOCHS" ]; then MODEL=$OUT/beauty.sasrec.e$EPOCHS.sqm; else MODEL=$OUT/beauty.sasrec.sqm; fi
  if [ -f "$MODEL" ]; then
    echo "serve.sh: reusing $MODEL (delete it to retrain)" >&2
  else
    echo "serve.sh: training SASRec on $SQD${EPOCHS:+ for $EPOCHS epochs} ..." >&2
    "$BIN" train -q "$SQD" --model sasrec ${EPOCHS:+--set "epochs=$EPOCHS"} --threads 2 \
      -o "$MODEL"
  fi
fi
echo "model $MODEL, data $SQD"

export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
BENCH_EVENTS_RATE=$EVENTS_RATE BENCH_EVENT_CONNS=$EVENT_CONNS python3 - "$BIN" "$MODEL" "$SQD" "$OUT" "$DURATION" "$REPEAT" "$CONNS" "$WRK_THREADS" "$SAMPLE" \
  "$SWEEP" "$N_USERS" ${SERVER_ARGS[@]+"${SERVER_ARGS[@]}"} <<'PY'
"""Drives the servers and the wrk runs; prints the figures and the JSON line."""
import atexit, json, os, random, re, resource, signal, statistics, subprocess, sys, time, urllib.request

(bin_, model, sqd, out, duration, repeat, conns, wrk_threads, sample, sweep,
 n_users) = sys.argv[1:12]
server_args = sys.argv[12:]
duration, repeat, conns, wrk_threads = int(duration), int(repeat), int(conns), int(wrk_threads)
sample, sweep, n_users = int(sample), sweep == "1", int(n_users)
event_conns = int(os.environ["BENCH_EVENT_CONNS"])
events_rate = float(os.environ["BENCH_EVENTS_RATE"])
HIST_LE = None  # read from /metrics

users = open(os.path.join(out, "users.txt")).read().split()
rng = random.Random(1)
sample_users = rng.sample(users, sample) if 0 < sample < len(users) else list(users)
rng.shuffle(sample_users)  # the cold pass walks them in this order
with open(os.path.join(out, "sample.txt"), "w") as f:
    f.write("\n".join(sample_users) + "\n")

# ---------------------------------------- wrk scripts ----------------------------------------
COMMON = r"""
local threads, count = {}, 0
function setup(thread)
  count = count + 1
  thread:set("tid", count)
  table.insert(threads, thread)
end
local function lines(path)
  local t = {}
  for l in io.lines(path) do if #l > 0 then t[#t + 1] = l end end
  return t
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('WRK {"requests":%d,"seconds":%.3f,"non2xx":%d,"socket_errors":%d,' ..
    '"p50_ms":%.3f,"p90_ms":%.3f,"p99_ms":%.3f,"max_ms":%.3f}\n', summary.requests,
    summary.duration / 1e6, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50) / 1e3, latency:percentile(90) / 1e3, latency:percentile(99) / 1e3,
    latency.max / 1e3))
end
"""
RECS_RANDOM = COMMON + r"""
function init(args)
  users = lines(os.getenv("BENCH_USERS"))
  math.randomseed(os.time() * 100 + tid)
end
function request()
  return wrk.format("GET", "/v1/users/" .. users[math.random(#users)] .. "/recommendations?k=10")
end
"""
# the cold pass: thread t of n asks users t, t+n, t+2n, … once each, then stops
RECS_PASS = COMMON + r"""
function init(args)
  users = lines(os.getenv("BENCH_USERS"))
  nthreads = tonumber(os.getenv("BENCH_THREADS"))
  i = tid
end
function request()
  if i > #users then -- this thread's share is done: the driver interrupts wrk when all are
    wrk.thread:stop()
    i = tid -- (a request must still be returned; a repeat, answered from the cache)
  end
  local u = users[i]
  i = i + nthreads
  return wrk.format("GET", "/v1/users/" .. u .. "/recommendations?k=10")
end
"""
EVENTS = COMMON + r"""
function init(args)
  users = lines(os.getenv("BENCH_USERS"))
  items = lines(os.getenv("BENCH_ITEMS"))
  behaviour = os.getenv("BENCH_BEHAVIOUR")
  event_delay = tonumber(os.getenv("BENCH_EVENT_DELAY_MS") or "0")
  math.randomseed(os.time() * 100 + 50 + tid)
end
function delay()
  return event_delay
end
function request()
  local body = string.format('{"user":"%s","item":"%s","behaviour":"%s"}',
    users[math.random(#users)], items[math.random(#items)], behaviour)
  return wrk.format("POST", "/v1/events", {["Content-Type"] = "application/json"}, body)
end
"""
scripts = {}
for name, text in (("recs_random", RECS_RANDOM), ("recs_pass", RECS_PASS), ("events", EVENTS)):
    scripts[name] = os.path.join(out, "wrk_%s.lua" % name)
    with open(scripts[name], "w") as f:
        f.write(text)


# ------------------------------------------ server -------------------------------------------
live = []  # servers to kill if the driver fails


@atexit.register
def _kill_live():
    for p in live:
        if p.poll() is None:
            p.kill()
            p.wait()


class Server:
    def __init__(self, extra):
        self.db = os.path.join(out, "serve-events.db")
        for suf in ("", "-wal", "-shm"):
            if os.path.exists(self.db + suf):
                os.remove(self.db + suf)
        self.args = [bin_, "serve", model, sqd, "--store", self.db, "--port", "0", "--quiet"] + \
            server_args + extra
        self.log = open(os.path.join(out, "server.err"), "ab")
        self.p = subprocess.Popen(self.args, stdout=subprocess.PIPE, stderr=self.log,
                                  stdin=subprocess.DEVNULL)
        live.append(self.p)
        line = self.p.stdout.readline().decode()
        m = re.search(r"listening on http://([^\s/]+):(\d+)", line)
        if not m:
            self.p.kill()
            sys.exit("serve.sh: the server did not start: %r (see %s/server.err)" % (line, out))
        self.url = "http://127.0.0.1:%s" % m.group(2)

    def get(self, path):
        with urllib.request.urlopen(self.url + path, timeout=30) as r:
            return r.read().decode()

    def cpu(self):  # user + system seconds of the server process
        f = open("/proc/%d/stat" % self.p.pid).read().rsplit(")", 1)[1].split()
        return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")

    def rss_mib(self):
        for l in open("/proc/%d/status" % self.p.pid):
            if l.startswith("VmRSS:"):
                return int(l.split()[1]) / 1024
        return 0.0

    def stop(self):
        self.p.send_signal(signal.SIGTERM)
        rc = self.p.wait(60)
        self.log.close()
        return rc


def machine_busy():
    """(busy, total) jiffies of all cores, from /proc/stat."""
    f = [int(x) for x in open("/proc/stat").readline().split()[1:]]
    idle = f[3] + (f[4] if len(f) > 4 else 0)
    return sum(f) - idle, sum(f)


def metrics(srv):
    m = {}
    for line in srv.get("/metrics").splitlines():
        mm = re.match(r"^([a-zA-Z_:]+)(\{[^}]*\})? (\S+)$", line)
        if mm:
            m[mm.group(1) + (mm.group(2) or "")] = float(mm.group(3))
    return m


def server_figures(before, after, seconds):
    """Deltas of the server's counters over a run: its recommendation latency quantiles (upper
    bounds of the histogram's buckets), scoring batch size, events stored a second."""
    d = lambda k: after.get(k, 0.0) - before.get(k, 0.0)
    buckets = []
    for k in after:
        mm = re.match(r'seqrec_http_request_seconds_bucket\{route="recommendations",le="([^"]+)"\}', k)
        if mm:
            buckets.append((float("inf") if mm.group(1) == "+Inf" else float(mm.group(1)), d(k)))
    buckets.sort()
    n = buckets[-1][1] if buckets else 0

    def q(p):
        for le, c in buckets:
            if n and c >= p * n:
                return le * 1e3
        return None
    batches = d("seqrec_score_batches_total")
    return {
        "server_requests": int(n),
        "server_p50_ms_le": q(0.50), "server_p90_ms_le": q(0.90), "server_p99_ms_le": q(0.99),
        "server_mean_ms": d('seqrec_http_request_seconds_sum{route="recommendations"}') / n * 1e3 if n else None,
        "batch_size": d("seqrec_score_batched_requests_total") / batches if batches else None,
        "events_per_s": d("seqrec_events_posted_total") / seconds,
        "cache_hit_ratio": (d("seqrec_cache_hits_total") /
                            max(1.0, d("seqrec_cache_hits_total") + d("seqrec_cache_misses_total"))),
        "non2xx_server": int(sum(d(k) for k in after if k.startswith("seqrec_http_requests_total")
                                 and 'status="2xx"' not in k)),
    }


def wrk(srv, script, threads, connections, seconds, env_extra):
    env = dict(os.environ)
    env.update(env_extra)
    return subprocess.Popen(["wrk", "-t%d" % threads, "-c%d" % connections, "-d%ds" % seconds,
                             "--timeout", "10s", "-s", script, srv.url + "/"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)


def wrk_result(p):
    text = p.communicate()[0].decode(errors="replace")
    m = re.search(r"WRK (\{.*\})", text)
    if not m:
        sys.exit("serve.sh: wrk failed:\n" + text)
    r = json.loads(m.group(1))
    r["req_per_s"] = r["requests"] / r["seconds"] if r["seconds"] else 0.0
    return r


def fmt(x, f="%.1f"):
    return "–" if x is None else f % x


def describe(tag, r):
    print("  %-10s %7.0f req/s  wrk p50 %5.2f ms  p99 %6.2f ms  max %6.1f ms | server p50 ≤ %s ms  "
          "p99 ≤ %s ms  mean %s ms | batch %s | events %s/s | hit ratio %.3f | CPU: server %.0f %%, "
          "wrk %.0f %%, other processes %.0f %% (machine %.0f %%) | errors %d" % (
              tag, r["req_per_s"], r["p50_ms"], r["p99_ms"], r["max_ms"],
              fmt(r["server_p50_ms_le"], "%g"), fmt(r["server_p99_ms_le"], "%g"),
              fmt(r["server_mean_ms"], "%.2f"), fmt(r["batch_size"], "%.2f"),
              fmt(r.get("events_per_s"), "%.0f"), r["cache_hit_ratio"], r["server_cpu_pct"],
              r["wrk_cpu_pct"], r["other_cpu_pct"], r["machine_cpu_pct"],
              r["non2xx"] + r["socket_errors"] + r.get("events_errors", 0)), flush=True)


RECS_DONE = 'seqrec_http_requests_total{route="recommendations",status="2xx"}'


def measure(srv, script, seconds, with_events, env_extra, until=0):
    """One wrk run of `seconds` (with the events wrk beside it when with_events); with `until`,
    it is interrupted (SIGINT: wrk prints its figures for the time it ran) once the server has
    answered that many recommendation requests."""
    before, cpu0, t0, m0 = metrics(srv), srv.cpu(), time.time(), machine_busy()
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)  # the wrk runs, once waited for
    ev = None
    if with_events:
        ev = wrk(srv, scripts["events"], 1, event_conns, seconds, env_extra)
    rec = wrk(srv, script, wrk_threads, conns, seconds, env_extra)
    if until:
        while rec.poll() is None:
            time.sleep(0.1)
            if metrics(srv).get(RECS_DONE, 0) - before.get(RECS_DONE, 0) >= until:
                rec.send_signal(signal.SIGINT)
                break
    r = wrk_result(rec)
    if ev is not None:
        e = wrk_result(ev)
        r["events_wrk_per_s"] = e["req_per_s"]
        r["events_p99_ms"] = e["p99_ms"]
        r["events_errors"] = e["non2xx"] + e["socket_errors"]
    wall = time.time() - t0
    after, cpu1 = metrics(srv), srv.cpu()
    r.update(server_figures(before, after, wall))
    r["server_cpu_pct"] = 100.0 * (cpu1 - cpu0) / wall
    m1 = machine_busy()  # every core: server + both wrk + the rest, of 100 % × cores
    r["machine_cpu_pct"] = 100.0 * (os.cpu_count() or 1) * (m1[0] - m0[0]) / max(1, m1[1] - m0[1])
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    r["wrk_cpu_pct"] = 100.0 * (ru1.ru_utime + ru1.ru_stime - ru0.ru_utime - ru0.ru_stime) / wall
    # what neither the server nor wrk used: other processes on the machine (a shared machine)
    r["other_cpu_pct"] = max(0.0, r["machine_cpu_pct"] - r["server_cpu_pct"] - r["wrk_cpu_pct"])
    if not with_events:
        r["events_per_s"] = None
    r["rss_mib"] = srv.rss_mib()
    return r


def session(label, extra):
    """A fresh server: the cold pass, then `repeat` measured runs with events posted."""
    srv = Server(extra)
    info = json.loads(srv.get("/v1/info"))
    if info["dataset"]["users"] != n_users:
        print("serve.sh: warning: the dataset has %d users, beauty.txt %d: is --data the file the "
              "model was trained on?" % (info["dataset"]["users"], n_users), flush=True)
    behaviour = info["dataset"]["behaviours"][0]
    kinds = [v["kind"] for v in info["variants"]]
    threads_line = "server options: " + (" ".join(server_args + extra) or "defaults")
    print("%s: server %s (%s), %s; pid %d, RSS %.0f MiB" % (
        label, srv.url, ",".join(kinds), threads_line, srv.p.pid, srv.rss_mib()), flush=True)
    env = {"BENCH_USERS": os.path.join(out, "sample.txt"),
           "BENCH_ITEMS": os.path.join(out, "items.txt"),
           "BENCH_BEHAVIOUR": behaviour, "BENCH_THREADS": str(wrk_threads),
           # --events-rate N: each of the C posting connections waits 1000 C / N ms between
           # posts (wrk's delay()), so about N events/s at most; 0: as fast as acknowledged
           "BENCH_EVENT_DELAY_MS": str(int(round(1000.0 * event_conns / events_rate))
                                       if events_rate > 0 else 0)}
    # the cold pass: every sampled user once (bounded: 4 × duration at most)
    cold = measure(srv, scripts["recs_pass"], max(4 * duration, 60), False, env,
                   until=len(sample_users))
    describe("cold", cold)
    runs = []
    for i in range(repeat):
        r = measure(srv, scripts["recs_random"], duration, True, env)
        describe("run %d" % (i + 1), r)
        runs.append(r)
    rc = srv.stop()
    med = lambda k: statistics.median([r[k] for r in runs if r.get(k) is not None]) \
        if any(r.get(k) is not None for r in runs) else None
    res = {"server_args": server_args + extra, "cold": cold, "runs": runs, "exit": rc}
    res["median"] = {k: med(k) for k in ("req_per_s", "p50_ms", "p99_ms", "events_per_s",
                                         "events_wrk_per_s", "batch_size", "server_p50_ms_le",
                                         "server_p99_ms_le", "server_mean_ms", "server_cpu_pct",
                                         "wrk_cpu_pct", "other_cpu_pct", "machine_cpu_pct")}
    m = res["median"]
    res["floor_met"] = bool(m["req_per_s"] and m["req_per_s"] >= 5000 and m["p99_ms"] < 20
                            and (m["events_per_s"] or 0) > 0)
    print("  median of %d × %d s: %.0f recommendation req/s, p50 %.2f ms, p99 %.2f ms, while "
          "%.0f events/s were posted (wrk: %.0f/s, p99 %.1f ms); server: p50 ≤ %s ms, p99 ≤ %s "
          "ms, batch size %s; CPU: server %.0f %%, wrk %.0f %%, other processes %.0f %%; SIGTERM exit %s" % (
              repeat, duration, m["req_per_s"], m["p50_ms"], m["p99_ms"], m["events_per_s"],
              m["events_wrk_per_s"], statistics.median([r["events_p99_ms"] for r in runs]),
              fmt(m["server_p50_ms_le"], "%g"), fmt(m["server_p99_ms_le"], "%g"),
              fmt(m["batch_size"], "%.2f"), m["server_cpu_pct"], m["wrk_cpu_pct"], m["other_cpu_pct"],
              rc), flush=True)
    print("  floor (≥ 5,000 req/s with p99 < 20 ms while events are posted): %s" %
          ("met" if res["floor_met"] else "NOT met"), flush=True)
    return res


print("load: recommendations over %d connection(s), %d wrk thread(s), random users of %d, k=10; "
      "events: 1 wrk thread, %d connection(s), %s; %d run(s) of %d s" % (
          conns, wrk_threads, len(sample_users), event_conns,
          "about %g/s in all" % events_rate if events_rate > 0 else "each as fast as acknowledged",
          repeat, duration), flush=True)
result = {"bench": "serve", "model": model, "data": sqd, "users": len(sample_users),
          "connections": conns, "wrk_threads": wrk_threads, "event_connections": event_conns,
          "events_rate": events_rate, "duration_s": duration,
          "repeat": repeat, "cores": os.cpu_count()}
result["default"] = session("default", [])
if sweep:
    configs = [["--score-threads", "1"]]
    help_text = subprocess.run([bin_, "serve", "--help"], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT).stdout.decode(errors="replace")
    if "--score-workers" in help_text:  # one batch at a time, scored on both cores
        configs.append(["--score-workers", "1", "--score-threads", "2"])
    result["sweep"] = []
    for extra in configs:
        result["sweep"].append(session(" ".join(extra), extra))
    line = "sweep: default %.0f req/s p99 %.2f ms" % (result["default"]["median"]["req_per_s"],
                                                       result["default"]["median"]["p99_ms"])
    for res in result["sweep"]:
        line += " | %s %.0f req/s p99 %.2f ms" % (" ".join(res["server_args"][len(server_args):]),
                                                 res["median"]["req_per_s"], res["median"]["p99_ms"])
    print(line, flush=True)
print(json.dumps(result, separators=(",", ":")))
PY
