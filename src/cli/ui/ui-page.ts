/**
 * The dashboard's one page: HTML, CSS and a small script, no framework. Records hold strings an
 * attacker chose (keys, response bodies, workflow values), so the script writes data only as
 * text (`textContent`, text nodes, SVG attributes it computes), never as HTML.
 *
 * The operator token: taken from the URL's fragment (`#token=...`, which the browser never sends)
 * and then wiped from the address bar, or typed; kept in `sessionStorage` (this tab only, gone
 * when it closes), never in `localStorage` or a URL; sent as `Authorization: Bearer` on every
 * read. A 401 shows the token prompt instead of the panels.
 */

export const PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Idem dashboard</title>
<link rel="stylesheet" href="/app.css">
<script src="/app.js" defer></script>
</head>
<body>
<header>
  <h1>Idem</h1>
  <span id="store"></span>
  <label>Operator token <input id="token" type="password" autocomplete="off" placeholder="printed by idem ui"></label>
  <button id="refresh" type="button">Refresh</button>
</header>
<section id="token-panel" hidden>
  <h2>Enter the operator token</h2>
  <p id="token-reason"></p>
  <p class="note">idem ui printed it at start-up (or it is the --token / IDEM_UI_TOKEN it was started with);
    the URL it printed carries it after #token=. It is kept in this tab only.</p>
  <form id="token-form"><input id="token-prompt" type="password" autocomplete="off" aria-label="operator token">
    <button id="token-open" type="submit">Open</button></form>
</section>
<main>
  <section id="counts-panel">
    <h2>Keys by state</h2>
    <div id="counts"></div>
    <p class="note" id="scan-note"></p>
  </section>
  <section id="plot-panel">
    <h2>Keys claimed and taken over</h2>
    <div id="plot"></div>
    <p class="note">From the store: <span class="swatch claimed"></span> keys first claimed (each record's creation time);
      <span class="swatch takeover"></span> takeovers of an expired lease (each record's claims after the first, at its last update:
      the store keeps the count, not each takeover's time).</p>
  </section>
  <section id="metrics-panel">
    <h2>Conflicts and mismatches</h2>
    <div id="metrics-plot"></div>
    <p class="note" id="metrics-note"></p>
  </section>
  <section id="keys-panel">
    <h2>Keys</h2>
    <label>State <select id="state-filter">
      <option value="">all</option><option value="in_progress">in progress</option><option value="completed">completed</option>
    </select></label>
    <table id="keys"><thead><tr><th>store key</th><th>state</th><th>tries</th><th>updated</th><th>result</th></tr></thead><tbody></tbody></table>
    <button id="more-keys" type="button" hidden>More</button>
  </section>
  <section id="record-panel" hidden>
    <h2>Record</h2>
    <dl id="record"></dl>
    <pre id="record-body"></pre>
    <div id="release-box" hidden>
      <label id="force-label" hidden><input id="force" type="checkbox"> its lease is live: release anyway (the work may run twice)</label>
      <button id="release" type="button">Release this key</button>
    </div>
    <p id="action" role="status"></p>
  </section>
  <section id="workflows-panel">
    <h2>Workflow runs</h2>
    <p class="note" id="workflows-note"></p>
    <table id="runs"><thead><tr><th>id</th><th>workflow</th><th>state</th><th>tries</th><th>steps</th><th>updated</th></tr></thead><tbody></tbody></table>
    <div id="timeline"></div>
  </section>
  <section id="notifications-panel">
    <h2>Notification log</h2>
    <p class="note" id="notifications-note"></p>
    <table id="notifications"><thead><tr><th>time</th><th>kind</th><th>channel</th><th>recipient</th><th>event</th><th>message id</th></tr></thead><tbody></tbody></table>
  </section>
</main>
</body>
</html>
`;

export const PAGE_CSS = `
[hidden] { display: none !important; }
body { font: 14px/1.4 system-ui, sans-serif; margin: 0; background: #f8fafc; color: #0f172a; }
header { display: flex; gap: 1em; align-items: center; padding: .6em 1em; background: #0f172a; color: #f8fafc; }
header h1 { font-size: 1.2em; margin: 0; }
header label { margin-left: auto; }
main { display: grid; grid-template-columns: repeat(auto-fit, minmax(460px, 1fr)); gap: 1em; padding: 1em; }
section { background: #fff; border: 1px solid #e2e8f0; border-radius: 6px; padding: .8em 1em; overflow: auto; }
h2 { font-size: 1em; margin: 0 0 .6em; }
.note { color: #475569; font-size: .9em; }
#counts { display: flex; gap: .8em; flex-wrap: wrap; }
.count { border: 1px solid #e2e8f0; border-radius: 4px; padding: .4em .8em; min-width: 6em; }
.count b { display: block; font-size: 1.6em; }
table { border-collapse: collapse; width: 100%; font-size: .9em; }
th, td { text-align: left; padding: .2em .4em; border-bottom: 1px solid #f1f5f9; white-space: nowrap; }
td.key { font-family: ui-monospace, monospace; max-width: 18em; overflow: hidden; text-overflow: ellipsis; }
tbody tr { cursor: pointer; }
tbody tr:hover { background: #f1f5f9; }
pre { background: #f1f5f9; padding: .5em; white-space: pre-wrap; word-break: break-all; max-height: 16em; overflow: auto; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: .1em 1em; margin: 0; }
dt { color: #475569; } dd { margin: 0; word-break: break-all; }
.swatch { display: inline-block; width: .8em; height: .8em; }
.claimed { background: #2563eb; } .takeover { background: #ea580c; }
.conflict { background: #dc2626; } .mismatch { background: #7c3aed; }
.stuck { color: #b91c1c; font-weight: bold; }
#action.error { color: #b91c1c; } #action.ok { color: #15803d; }
#token-panel { max-width: 40em; margin: 2em auto; }
#token-reason { color: #b91c1c; }
`;

export const PAGE_JS = `'use strict';
(function () {
  var COLORS = { claimed: '#2563eb', takeovers: '#ea580c', conflicts: '#dc2626', mismatches: '#7c3aed', done: '#16a34a', failed: '#dc2626', other: '#64748b' };
  var SVG = 'http://www.w3.org/2000/svg';
  var state = { keysCursor: undefined, record: undefined };
  var STORED = 'idem-ui-token';
  var token = tokenFromFragment() || stored();

  /** The token in '#token=...', wiped from the address bar once read. */
  function tokenFromFragment() {
    var match = /(?:^#|&)token=([^&]+)/.exec(location.hash);
    if (!match) return '';
    history.replaceState(null, '', location.pathname + location.search);
    var given = decodeURIComponent(match[1]);
    keep(given);
    return given;
  }
  function stored() {
    try { return sessionStorage.getItem(STORED) || ''; } catch (error) { return ''; }
  }
  function keep(value) {
    try { if (value) sessionStorage.setItem(STORED, value); else sessionStorage.removeItem(STORED); } catch (error) { /* storage off: the tab keeps it in memory */ }
  }
  function useToken(value) {
    token = value.trim();
    keep(token);
    $('token').value = token;
  }

  function $(id) { return document.getElementById(id); }
  /** An element whose children are nodes or text: data never goes through HTML. */
  function el(tag, props) {
    var node = document.createElement(tag);
    Object.keys(props || {}).forEach(function (name) {
      if (name === 'class') node.className = props[name];
      else if (name === 'onclick') node.addEventListener('click', props[name]);
      else node.setAttribute(name, props[name]);
    });
    for (var i = 2; i < arguments.length; i++) {
      var child = arguments[i];
      node.append(child instanceof Node ? child : String(child));
    }
    return node;
  }
  function svg(tag, attrs) {
    var node = document.createElementNS(SVG, tag);
    Object.keys(attrs).forEach(function (name) { node.setAttribute(name, String(attrs[name])); });
    return node;
  }
  function clock(ms) { return new Date(ms).toISOString().replace('T', ' ').replace(/\\.\\d+Z$/, 'Z'); }
  function getJson(path) {
    var headers = { accept: 'application/json' };
    if (token) headers.authorization = 'Bearer ' + token;
    return fetch(path, { headers: headers }).then(function (response) {
      return response.json().then(function (body) {
        if (response.status === 401) lock(body && body.error ? body.error.message : '');
        if (!response.ok) throw new Error(body && body.error ? body.error.message : 'HTTP ' + response.status);
        return body;
      });
    });
  }

  /** The token is missing or wrong: ask for it instead of showing empty panels. */
  function lock(message) {
    document.body.dataset.locked = 'true';
    delete document.body.dataset.loaded;
    $('token-reason').textContent = token ? 'That token was refused: ' + message : 'Reading this dashboard needs the operator token.';
    $('token-panel').hidden = false;
    document.querySelector('main').hidden = true;
    $('token-prompt').focus();
  }
  function unlock() {
    delete document.body.dataset.locked;
    $('token-panel').hidden = true;
    document.querySelector('main').hidden = false;
  }

  function showOverview(overview) {
    $('store').textContent = overview.store.label;
    var counts = overview.stats.counts;
    var labels = [['running', 'in progress'], ['stuck', 'stuck (lease over)'], ['completed', 'completed'], ['expired', 'expired']];
    $('counts').replaceChildren.apply($('counts'), labels.map(function (pair) {
      return el('div', { class: 'count', 'data-state': pair[0] }, el('b', {}, counts[pair[0]]), pair[1]);
    }).concat([el('div', { class: 'count', 'data-state': 'takeovers' }, el('b', {}, overview.stats.takenOver.takeovers), 'takeovers')]));
    $('scan-note').textContent = 'From the store: ' + overview.stats.scanned + ' records read' +
      (overview.stats.truncated ? ' (the first ones only: the store holds more)' : '') + ', as of ' + clock(overview.stats.nowMs) + '.';
    drawBars($('plot'), overview.stats.buckets.map(function (bucket) {
      return { atMs: bucket.startMs, values: [bucket.claimed, bucket.takeovers] };
    }), [COLORS.claimed, COLORS.takeovers]);
    showMetrics(overview.metrics);
    $('workflows-panel').dataset.available = String(overview.journals);
  }

  function showMetrics(metrics) {
    if (!metrics.enabled) {
      $('metrics-plot').replaceChildren();
      $('metrics-note').textContent = 'Conflicts (409) and mismatches (422) are answers idem serve gives and does not store: start idem ui with --metrics <the gateway\\'s /__idem/metrics URL> to plot them.';
      return;
    }
    drawBars($('metrics-plot'), metrics.samples.map(function (sample) {
      return { atMs: sample.atMs, values: [sample.delta.conflicts, sample.delta.mismatches] };
    }), [COLORS.conflicts, COLORS.mismatches]);
    $('metrics-note').textContent = 'From ' + metrics.source + ', sampled every ' + metrics.intervalMs / 1000 + ' s while this dashboard runs: conflicts (red) and mismatches (purple) per sample.' +
      (metrics.lastError ? ' Last sample failed: ' + metrics.lastError + '.' : '');
  }

  /** Grouped bars, one group per point; crisp edges so the colours stay exact. */
  function drawBars(target, points, colors) {
    var width = 600, height = 160, pad = 24;
    var top = 1;
    points.forEach(function (point) { point.values.forEach(function (v) { top = Math.max(top, v); }); });
    var plot = svg('svg', { viewBox: '0 0 ' + width + ' ' + height, width: width, height: height, role: 'img', 'shape-rendering': 'crispEdges' });
    plot.append(svg('line', { x1: pad, y1: height - pad, x2: width, y2: height - pad, stroke: '#94a3b8' }));
    var slot = (width - pad) / Math.max(1, points.length);
    var bar = Math.max(1, Math.floor(slot / (colors.length + 1)));
    points.forEach(function (point, i) {
      point.values.forEach(function (value, j) {
        if (value <= 0) return;
        var h = Math.max(2, Math.round((height - 2 * pad) * value / top));
        plot.append(svg('rect', { x: Math.round(pad + i * slot + j * bar), y: height - pad - h, width: bar, height: h, fill: colors[j] }));
      });
    });
    var label = svg('text', { x: 2, y: 12, 'font-size': 10, fill: '#475569' });
    label.textContent = String(top);
    plot.append(label);
    if (points.length > 0) {
      var first = svg('text', { x: pad, y: height - 6, 'font-size': 10, fill: '#475569' });
      first.textContent = clock(points[0].atMs);
      var last = svg('text', { x: width - 4, y: height - 6, 'font-size': 10, fill: '#475569', 'text-anchor': 'end' });
      last.textContent = 'now';
      plot.append(first, last);
    }
    target.replaceChildren(plot);
  }

  function loadKeys(append) {
    var filter = $('state-filter').value;
    var query = '?limit=50' + (filter ? '&state=' + encodeURIComponent(filter) : '') +
      (append && state.keysCursor ? '&cursor=' + encodeURIComponent(state.keysCursor) : '');
    return getJson('/api/keys' + query).then(function (page) {
      var body = $('keys').tBodies[0];
      if (!append) body.replaceChildren();
      page.records.forEach(function (record) {
        var shown = record.shownState === 'stuck' ? el('span', { class: 'stuck' }, 'in_progress (lease over)') :
          record.shownState === 'running' ? 'in_progress' : record.shownState;
        body.append(el('tr', { 'data-key': record.key, onclick: function () { openRecord(record.key); } },
          el('td', { class: 'key', title: record.key }, record.key), el('td', {}, shown), el('td', {}, record.attempts),
          el('td', {}, clock(Date.parse(record.updatedAt))), el('td', {}, record.result === undefined ? '-' : record.result)));
      });
      state.keysCursor = page.nextCursor;
      $('more-keys').hidden = page.nextCursor === undefined;
    });
  }

  function openRecord(key) {
    $('action').textContent = '';
    $('action').className = '';
    return getJson('/api/record?key=' + encodeURIComponent(key)).then(showRecord, function (error) {
      $('record-panel').hidden = false;
      $('action').textContent = error.message;
      $('action').className = 'error';
    });
  }

  function showRecord(record) {
    state.record = record;
    $('record-panel').hidden = false;
    var rows = [['store key', record.key], ['state', record.shownState === 'stuck' ? 'in_progress (lease over)' : record.state],
      ['attempts', record.attempts + (record.takeovers > 0 ? ' (' + record.takeovers + ' takeover' + (record.takeovers > 1 ? 's' : '') + ')' : '')],
      ['created', record.createdAt], ['updated', record.updatedAt], ['expires', record.expiresAt], ['fingerprint', record.fingerprint]];
    if (record.state === 'in_progress') rows.push(['lease', record.leaseLeftMs > 0 ? 'live for ' + Math.ceil(record.leaseLeftMs / 1000) + ' s more' : 'over: the next request takes it over']);
    var result = record.result;
    if (result) rows.push(['result', result.kind + (result.status ? ' ' + result.status : '') + ', ' + result.bytes + ' B' + (result.kind === 'sealed' ? ' (encrypted: start idem ui with IDEM_ENCRYPTION_KEY to read it)' : '')]);
    $('record').replaceChildren.apply($('record'), rows.reduce(function (all, row) { return all.concat([el('dt', {}, row[0]), el('dd', {}, row[1])]); }, []));
    var text = '';
    if (result && result.headers) text += result.headers.map(function (h) { return h[0] + ': ' + h[1]; }).join('\\n') + '\\n\\n';
    if (result && result.body !== undefined) text += result.body;
    $('record-body').textContent = text;
    $('record-body').hidden = text === '';
    $('release-box').hidden = record.state !== 'in_progress';
    $('force-label').hidden = !(record.leaseLeftMs > 0);
    $('force').checked = false;
  }

  function releaseRecord() {
    var record = state.record;
    if (!record) return;
    var token = $('token').value.trim();
    fetch('/api/release', {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Bearer ' + token },
      body: JSON.stringify({ key: record.key, force: $('force').checked }),
    }).then(function (response) {
      return response.json().then(function (body) {
        $('action').textContent = response.ok ? body.message : body.error.message;
        $('action').className = response.ok ? 'ok' : 'error';
        if (response.ok) { $('release-box').hidden = true; return refresh(); }
      });
    }).catch(function (error) { $('action').textContent = error.message; $('action').className = 'error'; });
  }

  function loadRuns() {
    return getJson('/api/workflows?limit=20').then(function (page) {
      var body = $('runs').tBodies[0];
      body.replaceChildren();
      $('runs').hidden = !page.available;
      if (!page.available) { $('workflows-note').textContent = 'This store keeps no journals, so it holds no workflow runs.'; return; }
      $('workflows-note').textContent = page.items.length === 0 ? 'No workflow runs in this store.' : 'From the store: runs of idem/workflow; click one for its step timeline.';
      page.items.forEach(function (run) {
        var done = run.steps.filter(function (step) { return step.state === 'done'; }).length;
        body.append(el('tr', { 'data-run': run.id, onclick: function () { drawTimeline(run); } },
          el('td', { class: 'key' }, run.id), el('td', {}, run.workflow), el('td', {}, run.state), el('td', {}, run.attempts),
          el('td', {}, done + '/' + run.steps.length), el('td', {}, clock(run.updatedAtMs))));
      });
    });
  }

  /** One bar per step, from its start to its end, on the run's own time axis. */
  function drawTimeline(run) {
    var steps = run.steps.filter(function (step) { return step.startedAtMs !== undefined; });
    var start = run.createdAtMs, end = start + 1;
    steps.forEach(function (step) { end = Math.max(end, step.endedAtMs || step.startedAtMs, step.wakeAtMs || 0); });
    var width = 600, row = 22, left = 150;
    var chart = svg('svg', { viewBox: '0 0 ' + width + ' ' + (row * steps.length + 24), width: width, height: row * steps.length + 24, 'shape-rendering': 'crispEdges' });
    var scale = (width - left - 10) / (end - start);
    steps.forEach(function (step, i) {
      var name = svg('text', { x: 2, y: i * row + 15, 'font-size': 11, fill: '#0f172a' });
      name.textContent = step.position + ' ' + step.name + ' (' + step.state + ')';
      var from = left + (step.startedAtMs - start) * scale;
      var to = left + ((step.endedAtMs || step.wakeAtMs || end) - start) * scale;
      var bar = svg('rect', { x: Math.round(from), y: i * row + 4, width: Math.max(2, Math.round(to - from)), height: row - 8, fill: COLORS[step.state] || COLORS.other });
      var title = svg('title', {});
      title.textContent = step.error || step.value || step.state;
      bar.append(title);
      chart.append(name, bar);
    });
    var span = svg('text', { x: width - 4, y: row * steps.length + 18, 'font-size': 10, fill: '#475569', 'text-anchor': 'end' });
    span.textContent = run.id + ': ' + ((end - start) / 1000).toFixed(2) + ' s from its start';
    chart.append(span);
    $('timeline').replaceChildren(chart);
  }

  function loadNotifications() {
    return getJson('/api/notifications?limit=50').then(function (page) {
      var body = $('notifications').tBodies[0];
      body.replaceChildren();
      $('notifications').hidden = !page.available;
      if (!page.available) { $('notifications-note').textContent = 'This store keeps no journals, so it holds no notification log.'; return; }
      $('notifications-note').textContent = page.items.length === 0 ? 'No notifications logged in this store.' : 'From the store: the log of idem/notify.';
      page.items.forEach(function (entry) {
        body.append(el('tr', {}, el('td', {}, clock(entry.atMs)), el('td', {}, entry.kind), el('td', {}, entry.channel),
          el('td', {}, entry.recipient), el('td', {}, entry.event), el('td', {}, entry.messageId || '-')));
      });
    });
  }

  function refresh() {
    return Promise.all([getJson('/api/overview').then(showOverview), loadKeys(false), loadRuns(), loadNotifications()])
      .then(function () { unlock(); document.body.dataset.loaded = 'true'; })
      .catch(function (error) { $('scan-note').textContent = 'Could not load: ' + error.message; });
  }

  $('token').value = token;
  $('token').addEventListener('input', function () { token = $('token').value.trim(); keep(token); });
  $('token-form').addEventListener('submit', function (event) {
    event.preventDefault();
    useToken($('token-prompt').value);
    $('token-prompt').value = '';
    refresh();
  });
  $('refresh').addEventListener('click', refresh);
  $('state-filter').addEventListener('change', function () { loadKeys(false); });
  $('more-keys').addEventListener('click', function () { loadKeys(true); });
  $('release').addEventListener('click', releaseRecord);
  refresh();
})();
`;
