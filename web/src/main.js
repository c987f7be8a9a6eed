// main.js — the dashboard's router: one page per #hash (Data, Training, Models, Users, Items,
// Live), each a function that fills the <main> element. A page's async errors are shown on it.
import "./style.css";
import { resetCharts } from "./charts.js";
import { el } from "./dom.js";
import { dataPage } from "./pages/data.js";
import { trainingPage } from "./pages/training.js";
import { modelsPage } from "./pages/models.js";
import { usersPage } from "./pages/users.js";
import { itemsPage } from "./pages/items.js";
import { livePage } from "./pages/live.js";

const pages = { data: dataPage, training: trainingPage, models: modelsPage, users: usersPage,
                items: itemsPage, live: livePage };
let leave = null; // the current page's cleanup (timers)

async function show() {
  const [name, arg] = (location.hash.slice(1) || "data").split("/");
  const page = pages[name] || dataPage;
  if (leave) leave();
  leave = null;
  resetCharts();
  const main = document.getElementById("page");
  // a fresh container per visit: a page still loading when the user moves on fills a detached one
  const box = el("div.page");
  main.replaceChildren(box);
  main.dataset.page = name;
  main.dataset.ready = "0";
  for (const a of document.querySelectorAll("nav a"))
    a.classList.toggle("active", a.getAttribute("href") === "#" + name);
  try {
    leave = (await page(box, arg ? decodeURIComponent(arg) : "")) || null;
  } catch (e) {
    box.append(el("p.error", String(e.message || e)));
  }
  if (box.parentNode === main) main.dataset.ready = "1";
}

window.addEventListener("hashchange", show);
show();
