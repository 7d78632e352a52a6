// Live status page: takes the status report from the event stream
// /events (or, where that fails, polls /status every second) and
// re-renders the part of the page the server rendered as "live"
// (status.html), with the same elements and classes. Data goes in through
// textContent only: a scan's text is outside input.
'use strict';
(function () {
  var live = document.getElementById('live');
  if (!live || !window.fetch) {
    return; // the server-rendered page stays as it is
  }
  var lastOK = Date.now();

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function add(parent) {
    for (var i = 1; i < arguments.length; i++) {
      var c = arguments[i];
      if (c === null || c === undefined) continue;
      parent.append(c);
    }
    return parent;
  }
  // dur matches the Go template's dur: 7s, 3m05s, 2h04m.
  function dur(s) {
    s = Math.max(0, Math.round(s));
    var p2 = function (n) { return n < 10 ? '0' + n : '' + n; };
    if (s < 60) return s + 's';
    if (s < 3600) return Math.floor(s / 60) + 'm' + p2(s % 60) + 's';
    return Math.floor(s / 3600) + 'h' + p2(Math.floor(s % 3600 / 60)) + 'm';
  }
  function pct(r) { return Math.round(r * 100) + '%'; }

  function summary(st) {
    var m = st.mqtt, b = st.buffer, ul = el('ul', 'summary');
    var text = m.connected ? 'connected' : 'not connected';
    if (m.publish_permitted === false) text += ' · may not publish (ACL)';
    if (m.duplicate_gateway) text += ' · another gateway uses this id';
    var li = add(el('li', m.connected ? 'ok' : 'bad'), el('b', '', 'broker'), ' ', el('span', '', text),
      el('small', '', m.broker + (m.connected ? '' : ' · scans wait safely in the buffer')));
    li.id = 'broker';
    ul.append(li);

    text = b.backlog + ' waiting' + (b.backlog ? ', oldest ' + dur(b.oldest_age_seconds) : '');
    li = add(el('li', b.backlog ? 'warn' : 'ok'), el('b', '', 'backlog'), ' ', el('span', '', text),
      el('small', '', 'next seq ' + b.next_seq + ' · epoch ' + b.epoch));
    li.id = 'backlog';
    ul.append(li);

    li = add(el('li', st.clock_synced ? 'ok' : 'warn'), el('b', '', 'clock'),
      ' ', el('span', '', st.clock_synced ? 'synchronised' : 'not synchronised'),
      el('small', '', st.version + ' · up ' + dur(st.uptime_seconds) + ' · config ' + st.config_hash));
    li.id = 'clock';
    ul.append(li);

    (st.printers || []).forEach(function (p) {
      ul.append(add(el('li', !p.ready ? 'bad' : p.in_doubt ? 'warn' : 'ok'), el('b', '', 'printer'), ' ',
        el('span', '', p.id + ' ' + (p.ready ? 'ready' : 'not ready: ' + p.reason)),
        el('small', '', p.waiting + ' waiting' + (p.in_doubt ? ' · ' + p.in_doubt + ' in doubt: reprint them' : ''))));
    });
    (st.serials || []).forEach(function (x) {
      ul.append(add(el('li', x.low ? 'warn' : 'ok'), el('b', '', 'serials'), ' ', el('span', '', x.scheme + ': ' + x.remaining + ' left'),
        el('small', '', (x.granted ? 'granted blocks' : "the counter's width") + (x.low ? ' · below low water' : ''))));
    });
    return ul;
  }

  // workflow is a station's order progress, open aggregation and label
  // to verify, when it has any.
  function workflow(s) {
    var p = el('p', 'workflow'), o = s.order, a = s.aggregation;
    if (o) {
      var t = 'order ' + o.order + ': ' + o.counted + ' counted, ' + o.remaining + ' to go';
      if (o.over) t += ' · ' + o.over + ' over';
      if (o.unexpected) t += ' · ' + o.unexpected + ' unexpected';
      if (o.wrong_serial) t += ' · ' + o.wrong_serial + ' wrong serial';
      if (o.complete) t += ' · complete';
      p.append(el('span', '', t));
    }
    if (a) p.append(el('span', '', a.mode + ' open: ' + a.parent + ' · ' + a.children + ' children'));
    if (s.verify) p.append(el('span', '', 'scan the label ' + s.verify));
    return p.childNodes.length ? p : null;
  }

  // read fills a latest block or a recent row: the same four parts.
  function read(e, o, seqAlways) {
    add(e, el('span', 'verdict', o.verdict));
    if (o.seq || seqAlways) e.append(el('span', 'seq', o.seq ? '#' + o.seq : ''));
    add(e, el('span', 'data', o.data || ''), el('span', 'meta', o.scanner + ' · ' + dur(o.age_seconds) + ' ago'));
    (o.reasons || []).forEach(function (r) { e.append(el('span', 'reason', r.code + ': ' + r.message)); });
    return e;
  }

  function station(s) {
    var sec = el('section', 'station');
    sec.dataset.station = s.id;
    var h = add(el('h2', '', s.id + ' '), el('span', 'mode', s.mode));
    if (!s.running) add(h, ' ', el('span', 'pill down', 'not running'));
    sec.append(h);
    var keys = Object.keys(s.context || {}).sort();
    if (keys.length) {
      var ctx = el('p', 'context');
      keys.forEach(function (k) { ctx.append(el('span', '', k + ' ' + s.context[k])); });
      sec.append(ctx);
    }
    var wf = workflow(s);
    if (wf) sec.append(wf);
    var sc = el('p', 'scanners');
    (s.scanners || []).forEach(function (x) {
      var t = x.id + (x.up ? ' up' : ' down');
      if (x.read_rate !== undefined && x.read_rate !== null) t += ' · ' + pct(x.read_rate) + ' read';
      add(sc, el('span', 'pill ' + (x.up ? 'up' : 'down'), t), ' ');
    });
    sec.append(sc);
    var recent = s.recent || [];
    if (recent.length) {
      sec.append(read(el('div', 'latest v-' + recent[0].verdict), recent[0], false));
    } else {
      sec.append(add(el('div', 'latest none'), el('span', 'verdict', 'no scans since the start')));
    }
    var ol = el('ol', 'recent');
    recent.forEach(function (o) {
      var li = read(el('li', 'read v-' + o.verdict), o, true);
      if (o.seq) li.dataset.seq = o.seq;
      ol.append(li);
    });
    sec.append(ol);
    return sec;
  }

  function render(st) {
    var stale = el('p', 'stale', 'no answer from the gateway');
    stale.id = 'stale';
    stale.hidden = true;
    var nodes = [add(el('header'), el('h1', '', st.site + '/' + st.gateway), stale), summary(st)];
    (st.stations || []).forEach(function (s) { nodes.push(station(s)); });
    live.replaceChildren.apply(live, nodes);
    document.title = 'scangw ' + st.site + '/' + st.gateway;
  }

  // A page showing old reads as if current would mislead the dock: say so
  // once the gateway has not answered for a few seconds.
  function markStale() {
    var s = document.getElementById('stale');
    if (s) s.hidden = Date.now() - lastOK < 3000;
  }

  // poll is the fallback for a browser without EventSource, or a stream
  // refused (a 401 after a token change leads to the login form).
  function poll() {
    fetch('/status', { cache: 'no-store', credentials: 'same-origin' }).then(function (r) {
      if (r.status === 401) {
        location.replace('/'); // token changed: the login form
        return null;
      }
      if (!r.ok) throw new Error('status ' + r.status);
      return r.json();
    }).then(function (st) {
      if (!st) return;
      lastOK = Date.now();
      render(st);
      setTimeout(poll, 1000);
    }).catch(function () {
      markStale();
      setTimeout(poll, 1000);
    });
  }
  function stream() {
    var es = new EventSource('/events');
    es.onmessage = function (e) {
      lastOK = Date.now();
      render(JSON.parse(e.data));
    };
    es.onerror = function () {
      // A dropped connection is retried by the browser; a refused one
      // (CLOSED) is not.
      if (es.readyState === EventSource.CLOSED) {
        es.close();
        poll();
      }
    };
  }
  // The stream beats every second: a silent one is a gateway gone.
  setInterval(markStale, 1000);
  if (window.EventSource) stream(); else poll();
})();
