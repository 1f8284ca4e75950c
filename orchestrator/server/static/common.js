// With a token, the daemon answers the first load of /?token=... with a session cookie and a
// redirect that drops the token from the address; the page's requests then carry the cookie.
function authed(url) { return url; }
async function api(url, opts) {
  opts = Object.assign({credentials: 'same-origin'}, opts || {});
  const r = await fetch(url, opts); return r.json();
}
function esc(s) { const d = document.createElement('div'); d.textContent = s == null ? '' : String(s); return d.innerHTML; }
// Rating control: five star buttons per succeeded job (job page and gallery). A click POSTs
// {"score": n} to /jobs/{id}/rating (same origin: the session cookie carries the auth, the
// browser's Origin header satisfies the guard); rating again replaces the rating.
const ratings = {}, ratingNotes = {};  // kept across the gallery's re-renders
function stars(id, rating) {
  const r = ratings[id] !== undefined ? ratings[id] : rating;
  let out = `<span class="rating" data-job="${esc(id)}" title="rate 1..5 stars">`;
  for (let n = 1; n <= 5; n++) {
    out += `<button type="button" class="star${r && n <= r ? ' on' : ''}" data-job="${esc(id)}" data-score="${n}" aria-label="${n} star${n > 1 ? 's' : ''}">\u2605</button>`;
  }
  return out + `<span class="rating-note" data-job="${esc(id)}">${esc(ratingNotes[id] || '')}</span></span>`;
}
async function rate(id, score) {
  const r = await fetch('/jobs/' + encodeURIComponent(id) + '/rating', {method: 'POST', credentials: 'same-origin',
    headers: {'Content-Type': 'application/json'}, body: JSON.stringify({score: score})});
  const data = await r.json();
  const note = document.querySelectorAll(`.rating-note[data-job="${CSS.escape(id)}"]`);
  if (!r.ok) {
    ratingNotes[id] = ' ' + ((data.errors || [{}])[0].message || ('error ' + r.status));
    note.forEach(n => n.textContent = ratingNotes[id]); return;
  }
  ratings[id] = data.rating;
  ratingNotes[id] = data.learned ? ' learned' : ' saved';
  document.querySelectorAll(`button.star[data-job="${CSS.escape(id)}"]`).forEach(b =>
    b.classList.toggle('on', Number(b.dataset.score) <= data.rating));
  note.forEach(n => n.textContent = ratingNotes[id]);
}
document.addEventListener('click', ev => {
  const b = ev.target.closest && ev.target.closest('button.star');
  if (b) { ev.preventDefault(); rate(b.dataset.job, Number(b.dataset.score)); }
});
