// Sortable tables: every table inside <div class="nk-sortable"> (the units overview) gets a button in each
// header cell; pressing it sorts the rows by that column, pressing again reverses. The sorted column carries
// aria-sort, so a screen reader announces the order. A classic script (no modules): it works opened from disk.
// Numbers are read as the pages print them: a true minus sign, thin spaces between thousands, "%", "pp";
// "n/a" and empty cells always sort last. Ties keep the table's own order.
(function () {
  "use strict";

  function cellValue(text) {
    var clean = String(text).replace(/\u2212/g, "-").replace(/[\u00a0\u202f\s]+/g, " ").trim();
    if (clean === "" || clean === "n/a" || clean === "none") return null;
    var match = clean.match(/-?\d+(?:\.\d+)?/);
    return match ? parseFloat(match[0]) : null;
  }

  function isNumeric(texts) {
    return texts.every(function (t) {
      var clean = String(t).trim();
      return clean === "" || clean === "n/a" || clean === "none" || cellValue(clean) !== null;
    });
  }

  // The order of row indices that sorts `texts` (one per row) ascending or descending; missing values last.
  function sortOrder(texts, descending) {
    var numeric = isNumeric(texts);
    var keys = texts.map(function (t) { return numeric ? cellValue(t) : String(t).trim().toLowerCase() || null; });
    var sign = descending ? -1 : 1;
    return keys.map(function (_, i) { return i; }).sort(function (a, b) {
      var x = keys[a], y = keys[b];
      if (x === null || y === null) return x === y ? a - b : (x === null ? 1 : -1);
      if (x < y) return -sign;
      if (x > y) return sign;
      return a - b;
    });
  }

  function sortTable(table, column, button) {
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    var header = button.parentNode;
    var descending = header.getAttribute("aria-sort") === "ascending";
    var order = sortOrder(rows.map(function (r) { return r.cells[column] ? r.cells[column].textContent : ""; }), descending);
    order.forEach(function (i) { body.appendChild(rows[i]); });
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th) { th.removeAttribute("aria-sort"); });
    header.setAttribute("aria-sort", descending ? "descending" : "ascending");
  }

  function makeSortable(table) {
    if (!table.tHead || !table.tBodies.length || table.getAttribute("data-nk-sortable")) return;
    table.setAttribute("data-nk-sortable", "ready");
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, column) {
      var button = document.createElement("button");
      button.type = "button";
      button.className = "nk-sort";
      while (th.firstChild) button.appendChild(th.firstChild);
      button.addEventListener("click", function () { sortTable(table, column, button); });
      th.appendChild(button);
    });
  }

  function init() {
    Array.prototype.forEach.call(document.querySelectorAll(".nk-sortable table"), makeSortable);
  }

  if (typeof module !== "undefined" && module.exports) {
    module.exports = { cellValue: cellValue, sortOrder: sortOrder };  // for the Node test
  } else if (typeof document$ !== "undefined") {
    document$.subscribe(init);  // Material's page-load signal (also after instant navigation, if turned on)
  } else if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
