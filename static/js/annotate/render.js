/* render.js: the text and the side list (Editor methods; see editor.js). */
import { Editor } from './editor.js';
import { bsearch } from './helpers.js';

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

Editor.prototype.hover = function (id) {
  if (this.hoverId === id) return;
  var old = this.hoverId != null ? this.byId[this.hoverId] : null;
  this.hoverId = id;
  this.refreshSpan(old);
  this.refreshSpan(id != null ? this.byId[id] : null);
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
