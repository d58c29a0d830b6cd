/* editor.js: the annotate page's Editor, the model of one document's spans.
 *
 * Plain JS (not reactive; the Alpine component in page.js drives it). It holds the spans,
 * the labels, the tokens and the undo history; what it does with the DOM is in the modules
 * beside it, each adding its methods to Editor.prototype:
 *  - render.js: the text as line blocks of segments (<span class="sg">) cut at every span
 *    boundary, rendered ONCE; a change splits at most two segments and restyles only the
 *    segments it touches; the side list, rebuilt once per animation frame;
 *  - selection.js: the browser's selection, snapped to tokens, and clicks;
 *  - suggestions.js: suggested spans, reviewed by keyboard.
 *
 * Spans are stored in code points (the server's unit); the DOM works in UTF-16 units;
 * static/js/offsets.js converts at the edge. Every span object holds both.
 */
import { cmpSpan, newId, readableInk } from './helpers.js';

const O = window.Offsets; // static/js/offsets.js, loaded before the modules

export function Editor(textEl, listEl, hooks) {
  this.textEl = textEl;
  this.listEl = listEl;
  this.hooks = hooks; // {changed(), selected(span|null), message(text)}
  this.labels = {};
  this.spans = [];
  this.undoStack = [];
  this.redoStack = [];
  this.selectedId = null;
  this.hoverId = null;
  this.segs = [];
  this.rows = new Map();
  this.listSelected = null;
  this.sugs = [];          // suggestions: sorted, never overlapping each other or an entity
  this.sugFocusId = null;
  this.rejected = new Set(); // "start:end:label" the person rejected on this document
  this.origin = {};        // span id -> {source, version, edited}: accepted from a suggestion
  this.offering = null;    // whether this document is shown with suggestions: null until the server says
  // Korean: snapping leaves particles (은, 는, 이, 가…) outside spans, as the guidelines ask
  this.particles = (textEl.getAttribute('lang') || '').slice(0, 2) === 'ko' ? O.KO_PARTICLES : null;
}

Editor.prototype.setLabels = function (labels) {
  var self = this;
  this.labels = {};
  labels.forEach(function (lab) {
    var attrs = lab.attributes || {};
    var required = Object.keys(attrs).filter(function (k) { return attrs[k] && attrs[k].required; });
    self.labels[lab.name] = {
      name: lab.name, color: lab.color || '#888888', hotkey: lab.hotkey, kind: lab.kind || 'entity',
      attributes: attrs, required: required, ink: readableInk(lab.color || '#888888'),
    };
  });
};

Editor.prototype.makeSpan = function (start, end, label, attributes) {
  var m = this.map;
  var attrs = {};
  Object.keys(attributes || {}).forEach(function (k) { if (attributes[k] != null) attrs[k] = attributes[k]; });
  return Object.freeze({
    id: newId(), start: start, end: end, s16: m.toU16(start), e16: m.toU16(end),
    label: label, attributes: Object.freeze(attrs),
  });
};

Editor.prototype.isComplete = function (sp) {
  var lab = this.labels[sp.label];
  if (!lab) return false;
  return lab.required.every(function (k) { return sp.attributes[k] != null && sp.attributes[k] !== ''; });
};

Editor.prototype.isEntity = function (sp) {
  var lab = this.labels[sp.label];
  return !lab || lab.kind === 'entity';
};

/** Load a document and its spans (code points) and render everything once. */
Editor.prototype.load = function (text, spans, tokens) {
  this.text = text;
  this.map = new O.OffsetMap(text);
  this.setTokens(tokens, false);
  var self = this;
  this.origin = {};
  this.offering = null;  // until the suggestions answer: none offered (a control document?)
  this.spans = spans.map(function (s) {
    var sp = self.makeSpan(s.start, s.end, s.label, s.attributes);
    if (s.origin) self.origin[sp.id] = s.origin;  // accepted from a suggestion: kept on re-save
    return sp;
  }).sort(cmpSpan);
  this.undoStack = [];
  this.redoStack = [];
  this.selectedId = null;
  this.sugs = [];
  this.sugFocusId = null;
  this.rejected = new Set();
  this.index();
  this.renderAll();
  this.renderList();
};

/** Token boundaries ([[s, e], ...] code points) that snapping and the export use. */
Editor.prototype.setTokens = function (tokens, restyle) {
  this.tokens = tokens && tokens.length ? tokens : null;
  this.tokStarts = new Set((this.tokens || []).map(function (t) { return t[0]; }));
  this.tokEnds = new Set((this.tokens || []).map(function (t) { return t[1]; }));
  if (restyle) {
    this.styleSegments(0, this.segs.length);
    this.renderList();
    this.hooks.changed();
  }
};

/** Whether a span starts and ends on token boundaries (always, when there are no tokens). */
Editor.prototype.isAligned = function (sp) {
  return !this.tokens || (this.tokStarts.has(sp.start) && this.tokEnds.has(sp.end));
};

Editor.prototype.misaligned = function () {
  var self = this;
  return this.spans.filter(function (s) { return !self.isAligned(s); });
};

/** Derived arrays: entities (never overlap each other) and the other spans, by start. */
Editor.prototype.index = function () {
  var self = this;
  this.ents = this.spans.filter(function (s) { return self.isEntity(s); });
  this.others = this.spans.filter(function (s) { return !self.isEntity(s); });
  this.byId = {};
  this.spans.forEach(function (s) { self.byId[s.id] = s; });
};

/** Replace the span list; ranges of added/removed spans are re-cut and restyled. */
Editor.prototype.setSpans = function (next, recordUndo) {
  var prev = this.spans;
  if (recordUndo) {
    this.undoStack.push(prev);
    if (this.undoStack.length > 500) this.undoStack.shift();
    this.redoStack = [];
  }
  var before = new Set(prev.map(function (s) { return s.id; }));
  var after = new Set(next.map(function (s) { return s.id; }));
  var changed = prev.filter(function (s) { return !after.has(s.id); })
    .concat(next.filter(function (s) { return !before.has(s.id); }));
  this.spans = next.slice().sort(cmpSpan);
  this.index();
  if (this.selectedId != null && !this.byId[this.selectedId]) this.selectedId = null;
  var self = this;
  changed.forEach(function (s) { self.splitAt(s.s16); self.splitAt(s.e16); });
  changed.forEach(function (s) { self.refreshSpan(s); });
  this.pruneSuggestions();
  this.updateList(changed);
  this.hooks.changed();
  this.hooks.selected(this.selected());
  return changed;
};

Editor.prototype.undo = function () {
  if (!this.undoStack.length) { this.hooks.message('Nothing to undo.'); return false; }
  this.redoStack.push(this.spans);
  this.setSpans(this.undoStack.pop(), false);
  return true;
};

Editor.prototype.redo = function () {
  if (!this.redoStack.length) { this.hooks.message('Nothing to redo.'); return false; }
  this.undoStack.push(this.spans);
  this.setSpans(this.redoStack.pop(), false);
  return true;
};

Editor.prototype.selected = function () {
  return this.selectedId != null ? this.byId[this.selectedId] || null : null;
};

Editor.prototype.entityClash = function (sp, ignoreId) {
  return this.ents.find(function (e) { return e.id !== ignoreId && e.s16 < sp.e16 && sp.s16 < e.e16; }) || null;
};

Editor.prototype.relabel = function (label) {
  var old = this.selected(), lab = this.labels[label];
  if (!old || !lab || old.label === label) return null;
  var attrs = {};
  Object.keys(old.attributes).forEach(function (k) { if (lab.attributes[k]) attrs[k] = old.attributes[k]; });
  var sp = this.makeSpan(old.start, old.end, label, attrs);
  if (lab.kind === 'entity') {
    var clash = this.entityClash(sp, old.id);
    if (clash) {
      this.hooks.message('Cannot make it ' + label + ': it would overlap the ' + clash.label + ' “' +
        this.spanText(clash) + '”.');
      return null;
    }
  }
  if (this.spans.some(function (s) { return s.id !== old.id && s.start === sp.start && s.end === sp.end && s.label === label; })) {
    this.hooks.message('There is already a ' + label + ' on exactly this text.');
    return null;
  }
  var from = this.origin[old.id];
  if (from) this.origin[sp.id] = { source: from.source, version: from.version, edited: true };
  this.selectedId = sp.id;
  this.setSpans(this.spans.filter(function (s) { return s.id !== old.id; }).concat([sp]), true);
  return sp;
};

/** Set an attribute by its value's first letter (CLAIM stance: f / a / n). */
Editor.prototype.setAttributeByKey = function (key) {
  var old = this.selected();
  if (!old) return false;
  var lab = this.labels[old.label];
  var found = null;
  Object.keys(lab.attributes).some(function (name) {
    var vals = lab.attributes[name].values || [];
    var v = vals.find(function (x) { return String(x).charAt(0).toLowerCase() === key; });
    if (v) { found = [name, v]; return true; }
    return false;
  });
  if (!found) return false;
  if (old.attributes[found[0]] === found[1]) return true;
  var attrs = Object.assign({}, old.attributes);
  attrs[found[0]] = found[1];
  var sp = this.makeSpan(old.start, old.end, old.label, attrs);
  if (this.origin[old.id]) this.origin[sp.id] = this.origin[old.id];
  this.selectedId = sp.id;
  this.setSpans(this.spans.filter(function (s) { return s.id !== old.id; }).concat([sp]), true);
  return true;
};

Editor.prototype.deleteSelected = function () {
  var old = this.selected();
  if (!old) return false;
  this.selectedId = null;
  this.setSpans(this.spans.filter(function (s) { return s.id !== old.id; }), true);
  return true;
};

Editor.prototype.spanText = function (sp) { return this.map.sliceCp(sp.start, sp.end); };

Editor.prototype.incomplete = function () {
  var self = this;
  return this.spans.filter(function (s) { return !self.isComplete(s); });
};

/** What the server gets: complete spans only, in code points. */
Editor.prototype.wire = function () {
  var self = this;
  return this.spans.filter(function (s) { return self.isComplete(s); }).map(function (s) {
    var out = { start: s.start, end: s.end, label: s.label, attributes: Object.assign({}, s.attributes) };
    var from = self.origin[s.id];
    if (from) out.origin = { source: from.source, version: from.version, edited: !!from.edited };
    return out;
  });
};
