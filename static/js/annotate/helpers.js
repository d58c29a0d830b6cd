/* helpers.js: small pure functions the annotate page's modules share. */

let nextId = 1;

/** A new id for a span or a suggestion (unique on this page). */
export function newId() { return nextId++; }

/** First index whose element satisfies pred (arr partitioned by it). */
export function bsearch(arr, pred) {
  var lo = 0, hi = arr.length;
  while (lo < hi) { var mid = (lo + hi) >> 1; if (pred(arr[mid])) hi = mid; else lo = mid + 1; }
  return lo;
}

/** Spans in text order: start, end, then label. */
export function cmpSpan(a, b) {
  return a.start - b.start || a.end - b.end || (a.label < b.label ? -1 : a.label > b.label ? 1 : 0);
}

/** The text colour (near-black or white) that reads best on a label's colour: the higher
 *  WCAG contrast ratio of the two (white on pale yellow or orange failed AA's 4.5:1). */
export function readableInk(hex) {
  function lin(c) { c /= 255; return c <= 0.03928 ? c / 12.92 : Math.pow((c + 0.055) / 1.055, 2.4); }
  function lum(h) {
    var n = parseInt(h.slice(1), 16);
    return 0.2126 * lin((n >> 16) & 255) + 0.7152 * lin((n >> 8) & 255) + 0.0722 * lin(n & 255);
  }
  var bg = lum(/^#[0-9a-f]{6}$/i.test(hex) ? hex : '#888888');
  var dark = '#1d2330', onDark = (bg + 0.05) / (lum(dark) + 0.05), onWhite = 1.05 / (bg + 0.05);
  return onDark >= onWhite ? dark : '#ffffff';
}
