// charts.js — line, bar and point charts on uPlot. Every chart registers itself in
// window.__seqrec.charts ({title, points, colors}) and marks its element with data-points (the
// values it drew) and data-colors (its series' colours), which the browser tests check against
// the canvas's pixels.
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import { el } from "./dom.js";

export const COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf",
                       "#8c564b", "#e377c2", "#bcbd22", "#7f7f7f"];

window.__seqrec = window.__seqrec || { charts: [] };

function register(title, box, data, colors) {
  let points = 0;
  for (const s of data.slice(1)) for (const v of s) if (v !== null && v !== undefined) points++;
  box.dataset.points = String(points);
  box.dataset.colors = colors.join(",");
  box.dataset.title = title;
  window.__seqrec.charts.push({ title, points, colors });
}

function width(box) {
  return Math.max(280, box.clientWidth || 600);
}

// Keeps a chart as wide as its element (grid cells change width as charts are added).
const resizer = new ResizeObserver((entries) => {
  for (const e of entries) {
    const u = e.target.uplot;
    const w = width(e.target);
    if (u && Math.abs(u.width - w) > 2) u.setSize({ width: w, height: u.height });
  }
});

// A chart in a new element appended to parent: opts.x (numbers), opts.series [{label, values}],
// opts.kind "line" | "bars" | "points", opts.time (x is UTC seconds), opts.xLabels (category
// names for bars), opts.xName, opts.yName, opts.spanGaps (join a line across missing values:
// validation runs every few epochs).
export function chart(parent, title, opts) {
  const box = el("div.chart");
  parent.append(box);
  const kind = opts.kind || "line";
  const colors = opts.series.map((s, i) => s.color || COLORS[i % COLORS.length]);
  const data = [opts.x, ...opts.series.map((s) => s.values)];
  const series = [
    { label: opts.xName || "x" },
    ...opts.series.map((s, i) => {
      const c = colors[i];
      if (kind === "bars")
        return { label: s.label, stroke: c, fill: c, width: 0,
                 paths: uPlot.paths.bars({ size: [0.7, 60], align: 0 }), points: { show: false } };
      if (kind === "points")
        return { label: s.label, stroke: c, fill: c, width: 0, paths: () => null,
                 points: { show: true, size: 7, stroke: c, fill: c } };
      return { label: s.label, stroke: c, width: 2, spanGaps: !!opts.spanGaps,
               points: { show: opts.x.length < 30, size: 5, stroke: c, fill: c } };
    }),
  ];
  const xAxis = { label: opts.xName, stroke: "#444", grid: { stroke: "#eee" } };
  if (opts.xInt) xAxis.incrs = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000];
  if (opts.xLabels) {
    xAxis.values = (u, ticks) => ticks.map((t) => opts.xLabels[t] ?? "");
    const step = Math.ceil(opts.xLabels.length / 20);
    xAxis.splits = () => opts.xLabels.map((_, i) => i).filter((i) => i % step === 0);
    xAxis.rotate = opts.xLabels.length > 8 ? -40 : 0;
    xAxis.size = opts.xLabels.length > 8 ? 70 : 40;
  }
  const yAxis = { label: opts.yName, stroke: "#444", grid: { stroke: "#eee" }, size: 60 };
  if (opts.yLabels) {
    yAxis.values = (u, ticks) => ticks.map((t) => opts.yLabels[t] ?? "");
    yAxis.splits = () => opts.yLabels.map((_, i) => i);
    yAxis.size = 80;
  }
  const scales = { x: { time: !!opts.time } };
  if (opts.xLabels) scales.x.range = [-0.5, opts.xLabels.length - 0.5];
  if (opts.yLabels) scales.y = { range: [-0.5, opts.yLabels.length - 0.5] };
  else if (kind === "bars") scales.y = { range: (u, lo, hi) => [0, hi > 0 ? hi * 1.05 : 1] };
  const u = new uPlot(
    { title, width: width(box), height: opts.height || 240, series, axes: [xAxis, yAxis],
      scales, legend: { show: opts.series.length > 1 || !!opts.legend }, cursor: { drag: { x: true, y: false } } },
    data, box);
  register(title, box, data, colors);
  box.uplot = u;
  resizer.observe(box);
  return box;
}

// Forgets the charts of the page being left (the tests look at the current page's only).
export function resetCharts() {
  window.__seqrec.charts = [];
}
