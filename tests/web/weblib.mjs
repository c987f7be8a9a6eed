// weblib.mjs — helpers shared by the browser tests (tests/web/*.mjs, run by run.sh): checks
// printed as `ok - …` / `FAIL - …`, the seqrec CLI, a `seqrec serve` process, chromium through
// playwright-core, and the check that a chart has drawn its data.
import { spawn, spawnSync } from "node:child_process";
import { createRequire } from "node:module";
import { join } from "node:path";

const require = createRequire(join(process.env.SEQREC_SOURCE, "web", "package.json"));
const { chromium } = require("playwright-core");

export const BIN = process.env.SEQREC_BIN;
export const TMP = process.env.SEQREC_TEST_TMP;
export const ART = process.env.SEQREC_ARTEFACTS;
export const path = (name) => join(TMP, name);

export class Checker {
  constructor(name) { this.name = name; this.failed = []; this.passed = 0; this.t0 = Date.now(); }
  ok(what) { this.passed++; console.log(`ok - ${what}`); }
  fail(what, details = "") {
    this.failed.push(what);
    console.log(`FAIL - ${what}: ${String(details).slice(0, 1500)}`);
  }
  check(what, cond, details = "") { cond ? this.ok(what) : this.fail(what, details); return !!cond; }
  finish() {
    const s = ((Date.now() - this.t0) / 1000).toFixed(1);
    if (this.failed.length) {
      console.log(`# ${this.name}: ${this.passed} passed, ${this.failed.length} FAILED (${s} s)`);
      for (const f of this.failed) console.log(`#   ${f}`);
      return 1;
    }
    console.log(`# ${this.name}: all ${this.passed} checks passed (${s} s)`);
    return 0;
  }
}

// Runs `seqrec ARGS…`; throws with its stderr when it fails.
export function cli(...args) {
  const r = spawnSync(BIN, args.map(String), { cwd: TMP, encoding: "utf8" });
  if (r.status !== 0) throw new Error(`seqrec ${args.join(" ")}: exit ${r.status}: ${r.stderr}`);
  return r.stdout;
}

// Starts `seqrec serve ARGS…` and resolves when it prints its listening line.
export function serve(args) {
  return new Promise((resolve, reject) => {
    const proc = spawn(BIN, ["serve", ...args.map(String)], { cwd: TMP, stdio: ["ignore", "pipe", "pipe"] });
    let out = "", err = "";
    const timer = setTimeout(() => { proc.kill("SIGKILL"); reject(new Error(`serve did not start: ${err}`)); }, 30000);
    proc.stderr.on("data", (d) => { err += d; });
    proc.stdout.on("data", (d) => {
      out += d;
      const m = out.match(/listening on http:\/\/([^:\s]+):(\d+)/);
      if (m) {
        clearTimeout(timer);
        resolve({ url: `http://${m[1]}:${m[2]}`, proc, stdout: () => out, stderr: () => err,
                  stop: () => new Promise((res) => { proc.once("exit", (c) => res(c)); proc.kill("SIGTERM"); }) });
      }
    });
    proc.once("exit", (c) => { clearTimeout(timer); reject(new Error(`serve exited ${c}: ${err}`)); });
  });
}

export function launch() {
  return chromium.launch({ executablePath: process.env.SEQREC_CHROMIUM, headless: true,
                           args: ["--no-sandbox", "--disable-gpu"] });
}

// Ends the test with a failure if it runs longer than `seconds` (a hung page or server).
export function watchdog(seconds, name, cleanup) {
  const t = setTimeout(async () => {
    console.log(`FAIL - ${name}: still running after ${seconds} s; giving up`);
    try { await cleanup(); } catch { /* exiting anyway */ }
    process.exit(1);
  }, seconds * 1000);
  t.unref();
}

// For every chart on the page (uPlot canvases in .chart, or inline <svg data-points>): its
// title, the data points it says it drew, and how many pixels of its series' colours the
// browser actually rendered (a canvas is read back; an SVG is rasterised onto a canvas).
export function chartPixels(page) {
  return page.evaluate(async () => {
    const near = (d, i, cols) => cols.some(([r, g, b]) =>
      Math.abs(d[i] - r) < 24 && Math.abs(d[i + 1] - g) < 24 && Math.abs(d[i + 2] - b) < 24 && d[i + 3] > 128);
    const rgb = (hex) => [1, 3, 5].map((k) => parseInt(hex.slice(k, k + 2), 16));
    const count = (ctx, w, h, cols) => {
      const d = ctx.getImageData(0, 0, w, h).data;
      let n = 0;
      for (let i = 0; i < d.length; i += 4) if (near(d, i, cols)) n++;
      return n;
    };
    const out = [];
    for (const box of document.querySelectorAll(".chart")) {
      const svg = box.querySelector("svg[data-points]");
      const host = svg || box;
      const cols = (host.dataset.colors || "").split(",").filter(Boolean).map(rgb);
      const title = box.dataset.title || (box.querySelector(".title") || {}).textContent || "?";
      const points = Number(host.dataset.points || 0);
      let pixels = 0;
      if (svg) {
        const xml = new XMLSerializer().serializeToString(svg).replace("<svg", svg.getAttribute("xmlns") ? "<svg" : '<svg xmlns="http://www.w3.org/2000/svg"');
        const img = new Image();
        img.src = "data:image/svg+xml;charset=utf-8," + encodeURIComponent(xml);
        await img.decode();
        const c = document.createElement("canvas");
        c.width = img.width; c.height = img.height;
        const ctx = c.getContext("2d");
        ctx.drawImage(img, 0, 0);
        pixels = count(ctx, c.width, c.height, cols);
      } else {
        const canvas = box.querySelector("canvas");
        if (canvas) pixels = count(canvas.getContext("2d"), canvas.width, canvas.height, cols);
      }
      out.push({ title, points, pixels });
    }
    return out;
  });
}
