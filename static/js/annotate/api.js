/* api.js: the JSON API as the annotate page calls it (session cookie plus the CSRF token). */

function csrf() {
  var m = document.querySelector('meta[name="csrf-token"]');
  return m ? m.getAttribute('content') : '';
}

/** One JSON API call: resolves to {status, data, retryAfter} (never rejects on an HTTP error). */
export function api(method, url, body) {
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

/** The error shape's message, or what the server answered. */
export function errorText(r) {
  if (r.data && r.data.error) return r.data.error;
  return 'The server answered ' + r.status + '.';
}

/**
 * Call fn once el has a layout box. Alpine's x-show shows on a later animation frame (a timer
 * in a hidden tab), after $nextTick has already run: focusing or measuring in $nextTick
 * can hit an element that is still display:none, which a slow frame makes likely.
 */
export function whenShown(el, fn) {
  var frames = 0;
  (function check() {
    if (!el || el.getClientRects().length || frames++ > 300) { fn(); return; }
    if (document.visibilityState === 'visible') requestAnimationFrame(check);
    else setTimeout(check, 16);
  })();
}
