/* saving.js: the annotate page's saves. Every change is sent SAVE_DELAY_MS after the last one,
 * one save at a time; a save refused with 409 (another tab or device saved first) stops saving
 * and never overwrites; while the database is away or its disk full (503 / 507) the spans stay
 * on the page and are sent again by themselves.
 *
 * A Saver writes what the page shows into its view (the Alpine component): saveState
 * (saved | pending | saving | error | conflict), saveError, conflict, version, status.
 */
import { api, errorText } from './api.js';

export const SAVE_DELAY_MS = 600;
export const RETRY_FULL_S = 10;  // a full disk (507) says no Retry-After: try again this often

export function Saver(view, editor) {
  this.view = view;       // the component (reactive): what the page shows
  this.ed = editor;
  this.timer = null;
  this.retryTimer = null;
  this.inflight = null;   // Promise of the save under way
  this.lastSent = null;   // JSON of the spans the server holds
}

/** The spans on the page are what the server holds (a document was just loaded). */
Saver.prototype.loaded = function () {
  this.lastSent = JSON.stringify(this.ed.wire());
};

/** A change: save it SAVE_DELAY_MS from now (unless nothing differs from the server's). */
Saver.prototype.schedule = function () {
  var view = this.view, self = this;
  if (view.conflict) return;
  if (JSON.stringify(this.ed.wire()) === this.lastSent) {
    if (view.saveState === 'pending') view.saveState = 'saved';
    return;
  }
  view.saveState = 'pending';
  clearTimeout(this.timer);
  this.timer = setTimeout(function () { self.timer = null; self.save(); }, SAVE_DELAY_MS);
};

/** Send the spans now (after any save under way). extra: {status, skip_reason}; without it
 *  the status is kept. Resolves to whether the server took them. */
Saver.prototype.save = function (extra) {
  var self = this, view = this.view, ed = this.ed;
  if (this.inflight) return this.inflight.then(function () { return self.save(extra); });
  if (view.conflict) return Promise.resolve(false);
  clearTimeout(this.timer); this.timer = null;
  var spans = ed.wire();
  var json = JSON.stringify(spans);
  if (!extra && json === this.lastSent) { view.saveState = 'saved'; return Promise.resolve(true); }
  var body = Object.assign({ spans: spans, version: view.version }, extra || {});
  view.saveState = 'saving';
  this.inflight = api('PUT', view.apiBase + '/documents/' + view.did + '/annotation', body).then(function (r) {
    self.inflight = null;
    if (r.status === 200) {
      view.version = r.data.version;
      view.status = r.data.status;
      self.lastSent = json;
      view.saveError = '';
      // Changed again while saving? Then another save follows.
      if (JSON.stringify(ed.wire()) !== self.lastSent) { view.saveState = 'pending'; self.schedule(); }
      else view.saveState = 'saved';
      return true;
    }
    if (r.status === 409) {
      view.conflict = true;
      view.saveState = 'conflict';
      view.saveError = errorText(r);
      return false;
    }
    view.saveState = 'error';
    view.saveError = errorText(r);
    if (r.status === 503 || r.status === 507) {
      // The database is unreachable or its disk is full: nothing was saved, the spans are
      // kept here and sent again by themselves until the server takes them.
      var wait = 1000 * (r.retryAfter || RETRY_FULL_S);
      view.saveError += ' Your changes are kept on this page and sent again every ' +
        Math.round(wait / 1000) + ' s.';
      clearTimeout(self.retryTimer);
      self.retryTimer = setTimeout(function () {
        self.retryTimer = null;
        if (view.saveState === 'error') self.save(extra || {});
      }, wait);
    }
    if (r.data && r.data.details && r.data.details.length && r.data.details[0].span !== undefined) {
      var d = r.data.details[0];
      var sp = spans[d.span];
      if (sp) view.saveError += ' (' + sp.label + ' “' + ed.map.sliceCp(sp.start, sp.end) + '”)';
    }
    return false;
  }, function (err) {
    self.inflight = null;
    view.saveState = 'error';
    view.saveError = 'Could not reach the server (' + err.message + '); your changes are kept here. Retrying on the next change.';
    return false;
  });
  return this.inflight;
};
