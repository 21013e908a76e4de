// memfs console: live updates. Listens to the change stream (server-sent
// events) and, when a change concerns this page, fetches the page again and
// swaps in its fresh [data-live-region] parts; an open edit form instead
// shows a warning when its file changes underneath. Text from events only
// ever goes into textContent. No inline script: the CSP forbids it.
(function () {
  'use strict';
  var scope = document.body.getAttribute('data-live');
  if (scope === null || typeof EventSource === 'undefined') { return; }
  var status = document.getElementById('live-status');
  var form = document.querySelector('form[data-watch-memory]');
  var pending = null;

  function say(text) { if (status) { status.textContent = text; } }

  function refresh() {
    pending = null;
    fetch(window.location.href, {
      credentials: 'same-origin',
      headers: { 'X-Console-Live': '1' }
    }).then(function (r) {
      return r.ok ? r.text() : null;
    }).then(function (html) {
      if (!html) { return; }
      var doc = new DOMParser().parseFromString(html, 'text/html');
      var changed = false;
      document.querySelectorAll('[data-live-region]').forEach(function (el) {
        var active = document.activeElement;
        if (active && active !== document.body && el.contains(active)) { return; }
        var fresh = doc.getElementById(el.id);
        if (fresh) {
          el.replaceWith(document.importNode(fresh, true));
          changed = true;
        }
      });
      if (changed) {
        say('Updated ' + new Date().toLocaleTimeString());
        document.body.setAttribute('data-live-updated', String(Date.now()));
      }
    }).catch(function () { say('Live updates paused'); });
  }

  function warn(change) {
    var banner = document.getElementById('changed-banner');
    var detail = document.getElementById('changed-detail');
    if (!banner) { return; }
    if (detail) {
      detail.textContent = '(' + change.op + ' by agent ' + change.agent +
        ', session ' + change.session + ')';
    }
    banner.hidden = false;
  }

  var es = new EventSource('/console/events');
  es.addEventListener('open', function () { say('Live'); });
  es.addEventListener('error', function () { say('Reconnecting…'); });
  es.addEventListener('change', function (ev) {
    var c;
    try { c = JSON.parse(ev.data); } catch (e) { return; }
    if (scope !== '*' && c.store !== scope) { return; }
    if (form) {
      if (c.memory_id === form.getAttribute('data-watch-memory') &&
          String(c.version) !== form.getAttribute('data-watch-version')) {
        warn(c);
      }
      return;
    }
    if (pending === null) { pending = window.setTimeout(refresh, 150); }
  });
  window.addEventListener('pagehide', function () { es.close(); });
}());
