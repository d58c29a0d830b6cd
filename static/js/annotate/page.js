/* page.js: the annotate page's Alpine component "annotate" (CSP build: attributes name
 * properties and methods only): toolbar, save state, messages, overlays. It talks to the JSON
 * API and drives the Editor (editor.js and the modules that add its methods). Served as ES
 * modules as they are, no build step; static/js/offsets.js (a classic script) loads first.
 */
import { api, errorText, whenShown } from './api.js';
import { Editor } from './editor.js';
import { command } from './keys.js';
import './render.js';
import { Saver } from './saving.js';
import './selection.js';
import './suggestions.js';

function component() {
  var ed = null;          // the Editor (kept out of Alpine's reactive proxy on purpose)
  var saver = null;       // its saves (saving.js)
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
      saver = new Saver(this, ed);
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
          saver.loaded();
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
      var c = command(e, this.labels, this.helpOpen);  // keys.js
      if (!c) return;
      e.preventDefault();
      this[c[0]].apply(this, c.slice(1));
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
    cycle: function (dir) { ed.cycle(dir); },
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

    scheduleSave: function () { saver.schedule(); },

    /** Send the spans now (after any save under way). status: undefined keeps the status. */
    save: function (extra) { return saver.save(extra); },

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
