/* selection.js: the browser's selection, snapped to the export's tokens, and clicks on the
 * text (Editor methods; see editor.js). */
import { Editor } from './editor.js';

const O = window.Offsets; // static/js/offsets.js, loaded before the modules

/** Whether a span ends in a particle token (the side list says so). */
Editor.prototype.endsInParticle = function (sp) {
  return !!(this.particles && this.tokens &&
            O.withoutParticles(this.map, this.tokens, sp.start, sp.end, this.particles) !== sp.end);
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
