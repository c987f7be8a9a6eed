// models.js — the Models page: evaluations (GET /v1/dashboard/evals: `seqrec eval --json`
// results) as tables with 95 % confidence intervals, per task and per scene, and NDCG@K of
// every evaluation side by side.
import { getJSON } from "../api.js";
import { chart } from "../charts.js";
import { el, fmt, note, section, table } from "../dom.js";

const ci = (v, c) => (c ? `${fmt(v)} [${fmt(c[0])}, ${fmt(c[1])}]` : fmt(v));

function rankingTable(r) {
  const names = [...new Set(Object.keys(r.metrics).filter((k) => k.includes("@"))
    .map((k) => k.split("@")[0]))];
  const rows = r.k.map((k) => [String(k), ...names.map((n) => ci(r.metrics[`${n}@${k}`], r.ci95[`${n}@${k}`]))]);
  return table(["K", ...names], rows, "ci");
}

function tasksTable(tasks) {
  const rows = [];
  for (const [t, o] of Object.entries(tasks)) {
    const metrics = Object.keys(o).filter((k) => (typeof o[k] === "number" || o[k] === null) && k !== "n");
    const groups = [["all", o], ...Object.entries(o.scenes || {})];
    for (const m of metrics)
      for (const [g, x] of groups)
        rows.push([t, m, g, ci(x[m], x.ci95 && x.ci95[m]), fmt(x.n)]);
  }
  return table(["task", "metric", "scene", "value [95 % CI]", "n"], rows, "ci");
}

export async function modelsPage(root) {
  const { evals, errors } = await getJSON("/v1/dashboard/evals");
  root.append(el("h1", "Models"));
  for (const e of errors) root.append(el("p.error", e));
  if (!evals.length) {
    root.append(note("no evaluations: start the server with --eval-json FILE (the output of `seqrec eval --json`)"));
    return;
  }
  const box = el("div.grid");
  root.append(section("NDCG@K of every evaluation", box));
  const ks = [...new Set(evals.flatMap((e) => e.result.k))].sort((a, b) => a - b);
  chart(box, "NDCG@K (test part)", { x: ks, xName: "K", xInt: true, legend: true,
    series: evals.map((e) => ({ label: e.name, values: ks.map((k) => e.result.metrics[`ndcg@${k}`] ?? null) })) });
  chart(box, "HR@K (test part)", { x: ks, xName: "K", xInt: true, legend: true,
    series: evals.map((e) => ({ label: e.name, values: ks.map((k) => e.result.metrics[`hr@${k}`] ?? null) })) });
  for (const e of evals) {
    const r = e.result;
    root.append(section(e.name,
      el("p.note", `${r.protocol}, ${r.ranking} ranking, history ${r.history}, ${r.part} part: ` +
                   `${fmt(r.users)} users, ${fmt(r.targets)} targets; AUC ${ci(r.metrics.auc, r.ci95.auc)}`),
      rankingTable(r), r.tasks ? el("h3", "Tasks (per scene)") : null, r.tasks ? tasksTable(r.tasks) : null));
  }
}
