const streams = {};
const progress = {};
function watch(id) {
  if (streams[id]) return;
  const es = new EventSource(authed('/jobs/' + id + '/events'));
  streams[id] = es;
  es.onmessage = () => {};
  ['step', 'tile', 'node_started', 'running', 'planning', 'done'].forEach(kind =>
    es.addEventListener(kind, ev => {
      const e = JSON.parse(ev.data);
      if (kind === 'step' || kind === 'tile') progress[id] = e;
      if (kind === 'node_started') progress[id] = {node: e.node, step: 0, total: 1, event: 'node'};
      if (kind === 'done') { es.close(); delete streams[id]; refresh(); }
      render();
    }));
}
let jobs = [];
function row(j) {
  const p = progress[j.id];
  let prog = '';
  if (j.state === 'running' && p) {
    const pct = Math.round(100 * (p.step || 0) / (p.total || 1));
    prog = `<span class="bar"><span style="width:${pct}%"></span></span> <span class="progress-text">${esc(p.node)} ${esc(p.event)} ${p.step}/${p.total}</span>`;
    if (p.preview) prog += ` <img class="preview" alt="preview" src="${authed('/jobs/' + j.id + '/preview.png?s=' + p.id)}">`;
  }
  const what = j.prompt || j.name || ('graph, ' + Object.keys((j.graph || {}).nodes || {}).length + ' nodes');
  return `<tr class="job" data-id="${j.id}" data-state="${j.state}"><td><a href="/ui/jobs/${j.id}">${j.id}</a></td>` +
    `<td class="state state-${j.state}">${j.state}</td><td>${j.priority}</td><td>${esc(what)}</td><td>${prog}</td></tr>`;
}
function render() {
  const active = jobs.filter(j => ['queued', 'planning', 'running'].includes(j.state));
  document.getElementById('queue').innerHTML = active.length ? active.map(row).join('') :
    '<tr><td colspan="5">nothing queued or running</td></tr>';
  const recent = jobs.filter(j => !['queued', 'planning', 'running'].includes(j.state)).slice(0, 20);
  document.getElementById('recent').innerHTML = recent.map(row).join('');
  const figs = [];
  jobs.filter(j => j.state === 'succeeded').forEach(j => (j.outputs || []).forEach(o => figs.push(
    `<figure class="output"><a href="/ui/jobs/${j.id}"><img alt="${esc(o.name)}" src="${authed(o.url)}"></a><figcaption>${esc(o.name)} · ${j.id.slice(0, 6)}<br>${stars(j.id, j.rating)}</figcaption></figure>`)));
  document.getElementById('gallery').innerHTML = figs.join('') || 'no images yet';
}
async function refresh() {
  const data = await api('/ui/api/overview');
  jobs = data.jobs;
  jobs.filter(j => ['queued', 'planning', 'running'].includes(j.state)).forEach(j => watch(j.id));
  document.getElementById('workers').textContent = JSON.stringify(data.engine, null, 2);
  document.getElementById('counts').textContent = Object.entries(data.counts).map(([k, v]) => k + ': ' + v).join(' · ');
  render();
}
refresh(); setInterval(refresh, 1500);
