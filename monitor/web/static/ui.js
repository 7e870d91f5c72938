// dbpulse web UI: re-fetch the server-rendered sections (escaped on the server), copy DDL, keep plans open,
// sort tables by a header (a button: click, Enter or Space).
(function () {
  "use strict";
  var body = document.body;
  var live = document.getElementById("live");
  var status = document.getElementById("refresh-status");
  var every = Math.max(2, Number(body.getAttribute("data-refresh")) || 5) * 1000;
  var refreshes = 0;

  function refresh() {
    if (!live) { return; }  // the statement and table pages do not refresh
    fetch("ui/sections", { cache: "no-store", credentials: "same-origin" })
      .then(function (response) {
        if (!response.ok) { throw new Error("HTTP " + response.status); }
        return response.text();
      })
      .then(function (html) {
        // An engineer reading a full plan keeps it open across refreshes (details carry stable ids).
        var open = Array.prototype.map.call(live.querySelectorAll("details[open][id]"), function (d) { return d.id; });
        var focused = focusedSort();
        live.innerHTML = html;
        open.forEach(function (id) { var d = document.getElementById(id); if (d) { d.open = true; } });
        reapplySorts();
        refocus(focused);
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

  // A sortable table: its headers are buttons (macros.sort_thead); numeric cells carry data-value.
  function cellKey(row, index, numeric) {
    var cell = row.cells[index];
    if (!cell) { return numeric ? null : ""; }
    if (!numeric) { return cell.textContent.trim().toLowerCase(); }
    var raw = cell.getAttribute("data-value");
    var value = raw === null || raw === "" ? NaN : Number(raw);
    return isNaN(value) ? null : value;
  }

  // Sorts chosen on the main page, by table id, so they survive its refreshes.
  var sorts = {};

  function sortTable(th, ascending) {
    var table = th.closest("table");
    var body = table.tBodies[0];
    if (!body) { return; }
    var index = Array.prototype.indexOf.call(th.parentNode.cells, th);
    var button = th.querySelector("button.sort");
    var numeric = button !== null && button.getAttribute("data-sort") === "num";
    Array.prototype.forEach.call(th.parentNode.cells, function (other) { other.setAttribute("aria-sort", "none"); });
    th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
    var all = Array.prototype.slice.call(body.rows);
    var pinned = all.filter(function (row) { return row.classList.contains("pinned"); });  // __other__ stays last
    var rows = all.filter(function (row) { return !row.classList.contains("pinned"); }).map(function (row, n) {
      return { row: row, key: cellKey(row, index, numeric), n: n };
    });
    rows.sort(function (a, b) {
      if (a.key === b.key) { return a.n - b.n; }
      if (a.key === null) { return 1; }  // no value: last, either way
      if (b.key === null) { return -1; }
      var order = a.key < b.key ? -1 : 1;
      return ascending ? order : -order;
    });
    rows.forEach(function (r) { body.appendChild(r.row); });
    pinned.forEach(function (row) { body.appendChild(row); });
    table.setAttribute("data-sorted", index + (ascending ? "-ascending" : "-descending"));
    if (table.id) { sorts[table.id] = { index: index, ascending: ascending }; }
  }

  function sortBy(button) {
    var th = button.closest("th");
    sortTable(th, th.getAttribute("aria-sort") !== "ascending");
  }

  // A keyboard user's focus on a sort button survives a refresh (the same table and column), so a key
  // pressed just after the table was replaced is not lost.
  function focusedSort() {
    var button = document.activeElement;
    var th = button && button.matches && button.matches("th > button.sort") ? button.closest("th") : null;
    var table = th ? th.closest("table") : null;
    return table && table.id ? { id: table.id, index: Array.prototype.indexOf.call(th.parentNode.cells, th) } : null;
  }

  function refocus(focused) {
    var table = focused ? document.getElementById(focused.id) : null;
    var cell = table && table.tHead ? table.tHead.rows[0].cells[focused.index] : null;
    var button = cell ? cell.querySelector("button.sort") : null;
    if (button) { button.focus(); }
  }

  function reapplySorts() {
    Object.keys(sorts).forEach(function (id) {
      var table = document.getElementById(id);
      var head = table && table.tHead ? table.tHead.rows[0] : null;
      if (head && head.cells[sorts[id].index]) { sortTable(head.cells[sorts[id].index], sorts[id].ascending); }
    });
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest ? event.target.closest("button[data-copy]") : null;
    if (button) { copy(button); }
    var sort = event.target.closest ? event.target.closest("th > button.sort") : null;
    if (sort) { sortBy(sort); }
  });
  // A link to a full plan (/#its-id) opens it.
  var target = window.location.hash ? document.getElementById(window.location.hash.slice(1)) : null;
  if (target && target.tagName === "DETAILS") { target.open = true; }
  document.documentElement.setAttribute("data-ui", "ready");
  refresh();
})();
