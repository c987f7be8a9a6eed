// users.js — the Users page: look a user up; their history as a timeline (behaviour, scene,
// context); their recommendations with scores and explanations (the past events that mattered
// most: the score's drop when each is left out); and a form that posts an event and shows how
// the list changed (the server answers with the event already applied: read-your-writes).
import { enc, getDataset, getJSON, postJSON } from "../api.js";
import { chart } from "../charts.js";
import { date, el, fmt, note, section, table } from "../dom.js";

const K = 10;
let recScene = ""; // the scene recommendations are asked for ("": all), kept across lookups

function explainCell(items) {
  if (!items || !items.length) return el("span.note", "–");
  // a score no single past event moves (popularity) has nothing to explain
  const mattered = items.filter((x) => Math.abs(x.contribution) > 1e-9);
  if (!mattered.length) return el("span.note", "no past event changes its score");
  return el("ul.why", mattered.slice(0, 3).map((x) => el("li",
    el("a", { href: `#items/${enc(x.item)}` }, x.item), ` ${x.behaviour} `,
    el("span.contrib", (x.contribution >= 0 ? "+" : "") + fmt(x.contribution, 3)))));
}

function recsTable(recs, before) {
  const old = before ? new Set(before.items.map((x) => String(x.item))) : null;
  const rows = recs.items.map((x, i) => {
    const isNew = old && !old.has(String(x.item));
    return [String(i + 1), el("a", { href: `#items/${enc(x.item)}`, className: isNew ? "new" : "" },
      String(x.item)), fmt(x.score), x.content ? el("span.note", "by its tags") : explainCell(x.explain)];
  });
  const t = table(["#", "item", "score", "why (past events that mattered most)"], rows);
  t.id = "recs";
  return t;
}

function timeline(box, hist, ds) {
  const evs = [...hist.events].sort((a, b) => a.ts - b.ts);
  const behs = [...new Set([...Object.keys(ds.stats.behaviours), ...evs.map((e) => e.behaviour)])];
  const x = evs.map((e) => e.ts);
  const series = behs.map((b) => ({ label: b,
    values: evs.map((e) => (e.behaviour === b ? behs.indexOf(b) : null)) }));
  chart(box, `History of ${hist.user} (${evs.length} most recent events)`,
        { kind: "points", x, time: ds.stats.real_time, yLabels: behs, series: series.filter((s) => s.values.some((v) => v !== null)), legend: true, height: 200 });
  const ctx = (e) => Object.entries(e.context || {}).map(([k, v]) => `${k}=${v}`).join(" ");
  box.append(table(["when", "item", "behaviour", "scene", "context", "source"],
    evs.slice(-15).reverse().map((e) => [date(e.ts, ds.stats.real_time),
      el("a", { href: `#items/${enc(e.item)}` }, e.item), e.behaviour, e.scene || "–", ctx(e) || "–",
      e.source])));
}

export async function usersPage(root, arg) {
  const ds = await getDataset();
  root.append(el("h1", "Users"));
  const input = el("input", { id: "user-id", placeholder: "user id", value: arg || "" });
  const go = () => { location.hash = `#users/${enc(input.value.trim())}`; };
  root.append(el("form.lookup", { onsubmit: (e) => { e.preventDefault(); go(); } }, input,
    el("button", { type: "submit", id: "lookup" }, "Look up"),
    el("span.note", " most active: "),
    ds.top_users.map((u) => el("a.chip", { href: `#users/${enc(u.user)}` }, u.user))));
  if (!arg) {
    root.append(note("type a user id, or pick one of the most active users"));
    return;
  }
  const user = arg;
  const recsBox = el("div", { id: "recs-box" });
  const histBox = el("div");
  const changeBox = el("div", { id: "change" });
  const recsURL = () => `/v1/users/${enc(user)}/recommendations?k=${K}&explain=true` +
                        (recScene ? `&scene=${enc(recScene)}` : "");
  let recs = await getJSON(recsURL());
  const hist = await getJSON(`/v1/users/${enc(user)}/history?limit=200`);
  root.append(el("p.note", hist.known ? `user ${user}` : `user ${user} is unknown: cold start (the most popular items)`,
    ` · model version ${recs.model_version}, variant ${recs.variant}`));
  recsBox.append(recsTable(recs));
  const behs = Object.keys(ds.stats.behaviours);
  const scenes = Object.keys(ds.stats.scenes || {}).filter((s) => s);
  const item = el("input", { id: "event-item", value: recs.items.length ? String(recs.items[0].item) : "" });
  const beh = el("select", { id: "event-behaviour" }, behs.map((b) => el("option", { value: b }, b)));
  const scene = el("select", { id: "event-scene" }, el("option", { value: "" }, "(no scene)"),
    scenes.map((s) => el("option", { value: s, selected: s === recScene }, s)));
  const recSel = el("select", { id: "rec-scene", onchange: async () => {
    recScene = recSel.value;
    scene.value = recScene;
    recs = await getJSON(recsURL());
    recsBox.replaceChildren(recsTable(recs));
    changeBox.replaceChildren();
    if (recs.items.length) item.value = String(recs.items[0].item);
  } }, el("option", { value: "" }, "all scenes"),
    scenes.map((s) => el("option", { value: s, selected: s === recScene }, s)));
  const form = el("form.event", { onsubmit: async (e) => {
    e.preventDefault();
    const before = recs;
    const ev = { user, item: item.value.trim(), behaviour: beh.value };
    if (scene.value) ev.scene = scene.value;
    try {
      await postJSON("/v1/events", ev);
      recs = await getJSON(recsURL());
      const h = await getJSON(`/v1/users/${enc(user)}/history?limit=200`);
      const a = before.items.map((x) => String(x.item)), b = recs.items.map((x) => String(x.item));
      const gone = a.filter((x) => !b.includes(x)), came = b.filter((x) => !a.includes(x));
      const same = a.length === b.length && a.every((x, i) => x === b[i]);
      changeBox.replaceChildren(el("p.changed", same ? "the list did not change" :
        `after ${ev.behaviour} on ${ev.item}: ${came.length} new (${came.join(", ") || "–"}), ` +
        `${gone.length} gone (${gone.join(", ") || "–"})${came.length || gone.length ? "" : ", reordered"}`));
      changeBox.dataset.changed = same ? "0" : "1";
      recsBox.replaceChildren(recsTable(recs, before));
      histBox.replaceChildren();
      timeline(histBox, h, ds);
      if (recs.items.length) item.value = String(recs.items[0].item);
    } catch (err) {
      changeBox.replaceChildren(el("p.error", String(err.message || err)));
    }
  } }, "item ", item, " behaviour ", beh, " scene ", scene,
    el("button", { type: "submit", id: "add-event" }, "Add event"));
  root.append(section("Recommendations",
                      scenes.length ? el("form", "for the scene ", recSel) : null, recsBox),
              section("Add an event and watch the list change", form, changeBox),
              section("History", histBox));
  timeline(histBox, hist, ds);
}
