// With a token, the daemon answers the first load of /?token=... with a session cookie and a
// redirect that drops the token from the address; the page's requests then carry the cookie.
function authed(url) { return url; }
async function api(url, opts) {
  opts = Object.assign({credentials: 'same-origin'}, opts || {});
  const r = await fetch(url, opts); return r.json();
}
function esc(s) { const d = document.createElement('div'); d.textContent = s == null ? '' : String(s); return d.innerHTML; }
