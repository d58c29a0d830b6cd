// Agreement report page: heatmap, per-label bars, annotator and document tables, drill-down.
// Plain DOM (no framework, no inline script or style: the page runs under a strict CSP).

const root = document.getElementById("report");
const $ = (id) => document.getElementById(id);
const SVG = "http://www.w3.org/2000/svg";
const DOC_ROWS = 100;

let report = null;
let showAllDocs = false;

function el(tag, attrs = {}, ...children) {
  const node = tag.startsWith("svg:") ? document.createElementNS(SVG, tag.slice(4)) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") node.setAttribute("class", v);
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) if (c !== null && c !== undefined) node.append(c);
  return node;
}

const fmt = (v, digits = 3) => (v === null || v === undefined ? "–" : typeof v === "number" ? v.toFixed(digits) : String(v));

function duration(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  const s = Math.round(seconds);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

// red (0 or below) -> yellow -> green (1)
function color(v) {
  if (v === null || v === undefined) return "#e9ecef";
  const t = Math.max(0, Math.min(1, v));
  const hue = Math.round(120 * t);
  return `hsl(${hue}, 65%, ${78 - 18 * t}%)`;
}

function pairValue(layer, metric, a, b) {
  const data = report.layers[layer];
  const key = a < b ? `${a}|${b}` : `${b}|${a}`;
  const entry = metric === "kappa" ? data.token.cohen_kappa.pairs[key] : data.span_f1[metric].pairs[key];
  if (!entry) return { value: null, reason: "no pair", n: 0 };
  const value = metric === "kappa" ? entry.kappa : entry.f1;
  const reason = metric === "kappa" ? entry.kappa_reason : entry.f1_reason;
  return { value, reason, n: entry.n_docs };
}

function drawHeatmap() {
  const layer = $("layer").value;
  const metric = $("metric").value;
  const names = report.annotators;
  const box = $("heatmap");
  box.replaceChildren();
  if (names.length < 2) {
    box.append(el("p", { class: "muted" }, "Fewer than two annotators have submitted work."));
    return;
  }
  // cells as large as the card allows (28-110 px): a few annotators fill it, many still fit
  const left = 110, top = 90;
  const cell = Math.max(28, Math.min(110, Math.floor(((box.clientWidth || 400) - left - 10) / names.length)));
  const size = names.length * cell;
  const svg = el("svg:svg", { viewBox: `0 0 ${left + size + 10} ${top + size + 10}`, role: "img",
    width: left + size + 10, height: top + size + 10, "data-testid": "heatmap" });
  names.forEach((name, i) => {
    svg.append(el("svg:text", { x: left - 8, y: top + i * cell + cell / 2 + 4, "text-anchor": "end" }, name));
    svg.append(el("svg:text", { x: left + i * cell + cell / 2, y: top - 10, "text-anchor": "start",
      transform: `rotate(-40 ${left + i * cell + cell / 2} ${top - 10})` }, name));
  });
  names.forEach((a, i) => names.forEach((b, j) => {
    const x = left + j * cell, y = top + i * cell;
    if (i === j) {
      svg.append(el("svg:rect", { x, y, width: cell - 2, height: cell - 2, fill: "#f1f3f5" }));
      return;
    }
    const { value, reason, n } = pairValue(layer, metric, a, b);
    const g = el("svg:g", { class: "pair", "data-pair": `${a}|${b}` });
    g.append(el("svg:rect", { x, y, width: cell - 2, height: cell - 2, fill: color(value) },
      el("svg:title", {}, `${a} × ${b}: ${fmt(value)}${reason ? ` (${reason})` : ""}, ${n} shared documents`)));
    g.append(el("svg:text", { x: x + cell / 2 - 1, y: y + cell / 2 + 4, "text-anchor": "middle", class: "value" },
      value === null ? "n/a" : value.toFixed(2)));
    svg.append(g);
  }));
  box.append(svg);
}

function drawLabelBars() {
  const layer = $("layer").value;
  const metric = $("metric").value === "exact" ? "exact" : "overlap";
  const labels = report.label_summary[layer][metric];
  const box = $("label-bars");
  box.replaceChildren();
  const names = Object.keys(labels);
  if (!names.length) {
    box.append(el("p", { class: "muted" }, "No labels in this layer."));
    return;
  }
  const row = 30, left = 90, width = 300;
  const svg = el("svg:svg", { viewBox: `0 0 ${left + width + 240} ${names.length * row + 10}`,
    width: left + width + 240, height: names.length * row + 10, role: "img", "data-testid": "label-bars" });
  names.forEach((name, i) => {
    const e = labels[name];
    const y = i * row + 5;
    svg.append(el("svg:text", { x: left - 8, y: y + 17, "text-anchor": "end" }, name));
    svg.append(el("svg:rect", { x: left, y, width, height: row - 8, fill: "#f1f3f5" }));
    if (e.f1 !== null) svg.append(el("svg:rect", { x: left, y, width: Math.max(1, width * e.f1), height: row - 8, fill: color(e.f1) }));
    svg.append(el("svg:text", { x: left + width + 8, y: y + 17 },
      `${fmt(e.f1, 2)}  (${e.tp} matched, ${e.fp + e.fn} unmatched)`));
  });
  box.append(el("p", { class: "muted" }, `Span F1, ${metric} match, summed over all annotator pairs.`), svg);
}

function drawLayerSummary() {
  const data = report.layers[$("layer").value];
  const fleiss = Object.entries(data.token.fleiss_kappa).map(([k, v]) => `${k} annotators: ${fmt(v.kappa)}`).join("; ") || "–";
  let text = `Mean span F1 exact ${fmt(data.span_f1.exact.mean_over_pairs)}, overlap ${fmt(data.span_f1.overlap.mean_over_pairs)} · ` +
    `mean Cohen's kappa ${fmt(data.token.cohen_kappa.mean_over_pairs)} · Fleiss' kappa ${fleiss} · ` +
    `Krippendorff's alpha ${fmt(data.token.krippendorff_alpha)}`;
  if (data.stance) text += ` · stance agreement ${fmt(data.stance.percent_agreement)} over ${data.stance.n_pairs} matched claims`;
  $("layer-summary").textContent = text;
}

function drawAnnotators() {
  const tbody = $("annotators").querySelector("tbody");
  tbody.replaceChildren();
  for (const [name, f] of Object.entries(report.per_annotator)) {
    const hp = f.honeypot, gold = f.gold;
    tbody.append(el("tr", { "data-annotator": name },
      el("td", {}, name),
      el("td", { class: "num" }, String(f.documents_done)),
      el("td", { class: "num" }, duration(f.median_seconds)),
      el("td", { class: "num" }, fmt(f.spans_per_document, 1)),
      el("td", { class: "num" }, hp ? fmt(hp.f1, 2) : "–", hp && hp.flagged ? el("span", { class: "flag", title: `below ${report.project.honeypot_threshold}` }, "flagged") : null),
      el("td", { class: "num" }, gold ? fmt(gold.f1, 2) : "–"),
      el("td", { class: "num" }, gold ? String(gold.overruled_spans) : "–")));
  }
}

// a figure that may be undefined: "–" with the reason as its tooltip
function figure(obj, name, digits = 2) {
  const v = obj[name];
  return el("td", { class: "num", title: v === null ? obj[`${name}_reason`] : null }, fmt(v, digits));
}

function drawSuggestions() {
  const sec = report.suggestions;
  const arms = [sec.arms.with, sec.arms.without];
  const row = (name, cell) => el("tr", {}, el("th", {}, name), ...arms.map(cell));
  $("sug-arms").querySelector("tbody").replaceChildren(
    row("annotations", (a) => el("td", { class: "num" }, String(a.annotations))),
    row("median time per document", (a) => el("td", { class: "num" }, duration(a.median_seconds))),
    row("median entity spans per document", (a) => el("td", { class: "num" }, fmt(a.median_spans, 1))),
    row("entity F1 against gold (exact)", (a) => el("td", { class: "num", title: a.gold.f1_reason || null },
      fmt(a.gold.f1, 2), el("small", { class: "muted" }, ` over ${a.gold_annotations}`))));
  const tbody = $("sug-sources").querySelector("tbody");
  tbody.replaceChildren();
  for (const [source, data] of Object.entries(sec.sources)) {
    const rows = [...Object.entries(data.labels), ["all labels", data.all]];
    rows.forEach(([label, f], i) => tbody.append(el("tr", { class: label === "all labels" ? "total" : null,
      "data-source": source, "data-label": label },
      el("td", {}, i ? "" : source), el("td", {}, label),
      el("td", { class: "num" }, String(f.accepted)), el("td", { class: "num" }, String(f.rejected)),
      el("td", { class: "num" }, String(f.edited)),
      figure(f, "acceptance_rate"), figure(f, "precision_submitted"), figure(f, "precision_gold"),
      figure(f, "recall_submitted"), figure(f, "recall_gold"))));
  }
  if (!tbody.children.length) {
    tbody.append(el("tr", {}, el("td", { colspan: 10, class: "muted" }, "No suggestion accepted or rejected in submitted work yet.")));
  }
  const ind = sec.independence;
  if (ind) {
    const none = ind.from_others === 0;
    $("sug-independence").replaceChildren(
      el("strong", {}, "Independence: "),
      none ? `${ind.checked === 1 ? "the one accepted suggestion" : `none of the ${ind.checked} accepted suggestions`} from the dictionary or the model ${ind.checked === 1 ? "could not" : "could"} have come from another annotator's work on the same document.`
        : `${ind.from_others} of ${ind.checked} accepted suggestions, on ${ind.documents} documents, could have come only from another annotator's work on the same document; agreement there is not independent.`);
    $("sug-independence").className = none ? "muted" : "banner error";
  }
}

function drawDocuments() {
  const tbody = $("documents").querySelector("tbody");
  tbody.replaceChildren();
  const docs = showAllDocs ? report.documents : report.documents.slice(0, DOC_ROWS);
  const adjudicate = root.dataset.adjudicate;
  for (const d of docs) {
    const tr = el("tr", { "data-doc": d.id, tabindex: "0", onclick: () => drill(d.id, tr),
      onkeydown: (ev) => { if (ev.key === "Enter") drill(d.id, tr); } },
      el("td", {}, d.external_id),
      el("td", {}, d.annotators.join(", ")),
      el("td", { class: "num" }, d.disagreement === null ? `– (${d.disagreement_reason})` : fmt(d.disagreement)),
      el("td", { class: "num" }, fmt(d.overlap_f1.entity)),
      el("td", { class: "num" }, fmt(d.overlap_f1.claim)),
      el("td", {}, el("a", { href: adjudicate.replace("/0/", `/${d.id}/`), onclick: (ev) => ev.stopPropagation() }, "review")));
    tbody.append(tr);
  }
  $("more-docs").hidden = showAllDocs || report.documents.length <= DOC_ROWS;
}

// --- drill-down ---------------------------------------------------------------------------

function segments(text, spans) {
  // Cut the text at every span boundary; each piece knows the spans covering it.
  const cps = Array.from(text); // offsets are code points
  const cuts = new Set([0, cps.length]);
  for (const s of spans) { cuts.add(s.start); cuts.add(s.end); }
  const points = [...cuts].sort((a, b) => a - b);
  const out = [];
  for (let i = 0; i + 1 < points.length; i++) {
    const [a, b] = [points[i], points[i + 1]];
    out.push({ text: cps.slice(a, b).join(""), covering: spans.filter((s) => s.start < b && a < s.end) });
  }
  return out;
}

function renderAnnotated(text, spans, agreedOf) {
  const pre = el("pre", { class: "doctext" });
  for (const seg of segments(text, spans)) {
    if (!seg.covering.length) { pre.append(seg.text); continue; }
    const claims = new Set(report.project.layers.claim || []);
    const conflict = seg.covering.some((s) => !agreedOf(s));
    const claim = seg.covering.some((s) => claims.has(s.label));
    const entity = seg.covering.some((s) => !claims.has(s.label));
    const cls = ["seg", conflict ? "conflict" : "agree", claim ? "claim" : "", entity ? "entity" : ""].join(" ").trim();
    const title = seg.covering.map((s) => `${s.label}${s.attributes && s.attributes.stance ? ` (${s.attributes.stance})` : ""}`).join(", ");
    pre.append(el("span", { class: cls, title }, seg.text));
  }
  return pre;
}

async function drill(docId, row) {
  document.querySelectorAll("#documents tr.selected").forEach((r) => r.classList.remove("selected"));
  if (row) row.classList.add("selected");
  const box = $("drilldown");
  box.hidden = false;
  $("drill-title").textContent = "Loading…";
  const resp = await fetch(root.dataset.diff.replace("/0/", `/${docId}/`), { headers: { Accept: "application/json" } });
  const diff = await resp.json();
  if (!resp.ok) { $("drill-title").textContent = diff.error; return; }
  $("drill-title").textContent = `Document ${diff.external_id}`;
  const link = el("a", { href: root.dataset.adjudicate.replace("/0/", `/${docId}/`) }, "Review and settle gold →");
  $("drill-summary").replaceChildren(`${diff.summary.disagreeing} disagreeing of ${diff.summary.distinct} distinct spans among ${diff.annotators.join(", ")}. `, link);
  $("drill-definition").textContent = `As on the review page: ${diff.summary.definition}.`;

  // side by side: one row per disagreeing span, one column per annotator
  const users = diff.annotators;
  $("drill-table").querySelector("thead").replaceChildren(
    el("tr", {}, el("th", {}, "span"), el("th", {}, "text"), ...users.map((u) => el("th", {}, u))));
  const tbody = $("drill-table").querySelector("tbody");
  tbody.replaceChildren();
  const cps = Array.from(diff.text);
  for (const s of diff.spans.filter((x) => !x.agreed)) {
    tbody.append(el("tr", { class: "conflict" },
      el("td", { class: "num" }, `${s.start}–${s.end}`),
      el("td", {}, cps.slice(s.start, s.end).join("").slice(0, 120)),
      ...users.map((u) => s.annotators.includes(u)
        ? el("td", { class: "conflict" }, s.label + (s.attributes[u] && s.attributes[u].stance ? ` (${s.attributes[u].stance})` : ""))
        : el("td", { class: "absent" }, "—"))));
  }
  if (!tbody.children.length) tbody.append(el("tr", {}, el("td", { colspan: users.length + 2 }, "No disagreement on this document.")));

  // the full text once per annotator, agreed spans green, disagreeing ones orange
  const agreed = new Set(diff.spans.filter((s) => s.agreed).map((s) => `${s.start}:${s.end}:${s.label}`));
  const cols = $("drill-columns");
  cols.replaceChildren();
  for (const u of users) {
    const spans = diff.spans_by_annotator[u];
    cols.append(el("div", { class: "column", "data-annotator": u },
      el("h3", {}, `${u} · ${spans.length} spans`),
      renderAnnotated(diff.text, spans, (s) => agreed.has(`${s.start}:${s.end}:${s.label}`))));
  }
  box.scrollIntoView({ behavior: "smooth", block: "start" });
}

function redraw() {
  drawLayerSummary();
  drawHeatmap();
  drawLabelBars();
}

// ?model=N: a trained model version joins the report as a read-only pseudo-annotator
const modelVersion = new URLSearchParams(window.location.search).get("model");

async function load() {
  const api = root.dataset.api + (modelVersion ? `?model=${encodeURIComponent(modelVersion)}` : "");
  const resp = await fetch(api, { headers: { Accept: "application/json" } });
  const body = await resp.json();
  if (!resp.ok) {
    $("report-error").textContent = body.error;
    $("report-error").hidden = false;
    $("coverage").textContent = "";
    return;
  }
  report = body;
  const c = report.coverage;
  $("coverage").textContent = `${c.documents} documents (honeypots not included): ${c.with_2_or_more} with two or more annotators, ` +
    `${c.with_1} with one, ${c.with_0} with none. Annotators: ${report.annotators.join(", ") || "none yet"}.` +
    (report.model ? ` ${report.model.name} joins as a pseudo-annotator on ${report.model.documents} documents` +
      ` (${report.model.left_out_trained_on} it learned from are left out).` : "");
  // JSON keys arrive sorted; entities first reads better
  const layers = Object.keys(report.layers).sort((a, b) => (a === "entity" ? -1 : b === "entity" ? 1 : a.localeCompare(b)));
  $("layer").replaceChildren(...layers.map((ly) =>
    el("option", { value: ly }, `${ly} (${report.project.layers[ly].join(", ")})`)));
  redraw();
  drawAnnotators();
  drawSuggestions();
  drawDocuments();
  root.dataset.ready = "1";
}

$("layer").addEventListener("change", redraw);
if ($("model")) {
  $("model").value = modelVersion || "";
  $("model").addEventListener("change", () => {
    const url = new URL(window.location.href);
    if ($("model").value) url.searchParams.set("model", $("model").value);
    else url.searchParams.delete("model");
    window.location.assign(url.toString());
  });
}
$("metric").addEventListener("change", redraw);
$("more-docs").addEventListener("click", () => { showAllDocs = true; drawDocuments(); });
load();
