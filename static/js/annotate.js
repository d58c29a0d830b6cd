/* annotate.js: the annotate page.
 *
 * Two parts:
 *  - Editor: plain JS (not reactive) that owns the text DOM and the spans. The text is rendered
 *    ONCE as line blocks of segments (<span class="sg">) cut at every span boundary; a change
 *    splits at most two segments and restyles only the segments it touches. The side list is
 *    rebuilt once per animation frame, after the highlight is painted.
 *  - the Alpine component "annotate" (CSP build: attributes name properties and methods only):
 *    toolbar, save state, messages, overlays. It talks to the JSON API and drives the Editor.
 *
 * Spans are stored in code points (the server's unit); the DOM works in UTF-16 units;
 * static/js/offsets.js converts at the edge. Every span object holds both.
 */
(function () {
  'use strict';
  var O = window.Offsets;

  // ---------------------------------------------------------------------------------------
  // Editor
  // ---------------------------------------------------------------------------------------

  var nextId = 1;

  function bsearch(arr, pred) { // first index whose element satisfies pred (arr partitioned)
    var lo = 0, hi = arr.length;
    while (lo < hi) { var mid = (lo + hi) >> 1; if (pred(arr[mid])) hi = mid; else lo = mid + 1; }
    return lo;
  }

  function cmpSpan(a, b) {
    return a.start - b.start || a.end - b.end || (a.label < b.label ? -1 : a.label > b.label ? 1 : 0);
  }

  /** The text colour (near-black or white) that reads best on a label's colour: the higher
   *  WCAG contrast ratio of the two (white on pale yellow or orange failed AA's 4.5:1). */
  function readableInk(hex) {
    function lin(c) { c /= 255; return c <= 0.03928 ? c / 12.92 : Math.pow((c + 0.055) / 1.055, 2.4); }
    function lum(h) {
      var n = parseInt(h.slice(1), 16);
      return 0.2126 * lin((n >> 16) & 255) + 0.7152 * lin((n >> 8) & 255) + 0.0722 * lin(n & 255);
    }
    var bg = lum(/^#[0-9a-f]{6}$/i.test(hex) ? hex : '#888888');
    var dark = '#1d2330', onDark = (bg + 0.05) / (lum(dark) + 0.05), onWhite = 1.05 / (bg + 0.05);
    return onDark >= onWhite ? dark : '#ffffff';
  }

  function Editor(textEl, listEl, hooks) {
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

  /** Whether a span ends in a particle token (the side list says so). */
  Editor.prototype.endsInParticle = function (sp) {
    return !!(this.particles && this.tokens &&
              O.withoutParticles(this.map, this.tokens, sp.start, sp.end, this.particles) !== sp.end);
  };

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
      id: nextId++, start: start, end: end, s16: m.toU16(start), e16: m.toU16(end),
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

  Editor.prototype.renderAll = function () {
    var text = this.text, n = text.length;
    var cuts = new Set([0, n]);
    this.spans.forEach(function (s) { cuts.add(s.s16); cuts.add(s.e16); });
    // Line blocks keep layout work local: a change re-lays-out one line, not the document.
    for (var i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', i + 1)) cuts.add(i + 1);
    var sorted = Array.from(cuts).sort(function (a, b) { return a - b; });
    var frag = document.createDocumentFragment();
    var block = null, segs = [];
    for (var k = 0; k + 1 < sorted.length; k++) {
      var a = sorted[k], b = sorted[k + 1];
      if (block === null || text.charCodeAt(a - 1) === 10) {
        block = document.createElement('div');
        block.className = 'ln';
        frag.appendChild(block);
      }
      var el = document.createElement('span');
      el.className = 'sg';
      el.appendChild(document.createTextNode(text.slice(a, b)));
      el._s = a; el._e = b;
      block.appendChild(el);
      segs.push(el);
    }
    if (n === 0) {
      block = document.createElement('div');
      block.className = 'ln empty';
      frag.appendChild(block);
    }
    this.segs = segs;
    this.textEl.textContent = '';
    this.textEl.appendChild(frag);
    this.styleSegments(0, segs.length);
  };

  /** Index of the segment containing UTF-16 offset u (u < length). */
  Editor.prototype.segIndex = function (u) {
    return bsearch(this.segs, function (el) { return el._e > u; });
  };

  /** Make u a segment boundary (split the segment containing it). */
  Editor.prototype.splitAt = function (u) {
    if (u <= 0 || u >= this.text.length) return;
    var i = this.segIndex(u);
    var el = this.segs[i];
    if (!el || el._s === u) return;
    var right = el.cloneNode(false);
    right.appendChild(el.firstChild.splitText(u - el._s));
    right._s = u; right._e = el._e;
    el._e = u;
    el.after(right);
    this.segs.splice(i + 1, 0, right);
  };

  /** Spans covering the segment [s, e) (every span edge is a segment edge). */
  Editor.prototype.covering = function (s, e) {
    var out = [];
    var ents = this.ents;
    var j = bsearch(ents, function (x) { return x.s16 > s; }) - 1;
    if (j >= 0 && ents[j].e16 >= e) out.push(ents[j]);
    var others = this.others;
    for (var k = 0; k < others.length && others[k].s16 <= s; k++) {
      if (others[k].e16 >= e) out.push(others[k]);
    }
    return out;
  };

  /** Restyle segments [from, to) (indices). */
  Editor.prototype.styleSegments = function (from, to) {
    var segs = this.segs;
    for (var i = from; i < to; i++) this.styleSeg(segs[i]);
  };

  Editor.prototype.styleSeg = function (el) {
    var cov = this.covering(el._s, el._e);
    var cls = 'sg';
    var etag = '', ctag = '', ent = null, claim = null, nclaims = 0, sel = false, hov = false, incomplete = false;
    var misal = false;
    for (var i = 0; i < cov.length; i++) {
      var sp = cov[i], lab = this.labels[sp.label];
      if (sp.id === this.selectedId) sel = true;
      if (sp.id === this.hoverId) hov = true;
      if (!this.isAligned(sp)) misal = true;
      if (this.isEntity(sp)) {
        ent = sp;
        if (sp.e16 === el._e) etag = sp.label;
      } else {
        nclaims++;
        if (!claim) claim = sp;
        var done = this.isComplete(sp);
        if (!done) incomplete = true;
        if (sp.s16 === el._s) {
          var vals = Object.keys(sp.attributes).map(function (k) { return sp.attributes[k]; }).join(' ');
          ctag += (ctag ? ' | ' : '') + sp.label + (done ? (vals ? ' · ' + vals : '') : ' · ?');
        }
      }
      void lab;
    }
    if (ent) {
      cls += ' ent';
      if (ent.s16 === el._s) cls += ' ent-s';
      if (ent.e16 === el._e) cls += ' ent-e';
      el.style.setProperty('--c', this.labels[ent.label] ? this.labels[ent.label].color : '#888888');
      el.style.setProperty('--ct', this.labels[ent.label] ? this.labels[ent.label].ink : '#ffffff');
    } else if (el.classList.contains('ent')) {
      el.style.removeProperty('--c');
      el.style.removeProperty('--ct');
    }
    if (claim) {
      cls += ' clm';
      if (nclaims > 1) cls += ' clm2';
      if (incomplete) cls += ' clm-x';
      if (claim.s16 === el._s) cls += ' clm-s';
      if (claim.e16 === el._e) cls += ' clm-e';
      el.style.setProperty('--cc', this.labels[claim.label] ? this.labels[claim.label].color : '#555555');
    }
    var stag = '';
    if (!ent && this.sugs.length) {
      var sg = this.sugCovering(el._s, el._e);
      if (sg) {
        cls += ' sug';
        if (sg.s16 === el._s) cls += ' sug-s';
        if (sg.e16 === el._e) { cls += ' sug-e'; stag = sg.label + '?'; }
        if (sg.id === this.sugFocusId) cls += ' sugf';
        el.style.setProperty('--sc', this.labels[sg.label] ? this.labels[sg.label].color : '#888888');
      }
    }
    if (sel) cls += ' sel';
    if (hov) cls += ' hov';
    if (misal) cls += ' misal';
    if (el.className !== cls) el.className = cls;
    if (etag) el.dataset.etag = etag; else if (el.dataset.etag !== undefined) delete el.dataset.etag;
    if (stag) el.dataset.stag = stag; else if (el.dataset.stag !== undefined) delete el.dataset.stag;
    if (ctag) el.dataset.ctag = ctag; else if (el.dataset.ctag !== undefined) delete el.dataset.ctag;
  };

  /** Restyle every segment that touches [a, b] (UTF-16), neighbours included. */
  Editor.prototype.refresh = function (a, b) {
    var i = Math.max(0, this.segIndex(Math.max(0, a - 1)));
    var segs = this.segs;
    for (; i < segs.length && segs[i]._s <= b; i++) this.styleSeg(segs[i]);
  };

  Editor.prototype.refreshSpan = function (sp) { if (sp) this.refresh(sp.s16, sp.e16); };

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

  Editor.prototype.select = function (id, scroll) {
    if (id != null && this.sugFocusId != null) this.focusSuggestion(null);
    var old = this.selected();
    this.selectedId = id;
    this.refreshSpan(old);
    var sp = this.selected();
    this.refreshSpan(sp);
    this.markListSelection(true);
    if (sp && scroll) {
      var el = this.segs[this.segIndex(sp.s16)];
      if (el && el.scrollIntoView) el.scrollIntoView({ block: 'nearest' });
    }
    this.hooks.selected(sp);
  };

  Editor.prototype.hover = function (id) {
    if (this.hoverId === id) return;
    var old = this.hoverId != null ? this.byId[this.hoverId] : null;
    this.hoverId = id;
    this.refreshSpan(old);
    this.refreshSpan(id != null ? this.byId[id] : null);
  };

  /** The current DOM selection as UTF-16 offsets in the text, or null. */
  Editor.prototype.domSelection = function () {
    var sel = window.getSelection();
    if (!sel || sel.rangeCount === 0 || sel.isCollapsed) return null;
    var r = sel.getRangeAt(0);
    var a = this.domOffset(r.startContainer, r.startOffset);
    var b = this.domOffset(r.endContainer, r.endOffset);
    if (a == null || b == null || a === b) return null;
    return a < b ? [a, b] : [b, a];
  };

  Editor.prototype.domOffset = function (node, offset) {
    var root = this.textEl;
    if (!root.contains(node)) {
      // A drag that ends outside the text: clamp to the nearer end.
      if (node.compareDocumentPosition) {
        var pos = root.compareDocumentPosition(node);
        if (pos & Node.DOCUMENT_POSITION_PRECEDING) return 0;
        if (pos & Node.DOCUMENT_POSITION_FOLLOWING) return this.text.length;
      }
      return null;
    }
    if (node.nodeType === Node.TEXT_NODE) {
      var seg = node.parentNode;
      return seg._s + offset;
    }
    if (node._s !== undefined) return offset === 0 ? node._s : node._e; // a segment
    // a block or the root: offset counts children
    var kids = node.childNodes;
    if (offset < kids.length) return this.firstOffset(kids[offset]);
    return kids.length ? this.lastOffset(kids[kids.length - 1]) : 0;
  };

  Editor.prototype.firstOffset = function (el) {
    while (el && el._s === undefined) el = el.firstChild;
    return el ? el._s : 0;
  };
  Editor.prototype.lastOffset = function (el) {
    while (el && el._s === undefined) el = el.lastChild;
    return el ? el._e : this.text.length;
  };

  /** Tag the selection with a label. Returns the new span or null (with a message). */
  // --- suggestions: spans nobody drew yet, dashed and unfilled; saved only once accepted --

  function sugKey(sg) { return sg.start + ':' + sg.end + ':' + sg.label; }

  /** Replace the suggestions ([{start, end, label, source, score, version}], code points).
   *  Kept: entity labels only, none on an entity span, none rejected here, none overlapping
   *  one kept before it (the server's order: longest first is its business). */
  Editor.prototype.setSuggestions = function (list) {
    var self = this, kept = [];
    (list || []).forEach(function (s) {
      var lab = self.labels[s.label];
      if (!lab || lab.kind !== 'entity' || self.rejected.has(sugKey(s))) return;
      var sg = { id: nextId++, start: s.start, end: s.end, s16: self.map.toU16(s.start),
                 e16: self.map.toU16(s.end), label: s.label, source: s.source || 'dictionary',
                 score: s.score == null ? 1 : s.score, version: s.version || '' };
      if (self.entityClash(sg, null)) return;
      if (kept.some(function (k) { return k.s16 < sg.e16 && sg.s16 < k.e16; })) return;
      kept.push(sg);
    });
    this.replaceSuggestions(kept);
  };

  Editor.prototype.replaceSuggestions = function (next) {
    var self = this, old = this.sugs;
    this.sugs = next.slice().sort(cmpSpan);
    if (this.sugFocusId != null && !this.sugs.some(function (g) { return g.id === self.sugFocusId; })) {
      this.sugFocusId = null;
    }
    var touched = old.filter(function (g) { return next.indexOf(g) < 0; })
      .concat(next.filter(function (g) { return old.indexOf(g) < 0; }));
    touched.forEach(function (g) { self.splitAt(g.s16); self.splitAt(g.e16); });
    touched.forEach(function (g) { self.refresh(g.s16, g.e16); });
    if (this.hooks.suggestions) this.hooks.suggestions();
  };

  /** Drop the suggestions an entity span now overlaps (the person drew over them). */
  Editor.prototype.pruneSuggestions = function () {
    if (!this.sugs.length) return;
    var self = this;
    var keep = this.sugs.filter(function (g) { return !self.entityClash(g, null); });
    if (keep.length !== this.sugs.length) this.replaceSuggestions(keep);
  };

  /** The suggestion covering the segment [s, e) (UTF-16), or null. */
  Editor.prototype.sugCovering = function (s, e) {
    var sugs = this.sugs;
    var j = bsearch(sugs, function (x) { return x.s16 > s; }) - 1;
    return j >= 0 && sugs[j].e16 >= e ? sugs[j] : null;
  };

  Editor.prototype.focusedSuggestion = function () {
    var id = this.sugFocusId;
    return id == null ? null : this.sugs.find(function (g) { return g.id === id; }) || null;
  };

  Editor.prototype.focusSuggestion = function (sg) {
    if (sg && this.selectedId != null) this.select(null);  // one thing in focus at a time
    var old = this.focusedSuggestion();
    this.sugFocusId = sg ? sg.id : null;
    if (old) this.refresh(old.s16, old.e16);
    if (sg) {
      this.refresh(sg.s16, sg.e16);
      var el = this.segs[this.segIndex(sg.s16)];
      if (el && el.scrollIntoView) el.scrollIntoView({ block: 'nearest' });
    }
    if (this.hooks.suggestions) this.hooks.suggestions();
  };

  /** Focus the next (dir 1) or previous (-1) suggestion in text order, from the focused one
   *  or else from the selected span; wraps around. */
  Editor.prototype.cycleSuggestion = function (dir) {
    var sugs = this.sugs;
    if (!sugs.length) return null;
    var cur = this.focusedSuggestion() || this.selected();
    var i;
    if (!cur) i = dir > 0 ? 0 : sugs.length - 1;
    else if (dir > 0) { i = bsearch(sugs, function (g) { return g.s16 > cur.s16; }); if (i >= sugs.length) i = 0; }
    else { i = bsearch(sugs, function (g) { return g.s16 >= cur.s16; }) - 1; if (i < 0) i = sugs.length - 1; }
    this.focusSuggestion(sugs[i]);
    return sugs[i];
  };

  /** Make suggestions into spans (label: another label than suggested, for one); the spans
   *  remember where they came from. One undo step. */
  Editor.prototype.acceptSuggestions = function (list, label) {
    if (!list.length) return [];
    var self = this, added = [];
    list.forEach(function (sg) {
      var sp = self.makeSpan(sg.start, sg.end, label || sg.label, {});
      self.origin[sp.id] = { source: sg.source, version: sg.version, edited: !!label && label !== sg.label };
      added.push(sp);
    });
    var gone = new Set(list);
    this.replaceSuggestions(this.sugs.filter(function (g) { return !gone.has(g); }));
    this.setSpans(this.spans.concat(added), true);
    return added;
  };

  Editor.prototype.rejectSuggestion = function (sg) {
    this.rejected.add(sugKey(sg));
    if (this.hooks.rejected) this.hooks.rejected(sg);
    var next = this.cycleAfter(sg);
    this.replaceSuggestions(this.sugs.filter(function (g) { return g !== sg; }));
    if (next && next !== sg) this.focusSuggestion(next);
  };

  /** The suggestion after sg (in text order, wrapping), for moving on after a decision. */
  Editor.prototype.cycleAfter = function (sg) {
    var sugs = this.sugs, i = sugs.indexOf(sg);
    return sugs.length > 1 ? sugs[(i + 1) % sugs.length] : null;
  };

  /** "Label all occurrences": the other places the span's exact text stands, on token
   *  boundaries, where no entity is, offered as suggestions at once (no round trip). */
  Editor.prototype.offerOccurrences = function (sp) {
    if (!this.offering || !this.isEntity(sp)) return 0;  // control, honeypot, suggestions off
    var text = this.text, needle = text.slice(sp.s16, sp.e16);
    if (!needle) return 0;
    var self = this, add = [];
    for (var i = text.indexOf(needle); i !== -1; i = text.indexOf(needle, i + 1)) {
      if (i === sp.s16) continue;
      var g = { id: nextId++, start: this.map.toCp(i), end: this.map.toCp(i + needle.length),
                s16: i, e16: i + needle.length, label: sp.label, source: 'dictionary', score: 1,
                version: 'page' };
      if (!this.isAligned(g) || this.entityClash(g, null) || this.rejected.has(sugKey(g))) continue;
      if (this.sugs.concat(add).some(function (k) { return k.s16 < g.e16 && g.s16 < k.e16 && !(k.start === g.start && k.end === g.end); })) continue;
      add.push(g);
    }
    if (!add.length) return 0;
    var same = function (k) { return add.some(function (g) { return g.start === k.start && g.end === k.end; }); };
    this.replaceSuggestions(this.sugs.filter(function (k) { return !same(k); }).concat(add));
    return add.length;
  };

  /** The suggestions standing where sp's text stands again, with sp's label. */
  Editor.prototype.occurrencesOf = function (sp) {
    var needle = this.spanText(sp), self = this;
    return this.sugs.filter(function (g) { return g.label === sp.label && self.map.sliceCp(g.start, g.end) === needle; });
  };

  Editor.prototype.tagSelection = function (label, exact) {
    var lab = this.labels[label];
    var range = this.domSelection();
    if (!lab || !range) return null;
    var r = O.normalizeSelection(this.map, range[0], range[1],
                                 { exact: exact, tokens: this.tokens, particles: this.particles });
    if (r[0] >= r[1]) { this.hooks.message('The selection holds only spaces; nothing to tag.'); return null; }
    var start = this.map.toCp(r[0]), end = this.map.toCp(r[1]);
    var same = this.spans.find(function (s) { return s.start === start && s.end === end && s.label === label; });
    if (same) { window.getSelection().removeAllRanges(); this.select(same.id); return same; }
    var sp = this.makeSpan(start, end, label, {});
    if (lab.kind === 'entity') {
      var clash = this.entityClash(sp, null);
      if (clash) {
        this.hooks.message('“' + this.spanText(sp) + '” overlaps the ' + clash.label + ' “' +
          this.spanText(clash) + '”: entities may not overlap. Delete or shorten that one first.');
        return null;
      }
    }
    window.getSelection().removeAllRanges();
    var before = this.selected();  // one span looks selected: the new one, not also the last
    this.selectedId = sp.id;
    this.setSpans(this.spans.concat([sp]), true);
    this.refreshSpan(before);
    this.markListSelection(false);
    return sp;
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

  Editor.prototype.cycle = function (dir) {
    var n = this.spans.length;
    if (!n) return;
    var i = this.selectedId == null ? -1 : this.spans.findIndex(function (s) { return s.id === this.selectedId; }, this);
    var j = i === -1 ? (dir > 0 ? 0 : n - 1) : (i + dir + n) % n;
    this.select(this.spans[j].id, true);
  };

  /** A click on the text: select the span under it (repeated clicks cycle through nested ones). */
  Editor.prototype.clickAt = function (target) {
    var seg = target && target.closest ? target.closest('.sg') : null;
    if (!seg || !this.textEl.contains(seg)) return;
    var cov = this.covering(seg._s, seg._e);
    if (!cov.length) { this.select(null); return; }
    var ids = cov.map(function (s) { return s.id; });
    var at = ids.indexOf(this.selectedId);
    this.select(ids[(at + 1) % ids.length]);
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

  /** The side list is kept in step row by row: a change adds/removes only its own rows. */
  Editor.prototype.renderList = function () {
    var frag = document.createDocumentFragment();
    var self = this;
    this.rows = new Map();
    this.spans.forEach(function (sp) { frag.appendChild(self.makeRow(sp)); });
    this.listEl.textContent = '';
    this.listEl.appendChild(frag);
    this.listSelected = null;
    this.markListSelection(false);
  };

  Editor.prototype.makeRow = function (sp) {
    var li = document.createElement('li');
    li.dataset.id = sp.id;
    var lab = this.labels[sp.label];
    var aligned = this.isAligned(sp);
    li.className = 'span-row' + (this.isComplete(sp) ? '' : ' incomplete') + (aligned ? '' : ' misaligned');
    var chip = document.createElement('span');
    chip.className = 'chip';
    chip.textContent = sp.label;
    chip.style.setProperty('--c', lab ? lab.color : '#888888');
    var txt = document.createElement('span');
    txt.className = 'txt';
    var t = this.spanText(sp);
    txt.textContent = t.length > 80 ? t.slice(0, 77) + '…' : t;
    li.appendChild(chip);
    li.appendChild(txt);
    if (lab && lab.kind !== 'entity') {
      var st = document.createElement('span');
      st.className = 'stance';
      var vals = Object.keys(sp.attributes).map(function (k) { return sp.attributes[k]; });
      st.textContent = this.isComplete(sp) ? vals.join(' ') : 'needs ' + lab.required.join(', ');
      li.appendChild(st);
    }
    if (this.endsInParticle(sp)) {
      var pw = document.createElement('span');
      pw.className = 'misal-note particle-note';
      pw.textContent = 'ends in a particle';
      pw.title = 'The guidelines keep particles (은, 는, 이, 가, 에서…) outside spans: shorten it, unless the particle is part of the name.';
      li.appendChild(pw);
    }
    if (!aligned) {
      var warn = document.createElement('span');
      warn.className = 'misal-note';
      warn.textContent = 'not on token boundaries';
      warn.title = 'The export tokenizer cuts this text differently: a model cannot learn this span as drawn.';
      li.appendChild(warn);
    }
    this.rows.set(sp.id, li);
    return li;
  };

  Editor.prototype.updateList = function (changed) {
    var self = this;
    changed.forEach(function (sp) {
      var li = self.rows.get(sp.id);
      if (li && !self.byId[sp.id]) { li.remove(); self.rows.delete(sp.id); }
    });
    changed.forEach(function (sp) {
      if (!self.byId[sp.id] || self.rows.has(sp.id)) return;
      var li = self.makeRow(sp);
      var i = self.spans.indexOf(sp);
      var after = null;
      for (var k = i + 1; k < self.spans.length && !after; k++) after = self.rows.get(self.spans[k].id) || null;
      self.listEl.insertBefore(li, after);
    });
    this.markListSelection(true);
  };

  Editor.prototype.markListSelection = function (scroll) {
    var old = this.listSelected != null ? this.rows.get(this.listSelected) : null;
    if (old) old.classList.remove('sel');
    var li = this.selectedId != null ? this.rows.get(this.selectedId) : null;
    this.listSelected = li ? this.selectedId : null;
    if (!li) return;
    li.classList.add('sel');
    if (scroll) {
      // After the highlight is painted: measuring the list forces a layout.
      var list = this.listEl;
      requestAnimationFrame(function () {
        setTimeout(function () {
          if (!li.isConnected) return;
          var box = list.getBoundingClientRect(), r = li.getBoundingClientRect();
          if (r.top < box.top || r.bottom > box.bottom) li.scrollIntoView({ block: 'nearest' });
        }, 0);
      });
    }
  };

  window.AnnotateEditor = Editor;

  // ---------------------------------------------------------------------------------------
  // The Alpine component
  // ---------------------------------------------------------------------------------------

  function csrf() {
    var m = document.querySelector('meta[name="csrf-token"]');
    return m ? m.getAttribute('content') : '';
  }

  function api(method, url, body) {
    var opts = { method: method, credentials: 'same-origin', headers: { Accept: 'application/json' } };
    if (body !== undefined) {
      opts.headers['Content-Type'] = 'application/json';
      opts.headers['X-CSRF-Token'] = csrf();
      opts.body = JSON.stringify(body);
    }
    return fetch(url, opts).then(function (resp) {
      if (resp.status === 204) return { status: 204, data: null };
      return resp.json().catch(function () { return null; }).then(function (data) {
        return { status: resp.status, data: data, retryAfter: Number(resp.headers.get('Retry-After')) || 0 };
      });
    });
  }

  function errorText(r) {
    if (r.data && r.data.error) return r.data.error;
    return 'The server answered ' + r.status + '.';
  }

  var SAVE_DELAY_MS = 600;
  var RETRY_FULL_S = 10;  // a full disk (507) says no Retry-After: try again this often
  var retryTimer = null;

  /**
   * Call fn once el has a layout box. Alpine's x-show shows on a later animation frame (a timer
   * in a hidden tab), after $nextTick has already run: focusing or measuring in $nextTick
   * can hit an element that is still display:none, which a slow frame makes likely.
   */
  function whenShown(el, fn) {
    var frames = 0;
    (function check() {
      if (!el || el.getClientRects().length || frames++ > 300) { fn(); return; }
      if (document.visibilityState === 'visible') requestAnimationFrame(check);
      else setTimeout(check, 16);
    })();
  }

  function component() {
    var ed = null;          // the Editor (kept out of Alpine's reactive proxy on purpose)
    var saveTimer = null;
    var inflight = null;    // Promise of the save under way
    var lastSent = null;    // JSON of the spans the server holds
    // Exact mode held with Alt belongs to one selection: noticed from the press of the mouse in
    // the text to its release anywhere (past a line end, outside the window), reset by the
    // next press and once the selection is tagged.
    var selectionAlt = false, dragging = false;

    return {
      // reactive state (small)
      loading: true,
      done: false,
      fatal: '',
      projectName: '',
      docLabel: '',
      progressText: '',
      labels: [],
      saveState: 'saved',   // saved | pending | saving | error | conflict
      saveError: '',
      incompleteCount: 0,
      misalignedCount: 0,
      tokensPending: false,
      misalignedWord: '',
      spanCount: 0,
      message: '',
      conflict: false,
      exact: false,
      helpOpen: false,
      skipOpen: false,
      skipReason: '',
      guidelinesOpen: false,
      hasGuidelines: false,
      sel: null,            // {label, text, stanceText, isClaim, needs}
      busy: false,
      sugCount: 0,          // suggestions on the page
      sugFocusText: '',     // the focused suggestion, as "ORG “메타” (dictionary, 0.9)"
      sugPending: false,    // the server has no tokens for this document yet

      // non-reactive ids
      init: function () {
        var root = this.$el;
        this.pid = Number(root.dataset.projectId);
        this.did = root.dataset.documentId ? Number(root.dataset.documentId) : null;
        this.apiBase = root.dataset.api;
        this.nextUrl = root.dataset.nextUrl;
        this.docUrlTemplate = root.dataset.docUrl; // ends in /0/annotate
        this.version = 0;
        var self = this;
        ed = new Editor(this.$refs.text, this.$refs.list, {
          changed: function () { self.onChanged(); },
          selected: function (sp) { self.onSelected(sp); },
          message: function (t) { self.message = t; },
          suggestions: function () { self.onSuggestions(); },
          rejected: function (sg) { self.onRejected(sg); },
        });
        window.__annotate = { editor: function () { return ed; }, component: this };
        this.bindEvents();
        this.start();
      },

      start: function () {
        var self = this;
        var t0 = performance.now();
        api('GET', this.apiBase + '/projects/' + this.pid).then(function (r) {
          if (r.status !== 200) throw new Error(errorText(r));
          var p = r.data;
          self.projectName = p.name;
          self.labels = p.labels.map(function (l) {
            return { name: l.name, hotkey: l.hotkey || '', kind: l.kind, color: l.color };
          });
          ed.setLabels(p.labels);
          self.colorButtons();
          if (p.guidelines_html) {
            self.$refs.guidelines.innerHTML = p.guidelines_html; // sanitised on the server (nh3)
            self.hasGuidelines = true;
          }
          if (p.progress) {
            self.progressText = p.progress.submitted + ' of ' + p.progress.documents + ' submitted';
          }
          var url = self.did ? self.apiBase + '/documents/' + self.did : self.apiBase + '/projects/' + self.pid + '/next';
          return api('GET', url);
        }).then(function (r) {
          if (r.status === 204) { self.loading = false; self.done = true; return null; }
          if (r.status !== 200) throw new Error(errorText(r));
          var doc = r.data;
          self.did = doc.id;
          self.docLabel = doc.external_id;
          if (!self.$el.dataset.documentId && self.docUrlTemplate) {
            history.replaceState(null, '', self.docUrlTemplate.replace(/\/0\/annotate$/, '/' + doc.id + '/annotate'));
          }
          return api('GET', self.apiBase + '/documents/' + doc.id + '/annotation').then(function (a) {
            if (a.status !== 200) throw new Error(errorText(a));
            self.version = a.data.version;
            self.status = a.data.status;
            ed.load(doc.text, a.data.spans, doc.tokens);
            if (doc.tokens_pending) self.waitForTokens(doc.id, 0);
            else self.loadSuggestions();
            lastSent = JSON.stringify(ed.wire());
            self.loading = false;
            self.onChanged();
            self.saveState = 'saved';
            // Ready once Alpine has shown the text.
            whenShown(self.$refs.text, function () {
              self.$el.dataset.ready = '1';
              window.__annotateReadyMs = performance.now() - t0;
              window.dispatchEvent(new CustomEvent('annotate:ready'));
            });
          });
        }).catch(function (e) {
          self.loading = false;
          self.fatal = 'Could not open the document: ' + e.message;
        });
      },

      colorButtons: function () {
        var self = this;
        this.$nextTick(function () {
          self.$el.querySelectorAll('[data-color]').forEach(function (el) {
            el.style.setProperty('--c', el.dataset.color);
          });
        });
      },

      bindEvents: function () {
        var self = this;
        window.addEventListener('keydown', function (e) { self.onKey(e); });
        var text = this.$refs.text;
        text.addEventListener('mousedown', function (e) { dragging = true; selectionAlt = e.altKey; });
        window.addEventListener('mousemove', function (e) { if (dragging && e.altKey) selectionAlt = true; }, true);
        window.addEventListener('mouseup', function (e) {
          if (!dragging) return;
          dragging = false;
          if (e.altKey) selectionAlt = true;
        }, true);
        text.addEventListener('click', function (e) {
          var s = window.getSelection();
          if (s && !s.isCollapsed) return;
          ed.clickAt(e.target);
        });
        var list = this.$refs.list;
        list.addEventListener('mouseover', function (e) {
          var li = e.target.closest('li');
          ed.hover(li ? Number(li.dataset.id) : null);
        });
        list.addEventListener('mouseleave', function () { ed.hover(null); });
        list.addEventListener('click', function (e) {
          var li = e.target.closest('li');
          if (li) ed.select(Number(li.dataset.id), true);
        });
        window.addEventListener('beforeunload', function (e) {
          if (self.saveState === 'pending' || self.saveState === 'saving') { e.preventDefault(); e.returnValue = ''; }
        });
      },

      labelForKey: function (e) {
        for (var i = 0; i < this.labels.length; i++) {
          var hk = this.labels[i].hotkey;
          if (!hk) continue;
          if (e.key === hk) return this.labels[i].name;
          // Alt+digit may produce another character (macOS): match the physical key too.
          if (e.altKey && (e.code === 'Digit' + hk || e.code === 'Key' + hk.toUpperCase())) return this.labels[i].name;
        }
        return null;
      },

      onKey: function (e) {
        if (this.loading || this.done) return;
        var t = e.target;
        var typing = t && ((t.tagName === 'INPUT' && t.type !== 'checkbox' && t.type !== 'radio') ||
          t.tagName === 'TEXTAREA' || t.tagName === 'SELECT' || t.isContentEditable);
        if (e.key === 'Escape') {
          if (this.helpOpen || this.skipOpen) { this.helpOpen = false; this.skipOpen = false; }
          else { ed.select(null); ed.focusSuggestion(null); this.message = ''; }
          return;
        }
        if (this.skipOpen) {
          // A key typed before the reason field took focus (it does once Alpine has shown the
          // dialog, a frame or more after the key that opened it): focusing it here, in
          // keydown, sends this key's character to it, so no key of the reason is lost.
          var input = this.$refs.skipInput;
          if (t !== input && input.getClientRects().length) input.focus();
          return;
        }
        if (typing) return;
        var mod = e.ctrlKey || e.metaKey;
        if (mod) {
          var k = e.key.toLowerCase();
          if (k === 'z' && !e.shiftKey) { e.preventDefault(); this.undo(); }
          else if ((k === 'z' && e.shiftKey) || k === 'y') { e.preventDefault(); this.redo(); }
          return;
        }
        if (e.key === '?') { e.preventDefault(); this.helpOpen = !this.helpOpen; return; }
        if (this.helpOpen) return;
        var label = this.labelForKey(e);
        if (label) { e.preventDefault(); this.applyLabel(label, e.altKey); return; }
        if (e.altKey) return;
        switch (e.key) {
          case 'f': case 'a': case 'n':
            e.preventDefault(); this.setStance(e.key); return;
          case 'Tab':
            e.preventDefault(); ed.cycle(e.shiftKey ? -1 : 1); return;
          case 'Delete': case 'Backspace':
            e.preventDefault(); this.deleteSelected(); return;
          case 'Enter':
            e.preventDefault(); this.submit(); return;
          case 's':
            e.preventDefault(); this.openSkip(); return;
          case 'j': case 'k':
            e.preventDefault(); this.nextSuggestion(e.key === 'j' ? 1 : -1); return;
          case 'y':
            e.preventDefault(); this.acceptFocused(); return;
          case 'x':
            e.preventDefault(); this.rejectFocused(); return;
          case 'Y':
            e.preventDefault(); this.acceptAllOfLabel(); return;
          case 'o':
            e.preventDefault(); this.acceptOccurrences(); return;
        }
      },

      // --- suggestions --------------------------------------------------------------------

      loadSuggestions: function () {
        var self = this, did = this.did;
        api('GET', this.apiBase + '/documents/' + did + '/suggestions').then(function (r) {
          if (did !== self.did || r.status !== 200) return;
          self.sugPending = !!r.data.pending;
          ed.offering = !!r.data.shown;
          ed.setSuggestions(r.data.items);
        }, function () { /* suggestions are a help, never in the way */ });
      },

      onSuggestions: function () {
        this.sugCount = ed.sugs.length;
        var g = ed.focusedSuggestion();
        this.sugFocusText = g ? g.label + ' “' + ed.map.sliceCp(g.start, g.end) + '” (' + g.source +
          (g.score < 1 ? ', ' + g.score : '') + ')' : '';
      },

      /** Tell the server, so the suggestion is not offered here again (and is counted). */
      onRejected: function (sg) {
        if (sg.version === 'page') return;  // the page's own "other occurrences": not a source's
        api('POST', this.apiBase + '/documents/' + this.did + '/suggestions/rejections',
          { start: sg.start, end: sg.end, label: sg.label, source: sg.source, version: sg.version })
          .then(null, function () { /* a lost rejection costs one more look later, nothing else */ });
      },

      nextSuggestion: function (dir) {
        if (!ed.cycleSuggestion(dir)) this.message = 'No suggestions on this document.';
        else this.message = '';
      },

      /** Accept the focused suggestion (label: as another label), then focus the next one. */
      acceptFocused: function (label) {
        var g = ed.focusedSuggestion();
        if (!g) { this.message = 'Move to a suggestion first with j / k.'; return false; }
        if (this.conflict) { this.message = 'Reload first: this document was saved elsewhere.'; return false; }
        var next = ed.cycleAfter(g);
        ed.acceptSuggestions([g], label);
        if (next) ed.focusSuggestion(next);
        this.message = '';
        return true;
      },

      rejectFocused: function () {
        var g = ed.focusedSuggestion();
        if (!g) { this.message = 'Move to a suggestion first with j / k.'; return; }
        ed.rejectSuggestion(g);
        this.message = '';
      },

      acceptAllOfLabel: function () {
        var g = ed.focusedSuggestion();
        if (!g) { this.message = 'Move to a suggestion first with j / k: Y accepts every one with its label.'; return; }
        var all = ed.sugs.filter(function (x) { return x.label === g.label; });
        ed.acceptSuggestions(all);
        this.message = all.length + ' ' + g.label + ' suggestions accepted (Ctrl-Z undoes it).';
      },

      acceptOccurrences: function () {
        var sp = ed.selected();
        if (!sp) { this.message = 'Select a span first: o tags its text everywhere else it stands.'; return; }
        if (!ed.offering) { this.message = 'No suggestions on this document.'; return; }
        ed.offerOccurrences(sp);
        var all = ed.occurrencesOf(sp);
        if (!all.length) { this.message = '“' + ed.spanText(sp) + '” stands nowhere else (on word boundaries, free of other entities).'; return; }
        ed.acceptSuggestions(all);
        this.message = all.length + ' more “' + ed.spanText(sp) + '” tagged ' + sp.label + ' (Ctrl-Z undoes it).';
      },

      applyLabel: function (label, alt) {
        this.message = '';
        if (this.conflict) { this.message = 'Reload first: this document was saved elsewhere.'; return; }
        var range = ed.domSelection();
        if (range) {
          var sp = ed.tagSelection(label, this.exact || !!alt || selectionAlt);
          selectionAlt = false;
          var n = sp ? ed.offerOccurrences(sp) : 0;
          if (n) this.message = '“' + ed.spanText(sp) + '” stands ' + n + ' more time' + (n > 1 ? 's' : '') +
            ' in this text: o tags them all, or j / k and y / x one by one.';
        } else if (ed.focusedSuggestion() && !ed.selected()) {
          this.acceptFocused(label);
        } else if (ed.selected()) {
          ed.relabel(label);
        } else {
          this.message = 'Select some text first (or a span, to relabel it).';
        }
      },

      keepSelection: function (e) { if (e && e.preventDefault) e.preventDefault(); },

      clickLabel: function (e) {
        var b = e && e.currentTarget;
        if (b && b.dataset.label) this.applyLabel(b.dataset.label, e.altKey);
      },

      clickStance: function (e) {
        var b = e && e.currentTarget;
        if (b && b.dataset.key) this.setStance(b.dataset.key);
      },

      setStance: function (key) {
        var sp = ed.selected();
        if (!sp) { this.message = 'Select a CLAIM first (click it, or Tab to it), then press f, a or n.'; return; }
        if (!ed.setAttributeByKey(key)) this.message = sp.label + ' has no attribute set by “' + key + '”.';
        else this.message = '';
      },

      deleteSelected: function () {
        if (!ed.deleteSelected()) this.message = 'Select a span first (click it, or Tab to it).';
      },
      undo: function () { ed.undo(); },
      redo: function () { ed.redo(); },
      toggleHelp: function () { this.helpOpen = !this.helpOpen; },
      closeHelp: function () { this.helpOpen = false; },
      toggleGuidelines: function () { this.guidelinesOpen = !this.guidelinesOpen; },
      reload: function () { location.reload(); },
      dismiss: function () { this.message = ''; },

      onSelected: function (sp) {
        if (sp && !ed.isAligned(sp) && !/\s/.test(ed.spanText(sp))) this.misalignedWord = ed.spanText(sp);
        if (!sp) { this.sel = null; return; }
        var lab = ed.labels[sp.label];
        var isClaim = lab && lab.kind !== 'entity';
        this.sel = {
          label: sp.label,
          text: ed.spanText(sp),
          isClaim: !!isClaim,
          stanceText: Object.keys(sp.attributes).map(function (k) { return sp.attributes[k]; }).join(' '),
          needs: !ed.isComplete(sp),
        };
      },

      onChanged: function () {
        this.spanCount = ed.spans.length;
        this.incompleteCount = ed.incomplete().length;
        var mis = ed.misaligned();
        var pick = ed.selected() && !ed.isAligned(ed.selected()) ? ed.selected() : mis[0];
        this.misalignedCount = mis.length;
        this.misalignedWord = pick && !/\s/.test(ed.spanText(pick)) ? ed.spanText(pick) : '';
        if (!this.loading) this.scheduleSave();
      },

      // --- saving -------------------------------------------------------------------------

      scheduleSave: function () {
        if (this.conflict) return;
        var self = this;
        if (JSON.stringify(ed.wire()) === lastSent) {
          if (this.saveState === 'pending') this.saveState = 'saved';
          return;
        }
        this.saveState = 'pending';
        clearTimeout(saveTimer);
        saveTimer = setTimeout(function () { saveTimer = null; self.save(); }, SAVE_DELAY_MS);
      },

      /** Send the spans now (after any save under way). status: undefined keeps the status. */
      save: function (extra) {
        var self = this;
        if (inflight) return inflight.then(function () { return self.save(extra); });
        if (this.conflict) return Promise.resolve(false);
        clearTimeout(saveTimer); saveTimer = null;
        var spans = ed.wire();
        var json = JSON.stringify(spans);
        if (!extra && json === lastSent) { this.saveState = 'saved'; return Promise.resolve(true); }
        var body = Object.assign({ spans: spans, version: this.version }, extra || {});
        this.saveState = 'saving';
        inflight = api('PUT', this.apiBase + '/documents/' + this.did + '/annotation', body).then(function (r) {
          inflight = null;
          if (r.status === 200) {
            self.version = r.data.version;
            self.status = r.data.status;
            lastSent = json;
            self.saveError = '';
            // Changed again while saving? Then another save follows.
            if (JSON.stringify(ed.wire()) !== lastSent) { self.saveState = 'pending'; self.scheduleSave(); }
            else self.saveState = 'saved';
            return true;
          }
          if (r.status === 409) {
            self.conflict = true;
            self.saveState = 'conflict';
            self.saveError = errorText(r);
            return false;
          }
          self.saveState = 'error';
          self.saveError = errorText(r);
          if (r.status === 503 || r.status === 507) {
            // The database is unreachable or its disk is full: nothing was saved, the spans are
            // kept here and sent again by themselves until the server takes them.
            var wait = 1000 * (r.retryAfter || RETRY_FULL_S);
            self.saveError += ' Your changes are kept on this page and sent again every ' +
              Math.round(wait / 1000) + ' s.';
            clearTimeout(retryTimer);
            retryTimer = setTimeout(function () {
              retryTimer = null;
              if (self.saveState === 'error') self.save(extra || {});
            }, wait);
          }
          if (r.data && r.data.details && r.data.details.length && r.data.details[0].span !== undefined) {
            var d = r.data.details[0];
            var sp = spans[d.span];
            if (sp) self.saveError += ' (' + sp.label + ' “' + ed.map.sliceCp(sp.start, sp.end) + '”)';
          }
          return false;
        }, function (err) {
          inflight = null;
          self.saveState = 'error';
          self.saveError = 'Could not reach the server (' + err.message + '); your changes are kept here. Retrying on the next change.';
          return false;
        });
        return inflight;
      },

      retry: function () { this.save({}); },

      /** The server tokenizes in the background: ask again until the tokens are stored, then
       *  snap and mark with them (selections snap to words until then). */
      waitForTokens: function (did, tries) {
        var self = this;
        this.tokensPending = true;
        if (tries > 90) return;
        setTimeout(function () {
          if (did !== self.did) return;
          api('GET', self.apiBase + '/documents/' + did).then(function (r) {
            if (did !== self.did) return;
            if (r.status === 200 && r.data.tokens) {
              self.tokensPending = false;
              ed.setTokens(r.data.tokens, true);
              self.loadSuggestions();
            } else {
              self.waitForTokens(did, tries + 1);
            }
          }, function () { self.waitForTokens(did, tries + 1); });
        }, 2000);
      },

      /** Add the misaligned span's text to the project word list, then re-read the tokens. */
      addWord: function () {
        var word = this.misalignedWord, self = this;
        if (!word || this.busy) return;
        this.busy = true;
        api('POST', this.apiBase + '/projects/' + this.pid + '/words', { words: [word] }).then(function (r) {
          if (r.status !== 200) throw new Error(errorText(r));
          return api('GET', self.apiBase + '/documents/' + self.did);
        }).then(function (r) {
          if (r.status !== 200) throw new Error(errorText(r));
          self.busy = false;
          if (r.data.tokens_pending) {
            self.message = '“' + word + '” is in the word list now; the tokens are being recomputed.';
            self.waitForTokens(self.did, 0);
            return;
          }
          ed.setTokens(r.data.tokens, true);
          self.message = ed.misaligned().length && self.misalignedWord === word
            ? '“' + word + '” is in the word list now, but the tokenizer still cuts it differently here.'
            : '“' + word + '” is in the word list now.';
        }).catch(function (e) {
          self.busy = false;
          self.message = 'Could not add the word: ' + e.message;
        });
      },

      submit: function () {
        if (this.busy) return;
        if (this.conflict) { this.message = 'Cannot submit: this document was saved elsewhere. Reload first.'; return; }
        var bad = ed.incomplete();
        if (bad.length) {
          var first = bad[0];
          ed.select(first.id, true);
          this.message = 'Cannot submit: ' + bad.length + ' ' + first.label + (bad.length > 1 ? ' spans have' : ' has') +
            ' no ' + ed.labels[first.label].required.join('/') + '. Select it and press f (favor), a (against) or n (neutral).';
          return;
        }
        var self = this;
        this.busy = true;
        this.save({ status: 'submitted' }).then(function (ok) {
          self.busy = false;
          if (ok) { self.saveState = 'saved'; location.assign(self.nextUrl); }
          else if (!self.conflict) self.message = 'Not submitted: ' + self.saveError;
        });
      },

      openSkip: function () {
        if (this.conflict) { this.message = 'Cannot skip: this document was saved elsewhere. Reload first.'; return; }
        this.skipReason = '';
        this.skipOpen = true;
        var self = this;
        whenShown(this.$refs.skipInput, function () { if (self.skipOpen) self.$refs.skipInput.focus(); });
      },
      cancelSkip: function () { this.skipOpen = false; },
      skipKey: function (e) {
        if (e.key === 'Enter') { e.preventDefault(); this.confirmSkip(); }
        else if (e.key === 'Escape') { e.preventDefault(); this.skipOpen = false; }
      },
      confirmSkip: function () {
        var self = this;
        var reason = (this.skipReason || '').trim();
        var extra = { status: 'skipped' };
        if (reason) extra.skip_reason = reason;
        this.skipOpen = false;
        this.busy = true;
        this.save(extra).then(function (ok) {
          self.busy = false;
          if (ok) location.assign(self.nextUrl);
          else if (!self.conflict) self.message = 'Not skipped: ' + self.saveError;
        });
      },

      // --- text for the template (CSP build: getters instead of inline expressions) -------
      get saveText() {
        switch (this.saveState) {
          case 'saved': return this.version ? 'Saved' : 'Nothing to save yet';
          case 'pending': return 'Unsaved changes…';
          case 'saving': return 'Saving…';
          case 'conflict': return 'Not saved: conflict';
          default: return 'Not saved: error';
        }
      },
      get saveClass() { return 'save-state ' + this.saveState; },
      get showError() { return this.saveState === 'error'; },
      get incompleteText() {
        var n = this.incompleteCount;
        if (!n) return '';
        return n + (n > 1 ? ' spans need' : ' span needs') + ' a stance (f / a / n) and ' +
          (n > 1 ? 'are' : 'is') + ' not saved until then.';
      },
      get hasIncomplete() { return this.incompleteCount > 0; },
      get hasMisaligned() { return this.misalignedCount > 0; },
      get hasMisalignedWord() { return !!this.misalignedWord; },
      get misalignedText() {
        var n = this.misalignedCount;
        if (!n) return '';
        return n + (n > 1 ? ' spans do' : ' span does') + ' not fall on token boundaries: the export ' +
          'keeps ' + (n > 1 ? 'them' : 'it') + ' but a model cannot learn ' + (n > 1 ? 'them' : 'it') + ' as drawn.';
      },
      get addWordText() { return 'Add “' + this.misalignedWord + '” to the word list'; },
      get spanCountText() { return this.spanCount + (this.spanCount === 1 ? ' span' : ' spans'); },
      get selLabel() { return this.sel ? this.sel.label : ''; },
      get selText() { return this.sel ? '“' + (this.sel.text.length > 60 ? this.sel.text.slice(0, 57) + '…' : this.sel.text) + '”' : ''; },
      get selStance() { return this.sel && this.sel.isClaim ? (this.sel.needs ? 'stance: none yet' : 'stance: ' + this.sel.stanceText) : ''; },
      get selIsClaim() { return !!(this.sel && this.sel.isClaim); },
      get hasSel() { return !!this.sel; },
      get hasSuggestions() { return this.sugCount > 0; },
      get sugText() {
        var n = this.sugCount;
        return n + (n === 1 ? ' suggestion' : ' suggestions') + (this.sugFocusText ? ': ' + this.sugFocusText : '');
      },
      get ready() { return !this.loading && !this.done && !this.fatal; },
    };
  }

  document.addEventListener('alpine:init', function () {
    window.Alpine.data('annotate', component);
  });
})();
