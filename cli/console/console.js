// The console page: polls the console's JSON API once a second and draws it. Everything shown comes
// from files and lines anyone can drop, so text only ever goes in through textContent and attributes,
// never as markup.

const POLL_MS = 1000;
const SVG = 'http://www.w3.org/2000/svg';

const $ = (id) => document.getElementById(id);

/** An element with text or children; strings become text nodes, never markup. */
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, String(value));
  node.append(...children.map((c) => (typeof c === 'string' ? document.createTextNode(c) : c)));
  return node;
}

const num = (n) => el('td', { class: 'num' }, String(n));

async function getJson(url, init) {
  const res = await fetch(url, init);
  const body = await res.json();
  if (!res.ok) throw new Error(body.error ?? `${res.status} ${res.statusText}`);
  return body;
}

let selectedKey = null;

/** A file resumed after an interruption is marked beside its state; its note below says when and the idle time. */
const resumedMark = (f) =>
  f.resumed ? [' ', el('span', { class: 'resumed' }, `resumed ${f.resumed.times}×`)] : [];

function fileRow(f) {
  const total = f.chunks.total;
  const progress = el('progress', total === null ? {} : { max: total, value: f.chunks.done });
  progress.setAttribute('aria-label', `chunks ${f.chunks.done} of ${total ?? '?'}`);
  const row = el(
    'tr',
    { 'aria-selected': String(f.key === selectedKey) },
    el('td', { class: 'key' }, f.key),
    el('td', {}, f.dataset ?? '-'),
    el('td', { class: `state-${f.state}` }, f.state, ...resumedMark(f)),
    el('td', {}, progress),
    el('td', { class: 'num' }, `${f.chunks.done}/${total ?? '?'}`),
    num(f.rows.read),
    num(f.rows.loaded),
    num(f.rows.waiting),
    num(f.rows.rejected),
    num(f.rows.open),
    el('td', { class: 'num' }, f.seconds === null ? '-' : f.seconds.toFixed(1)),
  );
  row.title = 'show its rejects';
  row.addEventListener('click', () => selectFile(f.key));
  return row;
}

function renderFiles(files) {
  $('files').tBodies[0].replaceChildren(...files.map(fileRow));
  $('file-notes').replaceChildren(...files.flatMap((f) => f.notes).map((n) => el('li', {}, n)));
}

/**
 * Rows/s per second of the window (each chunk's rows spread over the time it took, see throughput.ts),
 * zero where no chunk was loading, drawn as one polyline.
 */
function renderRate({ seconds, points }, at) {
  const end = Math.floor(Date.parse(at) / 1000);
  const start = end - seconds;
  const perSecond = new Array(seconds + 1).fill(0);
  for (const p of points) if (p.second >= start && p.second <= end) perSecond[p.second - start] += p.rows;
  const sum = (values) => values.reduce((a, b) => a + b, 0);
  const peak = Math.max(...perSecond);
  const scale = Math.max(1, peak);
  const line = document.createElementNS(SVG, 'polyline');
  const coords = perSecond.map((v, i) => `${(i / seconds) * 600},${120 - (v / scale) * 110}`);
  line.setAttribute('points', coords.join(' '));
  $('rate-chart').replaceChildren(line);
  $('rate-summary').textContent =
    `last 10 s: ${Math.round(sum(perSecond.slice(-10)) / 10)} rows/s; peak ${Math.round(peak)} rows/s; ` +
    `${Math.round(sum(perSecond))} rows over the last ${seconds / 60} min`;
}

/** One row per queue, made once and updated in place so a click never lands on a replaced button. */
const dlqRows = new Map();

function dlqRow(queue) {
  let row = dlqRows.get(queue);
  if (row) return row;
  const depth = el('td', { class: 'num' });
  const button = el('button', { type: 'button' }, 'Replay…');
  button.addEventListener('click', () => askReplay(queue, Number(button.dataset.depth)));
  row = { tr: el('tr', {}, el('td', {}, queue), depth, el('td', {}, button)), depth, button };
  dlqRows.set(queue, row);
  $('dead-letters').tBodies[0].append(row.tr);
  return row;
}

function renderDeadLetters(deadLetters) {
  for (const d of deadLetters) {
    const row = dlqRow(d.queue);
    row.depth.textContent = d.depth === null ? `unknown: ${d.error}` : String(d.depth);
    row.depth.className = d.depth === null ? 'error' : 'num';
    row.button.dataset.depth = String(d.depth ?? 0);
    row.button.disabled = !d.depth;
  }
}

function askReplay(queue, depth) {
  $('replay-question').textContent =
    `Move the ${depth} message(s) in the ${queue} dead-letter queue back to the ${queue} queue, ` +
    `as \`dropload replay --queue ${queue}\` does? Do it once the cause of their failure is fixed.`;
  const dialog = $('replay-dialog');
  dialog.dataset.queue = queue;
  dialog.returnValue = '';
  dialog.showModal();
}

async function replay(queue) {
  const out = $('replay-result');
  out.hidden = false;
  out.className = '';
  out.textContent = `replaying ${queue}…`;
  try {
    const result = await getJson('/api/replay', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ queue }),
    });
    out.textContent = result.lines.join('\n');
  } catch (err) {
    out.className = 'error';
    out.textContent = `replay failed: ${err.message}`;
  }
}

function renderWaiting(waiting) {
  const rows = waiting.map((w) =>
    el('tr', {}, el('td', {}, w.table), el('td', {}, w.key), num(w.rows), num(w.files)),
  );
  if (rows.length === 0) rows.push(el('tr', {}, el('td', { colspan: 4 }, 'no rows wait')));
  $('waiting').tBodies[0].replaceChildren(...rows);
}

function rejectRow(r) {
  return el(
    'tr',
    {},
    num(r.line),
    el('td', {}, r.column ?? '-'),
    el('td', {}, r.reason),
    el('td', { class: 'raw' }, r.raw),
    el('td', {}, r.resolved === null ? 'open' : `resolved by ${r.resolved}`),
  );
}

async function showRejects() {
  if (selectedKey === null) return;
  const key = selectedKey;
  const all = $('rejects-all').checked ? '&all=1' : '';
  const panel = $('rejects-panel');
  panel.hidden = false;
  $('rejects-title').textContent = `Rejects of ${key}`;
  try {
    const r = await getJson(`/api/rejects?key=${encodeURIComponent(key)}${all}`);
    if (key !== selectedKey) return;
    $('rejects-state').textContent = r.state ?? '';
    $('rejects-heading').textContent = r.heading;
    $('rejects-heading').className = '';
    $('rejects').tBodies[0].replaceChildren(...r.rejects.map(rejectRow));
    const more = $('rejects-more');
    more.hidden = r.rejects.length >= r.total;
    more.textContent = `the first ${r.rejects.length} of ${r.total} are listed; \`dropload rejects ${key}${all ? ' --all' : ''}\` lists them all`;
  } catch (err) {
    $('rejects-heading').textContent = err.message;
    $('rejects-heading').className = 'error';
  }
}

function selectFile(key) {
  selectedKey = key;
  for (const tr of $('files').tBodies[0].rows) tr.setAttribute('aria-selected', 'false');
  showRejects();
}

async function poll() {
  try {
    const o = await getJson('/api/overview');
    renderFiles(o.files);
    renderRate(o.throughput, o.at);
    renderDeadLetters(o.deadLetters);
    renderWaiting(o.waiting);
    await showRejects();
    $('updated').textContent = `updated ${new Date(o.at).toLocaleTimeString()}`;
    $('updated').className = '';
  } catch (err) {
    $('updated').textContent = `not updated: ${err.message}`;
    $('updated').className = 'error';
  } finally {
    setTimeout(poll, POLL_MS);
  }
}

$('replay-dialog').addEventListener('close', () => {
  const dialog = $('replay-dialog');
  if (dialog.returnValue === 'confirm') replay(dialog.dataset.queue);
});
$('rejects-all').addEventListener('change', showRejects);
poll();
