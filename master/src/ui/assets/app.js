// Agora's pages work without this script; it adds two things:
// 1. Live refresh: every REFRESH_MS the page fetches its own URL and swaps
//    <main data-fragment> for the new one, unless the tab is hidden or a
//    form field has focus (so typing is never interrupted).
// 2. In-place answers: a GET form inside <main> is answered by fetching
//    its target page and swapping <main>, keeping the URL in the address bar.
// Nothing is requested from another origin (the page's CSP forbids it).

const REFRESH_MS = 5000;

function mainFragment(doc) {
  return doc.querySelector("main[data-fragment]");
}

function formUrl(form) {
  const params = new URLSearchParams();
  for (const [name, value] of new FormData(form)) {
    if (typeof value === "string" && value.trim() !== "") params.append(name, value);
  }
  const action = new URL(form.getAttribute("action") || location.pathname, location.href);
  const query = params.toString();
  return action.pathname + (query ? "?" + query : "");
}

// Fetches `url` and swaps its <main> (and the snapshot time) into the page.
async function swap(url, push) {
  let response;
  try {
    response = await fetch(url, { headers: { Accept: "text/html" }, credentials: "same-origin" });
  } catch (e) {
    document.body.dataset.refreshError = String(e);
    return false;
  }
  // 400 pages carry the calculator's error message; show them too.
  if (!response.ok && response.status !== 400) {
    document.body.dataset.refreshError = "HTTP " + response.status;
    return false;
  }
  const doc = new DOMParser().parseFromString(await response.text(), "text/html");
  const next = mainFragment(doc);
  const current = mainFragment(document);
  if (!next || !current) return false;
  current.replaceWith(document.adoptNode(next));
  const time = doc.querySelector("[data-test=snapshot-time]");
  const shown = document.querySelector("[data-test=snapshot-time]");
  if (time && shown) shown.replaceWith(document.adoptNode(time));
  if (push) history.pushState(null, "", url);
  delete document.body.dataset.refreshError;
  document.body.dataset.swaps = String(Number(document.body.dataset.swaps || 0) + 1);
  enhanceForms();
  return true;
}

function enhanceForms() {
  const main = mainFragment(document);
  if (!main) return;
  for (const form of main.querySelectorAll("form")) {
    if ((form.getAttribute("method") || "get").toLowerCase() !== "get") continue;
    if (form.dataset.enhanced) continue;
    form.dataset.enhanced = "1";
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      swap(formUrl(form), true);
    });
  }
}

function editing() {
  const el = document.activeElement;
  return el && ["INPUT", "SELECT", "TEXTAREA"].includes(el.tagName);
}

function refresh() {
  if (document.hidden || editing()) return;
  swap(location.pathname + location.search, false);
}

window.addEventListener("popstate", () => swap(location.pathname + location.search, false));
enhanceForms();
setInterval(refresh, REFRESH_MS);
document.body.dataset.ready = "1";
