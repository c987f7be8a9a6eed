// dashboard.mjs — the web dashboard in chromium (headless) against `seqrec serve` on a generated
// log with a SASRec model, a popularity model and a multi-task SASRec (their metrics log and
// evaluations given with --metrics-log and --eval-json). Every page loads with no console error
// and no failed request; each chart has drawn its data (its data points, and pixels of its
// series' colours on the canvas); the user explorer finds a user, shows recommendations with
// explanations, and an event added in the form changes them (the recommended item the event is
// on leaves the list; the server's history shows the event); asked for a scene, the list is the
// server's for that scene. A screenshot of each page goes to
// the artefacts directory.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { ART, Checker, chartPixels, cli, launch, path, serve, watchdog } from "./weblib.mjs";

const chk = new Checker("dashboard");
let server = null, browser = null;
watchdog(240, "dashboard", async () => { if (browser) await browser.close(); if (server) server.proc.kill("SIGKILL"); });

cli("generate", "-q", "--users", 300, "--items", 200, "--events", 8000, "--seed", 3, "-o", path("g.csv"));
cli("ingest", "-q", path("g.csv"), "-o", path("g.sqd"));
const log = path("metrics.jsonl");
cli("train", "-q", path("g.sqd"), "--model", "pop", "--metrics-log", log, "-o", path("pop.sqm"));
const small = ["--set", "hidden=16", "--set", "maxlen=20"];
cli("train", "-q", path("g.sqd"), "--model", "sasrec", "--set", "epochs=3", ...small, "--metrics-log", log, "-o", path("s.sqm"));
cli("train", "-q", path("g.sqd"), "--model", "sasrec", "--tasks", "next_item,buy", "--set", "epochs=2", ...small,
    "--metrics-log", log, "-o", path("mt.sqm"));
writeFileSync(path("eval.json"), cli("eval", "-q", path("s.sqm"), path("g.sqd"), "--json", "--bootstrap", 50) +
                                 cli("eval", "-q", path("mt.sqm"), path("g.sqd"), "--json", "--bootstrap", 50));

server = await serve([path("s.sqm"), path("g.sqd"), "--port", 0, "--store", path("events.db"), "--no-sync", "-q",
                      "--static", process.env.SEQREC_DASHBOARD, "--metrics-log", log, "--eval-json", path("eval.json")]);
browser = await launch();
const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
const problems = [];
page.on("console", (m) => { if (m.type() === "error") problems.push(`console: ${m.text()}`); });
page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
page.on("requestfailed", (r) => problems.push(`request failed: ${r.url()}`));
page.on("response", (r) => { if (r.status() >= 400) problems.push(`HTTP ${r.status()}: ${r.url()}`); });

async function visit(hash) {
  await page.goto(`${server.url}/#${hash}`);
  await page.waitForFunction(() => document.getElementById("page").dataset.ready === "1", null, { timeout: 20000 });
}

async function checkCharts(name, want) {
  const charts = await chartPixels(page);
  chk.check(`${name}: ${want.length ? want.join(", ") : "its charts"} are there`,
            want.every((t) => charts.some((c) => c.title.startsWith(t))), JSON.stringify(charts.map((c) => c.title)));
  const bad = charts.filter((c) => !(c.points > 0 && c.pixels > 0));
  chk.check(`${name}: each of its ${charts.length} charts drew data (points and pixels of its colours)`,
            charts.length > 0 && !bad.length, JSON.stringify(bad));
  return charts;
}

async function shot(name) {
  await page.screenshot({ path: join(ART, `dashboard-${name}.png`), fullPage: true });
}

function noProblems(name) {
  chk.check(`${name}: no console error, page error or failed request`, !problems.length, problems.join("; "));
  problems.length = 0;
}

// ---- Data ----
await visit("data");
await checkCharts("Data", ["Behaviour mix", "Scenes", "Sequence length", "Activity over time", "Top items"]);
const text = await page.textContent("main");
chk.check("Data: the counts and the ingest's cleaning report are shown",
          text.includes("8,000") && text.includes("Cleaning report") && text.includes("rejected: duplicate"), text.slice(0, 300));
await shot("data");
noProblems("Data");

// ---- Training ----
await visit("training");
await checkCharts("Training", ["Training loss", "Validation NDCG@10", "Task loss: buy", "Seconds per epoch"]);
const loss = await page.evaluate(() => [...document.querySelectorAll(".chart")].find((b) => b.dataset.title === "Training loss").dataset.points);
chk.check(`Training: the loss chart overlays both SASRec runs (3 + 2 epochs = ${loss} points)`, loss === "5", loss);
const runsText = await page.textContent("main");
chk.check("Training: the runs table lists pop, sasrec and the multi-task run", /pop #1/.test(runsText) && /sasrec #2/.test(runsText) && /sasrec #3/.test(runsText));
await shot("training");
noProblems("Training");

// ---- Models ----
await visit("models");
await checkCharts("Models", ["NDCG@K", "HR@K"]);
const ciCells = await page.$$eval("table.ci td", (tds) => tds.filter((td) => /\d\.\d{4} \[\d\.\d{4}, \d\.\d{4}\]/.test(td.textContent)).length);
chk.check(`Models: metrics with confidence intervals (${ciCells} cells)`, ciCells >= 20, ciCells);
const scenes = await page.$$eval("table.ci tr", (trs) => trs.filter((tr) => /buy.*auc.*(home|detail|search)/.test(tr.textContent)).length);
chk.check(`Models: the task table has per-scene rows (${scenes} for buy's AUC)`, scenes >= 3, scenes);
await shot("models");
noProblems("Models");

// ---- Users: find a user, recommendations with explanations, add an event ----
await visit("users");
const user = await page.textContent("a.chip");
await page.fill("#user-id", user);
await page.click("#lookup");
await page.waitForSelector("#recs tbody tr");
await page.waitForFunction(() => document.getElementById("page").dataset.ready === "1");
const recsOf = () => page.$$eval("#recs tbody tr", (trs) => trs.map((tr) => tr.children[1].textContent));
const before = await recsOf();
chk.check(`Users: user ${user} found, ${before.length} recommendations`, before.length === 10, before);
const why = await page.$$eval("#recs tbody tr", (trs) => trs.map((tr) => tr.querySelectorAll("ul.why li").length));
chk.check(`Users: every recommendation has explanations (events per item: ${why.join(",")})`, why.every((n) => n > 0), why);
const contrib = await page.$$eval("#recs .contrib", (els) => els.map((e) => Number(e.textContent)));
chk.check("Users: explanations carry numeric contributions", contrib.length > 0 && contrib.every(Number.isFinite), contrib.slice(0, 5));
await checkCharts("Users", ["History of"]);
await shot("users");
const item = await page.inputValue("#event-item");
chk.check(`Users: the event form proposes the first recommendation (${item})`, item === before[0], item);
await page.selectOption("#event-behaviour", "buy");
await page.click("#add-event");
await page.waitForSelector("#change[data-changed]");
const after = await recsOf();
const changed = await page.getAttribute("#change", "data-changed");
chk.check(`Users: after the event the list changed (${before.join(" ")} → ${after.join(" ")})`,
          changed === "1" && after.join() !== before.join(), await page.textContent("#change"));
chk.check(`Users: the item the event was on (${item}) left the list`, !after.includes(item), after);
const fresh = await page.$$eval("#recs a.new", (as) => as.map((a) => a.textContent));
chk.check(`Users: the new items are marked (${fresh.join(" ")})`, fresh.length > 0 && fresh.every((x) => !before.includes(x)), fresh);
const hist = await (await fetch(`${server.url}/v1/users/${encodeURIComponent(user)}/history?limit=1`)).json();
chk.check("Users: the server's history ends with the posted event", hist.events.length === 1 &&
          hist.events[0].item === item && hist.events[0].behaviour === "buy" && hist.events[0].source === "live", hist);
await checkCharts("Users after the event", ["History of"]);
const sceneWant = (await (await fetch(`${server.url}/v1/users/${encodeURIComponent(user)}/recommendations?k=10&scene=detail`)).json())
  .items.map((x) => String(x.item));
const asked = [];
page.on("request", (r) => { if (r.url().includes("/recommendations?")) asked.push(r.url()); });
await page.selectOption("#rec-scene", "detail");
await page.waitForFunction((want) => [...document.querySelectorAll("#recs tbody tr")].map((tr) => tr.children[1].textContent).join() === want,
                           sceneWant.join(), { timeout: 10000 }).catch(() => {});
chk.check("Users: choosing a scene asks the server for that scene, and shows its answer",
          asked.some((u) => u.includes("scene=detail")) && (await recsOf()).join() === sceneWant.join(), [asked, await recsOf(), sceneWant]);
await shot("users-after-event");
noProblems("Users");

// ---- Items ----
await visit(`items/${encodeURIComponent(before[1])}`);
await checkCharts("Items", ["Behaviour share", "Similarity scores"]);
const sim = await page.$$eval("table tbody tr", (trs) => trs.length);
chk.check(`Items: content features and similar items are listed (${sim} rows)`, sim > 10, sim);
await shot("items");
noProblems("Items");

// ---- Live: traffic while the page polls /metrics ----
await visit("live");
const traffic = (async () => {
  for (let i = 0; i < 30; i++) {
    await fetch(`${server.url}/v1/users/${i % 7}/recommendations?k=5`);
    await fetch(`${server.url}/v1/events`, { method: "POST", body: JSON.stringify({ user: String(i % 7), item: "3", behaviour: "view" }) });
    await new Promise((r) => setTimeout(r, 100));
  }
})();
await page.waitForFunction(() => document.querySelectorAll(".chart").length === 4 &&
  [...document.querySelectorAll(".chart")].every((b) => Number(b.dataset.points) >= 2 * (b.dataset.title.startsWith("Latency") ? 3 : 1)),
  null, { timeout: 20000 });
await traffic;
await checkCharts("Live", ["Requests a second", "Latency percentiles", "Events a second", "Cache hit rate"]);
const cards = await page.textContent(".cards");
chk.check("Live: the model version and the stored events are shown", /model version \(main, sasrec\)/.test(cards) && /events stored/.test(cards), cards);
await shot("live");
noProblems("Live");

await browser.close();
browser = null;
chk.check("the server stops cleanly (SIGTERM: exit 0)", (await server.stop()) === 0);
process.exit(chk.finish());
