// Team settings page: GET/PATCH /api/v1/projects/<id>/settings, the word list (GET/PUT
// .../words) and honeypots marked from the document list (PUT/DELETE /documents/<id>/honeypot).
// The server checks every value (routing.update_settings); its refusal is shown by the field.
import { call, el } from "./dom.js";

const root = document.getElementById("settings");
const api = root.dataset.api;
const pid = root.dataset.projectId;
const $ = (id) => document.getElementById(id);
const PER_PAGE = 20;
const form = $("settings-form");

// --- settings ------------------------------------------------------------------------------

let saved = {};

function fill(values) {
  saved = values;
  for (const [key, value] of Object.entries(values)) {
    const input = form.elements[key];
    if (!input) continue;
    if (input.type === "checkbox") input.checked = Boolean(value);
    else input.value = value;
  }
}

function changed() {
  const out = {};
  for (const key of Object.keys(saved)) {
    const input = form.elements[key];
    if (!input) continue;
    let value;
    if (input.type === "checkbox") value = input.checked;
    else if (input.type === "number") value = input.value === "" ? null : Number(input.value);
    else value = input.value;
    if (value !== saved[key]) out[key] = value;
  }
  return out;
}

form.addEventListener("submit", async (e) => {
  e.preventDefault();
  form.querySelectorAll(".field-error").forEach((n) => n.remove());
  form.querySelectorAll("[aria-invalid]").forEach((n) => n.removeAttribute("aria-invalid"));
  $("settings-error").hidden = true;
  const body = changed();
  if (!Object.keys(body).length) { $("settings-status").textContent = "Nothing changed."; return; }
  const res = await call("PATCH", `${api}/projects/${pid}/settings`, body);
  if (res.status !== 200) {
    const field = res.body.details?.[0]?.field;
    const input = field && form.elements[field];
    if (input) {
      input.setAttribute("aria-invalid", "true");
      (input.closest("label") || input).after(el("p", { class: "error field-error", "data-testid": "field-error" }, res.body.error));
      input.focus();
    } else {
      $("settings-error").hidden = false;
      $("settings-error").textContent = res.body.error;
    }
    $("settings-status").textContent = "";
    return;
  }
  fill(res.body);
  $("settings-status").textContent = `Saved: ${Object.keys(body).join(", ")}.`;
});

// --- word list -----------------------------------------------------------------------------

$("words-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const words = $("words-form").elements.words.value.split(/\n/).map((w) => w.trim()).filter(Boolean);
  const res = await call("PUT", `${api}/projects/${pid}/words`, { words });
  $("words-status").textContent = res.status === 200 ? `Saved ${res.body.words.length} word(s).` : res.body.error;
  $("words-status").classList.toggle("error", res.status !== 200);
});

// --- honeypots from the document list -----------------------------------------------------------

let page = 1;
let total = 0;
let marked = new Set();

async function loadDocs() {
  const [docs, pots] = await Promise.all([
    call("GET", `${api}/projects/${pid}/documents?page=${page}&per_page=${PER_PAGE}`),
    call("GET", `${api}/projects/${pid}/honeypots`),
  ]);
  if (docs.status !== 200 || pots.status !== 200) {
    $("honeypot-error").textContent = (docs.status !== 200 ? docs : pots).body.error;
    return;
  }
  marked = new Set(pots.body.items.map((h) => h.document_id));
  total = docs.body.total;
  $("honeypot-rows").replaceChildren(...docs.body.items.map((d) => el("tr", { "data-doc": String(d.id) },
    el("td", {}, el("a", { href: root.dataset.review.replace("/0/", `/${d.id}/`) }, d.external_id)),
    el("td", { class: "preview" }, d.preview.replace(/\s+/g, " ").slice(0, 90)),
    el("td", {}, el("label", { class: "check" },
      el("input", { type: "checkbox", "data-honeypot": String(d.id), checked: marked.has(d.id),
                    "aria-label": `honeypot: ${d.external_id}` }), "honeypot")))));
  const pages = Math.max(1, Math.ceil(total / PER_PAGE));
  $("page-text").textContent = `page ${page} of ${pages}`;
  $("prev").disabled = page <= 1;
  $("next").disabled = page >= pages;
}

$("honeypot-rows").addEventListener("change", async (e) => {
  const box = e.target.closest("input[data-honeypot]");
  if (!box) return;
  $("honeypot-error").textContent = "";
  $("honeypot-status").textContent = "";
  const name = box.closest("tr").querySelector("a").textContent;
  const url = `${api}/documents/${box.dataset.honeypot}/honeypot`;
  const marking = box.checked;
  box.disabled = true;  // one request at a time for a document
  const res = marking ? await call("PUT", url, {}) : await call("DELETE", url);
  box.disabled = false;
  if (res.status !== 200) {
    box.checked = !marking;
    $("honeypot-error").textContent = res.body.error;
    return;
  }
  $("honeypot-status").textContent = marking ? `${name} is a honeypot now.`
                                             : `${name} is an ordinary document again.`;
});
$("prev").addEventListener("click", () => { page -= 1; loadDocs(); });
$("next").addEventListener("click", () => { page += 1; loadDocs(); });

(async () => {
  const [settings, words] = await Promise.all([call("GET", `${api}/projects/${pid}/settings`),
                                               call("GET", `${api}/projects/${pid}/words`)]);
  if (settings.status === 200) fill(settings.body);
  if (words.status === 200) $("words-form").elements.words.value = words.body.words.join("\n");
  loadDocs();
})();
