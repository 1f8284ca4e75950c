const params = new URLSearchParams(location.search);
if (params.get('token')) sessionStorage.setItem('token', params.get('token'));
const TOKEN = sessionStorage.getItem('token');
function authed(url) { return TOKEN ? url + (url.includes('?') ? '&' : '?') + 'token=' + encodeURIComponent(TOKEN) : url; }
async function api(url, opts) {
  opts = opts || {}; opts.headers = Object.assign({}, opts.headers || {});
  if (TOKEN) opts.headers['Authorization'] = 'Bearer ' + TOKEN;
  const r = await fetch(url, opts); return r.json();
}
function esc(s) { const d = document.createElement('div'); d.textContent = s == null ? '' : String(s); return d.innerHTML; }
