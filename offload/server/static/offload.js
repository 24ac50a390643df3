// offload dashboard: live updates (Server-Sent Events) and confirmation of destructive buttons.
//
// While "live" is on (the default; the choice is kept in localStorage), the page listens to
// the server's event stream (body[data-events]); on a `change` event it fetches itself again
// and swaps its <main> in place, unless a field of the page has the focus (the update waits
// for the field to lose it). body[data-live] says how the stream is: connected, reconnecting,
// off. body[data-updated] counts the swaps.
(function () {
  "use strict";
  var KEY = "offload.live";
  var body = document.body;
  var box = document.getElementById("live");
  var url = body.getAttribute("data-events");
  var source = null;
  var pending = false;
  var loading = false;
  var updates = 0;

  function editing() {
    var el = document.activeElement;
    var main = document.querySelector("main");
    return !!(el && main && main.contains(el) && /^(INPUT|SELECT|TEXTAREA)$/.test(el.tagName));
  }

  function refresh() {
    if (loading || editing()) { pending = true; return; }
    pending = false;
    loading = true;
    fetch(window.location.href, { headers: { "Accept": "text/html" }, credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (html) {
        loading = false;
        if (html === null) { return; }
        var fresh = new DOMParser().parseFromString(html, "text/html").querySelector("main");
        var main = document.querySelector("main");
        if (fresh && main && !editing()) {
          main.replaceWith(document.importNode(fresh, true));
          updates += 1;
          body.setAttribute("data-updated", String(updates));
        }
        if (pending) { refresh(); }
      })
      .catch(function () { loading = false; });
  }

  function connect() {
    if (source || !url || !window.EventSource) { return; }
    source = new EventSource(url);
    source.addEventListener("ready", function () { body.setAttribute("data-live", "connected"); });
    source.addEventListener("change", refresh);
    source.onerror = function () { body.setAttribute("data-live", "reconnecting"); };
  }

  function disconnect() {
    if (source) { source.close(); source = null; }
    body.setAttribute("data-live", "off");
  }

  if (box && url) {
    try { box.checked = window.localStorage.getItem(KEY) !== "0"; } catch (e) { box.checked = true; }
    box.addEventListener("change", function () {
      try { window.localStorage.setItem(KEY, box.checked ? "1" : "0"); } catch (e) { /* storage off */ }
      if (box.checked) { connect(); refresh(); } else { disconnect(); }
    });
    if (box.checked) { connect(); } else { disconnect(); }
  }
  document.addEventListener("focusout", function () {
    if (pending) { window.setTimeout(function () { if (pending) { refresh(); } }, 0); }
  });

  // A rule's preview counts what the previewed rule matches: once a field changes, the rule
  // must be previewed again before it can be added.
  document.addEventListener("input", function (event) {
    var form = event.target && event.target.closest && event.target.closest("#rule-form");
    if (!form) { return; }
    ["add-form", "preview"].forEach(function (id) {
      var el = document.getElementById(id);
      if (el) { el.remove(); }
    });
  });

  // Destructive buttons ask first: a form's data-confirm, or the pressed button's own.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var button = event.submitter;
    var text = (button && button.getAttribute("data-confirm")) ||
      (form && form.getAttribute && form.getAttribute("data-confirm"));
    if (text && !window.confirm(text)) { event.preventDefault(); }
  });
})();
