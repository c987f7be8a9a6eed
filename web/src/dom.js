// dom.js — small helpers to build the pages' DOM without a framework.

// el("div.card", {onclick}, child, "text", …): a tag with optional classes, attributes or
// properties (functions become listeners), and children (strings become text nodes).
export function el(spec, attrs, ...children) {
  const [tag, ...classes] = spec.split(".");
  const e = document.createElement(tag || "div");
  if (classes.length) e.className = classes.join(" ");
  if (attrs && (typeof attrs !== "object" || attrs instanceof Node || Array.isArray(attrs))) {
    children.unshift(attrs);
    attrs = null;
  }
  for (const [k, v] of Object.entries(attrs || {})) {
    if (typeof v === "function") e.addEventListener(k.replace(/^on/, ""), v);
    else if (k in e && k !== "list") e[k] = v;
    else e.setAttribute(k, v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

// A table from column names and rows (arrays of cells: strings, numbers or nodes).
export function table(columns, rows, cls = "") {
  return el(
    "table" + (cls ? "." + cls : ""),
    el("thead", el("tr", columns.map((c) => el("th", c)))),
    el("tbody", rows.map((r) => el("tr", r.map((c) => el("td", c))))),
  );
}

export function fmt(x, digits = 4) {
  if (x === null || x === undefined || Number.isNaN(x)) return "–";
  if (typeof x !== "number") return String(x);
  if (Number.isInteger(x)) return x.toLocaleString("en");
  return x.toFixed(digits);
}

export function date(ts, realTime = true) {
  if (!realTime) return `#${ts}`;
  return new Date(ts * 1000).toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
}

export function section(title, ...children) {
  return el("section", el("h2", title), ...children);
}

export function note(text) {
  return el("p.note", text);
}
