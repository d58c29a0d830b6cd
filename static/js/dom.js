// Small helpers shared by the lead's pages (ES module): build elements from text and attributes,
// and call the JSON API with the session's CSRF token, answering {status, body}.

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "dataset") Object.assign(node.dataset, v);
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) if (c !== null && c !== undefined) node.append(c);
  return node;
}

export async function call(method, url, body) {
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const resp = await fetch(url, {
    method, credentials: "same-origin",
    headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRF-Token": csrf },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  let data;
  try { data = await resp.json(); } catch { data = { error: `The server answered ${resp.status}.` }; }
  return { status: resp.status, body: data };
}
