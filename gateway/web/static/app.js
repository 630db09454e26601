// Gatehouse web UI: countdowns, live updates of the run page, and one key
// per form submission. Plain JS, no dependencies; the pages work without it
// (they just do not update themselves).
(function () {
  'use strict';

  var POLL_MS = 2000;

  // Countdowns: every [data-deadline] says how long is left.
  function left(ms) {
    var s = Math.floor(Math.abs(ms) / 1000);
    var d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600), m = Math.floor(s % 3600 / 60), sec = s % 60;
    if (d > 0) return d + 'd ' + h + 'h';
    if (h > 0) return h + 'h ' + m + 'm';
    if (m > 0) return m + 'm ' + sec + 's';
    return sec + 's';
  }
  function tick() {
    var els = document.querySelectorAll('[data-deadline]');
    for (var i = 0; i < els.length; i++) {
      var el = els[i];
      var t = Date.parse(el.getAttribute('data-deadline'));
      if (isNaN(t)) continue;
      var ms = t - Date.now();
      el.textContent = ms >= 0 ? left(ms) + ' left' : 'passed ' + left(ms) + ' ago';
      el.classList.toggle('late', ms < 0 || ms < 15 * 60 * 1000);
    }
  }
  tick();
  setInterval(tick, 1000);

  // A key per submission, so a form sent twice decides once; and no
  // second click while the first is on its way.
  function newKey() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    var b = new Uint8Array(16);
    (window.crypto || window.msCrypto).getRandomValues(b);
    return Array.prototype.map.call(b, function (x) { return ('0' + x.toString(16)).slice(-2); }).join('');
  }
  document.addEventListener('submit', function (ev) {
    var form = ev.target;
    if (!form.hasAttribute || !form.hasAttribute('data-decide')) return;
    var key = form.querySelector('input[name="key"]');
    if (key && !key.value) key.value = newKey();
    var buttons = form.querySelectorAll('button[type="submit"]');
    setTimeout(function () {
      for (var i = 0; i < buttons.length; i++) buttons[i].disabled = true;
    }, 0);
    form.setAttribute('data-submitting', 'true');
  });

  // Live run page: poll the live endpoint and swap in the regions that
  // changed, keeping what the user was typing and which panels were open.
  var live = document.getElementById('live');
  if (!live) return;
  var src = live.getAttribute('data-live');
  var version = live.getAttribute('data-version') || '';
  var final = live.getAttribute('data-final') === 'true';
  var notice = document.getElementById('live-notice');
  var status = document.getElementById('live-status');

  function say(msg) {
    if (!notice) return;
    notice.textContent = msg;
    notice.hidden = !msg;
  }

  function saveState(el) {
    var st = { values: {}, checked: {}, open: {}, focus: null };
    var fields = el.querySelectorAll('textarea[id], input[id]');
    for (var i = 0; i < fields.length; i++) {
      var f = fields[i];
      if (f.type === 'checkbox') st.checked[f.id] = f.checked;
      else st.values[f.id] = f.value;
    }
    var details = el.querySelectorAll('details[id]');
    for (var j = 0; j < details.length; j++) st.open[details[j].id] = details[j].open;
    if (document.activeElement && el.contains(document.activeElement) && document.activeElement.id) {
      st.focus = document.activeElement.id;
    }
    return st;
  }
  function restoreState(el, st) {
    Object.keys(st.values).forEach(function (id) {
      var f = document.getElementById(id);
      if (f && el.contains(f) && st.values[id]) f.value = st.values[id];
    });
    Object.keys(st.checked).forEach(function (id) {
      var f = document.getElementById(id);
      if (f && el.contains(f)) f.checked = st.checked[id];
    });
    Object.keys(st.open).forEach(function (id) {
      var d = document.getElementById(id);
      if (d && el.contains(d)) d.open = st.open[id];
    });
    if (st.focus) {
      var f = document.getElementById(st.focus);
      if (f && el.contains(f)) f.focus();
    }
  }

  function apply(ans) {
    var changed = [];
    Object.keys(ans.regions).forEach(function (name) {
      var el = live.querySelector('[data-region="' + name + '"]');
      var r = ans.regions[name];
      if (!el || el.getAttribute('data-hash') === r.hash) return;
      // A form on its way keeps its region until the page reloads.
      if (el.querySelector('form[data-submitting]')) return;
      var st = saveState(el);
      el.innerHTML = r.html;
      el.setAttribute('data-hash', r.hash);
      restoreState(el, st);
      el.classList.remove('updated');
      void el.offsetWidth;
      el.classList.add('updated');
      changed.push(name);
    });
    if (changed.length) {
      tick();
      if (status) status.textContent = 'This run was updated (' + changed.join(', ') + ').';
    }
  }

  var failures = 0, timer = null, inflight = false;
  function schedule() {
    clearTimeout(timer);
    if (!final) timer = setTimeout(poll, failures ? Math.min(POLL_MS * (1 + failures), 30000) : POLL_MS);
  }
  function poll() {
    if (inflight) return;
    if (document.hidden) { schedule(); return; }
    inflight = true;
    var req = new XMLHttpRequest();
    req.open('GET', src + '?since=' + encodeURIComponent(version));
    req.setRequestHeader('Accept', 'application/json');
    req.onload = function () {
      inflight = false;
      if (req.status === 204) {
        failures = 0;
        say('');
      } else if (req.status === 200) {
        failures = 0;
        say('');
        try {
          var ans = JSON.parse(req.responseText);
          apply(ans);
          version = ans.version;
          final = ans.final;
          live.setAttribute('data-version', version);
        } catch (e) { failures++; }
      } else if (req.status === 401) {
        say('You are signed out: sign in again to keep this page up to date.');
        final = true;
      } else {
        failures++;
        var msg = 'Live updates are paused';
        try { msg += ': ' + JSON.parse(req.responseText).error; } catch (e) { msg += ' (HTTP ' + req.status + ')'; }
        say(msg + '. Retrying…');
      }
      schedule();
    };
    req.onerror = function () {
      inflight = false;
      failures++;
      say('Live updates are paused: Gatehouse is not reachable. Retrying…');
      schedule();
    };
    req.send();
  }
  if (!final) schedule();
  document.addEventListener('visibilitychange', function () {
    if (!document.hidden && !final) { clearTimeout(timer); poll(); }
  });
})();
