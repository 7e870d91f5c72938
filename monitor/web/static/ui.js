// dbpulse web UI: re-fetch the server-rendered sections (escaped on the server), copy DDL, keep plans open.
(function () {
  "use strict";
  var body = document.body;
  var live = document.getElementById("live");
  var status = document.getElementById("refresh-status");
  var every = Math.max(2, Number(body.getAttribute("data-refresh")) || 5) * 1000;
  var refreshes = 0;

  function refresh() {
    fetch("ui/sections", { cache: "no-store", credentials: "same-origin" })
      .then(function (response) {
        if (!response.ok) { throw new Error("HTTP " + response.status); }
        return response.text();
      })
      .then(function (html) {
        // An engineer reading a full plan keeps it open across refreshes (details carry stable ids).
        var open = Array.prototype.map.call(live.querySelectorAll("details[open][id]"), function (d) { return d.id; });
        live.innerHTML = html;
        open.forEach(function (id) { var d = document.getElementById(id); if (d) { d.open = true; } });
        refreshes += 1;
        document.documentElement.setAttribute("data-refreshes", String(refreshes));
        status.textContent = "refreshed " + new Date().toLocaleTimeString() + " (every " + every / 1000 + " s)";
        status.className = "muted";
      })
      .catch(function (err) {
        status.textContent = "cannot reach dbpulse (" + err.message + "); retrying";
        status.className = "error";
      })
      .then(function () { window.setTimeout(refresh, every); });
  }

  function copy(button) {
    var source = document.getElementById(button.getAttribute("data-copy"));
    if (!source) { return; }
    var text = source.textContent;
    var done = function () {
      button.textContent = "copied";
      button.classList.add("copied");
      window.setTimeout(function () { button.textContent = "copy"; button.classList.remove("copied"); }, 1500);
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, function () { select(source); });
    } else {
      select(source);
      try { if (document.execCommand("copy")) { done(); } } catch (e) { /* selected: the user copies */ }
    }
  }

  function select(node) {
    var range = document.createRange();
    range.selectNodeContents(node);
    var selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest ? event.target.closest("button[data-copy]") : null;
    if (button) { copy(button); }
  });
  // A link to a full plan (/#its-id) opens it.
  var target = window.location.hash ? document.getElementById(window.location.hash.slice(1)) : null;
  if (target && target.tagName === "DETAILS") { target.open = true; }
  document.documentElement.setAttribute("data-ui", "ready");
  refresh();
})();
