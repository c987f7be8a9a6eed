// data.js — the Data page: the dataset's shape (GET /v1/dashboard/dataset).
import { getDataset } from "../api.js";
import { chart } from "../charts.js";
import { date, el, fmt, section, table } from "../dom.js";

function cards(s) {
  const c = (label, value) => el("div.card", el("div.value", value), el("div.label", label));
  return el("div.cards",
    c("events", fmt(s.events)), c("users", fmt(s.users)), c("items", fmt(s.items)),
    c("density", fmt(s.density, 5)),
    c("events per user", fmt(s.sequence_length.mean, 1)),
    c("time", s.real_time ? `${date(s.time_min).slice(0, 10)} … ${date(s.time_max).slice(0, 10)}`
                          : "file order"));
}

function cleaning(ing) {
  const r = ing && ing.report;
  if (!r) return el("p.note", "this dataset has no ingest report");
  const rows = [["rows read", fmt(r.rows_read)], ["header lines", fmt(r.header_lines)],
                ["blank lines", fmt(r.blank_lines)]];
  for (const [why, n] of Object.entries(r.rejected || {}))
    rows.push([`rejected: ${why.replaceAll("_", " ")}`, fmt(n)]);
  rows.push([`k-core: events removed (${fmt(r.kcore_rounds)} rounds)`, fmt(r.kcore_events)],
            ["k-core: users removed", fmt(r.kcore_users)],
            ["k-core: items removed", fmt(r.kcore_items)], ["kept", fmt(r.kept)],
            ["side rows read", fmt(r.side_rows)], ["side rows rejected", fmt(r.side_rejected)],
            ["side rows unmatched", fmt(r.side_unmatched)]);
  const inputs = (ing.inputs || []).join(", ");
  return el("div", table(["", "rows"], rows, "narrow"),
            inputs ? el("p.note", `inputs: ${inputs}`) : null);
}

export async function dataPage(root) {
  const d = await getDataset();
  const s = d.stats;
  root.append(el("h1", "Data"), cards(s));
  const mix = el("div.grid");
  root.append(section("Behaviours and scenes", mix));
  const beh = Object.entries(s.behaviours);
  chart(mix, "Behaviour mix (events)", { kind: "bars", x: beh.map((_, i) => i),
        xLabels: beh.map(([k]) => k), series: [{ label: "events", values: beh.map(([, v]) => v) }] });
  const sc = Object.entries(s.scenes || {});
  if (sc.length > 1)
    chart(mix, "Scenes (events)", { kind: "bars", x: sc.map((_, i) => i),
          xLabels: sc.map(([k]) => k || "(none)"),
          series: [{ label: "events", values: sc.map(([, v]) => v) }] });
  const shape = el("div.grid");
  root.append(section("Sequences and activity", shape));
  const h = d.sequence_lengths;
  chart(shape, "Sequence length (users per bin)", { kind: "bars", x: h.lo.map((_, i) => i),
        xLabels: h.lo.map((lo, i) => (lo === h.hi[i] ? `${lo}` : `${lo}–${h.hi[i]}`)),
        xName: "events per user", series: [{ label: "users", values: h.users }] });
  const a = d.activity;
  chart(shape, a.real_time ? "Activity over time (events per bin)" : "Activity (events per bin of file order)",
        { x: a.events.map((_, i) => a.start + i * a.width), time: a.real_time,
          series: [{ label: "events", values: a.events }] });
  const top = d.top_items;
  const topChart = el("div");
  root.append(section("Top items", el("div.grid", topChart,
    table(["item", "events", "users"], top.map((t) => [
      el("a", { href: `#items/${encodeURIComponent(t.item)}` }, t.item), fmt(t.events),
      fmt(t.users)]), "narrow"))));
  chart(topChart, "Top items (events)", { kind: "bars",
        x: top.map((_, i) => i), xLabels: top.map((t) => t.item),
        series: [{ label: "events", values: top.map((t) => t.events) }] });
  const sl = s.sequence_length;
  root.append(section("Cleaning report of the ingest", cleaning(s.ingest),
    el("p.note", `sequence lengths: min ${sl.min}, median ${sl.p50}, p90 ${sl.p90}, p99 ${sl.p99}, max ${sl.max}`),
    (s.context_fields || []).length ? el("p.note", `context fields: ${s.context_fields.join(", ")}`) : null));
}
