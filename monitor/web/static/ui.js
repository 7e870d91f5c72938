// dbpulse web UI: re-fetch the server-rendered sections (escaped on the server) and update what changed in place,
// pause and resume that, copy DDL, open a linked action, sort tables by a header (a button: click, Enter or Space).
(function () {
  "use strict";
  var body = document.body;
  var live = document.getElementById("live");
  var status = document.getElementById("refresh-status");
  var toggle = document.getElementById("refresh-toggle");
  var every = Math.max(2, Number(body.getAttribute("data-refresh")) || 5) * 1000;
  var refreshes = 0;
  var timer = null;
  var paused = new URLSearchParams(window.location.search).get("refresh") === "paused";

  // The live part is updated in place: only the nodes whose content changed are touched, so a text selection,
  // find-in-page, the scroll position, the focus and opened details survive a refresh.
  function refresh() {
    timer = null;
    if (!live || paused) { return; }  // the statement and table pages do not refresh
    var range = new URLSearchParams(window.location.search).get("range");  // the charts' range (?range=6h)
    fetch("ui/sections" + (range ? "?range=" + encodeURIComponent(range) : ""),
          { cache: "no-store", credentials: "same-origin" })
      .then(function (response) {
        if (!response.ok) { throw new Error("HTTP " + response.status); }
        return response.text();
      })
      .then(function (html) {
        if (paused) { return; }  // paused while the request was on its way: what it brought is not shown
        var fresh = new DOMParser().parseFromString("<main>" + html + "</main>", "text/html").body.firstChild;
        var focused = focusedSort();
        morphChildren(live, fresh);
        reapplySorts();
        refocus(focused);
        refreshes += 1;
        document.documentElement.setAttribute("data-refreshes", String(refreshes));
        say("refreshed " + new Date().toLocaleTimeString() + " (every " + every / 1000 + " s)", "muted");
      })
      .catch(function (err) {
        say("cannot reach dbpulse (" + err.message + "); retrying", "error");
      })
      .then(schedule);
  }

  function schedule() {
    if (live && !paused && timer === null) { timer = window.setTimeout(refresh, every); }
  }

  function say(text, className) {
    if (status) { status.textContent = text; status.className = className; }
  }

  // Pause and resume: the state is in the address (?refresh=paused), so a reload or a shared link keeps it.
  function setPaused(value) {
    paused = value;
    var url = new URL(window.location.href);
    if (paused) { url.searchParams.set("refresh", "paused"); } else { url.searchParams.delete("refresh"); }
    window.history.replaceState(null, "", url.pathname + url.search + url.hash);
    document.documentElement.setAttribute("data-paused", paused ? "true" : "false");
    if (toggle) {
      toggle.textContent = paused ? "resume" : "pause";
      toggle.setAttribute("aria-pressed", paused ? "true" : "false");
    }
    if (paused) {
      if (timer !== null) { window.clearTimeout(timer); timer = null; }
      say("paused: the page is not refreshed", "muted");
    } else if (timer === null) {
      refresh();
    }
  }

  // Attributes the page owns rather than the server: which details are open, how a table is sorted.
  var OWN = { open: true, "aria-sort": true, "data-sorted": true };

  function sameKind(a, b) {
    return a.nodeType === b.nodeType && a.nodeName === b.nodeName;
  }

  function morph(old, fresh) {
    if (old.nodeType !== 1) {
      if (old.nodeValue !== fresh.nodeValue) { old.nodeValue = fresh.nodeValue; }
      return;
    }
    Array.prototype.slice.call(old.attributes).forEach(function (a) {
      if (!OWN[a.name] && !fresh.hasAttribute(a.name)) { old.removeAttribute(a.name); }
    });
    Array.prototype.forEach.call(fresh.attributes, function (a) {
      if (!OWN[a.name] && old.getAttribute(a.name) !== a.value) { old.setAttribute(a.name, a.value); }
    });
    morphChildren(old, fresh);
  }

  // Children are matched by id where they have one, else by position and kind.
  function morphChildren(parent, freshParent) {
    var byId = {};
    var wanted = {};
    Array.prototype.forEach.call(parent.childNodes, function (c) { if (c.nodeType === 1 && c.id) { byId[c.id] = c; } });
    Array.prototype.forEach.call(freshParent.childNodes, function (c) { if (c.nodeType === 1 && c.id) { wanted[c.id] = true; } });
    var cursor = parent.firstChild;
    Array.prototype.slice.call(freshParent.childNodes).forEach(function (fresh) {
      var match = null;
      if (fresh.nodeType === 1 && fresh.id && byId[fresh.id] && sameKind(byId[fresh.id], fresh)) {
        match = byId[fresh.id];
        delete byId[fresh.id];
      } else if (cursor && sameKind(cursor, fresh) && !(cursor.nodeType === 1 && cursor.id && wanted[cursor.id])) {
        match = cursor;
      }
      if (match === null) {
        parent.insertBefore(fresh, cursor);
        return;
      }
      if (match === cursor) { cursor = cursor.nextSibling; } else { parent.insertBefore(match, cursor); }
      morph(match, fresh);
    });
    while (cursor) {
      var next = cursor.nextSibling;
      parent.removeChild(cursor);
      cursor = next;
    }
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
    if (event.target === toggle) { setPaused(!paused); }
  });

  // A link to an action or a full plan (#its-id) opens it, and the details around it, in place.
  function openTarget() {
    var node = window.location.hash ? document.getElementById(decodeURIComponent(window.location.hash.slice(1))) : null;
    var opened = false;
    for (var d = node; d; d = d.parentElement) {
      if (d.tagName === "DETAILS" && !d.open) { d.open = true; opened = true; }
    }
    if (node && opened) { node.scrollIntoView(); }
  }
  window.addEventListener("hashchange", openTarget);
  openTarget();
  if (toggle) { toggle.hidden = false; }
  document.documentElement.setAttribute("data-ui", "ready");
  if (paused) { setPaused(true); } else { refresh(); }
})();
