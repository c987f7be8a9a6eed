// live.js — the Live page: the server's /metrics (Prometheus text) polled every second, as rates
// between polls: requests a second, latency percentiles (of the API routes: the dashboard's
// own static files and /metrics polls left out), events a second, cache hit rate; and the
// model version of each variant.
import { getText } from "../api.js";
import { chart } from "../charts.js";
import { el, fmt, section } from "../dom.js";

const WINDOW = 120; // samples kept (seconds)
const SKIP = new Set(["metrics", "static", "dashboard"]);

// Prometheus text → [{name, labels, value}].
export function parseMetrics(text) {
  const out = [];
  for (const line of text.split("\n")) {
    if (!line || line[0] === "#") continue;
    const m = line.match(/^([a-zA-Z_:][\w:]*)(\{[^}]*\})?\s+(\S+)/);
    if (!m) continue;
    const labels = {};
    for (const l of (m[2] || "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2];
    out.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return out;
}

function sample(ms) {
  const sum = (name, f = () => true) => ms.filter((m) => m.name === name && f(m.labels))
    .reduce((a, m) => a + m.value, 0);
  const api = (l) => !SKIP.has(l.route);
  const buckets = new Map(); // le → cumulative count over the API routes
  for (const m of ms)
    if (m.name === "seqrec_http_request_seconds_bucket" && api(m.labels)) {
      const le = m.labels.le === "+Inf" ? Infinity : Number(m.labels.le);
      buckets.set(le, (buckets.get(le) || 0) + m.value);
    }
  return {
    t: Date.now() / 1000,
    requests: sum("seqrec_http_requests_total", api),
    events: sum("seqrec_events_posted_total"),
    hits: sum("seqrec_cache_hits_total"),
    misses: sum("seqrec_cache_misses_total"),
    buckets: [...buckets.entries()].sort((a, b) => a[0] - b[0]),
    versions: ms.filter((m) => m.name === "seqrec_model_version"),
    stored: sum("seqrec_events_stored"),
    uptime: sum("seqrec_uptime_seconds"),
  };
}

// The q-quantile of the requests between two samples (the upper bound of its bucket), ms.
function quantile(a, b, q) {
  const d = b.buckets.map(([le, c], i) => [le, c - (a.buckets[i] ? a.buckets[i][1] : 0)]);
  const total = d.length ? d[d.length - 1][1] : 0;
  if (!(total > 0)) return null;
  for (const [le, c] of d) if (c >= q * total) return Number.isFinite(le) ? le * 1000 : null;
  return null;
}

export async function livePage(root) {
  root.append(el("h1", "Live"));
  const cards = el("div.cards");
  const box = el("div.grid");
  root.append(cards, section("The last two minutes (one point a second)", box));
  const series = { t: [], rps: [], p50: [], p90: [], p99: [], eps: [], hit: [] };
  let prev = null;
  let stopped = false;
  const tick = async () => {
    let s;
    try {
      s = sample(parseMetrics(await getText("/metrics")));
    } catch (e) {
      cards.replaceChildren(el("p.error", String(e.message || e)));
      return;
    }
    if (stopped) return;
    if (prev) {
      const dt = Math.max(1e-3, s.t - prev.t);
      const dh = s.hits - prev.hits, dm = s.misses - prev.misses;
      series.t.push(s.t);
      series.rps.push((s.requests - prev.requests) / dt);
      series.eps.push((s.events - prev.events) / dt);
      series.hit.push(dh + dm > 0 ? dh / (dh + dm) : null);
      for (const [k, q] of [["p50", 0.5], ["p90", 0.9], ["p99", 0.99]]) series[k].push(quantile(prev, s, q));
      for (const k of Object.keys(series)) if (series[k].length > WINDOW) series[k].shift();
    }
    prev = s;
    const card = (label, value) => el("div.card", el("div.value", value), el("div.label", label));
    const ratio = s.hits + s.misses > 0 ? s.hits / (s.hits + s.misses) : null;
    cards.replaceChildren(
      ...s.versions.map((v) => card(`model version (${v.labels.variant}, ${v.labels.kind})`, fmt(v.value))),
      card("events stored", fmt(s.stored)), card("cache hit rate (since start)", ratio === null ? "–" : `${(100 * ratio).toFixed(1)} %`),
      card("uptime", `${fmt(s.uptime, 0)} s`));
    if (series.t.length < 1) return;
    box.replaceChildren();
    window.__seqrec.charts = [];
    // a chart with nothing to draw yet (no request in the window) says so instead
    const draw = (title, opts, empty) => {
      if (opts.series.some((x) => x.values.some((v) => v !== null))) chart(box, title, { x: series.t, time: true, ...opts });
      else box.append(el("div.empty", el("h3", title), el("p.note", empty)));
    };
    draw("Requests a second (API routes)", { series: [{ label: "requests/s", values: series.rps }] }, "");
    draw("Latency percentiles (ms, API routes)", { legend: true, series: [{ label: "p50", values: series.p50 },
      { label: "p90", values: series.p90 }, { label: "p99", values: series.p99 }] }, "no API request in the last two minutes");
    draw("Events a second", { series: [{ label: "events/s", values: series.eps }] }, "");
    draw("Cache hit rate", { series: [{ label: "hit rate", values: series.hit }] }, "no recommendation request in the last two minutes");
  };
  await tick();
  const timer = setInterval(tick, 1000);
  return () => { stopped = true; clearInterval(timer); };
}
