// training.js — the Training page: the runs of the metrics logs (GET /v1/dashboard/runs) as
// curves per epoch, every run overlaid: loss, validation NDCG@10 and HR@10, per-task losses
// and validation metrics, seconds per epoch; and the runs' summaries.
import { getJSON } from "../api.js";
import { chart, COLORS } from "../charts.js";
import { el, fmt, note, section, table } from "../dom.js";

// Epochs 1..max as x, one series per (run, value) where the value exists: get(epochLine).
function curves(runs, get, label) {
  const maxEp = Math.max(0, ...runs.flatMap((r) => r.epochs.map((e) => e.epoch)));
  const x = Array.from({ length: maxEp }, (_, i) => i + 1);
  const series = [];
  for (const r of runs) {
    const v = x.map(() => null);
    let any = false;
    for (const e of r.epochs) {
      const y = get(e);
      if (typeof y === "number" && Number.isFinite(y)) {
        v[e.epoch - 1] = y;
        any = true;
      }
    }
    // a run keeps its colour on every chart
    if (any) series.push({ label: label ? `${r.name} ${label}` : r.name, values: v,
                           color: COLORS[r.colour % COLORS.length] });
  }
  return { x, series };
}

// Names of the keys found under obj[key] in any epoch of any run (task names, metric names).
function keysOf(runs, get) {
  const ks = new Set();
  for (const r of runs) for (const e of r.epochs) for (const k of Object.keys(get(e) || {})) ks.add(k);
  return [...ks];
}

export async function trainingPage(root) {
  const { runs, errors } = await getJSON("/v1/dashboard/runs");
  root.append(el("h1", "Training"));
  for (const e of errors) root.append(el("p.error", e));
  if (!runs.length) {
    root.append(note("no runs: start the server with --metrics-log FILE (the file `seqrec train --metrics-log` writes)"));
    return;
  }
  const it = runs.filter((r) => r.epochs.length);
  it.forEach((r, i) => { r.colour = i; });
  const sel = new Set(it.map((r) => r.run + r.file));
  const chartsBox = el("div.grid");
  const draw = () => {
    chartsBox.replaceChildren();
    window.__seqrec.charts = [];
    const rs = it.filter((r) => sel.has(r.run + r.file));
    const add = (title, c, yName) => {
      if (c.series.length) chart(chartsBox, title, { x: c.x, series: c.series, xName: "epoch", xInt: true, yName, legend: true, spanGaps: true });
    };
    add("Training loss", curves(rs, (e) => e.loss), "loss");
    add("Validation NDCG@10", curves(rs, (e) => e.valid && e.valid["ndcg@10"]), "NDCG@10");
    add("Validation HR@10", curves(rs, (e) => e.valid && e.valid["hr@10"]), "HR@10");
    for (const t of keysOf(rs, (e) => e.task_loss))
      add(`Task loss: ${t}`, curves(rs, (e) => e.task_loss && e.task_loss[t]), "loss");
    for (const t of keysOf(rs, (e) => e.valid_tasks))
      for (const m of keysOf(rs, (e) => e.valid_tasks && e.valid_tasks[t]))
        add(`Validation ${t}: ${m}`, curves(rs, (e) => e.valid_tasks && e.valid_tasks[t] && e.valid_tasks[t][m]), m);
    add("Seconds per epoch (training)", curves(rs, (e) => e.seconds), "s");
  };
  if (it.length) {
    const picks = el("div.picks", it.map((r) => el("label",
      el("input", { type: "checkbox", checked: true, onchange: (ev) => {
        ev.target.checked ? sel.add(r.run + r.file) : sel.delete(r.run + r.file);
        draw();
      } }), ` ${r.name}`, el("span.note", ` ${r.file}`))));
    root.append(section("Curves (runs overlaid)", picks, chartsBox));
    draw();
  }
  const rows = runs.map((r) => {
    const s = r.summary || {};
    const v = s.valid || {};
    return [r.name, r.output || "–", fmt(s.epochs ?? r.epochs.length), fmt(s.best_epoch),
            fmt(v["ndcg@10"]), fmt(v["hr@10"]), fmt(s.seconds, 2), r.file];
  });
  root.append(section("Runs", table(["run", "model file", "epochs", "best epoch",
    "valid NDCG@10", "valid HR@10", "seconds", "log"], rows)));
}
