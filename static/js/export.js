// Export page: the options, the export report before downloading (GET .../export?report=true),
// the download itself (a plain link to the same URL: the browser streams it to disk), and the
// command that trains on the download. Plain DOM under the strict CSP.
import { el } from "./dom.js";

const root = document.getElementById("export");
const form = document.getElementById("export-form");
const $ = (id) => document.getElementById(id);
const SHOWN = 100;

function params() {
  const f = new FormData(form);
  const out = new URLSearchParams({ format: f.get("format"), source: f.get("source") });
  const fmt = f.get("format");
  if (fmt !== "jsonl") {
    out.set("dev", f.get("dev") || "0");
    out.set("seed", f.get("seed") || "0");
    out.set("min_aligned", f.get("min_aligned") || "0.99");
  } else if (!f.get("tokens")) {
    out.set("tokens", "false");
  }
  if (f.get("include_unfinished")) out.set("include_unfinished", "true");
  return out;
}

let pending = 0;

async function check() {
  const mine = ++pending;
  const p = params();
  const download = $("download");
  download.href = `${root.dataset.api}?${p}`;
  $("report-status").textContent = "Checking…";
  for (const name of ["dev", "seed", "min_aligned"]) form.elements[name].disabled = p.get("format") === "jsonl";
  form.elements.tokens.disabled = p.get("format") !== "jsonl";
  p.set("report", "true");
  let resp, body;
  try {
    resp = await fetch(`${root.dataset.api}?${p}`, { headers: { Accept: "application/json" }, credentials: "same-origin" });
    body = await resp.json();
  } catch (e) {
    if (mine === pending) $("report-status").textContent = `Could not reach the server: ${e.message}`;
    return;
  }
  if (mine !== pending) return;  // a newer check is on its way
  if (!resp.ok) {
    $("report-status").textContent = body.error || `The server answered ${resp.status}.`;
    download.classList.add("disabled");
    return;
  }
  show(body);
}

function show(body) {
  const r = body.report;
  const download = $("download");
  download.setAttribute("download", body.filename);
  download.classList.toggle("disabled", !r.ok);
  download.setAttribute("aria-disabled", r.ok ? "false" : "true");
  download.textContent = `Download ${body.filename}`;
  const docs = r.documents ?? 0;
  $("report-status").textContent = r.ok
    ? `${r.records} record(s) of ${docs} document(s), ${r.spans ?? 0} span(s)` +
      (r.splits && Object.keys(r.splits).length ? ` · split: ${Object.entries(r.splits).map(([k, v]) => `${k} ${v}`).join(", ")}` : "") + "."
    : "This export would be refused:";
  const refusal = $("report-refusal");
  refusal.hidden = r.ok;
  refusal.textContent = r.ok ? "" : (r.error || r.refused || "refused");
  $("report-notes").replaceChildren(...(r.notes || []).map((n) => el("li", {}, n)));
  $("report-labels").replaceChildren(...Object.entries(r.labels || {}).map(([name, c]) =>
    el("tr", { class: c.rate !== null && c.rate !== undefined && r.min_aligned && c.rate < r.min_aligned ? "conflict" : null },
      el("td", {}, name), el("td", { class: "num" }, String(c.total)),
      el("td", { class: "num" }, c.aligned === undefined ? "–" : String(c.aligned)),
      el("td", { class: "num" }, c.rate === null || c.rate === undefined ? "–" : `${(100 * c.rate).toFixed(1)} %`))));
  const bad = r.misaligned || [];
  const rows = bad.slice(0, SHOWN).map((m) =>
    el("tr", {},
      el("td", {}, el("a", { href: root.dataset.review.replace("/0/", `/${m.document_id}/`) }, m.external_id || String(m.document_id))),
      el("td", {}, `${m.start}-${m.end} «${m.text}»`), el("td", {}, m.label), el("td", {}, m.annotator || "–"),
      el("td", {}, m.reason || "")));
  if (!rows.length) rows.push(el("tr", {}, el("td", { colspan: "5", class: "muted" }, "None: every span falls on token boundaries.")));
  if (bad.length > SHOWN) rows.push(el("tr", {}, el("td", { colspan: "5", class: "muted" }, `… and ${bad.length - SHOWN} more, in export-report.json.`)));
  $("report-misaligned").replaceChildren(...rows);
  $("train").hidden = !body.train_command;
  $("train-command").textContent = body.train_command || "";
}

$("download").addEventListener("click", (e) => {
  if ($("download").classList.contains("disabled")) e.preventDefault();
});
form.addEventListener("change", check);
form.addEventListener("submit", (e) => { e.preventDefault(); check(); });
check();
