// switchback UI script: dialogs, the partner filter and live updates.
// Plain JavaScript, no dependencies, no build. Every change is still an
// ordinary form POST with its CSRF token; this script only opens the
// dialogs that confirm them and keeps the page current.
(function () {
  'use strict';

  // Dialogs open and close with <button commandfor=… command=…>. Browsers
  // without invoker commands get the same behaviour here.
  if (!('command' in HTMLButtonElement.prototype)) {
    document.addEventListener('click', function (e) {
      var b = e.target.closest('button[commandfor]');
      if (!b || b.disabled) return;
      var d = document.getElementById(b.getAttribute('commandfor'));
      if (!d) return;
      var c = b.getAttribute('command');
      if (c === 'show-modal' && !d.open) d.showModal();
      else if (c === 'close') d.close();
    });
  }

  // A dialog's submit button is disabled once pressed, so a double click
  // cannot send the change twice.
  document.addEventListener('submit', function (e) {
    var f = e.target;
    if (!f.closest('dialog')) return;
    var b = e.submitter;
    if (b) setTimeout(function () { b.disabled = true; }, 0);
  });

  // The partner filter narrows the table as you type; the same filter
  // works without script through the form's GET.
  var filter = document.querySelector('input[data-filter]');
  function applyFilter() {
    if (!filter) return;
    var table = document.getElementById(filter.dataset.filter);
    if (!table) return;
    var q = filter.value.trim().toLowerCase();
    var shown = 0;
    table.querySelectorAll('tbody tr[data-search]').forEach(function (tr) {
      var hit = !q || tr.dataset.search.indexOf(q) !== -1;
      tr.hidden = !hit;
      if (hit) shown++;
    });
    var n = document.querySelector('[data-shown]');
    if (n) n.textContent = String(shown);
    // The sort links keep the filter.
    table.querySelectorAll('thead th a').forEach(function (a) {
      var u = new URL(a.href);
      if (q) u.searchParams.set('q', filter.value.trim());
      else u.searchParams.delete('q');
      a.href = u.pathname + u.search + u.hash;
    });
  }
  if (filter) {
    filter.addEventListener('input', function () {
      applyFilter();
      var u = new URL(location.href);
      if (filter.value.trim()) u.searchParams.set('q', filter.value.trim());
      else u.searchParams.delete('q');
      history.replaceState(null, '', u);
    });
  }

  // Live updates: poll /ui/state.json; when what this page follows has
  // changed, fetch the page again and swap in the parts marked data-live.
  var body = document.body;
  var follows = body.dataset.live;
  if (!follows) return;
  var key = body.dataset.liveKey;
  var every = parseInt(body.dataset.poll, 10) || 1000;
  var status = document.getElementById('live-status');
  var busy = false, stopped = false;

  function say(text, stale) {
    if (!status) return;
    status.querySelector('.text').textContent = text;
    status.classList.toggle('stale', !!stale);
  }

  // The stale banner follows the replica's view of its shared store; the
  // state itself does not change while it is stale, so no re-render says so.
  var staleBanner = document.getElementById('stale-banner');
  function markStale(s) {
    if (!staleBanner) return;
    staleBanner.hidden = !s.stale;
    if (!s.stale) return;
    var t = staleBanner.querySelector('time');
    t.dateTime = s.staleSince;
    // RFC 3339 in UTC to the page's "2006-01-02 15:04:05 UTC".
    t.textContent = s.staleSince.replace('T', ' ').replace(/(\.\d+)?Z$/, ' UTC');
  }

  function refresh() {
    return fetch(location.href, { credentials: 'same-origin', cache: 'no-store', headers: { 'X-Switchback-Live': '1' } }).then(function (r) {
      if (!r.ok) throw new Error('page ' + r.status);
      return r.text();
    }).then(function (html) {
      var doc = new DOMParser().parseFromString(html, 'text/html');
      document.querySelectorAll('[data-live][id]').forEach(function (el) {
        var fresh = doc.getElementById(el.id);
        if (!fresh) return;
        if (el.querySelector('dialog[open]')) return;
        var active = document.activeElement;
        var focusID = active && el.contains(active) ? active.id : '';
        var open = [];
        el.querySelectorAll('details[open][id]').forEach(function (d) { open.push(d.id); });
        el.replaceWith(fresh);
        open.forEach(function (id) { var d = document.getElementById(id); if (d) d.open = true; });
        if (focusID) { var f = document.getElementById(focusID); if (f) f.focus(); }
      });
      applyFilter();
    });
  }

  function tick() {
    if (busy || stopped || document.hidden) return;
    busy = true;
    fetch('/ui/state.json', { credentials: 'same-origin', cache: 'no-store' }).then(function (r) {
      if (r.status === 401) {
        stopped = true;
        say('Signed out: the session ended. Sign in again to follow changes.', true);
        return null;
      }
      if (!r.ok) throw new Error('state ' + r.status);
      return r.json();
    }).then(function (s) {
      if (!s) return;
      markStale(s);
      var now = s.keys[follows];
      var text = 'Live: snapshot version ' + s.version;
      if (follows === 'routers' && s.routers.total) {
        text += ' · ' + s.routers.confirmed + ' of ' + s.routers.total + ' routers confirmed';
      }
      if (s.stale) text += ' · stale: the control store cannot be reached';
      if (now === key) { say(text, s.stale); return; }
      return refresh().then(function () { key = now; say(text, s.stale); });
    }).catch(function () {
      say('Connection lost: retrying…', true);
    }).finally(function () { busy = false; });
  }

  setInterval(tick, every);
  document.addEventListener('visibilitychange', tick);
  tick();
})();
