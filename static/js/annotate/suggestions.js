/* suggestions.js: spans nobody drew yet, dashed and unfilled; saved only once accepted
 * (Editor methods; see editor.js). */
import { Editor } from './editor.js';
import { bsearch, cmpSpan, newId } from './helpers.js';

function sugKey(sg) { return sg.start + ':' + sg.end + ':' + sg.label; }

/** Replace the suggestions ([{start, end, label, source, score, version}], code points).
 *  Kept: entity labels only, none on an entity span, none rejected here, none overlapping
 *  one kept before it (the server's order: longest first is its business). */
Editor.prototype.setSuggestions = function (list) {
  var self = this, kept = [];
  (list || []).forEach(function (s) {
    var lab = self.labels[s.label];
    if (!lab || lab.kind !== 'entity' || self.rejected.has(sugKey(s))) return;
    var sg = { id: newId(), start: s.start, end: s.end, s16: self.map.toU16(s.start),
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
    var g = { id: newId(), start: this.map.toCp(i), end: this.map.toCp(i + needle.length),
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
