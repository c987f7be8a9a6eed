"""servelib.py — helpers shared by the black-box tests of `seqrec serve` (docs/serve.md).

Python 3 standard library only. The tests read SEQREC_BIN (the built binary) and SEQREC_SOURCE
(the source tree); SEQREC_TEST_TMP, when set (the .sh wrappers set it), is the directory to
work in, otherwise a temporary one is made and removed at exit.

    env = Env()                          # binary, work dir, CLI runner
    env.make_data()                      # generate -> ingest -> train (sasrec, itemknn)
    srv = Server(env, [model, data, "--store", db, ...]).start()   # waits for "listening on"
    r = srv.get("/healthz")              # Resp: status, headers, body, json
    srv.stop()                           # SIGTERM, returns the exit code
    srv.kill()                           # SIGKILL
    chk = Checker("serve_api")           # ok - / FAIL - lines, exit code
"""

import atexit
import csv
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.parse

START_TIMEOUT = 30.0    # seconds for the server to print its listening line
HTTP_TIMEOUT = 30.0     # seconds for one HTTP exchange
STOP_TIMEOUT = 30.0     # seconds for a SIGTERM'd server to exit

LISTEN_RE = re.compile(r"listening on http://(\[[^\]]*\]|[^:\s/]+):(\d+)")

_live_servers = []


def _kill_leftovers():
    for s in list(_live_servers):
        try:
            s.kill()
        except Exception:
            pass


atexit.register(_kill_leftovers)


# ============================================ checks ============================================

class Checker:
    """Prints `ok - what` or `FAIL - what: details`; keeps going; exit code at the end."""

    def __init__(self, name):
        self.name = name
        self.failed = []
        self.passed = 0
        self.t0 = time.time()

    def ok(self, what):
        self.passed += 1
        print("ok - %s" % what, flush=True)

    def fail(self, what, details=""):
        self.failed.append(what)
        details = str(details)
        if len(details) > 1500:
            details = details[:1500] + "…"
        print("FAIL - %s: %s" % (what, details), flush=True)

    def check(self, what, cond, details=""):
        if cond:
            self.ok(what)
        else:
            self.fail(what, details)
        return bool(cond)

    def run(self, what, fn, *args, **kw):
        """Runs fn; an exception is a failure of `what` (the test goes on)."""
        try:
            return fn(*args, **kw)
        except Exception as e:  # noqa: BLE001 — every error is a reported failure
            tb = traceback.format_exc(limit=3)
            self.fail(what, "%s: %s\n%s" % (type(e).__name__, e, tb))
            return None

    def note(self, text):
        print("# %s" % text, flush=True)

    def finish(self):
        took = time.time() - self.t0
        if self.failed:
            print("# %s: %d passed, %d FAILED (%.1f s):" % (self.name, self.passed,
                                                          len(self.failed), took), flush=True)
            for f in self.failed:
                print("#   %s" % f, flush=True)
            return 1
        print("# %s: all %d checks passed (%.1f s)" % (self.name, self.passed, took), flush=True)
        return 0


def watchdog(seconds, name):
    """Ends the test with a failure (killing its servers) if it runs longer than `seconds`, so a
    hung server gives a report instead of a CTest timeout."""
    def fire():
        print("FAIL - %s: still running after %d s (a request or the server hangs); giving up"
              % (name, seconds), flush=True)
        _kill_leftovers()
        os._exit(1)
    t = threading.Timer(seconds, fire)
    t.daemon = True
    t.start()
    return t


# ========================================= environment =========================================

class Env:
    """The binary, a work directory and the CLI."""

    def __init__(self):
        here = os.path.dirname(os.path.abspath(__file__))
        self.source = os.environ.get("SEQREC_SOURCE") or os.path.dirname(os.path.dirname(here))
        self.bin = os.environ.get("SEQREC_BIN") or os.path.join(self.source, "build", "seqrec")
        if not (os.path.isfile(self.bin) and os.access(self.bin, os.X_OK)):
            raise SystemExit("SEQREC_BIN is not an executable: %s" % self.bin)
        tmp = os.environ.get("SEQREC_TEST_TMP")
        if tmp:
            self.dir = tmp
            os.makedirs(tmp, exist_ok=True)
        else:
            self.dir = tempfile.mkdtemp(prefix="seqrec-serve-")
            atexit.register(shutil.rmtree, self.dir, True)
        self.environ = dict(os.environ)
        self.environ.setdefault("OMP_WAIT_POLICY", "passive")
        self.environ.setdefault("OMP_NUM_THREADS", "1")

    def path(self, *names):
        return os.path.join(self.dir, *names)

    def cli(self, *args, timeout=300, check=True):
        """Runs `seqrec args…`; returns stdout (text). Raises on a non-zero exit when check."""
        p = subprocess.run([self.bin] + [str(a) for a in args], cwd=self.dir, env=self.environ,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
        if check and p.returncode != 0:
            raise RuntimeError("seqrec %s: exit %d: %s" % (" ".join(map(str, args)), p.returncode,
                                                         p.stderr.decode(errors="replace")))
        return p.stdout.decode(errors="replace")

    def cli_json(self, *args, **kw):
        return json.loads(self.cli(*args, **kw))

    def serve_available(self):
        p = subprocess.run([self.bin, "serve", "--help"], env=self.environ,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
        return p.returncode == 0 and b"usage: seqrec serve" in p.stdout, p

    def make_data(self, users=300, items=200, events=8000, seed=3, knn=True):
        """generate -> ingest -> train; sets self.log, self.data, self.sasrec, self.knn."""
        self.log = self.path("log.csv")
        self.data = self.path("data.sqd")
        self.sasrec = self.path("sasrec.sqm")
        self.knn = self.path("knn.sqm")
        self.cli("generate", "-q", "--users", users, "--items", items, "--events", events,
                 "--seed", seed, "-o", self.log)
        self.cli("ingest", "-q", self.log, "-o", self.data)
        # small and short: a couple of seconds at most
        self.cli("train", "-q", self.data, "--model", "sasrec", "--set", "epochs=2",
                 "--set", "hidden=16", "--set", "maxlen=20", "-o", self.sasrec)
        if knn:
            self.cli("train", "-q", self.data, "--model", "itemknn", "-o", self.knn)
        return True

    def read_log(self):
        """The generated log as a list of dicts (user_id, item_id, timestamp, behaviour…)."""
        with open(self.log, newline="") as f:
            return list(csv.DictReader(f))


# ============================================= HTTP =============================================

class Resp:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers  # lower-case names
        self.body = body
        self.text = body.decode("utf-8", errors="replace")
        try:
            self.json = json.loads(self.text) if body else None
        except ValueError:
            self.json = None

    def header(self, name, default=None):
        return self.headers.get(name.lower(), default)

    def error_msg(self):
        """The "error" string of an error answer, or None."""
        if isinstance(self.json, dict) and isinstance(self.json.get("error"), str):
            return self.json["error"]
        return None

    def __repr__(self):
        t = self.text if len(self.text) < 600 else self.text[:600] + "…"
        return "HTTP %d %s" % (self.status, t)


def q(s):
    """Percent-encodes an id for a path segment."""
    return urllib.parse.quote(str(s), safe="")


def http_request(host, port, method, path, body=None, headers=None, timeout=HTTP_TIMEOUT):
    """One request on a fresh connection. body: bytes, str, or anything json.dumps takes."""
    h = {}
    if body is not None and not isinstance(body, (bytes, str)):
        body = json.dumps(body)
        h["Content-Type"] = "application/json"
    if isinstance(body, str):
        body = body.encode("utf-8")
    if headers:
        h.update(headers)
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=h)
        r = conn.getresponse()
        data = r.read()
        return Resp(r.status, {k.lower(): v for k, v in r.getheaders()}, data)
    finally:
        conn.close()


def raw_exchange(host, port, head, body_chunks=(), timeout=HTTP_TIMEOUT):
    """Sends raw bytes (head, then each chunk; a send error stops sending, since a server may
    answer and close before reading a body it refuses) and reads the answer until the server
    closes or the timeout. Returns (status or None, raw answer bytes)."""
    s = socket.create_connection((host, port), timeout=timeout)
    got = b""
    try:
        try:
            s.sendall(head)
            for c in body_chunks:
                s.sendall(c)
        except OSError:
            pass
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                b = s.recv(65536)
            except socket.timeout:
                break
            except OSError:
                break
            if not b:
                break
            got += b
            m = re.match(rb"HTTP/1\.[01] (\d{3})[^\r\n]*\r\n(.*?)\r\n\r\n", got, re.S)
            if m:
                cl = re.search(rb"(?im)^content-length:\s*(\d+)", m.group(2))
                if cl and len(got) >= m.end() + int(cl.group(1)):
                    break
    finally:
        s.close()
    m = re.match(rb"HTTP/1\.[01] (\d{3})", got)
    return (int(m.group(1)) if m else None), got


# ============================================ server ============================================

class Server:
    """One `seqrec serve` process."""

    def __init__(self, env, args, name="server"):
        self.env = env
        self.args = [str(a) for a in args]
        self.name = name
        self.proc = None
        self.died_early = False
        self.host = None
        self.port = None
        self.lines = []
        self._listening = threading.Event()
        self.stderr_path = env.path("%s.%d.stderr" % (name, int(time.time() * 1e6)))

    def start(self, timeout=START_TIMEOUT):
        """Starts the server and waits for its listening line. Raises if it exits first or does
        not print it in time (with its stderr in the message)."""
        self._stderr = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen([self.env.bin, "serve"] + self.args, cwd=self.env.dir,
                                     env=self.env.environ, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=self._stderr)
        _live_servers.append(self)
        threading.Thread(target=self._read_stdout, daemon=True).start()
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self._listening.wait(0.05):
                return self
            if self.proc.poll() is not None:
                self._listening.wait(0.5)
                if self._listening.is_set():
                    return self
                raise RuntimeError("%s exited with %s before listening; stderr: %s; stdout: %s"
                                   % (self.name, self.proc.returncode, self.stderr(),
                                      "".join(self.lines)))
        self.kill()
        raise RuntimeError("%s printed no 'listening on http://ADDR:PORT' line within %.0f s; "
                           "stdout: %r; stderr: %s" % (self.name, timeout, "".join(self.lines),
                                                       self.stderr()))

    def _read_stdout(self):
        for raw in iter(self.proc.stdout.readline, b""):
            line = raw.decode("utf-8", errors="replace")
            self.lines.append(line)
            if not self._listening.is_set():
                m = LISTEN_RE.search(line)
                if m:
                    host = m.group(1).strip("[]")
                    self.bound = host
                    self.host = "127.0.0.1" if host in ("0.0.0.0", "") else host
                    if host == "::":
                        self.host = "::1"
                    self.port = int(m.group(2))
                    self._listening.set()
        self.proc.stdout.close()

    def stderr(self):
        try:
            with open(self.stderr_path, "rb") as f:
                return f.read().decode(errors="replace")[-4000:]
        except OSError:
            return ""

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    # ---- HTTP ----
    def request(self, method, path, body=None, headers=None, timeout=HTTP_TIMEOUT):
        try:
            return http_request(self.host, self.port, method, path, body, headers, timeout)
        except OSError as e:
            # say so when the server is gone (crashed, or signalled by someone else)
            if self.proc is not None:
                try:
                    self.proc.wait(0.5)
                except subprocess.TimeoutExpired:
                    pass
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError("%s %s: %s: the server (%s) is not running: exit %s; stderr "
                                   "ends: %s" % (method, path, e, self.name, self.proc.returncode,
                                                 self.stderr()[-600:])) from e
            raise

    def get(self, path, headers=None, timeout=HTTP_TIMEOUT):
        return self.request("GET", path, None, headers, timeout)

    def post(self, path, body=None, headers=None, timeout=HTTP_TIMEOUT):
        return self.request("POST", path, body, headers, timeout)

    def put(self, path, body=None, headers=None, timeout=HTTP_TIMEOUT):
        return self.request("PUT", path, body, headers, timeout)

    def delete(self, path, headers=None, timeout=HTTP_TIMEOUT):
        return self.request("DELETE", path, None, headers, timeout)

    def raw(self, head, body_chunks=(), timeout=HTTP_TIMEOUT):
        return raw_exchange(self.host, self.port, head, body_chunks, timeout)

    # API shortcuts
    def recs(self, user, headers=None, **params):
        """GET recommendations; params become the query (None: left out)."""
        qs = urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})
        return self.get("/v1/users/%s/recommendations%s" % (q(user), "?" + qs if qs else ""),
                        headers=headers)

    def history(self, user, limit=100000):
        return self.get("/v1/users/%s/history?limit=%d" % (q(user), limit))

    def events(self, body, key=None):
        return self.post("/v1/events", body, headers=auth(key))

    def metrics(self):
        r = self.get("/metrics")
        if r.status != 200:
            raise RuntimeError("/metrics: %r" % r)
        return parse_metrics(r.text)

    # ---- stopping ----
    def stop(self, timeout=STOP_TIMEOUT):
        """SIGTERM; waits; returns the exit code (None when it had to be killed)."""
        if self.proc is None:
            return None
        self.died_early = self.proc.poll() is not None
        if self.died_early:
            print("# %s had exited (%s) before the SIGTERM; stderr ends: %s"
                  % (self.name, self.proc.returncode, self.stderr()[-600:]), flush=True)
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                return None
        self._done()
        return self.proc.returncode

    def kill(self):
        """SIGKILL, then reaps it."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(30)
        self._done()
        return self.proc.returncode

    def _done(self):
        if self in _live_servers:
            _live_servers.remove(self)
        try:
            self._stderr.close()
        except Exception:
            pass


def auth(key):
    return {"Authorization": "Bearer %s" % key} if key else None


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


# ====================================== Prometheus metrics ======================================

_SAMPLE_RE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})?\s+(\S+)(\s+-?\d+)?\s*$")
_LABEL_RE = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*,?')


class Metrics:
    """Parsed Prometheus text: samples as {(name, ((label, value), …)): float}."""

    def __init__(self, samples, bad_lines, text):
        self.samples = samples
        self.bad_lines = bad_lines
        self.text = text

    def find(self, name_re=None, **label_res):
        """Samples whose name matches name_re and, for each label_res key, whose label of that
        name matches (key "any" matches any label value)."""
        out = {}
        for (name, labels), v in self.samples.items():
            if name_re and not re.search(name_re, name):
                continue
            ld = dict(labels)
            ok = True
            for k, rx in label_res.items():
                if k == "any":
                    if not any(re.search(rx, lv) for lv in ld.values()):
                        ok = False
                elif k not in ld or not re.search(rx, ld[k]):
                    ok = False
            if ok:
                out[(name, labels)] = v
        return out

    def get(self, key, default=0.0):
        return self.samples.get(key, default)


def parse_metrics(text):
    samples, bad = {}, []
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        m = _SAMPLE_RE.match(line)
        if not m:
            bad.append(line)
            continue
        labels = []
        lab = m.group(2)
        if lab:
            inner = lab[1:-1]
            pos = 0
            while pos < len(inner):
                lm = _LABEL_RE.match(inner, pos)
                if not lm or lm.end() == pos:
                    bad.append(line)
                    break
                labels.append((lm.group(1), lm.group(2)))
                pos = lm.end()
        try:
            v = float(m.group(3))
        except ValueError:
            bad.append(line)
            continue
        samples[(m.group(1), tuple(sorted(labels)))] = v
    return Metrics(samples, bad, text)


def is_histogram_part(name):
    return name.endswith("_bucket") or name.endswith("_sum") or name.endswith("_count")


def deltas(before, after, name_re=None, **label_res):
    """{key: after − before} over the samples of `after` that match."""
    out = {}
    for key, v in after.find(name_re, **label_res).items():
        out[key] = v - before.get(key, 0.0)
    return out


def fmt_key(key):
    name, labels = key
    return "%s{%s}" % (name, ",".join('%s="%s"' % kv for kv in labels))


def histogram_problems(m):
    """Checks every histogram of m: cumulative buckets, a +Inf bucket equal to _count.
    Returns (number of histograms, list of problems)."""
    groups = {}
    for (name, labels), v in m.samples.items():
        if not name.endswith("_bucket"):
            continue
        ld = dict(labels)
        if "le" not in ld:
            continue
        le = ld.pop("le")
        base = name[:-len("_bucket")]
        groups.setdefault((base, tuple(sorted(ld.items()))), []).append((le, v))
    problems = []
    for (base, labels), buckets in groups.items():
        def lev(le):
            return float("inf") if le in ("+Inf", "Inf", "inf") else float(le)
        try:
            buckets.sort(key=lambda b: lev(b[0]))
        except ValueError:
            problems.append("%s: bad le" % base)
            continue
        vals = [v for _, v in buckets]
        if any(b > a for a, b in zip(vals[1:], vals)):
            problems.append("%s%s: buckets not cumulative %s" % (base, labels, buckets))
        if not buckets or lev(buckets[-1][0]) != float("inf"):
            problems.append("%s%s: no le=\"+Inf\" bucket" % (base, labels))
            continue
        cnt = m.samples.get((base + "_count", labels))
        if cnt is None:
            problems.append("%s%s: no _count" % (base, labels))
        elif cnt != vals[-1]:
            problems.append("%s%s: _count %s != +Inf bucket %s" % (base, labels, cnt, vals[-1]))
    return len(groups), problems
