// Create or edit a project: name, language, k, guidelines with a live (sanitised, server-
// rendered) preview, and the label-set editor. POST /api/v1/projects or PATCH
// /api/v1/projects/<id>; the server's rules are the only ones, and each refusal is shown next
// to the field it names (details: label index + field). Plain DOM under the strict CSP.
import { call, el } from "./dom.js";

const form = document.getElementById("project-form");
const api = form.dataset.api;
const pid = form.dataset.projectId;
const $ = (id) => document.getElementById(id);
const KINDS = [["entity", "entity (no overlap with other entities)"], ["span", "span (may overlap anything)"]];

// --- the label editor -------------------------------------------------------------------

function attributeRow(name = "", rule = { values: [], required: false }) {
  return el("div", { class: "attr-row" },
    el("input", { type: "text", class: "attr-name", value: name, placeholder: "attribute, e.g. stance", "aria-label": "attribute name" }),
    el("input", { type: "text", class: "attr-values", value: (rule.values || []).join(", "), placeholder: "values, e.g. favor, against, neutral", "aria-label": "allowed values, separated by commas" }),
    el("label", { class: "check" }, el("input", { type: "checkbox", class: "attr-required", checked: rule.required ? true : null }), "required"),
    el("button", { type: "button", class: "link remove-attr" }, "remove"));
}

function labelRow(lab = {}) {
  const row = el("fieldset", { class: "label-row", dataset: lab.id ? { id: String(lab.id) } : {} },
    el("legend", {}, lab.name || "new label"),
    el("div", { class: "row" },
      el("label", {}, "Name", el("input", { type: "text", class: "lab-name", "data-field": "name", value: lab.name || "", maxlength: "64", autocomplete: "off" })),
      el("label", { class: "narrowish" }, "Colour", el("input", { type: "color", class: "lab-color", "data-field": "color", value: lab.color || "#888888" })),
      el("label", { class: "narrowish" }, "Hotkey", el("input", { type: "text", class: "lab-hotkey", "data-field": "hotkey", value: lab.hotkey || "", maxlength: "1", autocomplete: "off" })),
      el("label", {}, "Kind", el("select", { class: "lab-kind", "data-field": "kind" },
        KINDS.map(([v, text]) => el("option", { value: v, selected: (lab.kind || "entity") === v ? true : null }, text))))),
    el("div", { class: "attrs", "data-field": "attributes" },
      Object.entries(lab.attributes || {}).map(([n, rule]) => attributeRow(n, rule))),
    el("div", { class: "label-actions" },
      el("button", { type: "button", class: "link add-attr" }, "+ attribute"),
      el("button", { type: "button", class: "link remove-label" }, "remove this label")));
  return row;
}

function readLabels() {
  return [...$("labels").querySelectorAll(".label-row")].map((row) => {
    const lab = {
      name: row.querySelector(".lab-name").value.trim(),
      color: row.querySelector(".lab-color").value,
      kind: row.querySelector(".lab-kind").value,
      attributes: {},
    };
    const hotkey = row.querySelector(".lab-hotkey").value;
    if (hotkey) lab.hotkey = hotkey;
    if (row.dataset.id) lab.id = Number(row.dataset.id);
    for (const a of row.querySelectorAll(".attr-row")) {
      const name = a.querySelector(".attr-name").value.trim();
      if (!name) continue;
      lab.attributes[name] = {
        values: a.querySelector(".attr-values").value.split(",").map((v) => v.trim()).filter(Boolean),
        required: a.querySelector(".attr-required").checked,
      };
    }
    return lab;
  });
}

$("labels").addEventListener("click", (e) => {
  const row = e.target.closest(".label-row");
  if (e.target.closest(".remove-label")) row.remove();
  else if (e.target.closest(".add-attr")) row.querySelector(".attrs").append(attributeRow());
  else if (e.target.closest(".remove-attr")) e.target.closest(".attr-row").remove();
});
$("labels").addEventListener("input", (e) => {
  if (e.target.classList.contains("lab-name")) {
    e.target.closest(".label-row").querySelector("legend").textContent = e.target.value || "new label";
  }
});
$("add-label").addEventListener("click", () => {
  const row = labelRow({});
  $("labels").append(row);
  row.querySelector(".lab-name").focus();
});

// --- guidelines preview -------------------------------------------------------------------

let previewTimer = null;
let previewSeq = 0;
async function preview() {
  const mine = ++previewSeq;
  const { status, body } = await call("POST", `${api}/guidelines/preview`, { guidelines: form.elements.guidelines.value });
  if (mine !== previewSeq) return;
  // the server's sanitised rendering (security.render_markdown), the same the annotate page shows
  if (status === 200) $("preview").innerHTML = body.guidelines_html;
  else $("preview").textContent = body.error;
}
form.elements.guidelines.addEventListener("input", () => {
  clearTimeout(previewTimer);
  previewTimer = setTimeout(preview, 250);
});

// --- errors next to their fields ------------------------------------------------------------

function clearErrors() {
  form.querySelectorAll(".field-error").forEach((n) => n.remove());
  form.querySelectorAll("[aria-invalid]").forEach((n) => n.removeAttribute("aria-invalid"));
  $("form-error").hidden = true;
}

function fieldFor(detail) {
  const rows = $("labels").querySelectorAll(".label-row");
  let row = null;
  if (typeof detail.label === "number") row = rows[detail.label];
  else if (detail.label_id) {  // a removed label: put it back, so the refusal has a place
    row = [...rows].find((r) => r.dataset.id === String(detail.label_id)) || null;
  }
  const field = String(detail.field || "").split(".")[0];
  if (row) return row.querySelector(`[data-field="${field}"]`) || row.querySelector(".label-actions");
  return form.querySelector(`[data-field="${field}"]`);
}

function showErrors(body) {
  $("form-error").hidden = false;
  $("form-error").textContent = body.error;
  let first = null;
  for (const d of body.details || []) {
    const target = fieldFor(d);
    if (!target) continue;
    target.setAttribute("aria-invalid", "true");
    const where = target.closest("label") || target;
    where.after(el("p", { class: "error field-error", "data-testid": "field-error" }, d.reason || body.error));
    first = first || target;
  }
  if (first && first.focus) first.focus();
}

// --- load and save ------------------------------------------------------------------------

let original = [];

async function load() {
  if (!pid) {
    const labels = JSON.parse(form.dataset.defaultLabels || "[]");
    labels.forEach((lab) => $("labels").append(labelRow(lab)));
    preview();
    return;
  }
  const { status, body } = await call("GET", `${api}/projects/${pid}`);
  if (status !== 200) { showErrors(body); return; }
  form.elements.name.value = body.name;
  form.elements.language.value = body.language;
  form.elements.guidelines.value = body.guidelines || "";
  $("preview").innerHTML = body.guidelines_html;
  original = body.labels;
  body.labels.forEach((lab) => $("labels").append(labelRow(lab)));
}

form.addEventListener("submit", async (e) => {
  e.preventDefault();
  clearErrors();
  const payload = {
    name: form.elements.name.value,
    language: form.elements.language.value.trim(),
    guidelines: form.elements.guidelines.value,
    labels: readLabels(),
  };
  if (!pid) payload.k = Number(form.elements.k.value);
  $("form-status").textContent = "Saving…";
  const { status, body } = pid ? await call("PATCH", `${api}/projects/${pid}`, payload)
                               : await call("POST", `${api}/projects`, payload);
  $("form-status").textContent = "";
  if (status === 200 || status === 201) {
    window.location.assign(form.dataset.projectUrl.replace(/\/0$/, `/${body.id}`));
    return;
  }
  if (status === 409 && body.details?.some((d) => d.label_id && typeof d.label !== "number")) {
    // a used label was removed: put its row back where it was, then say why
    for (const d of body.details) {
      const lab = original.find((l) => l.id === d.label_id);
      if (lab && !$("labels").querySelector(`.label-row[data-id="${lab.id}"]`)) $("labels").append(labelRow(lab));
    }
  }
  showErrors(body);
});

load();
