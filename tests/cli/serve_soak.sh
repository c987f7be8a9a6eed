#!/usr/bin/env bash
# serve_soak.sh — `seqrec serve` bounded soak: a stream of distinct users, each new, hits the
# server (one POST /v1/events then one GET of their recommendations, so every one of them gets
# a cache entry with a sequence vector); the per-user cache (--cache-mb 8) fills, then evicts,
# and the server's resident memory levels off while the number of users keeps growing.
#
# The issue asks for "a million distinct users; resident memory levels off at the configured
# cache size". A million takes minutes even unsanitised, so the run is time-boxed instead:
# wrk runs SEQREC_SOAK_SECONDS (default 60: ~210,000 users unsanitised on 2 cores, ~110,000
# under ASan alone but only 42,000 beside the suite's other tests under `ctest -j2`, 4.7 × an
# 8 MiB cache: so under ASan the cache is 4 MiB (--cache-mb), half the users fill it; running
# longer instead let RSS grow past the bound under ASan, +8.4 MiB over 79,000 users in 150 s
# (the sanitizer's allocator and per-thread quarantines of 64 HTTP threads, which is why they
# are 16 KiB here; 4 MiB cache, 60 s, alone: +6.1 MiB over 35,000 users); set it higher for a longer soak: 240 s served 783,000 users, RSS flat at 32 MiB)
# and the test asserts on what that many users show:
#   - users served ≥ 5 × the most users the cache ever held, with evictions (the cache is
#     overrun many times, not just filled);
#   - seqrec_cache_bytes never above the limit (8 MiB);
#   - over the second half of the run RSS grows by less than the cache size (8 MiB; measured
#     +0.4 MiB unsanitised, +2.7 MiB under ASan: see RSS_SLACK_MIB) while the users served keep
#     growing about linearly (≥ 35 % of them arrive in that half);
#   - every request answered 2xx (at most 0.1 % non-2xx or socket errors), and SIGTERM → exit 0.
# A table (seconds, users so far, RSS MiB, cache MiB) is printed from 1-second samples of
# /proc/PID/status VmRSS and GET /metrics. The event store (SQLite) grows on disk meanwhile:
# that is the kernel's page cache, not the server's RSS; SQLite's own page caches (one per
# connection, 1 writer + 8 readers, 2 MiB each by default) are in RSS and are bounded.
#
# Needs wrk (skips, exit 77, without it) and python3. Prints what it checks; exit 1 on failure.
set -euo pipefail
BIN=${SEQREC_BIN:?}
SRC=${SEQREC_SOURCE:-$(cd "$(dirname "$0")/../.." && pwd)}
SECONDS_RUN=${SEQREC_SOAK_SECONDS:-}
CACHE_MB=8
command -v wrk > /dev/null || { echo "SKIP: wrk not found (apt-get install wrk)"; exit 77; }
command -v python3 > /dev/null || { echo "SKIP: python3 not found"; exit 77; }
T=$(mktemp -d)
SRV=""
cleanup() {
  if [ -n "$SRV" ] && kill -0 "$SRV" 2> /dev/null; then kill -KILL "$SRV" 2> /dev/null || true; fi
  rm -rf "$T"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
cd "$T"

# An AddressSanitizer build keeps freed blocks in a quarantine (256 MiB by default) before
# reusing them: its RSS climbs for as long as that fills, whatever the server does. A small
# quarantine keeps use-after-free detection and lets RSS level off within the run (options
# already in ASAN_OPTIONS come after ours and win).
# (grep -c reads all of nm's output: grep -q would stop early and fail the pipe under pipefail)
if { nm "$BIN" 2> /dev/null; nm -D "$BIN" 2> /dev/null; } | grep -c __asan_init > /dev/null; then
  export ASAN_OPTIONS="quarantine_size_mb=8:thread_local_quarantine_size_kb=16${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
  echo "# AddressSanitizer build: ASAN_OPTIONS=$ASAN_OPTIONS"
  CACHE_MB=4
fi
SECONDS_RUN=${SECONDS_RUN:-60}

# ---- data: 2,000 users, 1,000 items; a small one-epoch SASRec (quality is not measured) ----
"$BIN" generate -q --users 2000 --items 1000 --events 40000 --seed 5 -o log.csv
"$BIN" ingest -q log.csv -o data.sqd
"$BIN" train -q data.sqd --model sasrec --set epochs=1 -o m.sqm
# the catalogue's item ids, from the log (column item_id)
ITEMS=$(awk -F, 'NR > 1 { print $2 }' log.csv | sort -u | paste -sd, -)
[ -n "$ITEMS" ] || fail "no item ids in the generated log"

# ---- the server ----
# --no-sync: the store does not fsync. Only because fsync throughput is not what this test
# measures (it would cap the posts, hence the users a second, at the disk's flush rate);
# durability is tests/serve/serve_crash.py's subject.
"$BIN" serve m.sqm data.sqd --store "$T/events.db" --port 0 --cache-mb "$CACHE_MB" --no-sync \
  --quiet > server.out 2> server.err &
SRV=$!
PORT=""
for _ in $(seq 600); do # 60 s: a sanitised build starts slowly
  PORT=$(sed -n 's/.*listening on http:\/\/[^ ]*:\([0-9][0-9]*\).*/\1/p' server.out | head -1)
  [ -n "$PORT" ] && break
  kill -0 "$SRV" 2> /dev/null || fail "the server exited before listening: $(tail -5 server.err)"
  sleep 0.1
done
[ -n "$PORT" ] || fail "the server printed no 'listening on' line within 60 s"
echo "# server pid $SRV on port $PORT, --cache-mb $CACHE_MB, wrk for $SECONDS_RUN s"

# ---- load: every request is for a new user ----
cat > soak.lua <<'LUA'
-- Thread t posts one event for soak-t-1, soak-t-2, … (an item of the catalogue) and, LAG users
-- behind, asks the recommendations of each of them (so the GET comes after its POST was
-- answered, almost always, and finds the event): each user is posted once and asked once.
local threads, count = {}, 0
function setup(thread)
  count = count + 1
  thread:set("tid", count)
  table.insert(threads, thread)
end
function init(args)
  items = {}
  for it in string.gmatch(os.getenv("SOAK_ITEMS"), "[^,]+") do items[#items + 1] = it end
  lag = tonumber(os.getenv("SOAK_LAG"))
  posted, asked, flip = 0, 0, false
end
function request()
  flip = not flip
  if flip or posted - asked <= lag then
    posted = posted + 1
    local body = string.format('{"user":"soak-%d-%d","item":"%s","behaviour":"view"}', tid,
                               posted, items[(posted * 7919 + tid) % #items + 1])
    return wrk.format("POST", "/v1/events", {["Content-Type"] = "application/json"}, body)
  end
  asked = asked + 1
  return wrk.format("GET", string.format("/v1/users/soak-%d-%d/recommendations?k=10", tid, asked))
end
function done(summary, latency, requests)
  local p, a = 0, 0
  for _, t in ipairs(threads) do
    p = p + (tonumber(t:get("posted")) or 0)
    a = a + (tonumber(t:get("asked")) or 0)
  end
  io.write(string.format("SOAK requests=%d non2xx=%d connect=%d read=%d write=%d timeout=%d " ..
                         "posted=%d asked=%d p50_ms=%.2f p99_ms=%.2f\n",
                         summary.requests, summary.errors.status, summary.errors.connect,
                         summary.errors.read, summary.errors.write, summary.errors.timeout, p, a,
                         latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
LUA

cat > soak.py <<'PY'
"""Runs wrk, samples the server every second, prints the table and checks the curve."""
import json, os, re, subprocess, sys, time, urllib.request

pid, port, seconds, cache_mb = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
limit = cache_mb << 20
# RSS growth allowed over the second half: the configured cache size (8 MiB). Measured on this
# 2-core machine (60 s runs unless said): the unsanitised server goes from ~15 MiB idle to
# 30-37 MiB within the first 5-10 s (the 8 MiB of cache entries; SQLite's page caches, 9
# connections × ≤ 2 MiB, filling as the store grows; malloc arenas of 16 HTTP threads and the
# scorers) and then grows by +0.4 MiB over the second half (107,000 more users; a 240 s run:
# +0.4 MiB over 376,000 users, 783,000 in all, RSS 32.0 MiB at the end). Under AddressSanitizer
# (with the small quarantine above) RSS levels at ~70 MiB and the second half adds +2.4 to
# +2.7 MiB (~50 bytes a user: the sanitizer's allocator, not the server). A leak of what a user
# costs the server (a ~900-byte cache entry not freed on eviction, a view or a response kept)
# adds 80-90 MiB a 100,000 users and fails this by far; leaks under ~80 bytes a user (a lost
# key alone) are below what a 60 s run can tell from the bounded caches still filling.
RSS_SLACK_MIB = 8.0
METRICS = ("seqrec_cache_bytes", "seqrec_cache_users", "seqrec_cache_evictions_total",
           "seqrec_cache_misses_total", "seqrec_cache_hits_total", "seqrec_events_posted_total",
           "seqrec_cold_start_total", "seqrec_cache_limit_bytes")
failed = []


def check(what, cond, details=""):
    print(("ok - %s" if cond else "FAIL - %s") % what + ("" if cond or not details else ": " + details),
          flush=True)
    if not cond:
        failed.append(what)


def rss_kib():
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def metrics():
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=10) as r:
        text = r.read().decode()
    out = {}
    for line in text.splitlines():
        m = re.match(r"^([a-z_]+) (\S+)$", line)
        if m and m.group(1) in METRICS:
            out[m.group(1)] = float(m.group(2))
    return out


def sample(t0):
    m = metrics()
    m["t"] = time.time() - t0
    m["rss"] = rss_kib() / 1024.0
    return m


t0 = time.time()
samples = [sample(t0)]
env = dict(os.environ)
wrk = subprocess.Popen(["wrk", "-t2", "-c16", "-d%ds" % seconds, "--timeout", "10s", "-s", "soak.lua",
                        "http://127.0.0.1:%d/" % port], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, env=env)
t0 = time.time()
samples = [dict(samples[0], t=0.0)]
next_t = t0 + 1.0
died = None
while wrk.poll() is None:
    time.sleep(max(0.0, next_t - time.time()))
    next_t += 1.0
    try:
        samples.append(sample(t0))
    except Exception as e:  # the server died or stopped answering
        died = "%s: %s" % (type(e).__name__, e)
        wrk.kill()
        break
out = wrk.communicate()[0].decode(errors="replace")
if died is None:
    try:
        samples.append(sample(t0))
    except Exception as e:
        died = "%s: %s" % (type(e).__name__, e)
print(out.rstrip(), flush=True)
if died is not None:
    try:
        err = open("server.err", errors="replace").read()[-1500:]
    except OSError:
        err = ""
    check("the server answers GET /metrics throughout the run", False,
          "at %.0f s: %s; server stderr ends:\n%s" % (time.time() - t0, died, err))
m = re.search(r"SOAK (.*)", out)
w = dict(kv.split("=") for kv in m.group(1).split()) if m else {}
w = {k: float(v) for k, v in w.items()}

users = lambda s: s.get("seqrec_cache_misses_total", 0.0)  # each new user loads once
print("#  seconds  users so far  RSS MiB  cache MiB  cache users  evictions")
for s in samples:
    print("# %8.1f  %12d  %7.1f  %9.2f  %11d  %9d" % (
        s["t"], users(s), s["rss"], s.get("seqrec_cache_bytes", 0) / 2**20,
        s.get("seqrec_cache_users", 0), s.get("seqrec_cache_evictions_total", 0)), flush=True)

last = samples[-1]
served = users(last)
peak_users = max(s.get("seqrec_cache_users", 0) for s in samples)
peak_bytes = max(s.get("seqrec_cache_bytes", 0) for s in samples)
check("wrk ran and reported its counts", bool(w), out[-500:])
check("the server counts a cache limit of %d MiB" % cache_mb,
      last.get("seqrec_cache_limit_bytes") == limit, str(last.get("seqrec_cache_limit_bytes")))
# distinct: each user is asked once, so a cache hit would mean a repeated id
check("users served are distinct (cache hits %d ≤ 0.1 %% of %d misses)"
      % (last.get("seqrec_cache_hits_total", 0), served),
      last.get("seqrec_cache_hits_total", 0) <= 0.001 * served + 16)
check("the cache evicted (%d evictions)" % last.get("seqrec_cache_evictions_total", 0),
      last.get("seqrec_cache_evictions_total", 0) > 0)
check("distinct users served %d ≥ 5 × the peak cache users %d (%.1f ×)"
      % (served, peak_users, served / peak_users if peak_users else 0),
      peak_users > 0 and served >= 5 * peak_users)
check("seqrec_cache_bytes never above %d MiB (peak %.3f MiB)" % (cache_mb, peak_bytes / 2**20),
      peak_bytes <= limit)
# the second half of the run: the sample nearest to half the last sample's time
mid = min(samples, key=lambda s: abs(s["t"] - last["t"] / 2))
grow_rss = last["rss"] - mid["rss"]
grow_users = served - users(mid)
check("users keep growing about linearly: %d of the %d arrive in the second half (≥ 35 %%)"
      % (grow_users, served), served > 0 and grow_users >= 0.35 * served)
check("RSS levels off: %.1f → %.1f MiB over the second half (%+.1f MiB, bound %.0f MiB), "
      "for %d more users" % (mid["rss"], last["rss"], grow_rss, RSS_SLACK_MIB, grow_users),
      grow_rss < RSS_SLACK_MIB)
print("# RSS per user over the second half: %.1f bytes; whole run: %.1f → %.1f MiB (peak %.1f)"
      % (grow_rss * 2**20 / grow_users if grow_users else 0, samples[0]["rss"], last["rss"],
         max(s["rss"] for s in samples)), flush=True)
bad = sum(w.get(k, 0) for k in ("non2xx", "connect", "read", "write", "timeout"))
check("every request answered 2xx: %d requests, %d non-2xx or socket errors (≤ 0.1 %%)"
      % (w.get("requests", 0), bad), w.get("requests", 0) > 0 and bad <= 0.001 * w["requests"])
print("# %d requests in %.0f s (%.0f/s), wrk p50 %.2f ms p99 %.2f ms; %d events posted, %d cold "
      "starts (a GET that overtook its POST)" % (
          w.get("requests", 0), last["t"], w.get("requests", 0) / max(last["t"], 1),
          w.get("p50_ms", 0), w.get("p99_ms", 0), last.get("seqrec_events_posted_total", 0),
          last.get("seqrec_cold_start_total", 0)), flush=True)
with open("soak.json", "w") as f:
    json.dump({"samples": samples, "wrk": w}, f)
sys.exit(1 if failed else 0)
PY

rc=0
SOAK_ITEMS=$ITEMS SOAK_LAG=16 python3 soak.py "$SRV" "$PORT" "$SECONDS_RUN" "$CACHE_MB" || rc=$?

# ---- SIGTERM: finishes in-flight requests, commits, exits 0 ----
kill -TERM "$SRV" 2> /dev/null || true
for _ in $(seq 300); do kill -0 "$SRV" 2> /dev/null || break; sleep 0.1; done
if kill -0 "$SRV" 2> /dev/null; then
  echo "FAIL - the server is still running 30 s after SIGTERM"
  rc=1
else
  src=0
  wait "$SRV" || src=$?
  SRV=""
  if [ "$src" = 0 ]; then echo "ok - SIGTERM: the server exits 0"; else
    echo "FAIL - SIGTERM: the server exits $src: $(tail -5 server.err)"
    rc=1
  fi
fi
echo "# event store on disk: $(du -sh "$T"/events.db* 2> /dev/null | awk '{print $2 ": " $1}' | paste -sd' ' -)"
[ "$rc" = 0 ] && echo "serve_soak: ok" || echo "serve_soak: FAILED" >&2
exit "$rc"
