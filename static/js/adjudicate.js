// Review page: every annotator's spans merged; agreed spans pre-accepted, conflicts
// highlighted; the lead ticks, edits or adds spans and saves them as the document's gold.
// Plain DOM under a strict CSP. Offsets are code points; the browser's are UTF-16.

const root = document.getElementById("adjudicate");
const $ = (id) => document.getElementById(id);
const csrf = document.querySelector('meta[name="csrf-token"]').content;

let review = null;
let rows = [];
let cps = [];

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (k === "checked" || k === "selected" || k === "value") node[k] = v;
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) if (c !== null && c !== undefined) node.append(c);
  return node;
}

const key = (s) => `${s.start}:${s.end}:${s.label}:${JSON.stringify(sortedAttrs(s.attributes))}`;
function sortedAttrs(a) {
  const out = {};
  for (const k of Object.keys(a || {}).sort()) out[k] = a[k];
  return out;
}
const labelDef = (name) => review.labels.find((l) => l.name === name) || { attributes: {} };

function fromReview(data) {
  review = data;
  cps = Array.from(data.document.text);
  const proposed = new Set(data.proposed.map(key));
  rows = data.candidates.map((c) => ({ ...c, attributes: { ...c.attributes }, inGold: proposed.has(key(c)) }));
  const known = new Set(rows.map(key));
  for (const s of data.proposed) {
    if (!known.has(key(s))) rows.push({ ...s, attributes: { ...s.attributes }, annotators: [], missing: data.annotators,
      unanimous: false, conflict: true, inGold: true });
  }
  sortRows();
}

function sortRows() {
  rows.sort((a, b) => a.start - b.start || a.end - b.end || (a.label < b.label ? -1 : a.label > b.label ? 1 : 0));
}

function drawText() {
  const pre = $("doc-text");
  pre.replaceChildren();
  const cuts = new Set([0, cps.length]);
  for (const r of rows) { cuts.add(r.start); cuts.add(r.end); }
  const points = [...cuts].filter((x) => x >= 0 && x <= cps.length).sort((a, b) => a - b);
  const claimLabels = new Set(review.labels.filter((l) => l.kind !== "entity").map((l) => l.name));
  for (let i = 0; i + 1 < points.length; i++) {
    const [a, b] = [points[i], points[i + 1]];
    const text = cps.slice(a, b).join("");
    const covering = rows.filter((r) => r.start < b && a < r.end);
    if (!covering.length) { pre.append(text); continue; }
    const cls = ["seg",
      covering.some((r) => r.conflict) ? "conflict" : "agree",
      covering.some((r) => r.inGold) ? "ingold" : "",
      covering.some((r) => claimLabels.has(r.label)) ? "claim" : ""].join(" ").trim();
    pre.append(el("span", { class: cls, title: covering.map((r) => `${r.label} · ${r.annotators.join(", ") || "added"}`).join("\n") }, text));
  }
}

function attributeCells(row) {
  const defs = labelDef(row.label).attributes || {};
  const names = Object.keys(defs);
  if (!names.length) return el("td", {}, "");
  return el("td", {}, ...names.map((name) => el("select", {
    "aria-label": name,
    onchange: (ev) => { if (ev.target.value) row.attributes[name] = ev.target.value; else delete row.attributes[name]; redraw(); },
  }, el("option", { value: "" }, "–"), ...(defs[name].values || []).map((v) =>
    el("option", { value: v, selected: row.attributes[name] === v }, v)))));
}

function drawTable() {
  const tbody = $("candidates").querySelector("tbody");
  tbody.replaceChildren();
  rows.forEach((row) => {
    const who = row.annotators.length
      ? `${row.annotators.join(", ")}${row.missing.length ? ` · not ${row.missing.join(", ")}` : ""}`
      : "added by the lead";
    tbody.append(el("tr", { class: row.conflict ? "conflict" : "agreed", "data-key": key(row) },
      el("td", {}, el("input", { type: "checkbox", checked: row.inGold, "aria-label": "in gold",
        onchange: (ev) => { row.inGold = ev.target.checked; drawText(); } })),
      el("td", {}, cps.slice(row.start, row.end).join("").slice(0, 80)),
      el("td", {}, el("select", { "aria-label": "label",
        onchange: (ev) => { row.label = ev.target.value; row.attributes = {}; redraw(); } },
        ...review.labels.map((l) => el("option", { value: l.name, selected: l.name === row.label }, l.name)))),
      el("td", {}, el("input", { type: "number", min: 0, max: cps.length, value: row.start, "aria-label": "start",
        onchange: (ev) => { row.start = Number(ev.target.value); sortRows(); redraw(); } })),
      el("td", {}, el("input", { type: "number", min: 1, max: cps.length, value: row.end, "aria-label": "end",
        onchange: (ev) => { row.end = Number(ev.target.value); sortRows(); redraw(); } })),
      attributeCells(row),
      el("td", {}, who)));
  });
}

function drawDecisions() {
  const tbody = $("decisions").querySelector("tbody");
  tbody.replaceChildren();
  if (!review.decisions.length) {
    tbody.append(el("tr", {}, el("td", { colspan: 5, class: "muted" }, "No gold saved yet.")));
    return;
  }
  for (const d of review.decisions) {
    tbody.append(el("tr", {},
      el("td", {}, `${d.start}–${d.end} ${cps.slice(d.start, d.end).join("").slice(0, 60)}`),
      el("td", {}, d.label + (d.attributes.stance ? ` (${d.attributes.stance})` : "")),
      el("td", {}, d.decision),
      el("td", {}, d.supporters.join(", ") || "–"),
      el("td", {}, d.overruled.join(", ") || "–")));
  }
}

function drawSummary() {
  const n = rows.filter((r) => r.inGold).length;
  const g = review.gold;
  $("review-definition").textContent = `As on the agreement report: ${review.summary.definition}.`;
  $("review-summary").textContent = `${review.annotators.length} annotator(s): ${review.annotators.join(", ") || "none"} · ` +
    `${review.summary.disagreeing} disagreeing of ${review.summary.distinct} distinct spans · ${n} ticked for gold · ` +
    (g.version ? `gold version ${g.version} saved` : "no gold yet") +
    (review.document.honeypot ? " · this document is a honeypot (its gold is the reference)" : "");
}

function redraw() {
  drawSummary();
  drawText();
  drawTable();
  drawDecisions();
}

function setStance() {
  const defs = labelDef($("add-label").value).attributes || {};
  const stance = defs.stance;
  $("add-stance-wrap").hidden = !stance;
  $("add-stance").replaceChildren(...(stance ? stance.values : []).map((v) => el("option", { value: v }, v)));
}

function selectionOffsets() {
  const pre = $("doc-text");
  const sel = window.getSelection();
  if (!sel.rangeCount) return null;
  const range = sel.getRangeAt(0);
  if (range.collapsed || !pre.contains(range.startContainer) || !pre.contains(range.endContainer)) return null;
  const upTo = (node, offset) => {
    const r = document.createRange();
    r.selectNodeContents(pre);
    r.setEnd(node, offset);
    return Array.from(r.toString()).length; // UTF-16 -> code points
  };
  let start = upTo(range.startContainer, range.startOffset);
  let end = upTo(range.endContainer, range.endOffset);
  while (start < end && /\s/u.test(cps[start])) start++;
  while (end > start && /\s/u.test(cps[end - 1])) end--;
  return start < end ? { start, end } : null;
}

function addSelection() {
  const off = selectionOffsets();
  if (!off) { showError("Select some text in the document first."); return; }
  const label = $("add-label").value;
  const attributes = {};
  if ((labelDef(label).attributes || {}).stance) attributes.stance = $("add-stance").value;
  rows.push({ ...off, label, attributes, annotators: [], missing: review.annotators, unanimous: false, conflict: true, inGold: true });
  sortRows();
  window.getSelection().removeAllRanges();
  clearError();
  redraw();
}

function showError(message, details = []) {
  $("save-error").textContent = message;
  $("save-error").hidden = false;
  $("save-details").replaceChildren(...details.map((d) => el("li", {}, `${d.span !== undefined ? `span ${d.span}: ` : ""}${d.reason || d.field || ""}`)));
}

function clearError() {
  $("save-error").hidden = true;
  $("save-details").replaceChildren();
}

async function save() {
  clearError();
  const spans = rows.filter((r) => r.inGold).map((r) => ({ start: r.start, end: r.end, label: r.label, attributes: r.attributes }));
  $("save-status").textContent = "Saving…";
  const resp = await fetch(root.dataset.gold, {
    method: "PUT",
    headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRF-Token": csrf },
    body: JSON.stringify({ spans, version: review.gold.version }),
  });
  const body = await resp.json();
  if (!resp.ok) {
    $("save-status").textContent = "";
    showError(body.error, body.details || []);
    return;
  }
  await load();
  $("save-status").textContent = `Saved gold version ${body.version} (${body.spans.length} spans).`;
}

async function load() {
  const resp = await fetch(root.dataset.review, { headers: { Accept: "application/json" } });
  const body = await resp.json();
  if (!resp.ok) { showError(body.error); return; }
  fromReview(body);
  $("add-label").replaceChildren(...review.labels.map((l) => el("option", { value: l.name }, l.name)));
  setStance();
  redraw();
  root.dataset.ready = "1";
}

$("add-label").addEventListener("change", setStance);
$("add-selection").addEventListener("click", addSelection);
$("accept-agreed").addEventListener("click", () => { rows.forEach((r) => { r.inGold = r.unanimous; }); redraw(); });
$("save-gold").addEventListener("click", save);
load();
