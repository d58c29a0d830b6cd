/* keys.js: the annotate page's keyboard, as a table. ``command(e, labels)`` names what a key
 * does, as the component's method and its arguments; the page's own rules (a dialog open,
 * typing in a field, Escape) stay in page.js. `?` on the page lists these keys. */

/** The label a key tags with (its hotkey), or null. */
export function labelForKey(labels, e) {
  for (var i = 0; i < labels.length; i++) {
    var hk = labels[i].hotkey;
    if (!hk) continue;
    if (e.key === hk) return labels[i].name;
    // Alt+digit may produce another character (macOS): match the physical key too.
    if (e.altKey && (e.code === 'Digit' + hk || e.code === 'Key' + hk.toUpperCase())) return labels[i].name;
  }
  return null;
}

var PLAIN = {
  f: ['setStance', 'f'], a: ['setStance', 'a'], n: ['setStance', 'n'],
  Delete: ['deleteSelected'], Backspace: ['deleteSelected'],
  Enter: ['submit'],
  s: ['openSkip'],
  j: ['nextSuggestion', 1], k: ['nextSuggestion', -1],
  y: ['acceptFocused'], x: ['rejectFocused'], Y: ['acceptAllOfLabel'],
  o: ['acceptOccurrences'],
};

/** What a key does: [method, ...arguments] of the page's component, or null (not ours).
 *  helpOpen: while the list of keys is shown, only `?` and Ctrl-Z / Ctrl-Shift-Z act. */
export function command(e, labels, helpOpen) {
  if (e.ctrlKey || e.metaKey) {
    var k = e.key.toLowerCase();
    if (k === 'z' && !e.shiftKey) return ['undo'];
    if ((k === 'z' && e.shiftKey) || k === 'y') return ['redo'];
    return null;
  }
  if (e.key === '?') return ['toggleHelp'];
  if (helpOpen) return null;
  var label = labelForKey(labels, e);
  if (label) return ['applyLabel', label, e.altKey];
  if (e.altKey) return null;
  if (e.key === 'Tab') return ['cycle', e.shiftKey ? -1 : 1];  // Shift-Tab: backwards
  return PLAIN[e.key] || null;
}
