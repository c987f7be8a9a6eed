// api.js — the server's JSON API (docs/serve.md), relative to the page's origin.

export async function getJSON(path) {
  const r = await fetch(path, { headers: { Accept: "application/json" } });
  const body = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(body.error || `${path}: HTTP ${r.status}`);
  return body;
}

export async function postJSON(path, obj) {
  const r = await fetch(path, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(obj),
  });
  const body = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(body.error || `${path}: HTTP ${r.status}`);
  return body;
}

export async function getText(path) {
  const r = await fetch(path);
  if (!r.ok) throw new Error(`${path}: HTTP ${r.status}`);
  return r.text();
}

// The dataset's description, fetched once per page load (it never changes while serving).
let dataset = null;
export function getDataset() {
  if (!dataset) dataset = getJSON("/v1/dashboard/dataset");
  return dataset;
}

export const enc = encodeURIComponent;
