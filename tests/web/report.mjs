// report.mjs — `seqrec report` writes one self-contained HTML file that chromium opens with the
// network off (the context offline, and any request other than the file itself refused and
// counted): no console error, no request made, every chart drawn (its data points, and pixels of
// its series' colours when the SVG is rasterised), as many charts as the command said, the
// runs and evaluation tables present. The file holds no script and no external reference.
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ART, Checker, chartPixels, cli, launch, path, watchdog } from "./weblib.mjs";

const chk = new Checker("report");
let browser = null;
watchdog(180, "report", async () => { if (browser) await browser.close(); });

cli("generate", "-q", "--users", 200, "--items", 150, "--events", 5000, "--seed", 5, "-o", path("g.csv"));
cli("ingest", "-q", path("g.csv"), "-o", path("g.sqd"));
const log = path("run.jsonl");
const small = ["--set", "hidden=16", "--set", "maxlen=20"];
cli("train", "-q", path("g.sqd"), "--model", "sasrec", "--set", "epochs=4", "--set", "valid_every=1", ...small,
    "--metrics-log", log, "-o", path("s.sqm"));
cli("train", "-q", path("g.sqd"), "--model", "sasrec", "--tasks", "next_item,click,buy", "--set", "epochs=2", ...small,
    "--metrics-log", log, "-o", path("mt.sqm"));
const evalOut = cli("eval", "-q", path("mt.sqm"), path("g.sqd"), "--json", "--bootstrap", 30);
writeFileSync(path("eval.json"), evalOut);
const html = path("report.html");
const res = JSON.parse(cli("report", log, "-o", html, "--eval-json", path("eval.json"), "--json"));
chk.check(`report --json: 2 runs, ${res.charts} charts, ${res.points} points`, res.runs === 2 && res.charts >= 6 && res.points > 0, res);

const text = readFileSync(html, "utf8");
chk.check("the file has no script", !/<script/i.test(text));
chk.check("the file references nothing outside itself (no src=, href=, url(), @import, http)",
          !/\b(src|href)\s*=|url\(|@import|https?:/i.test(text), text.match(/.{40}(\b(src|href)\s*=|url\(|@import|https?:).{40}/i));

browser = await launch();
const ctx = await browser.newContext({ offline: true, viewport: { width: 1300, height: 900 } });
const requests = [];
await ctx.route("**/*", (route) => {
  const u = route.request().url();
  if (u.startsWith("file://") && u.endsWith("/report.html")) return route.continue();
  requests.push(u);
  return route.abort();
});
const page = await ctx.newPage();
const problems = [];
page.on("console", (m) => { if (m.type() === "error") problems.push(m.text()); });
page.on("pageerror", (e) => problems.push(e.message));
await page.goto("file://" + html);
await page.waitForLoadState("load");
const charts = await chartPixels(page);
chk.check(`chromium offline shows ${charts.length} charts, as many as the command wrote`, charts.length === res.charts, charts.length);
const bad = charts.filter((c) => !(c.points > 0 && c.pixels > 0));
chk.check("each chart drew its data (points, and pixels of its series' colours)", charts.length && !bad.length, JSON.stringify(bad));
const loss = charts.find((c) => c.title === "Training loss");
chk.check("the loss chart overlays both runs (4 + 2 epochs)", loss && loss.points === 6, JSON.stringify(loss));
chk.check("the per-task charts are there", ["Task loss: click", "Task loss: buy", "Validation buy: auc"].every((t) => charts.some((c) => c.title === t)),
          charts.map((c) => c.title));
const body = await page.textContent("body");
chk.check("the runs table and the evaluation tables are there", /sasrec #1/.test(body) && /sasrec #2/.test(body) &&
          /Evaluation: /.test(body) && /\d\.\d{4} \[\d\.\d{4}, \d\.\d{4}\]/.test(body), body.slice(0, 200));
chk.check("no request left the page (the network is off)", requests.length === 0, requests);
chk.check("no console error", problems.length === 0, problems);
await page.screenshot({ path: join(ART, "report.png"), fullPage: true });
await browser.close();
browser = null;
process.exit(chk.finish());
