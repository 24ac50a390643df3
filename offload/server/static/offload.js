// offload dashboard: auto-refresh and confirmation of destructive buttons. Nothing else.
(function () {
  "use strict";
  var KEY = "offload.autorefresh";
  var box = document.getElementById("autorefresh");
  var timer = null;
  function schedule() {
    if (timer) { clearTimeout(timer); timer = null; }
    if (box && box.checked) { timer = setTimeout(function () { window.location.reload(); }, 5000); }
  }
  if (box) {
    try { box.checked = window.localStorage.getItem(KEY) === "1"; } catch (e) { /* storage off */ }
    box.addEventListener("change", function () {
      try { window.localStorage.setItem(KEY, box.checked ? "1" : "0"); } catch (e) { /* storage off */ }
      schedule();
    });
    schedule();
  }
  document.querySelectorAll("form[data-confirm]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      if (!window.confirm(form.getAttribute("data-confirm"))) { event.preventDefault(); }
    });
  });
})();
