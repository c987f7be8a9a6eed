// items.js — the Items page: an item's content features (tags, text, numeric attributes, its
// statistics in the dataset: GET /v1/items/{id}) and its most similar items (GET
// /v1/items/{id}/similar, by the served model).
import { enc, getDataset, getJSON } from "../api.js";
import { chart } from "../charts.js";
import { el, fmt, note, section, table } from "../dom.js";

export async function itemsPage(root, arg) {
  const ds = await getDataset();
  root.append(el("h1", "Items"));
  const input = el("input", { id: "item-id", placeholder: "item id", value: arg || "" });
  root.append(el("form.lookup", { onsubmit: (e) => { e.preventDefault(); location.hash = `#items/${enc(input.value.trim())}`; } },
    input, el("button", { type: "submit" }, "Look up"), el("span.note", " most popular: "),
    ds.top_items.slice(0, 10).map((t) => el("a.chip", { href: `#items/${enc(t.item)}` }, t.item))));
  if (!arg) {
    root.append(note("type an item id, or pick one of the most popular items"));
    return;
  }
  const info = await getJSON(`/v1/items/${enc(arg)}`);
  let sim = null, simError = "";
  try {
    sim = await getJSON(`/v1/items/${enc(arg)}/similar?k=10`);
  } catch (e) {
    simError = String(e.message || e); // e.g. a model that has no item vectors
  }
  const st = info.stats;
  const feats = [["tags", info.tags.length ? info.tags.join(", ") : "–"], ["text", info.text || "–"],
    ...Object.entries(info.numeric).map(([k, v]) => [k, fmt(v)]), ["events", fmt(st.events)],
    ["users", fmt(st.users)], ["days since its last event", fmt(st.recency_days, 1)]];
  const share = Object.entries(st.behaviour_share);
  const fbox = el("div.grid", table(["content feature", "value"], feats, "narrow"));
  root.append(section(`Item ${info.item}`, fbox));
  chart(fbox, "Behaviour share of its events", { kind: "bars", x: share.map((_, i) => i),
    xLabels: share.map(([k]) => k), series: [{ label: "share", values: share.map(([, v]) => v) }] });
  const sbox = el("div.grid");
  root.append(section(sim ? `Similar items (variant ${sim.variant})` : "Similar items", sbox));
  if (!sim) {
    sbox.append(note(`no similar items: ${simError}`));
    return;
  }
  if (!sim.items.length) {
    sbox.append(note("the model finds no similar item"));
    return;
  }
  sbox.append(table(["#", "item", "score"], sim.items.map((x, i) => [String(i + 1),
    el("a", { href: `#items/${enc(x.item)}` }, String(x.item)), fmt(x.score)]), "narrow"));
  chart(sbox, "Similarity scores", { kind: "bars", x: sim.items.map((_, i) => i),
    xLabels: sim.items.map((x) => String(x.item)), series: [{ label: "score", values: sim.items.map((x) => x.score) }] });
}
