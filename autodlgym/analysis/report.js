/* autodlgym report: sortable tables and the per-trial drill-down.
   Inlined into the page (no network, no library). Every table of a section sorts when its
   header is clicked (numbers as numbers, empty cells last). In the table of all trials a
   click on a row opens its detail below it (spec, learning curve, diagnostics at
   initialisation), drawn from the JSON in <script id="trial-data">; #trial-N in the address
   opens trial N. */
(function () {
  "use strict";
  var NS = "http://www.w3.org/2000/svg";
  var data = null;

  function trialData() {
    if (data === null) {
      var el = document.getElementById("trial-data");
      data = el ? JSON.parse(el.textContent) : {};
    }
    return data;
  }

  function cellValue(td) {
    if (!td) return null;
    var v = td.getAttribute("data-v");
    var text = v !== null ? v : td.textContent.trim();
    if (text === "") return null;
    var num = text.replace(/,/g, "");
    if (/^[-+]?(\d+\.?\d*|\.\d+)(e[-+]?\d+)?$/i.test(num)) return parseFloat(num);
    return text.toLowerCase();
  }

  function compare(a, b) {
    if (a === null && b === null) return 0;
    if (a === null) return 1; // empty cells last, whatever the direction
    if (b === null) return -1;
    if (typeof a === typeof b) return a < b ? -1 : a > b ? 1 : 0;
    return typeof a === "number" ? -1 : 1;
  }

  function sortBy(table, col, th) {
    var body = table.tBodies[0];
    if (!body) return;
    var desc = th.getAttribute("aria-sort") !== "descending";
    if (th.getAttribute("aria-sort") === null) desc = th.getAttribute("data-first") !== "asc";
    var rows = [];
    var details = {};
    Array.prototype.forEach.call(body.rows, function (tr, i) {
      if (tr.classList.contains("detail")) details[tr.getAttribute("data-for")] = tr;
      else rows.push({ tr: tr, i: i, v: cellValue(tr.cells[col]) });
    });
    rows.sort(function (x, y) {
      var c = compare(x.v, y.v);
      if (c !== 0 && x.v !== null && y.v !== null && desc) c = -c;
      return c !== 0 ? c : x.i - y.i;
    });
    rows.forEach(function (r) {
      body.appendChild(r.tr);
      var d = details[r.tr.getAttribute("data-trial")];
      if (d) body.appendChild(d);
    });
    Array.prototype.forEach.call(th.parentNode.cells, function (h) {
      h.removeAttribute("aria-sort");
    });
    th.setAttribute("aria-sort", desc ? "descending" : "ascending");
  }

  function makeSortable(table) {
    var head = table.tHead ? table.tHead.rows[0] : null;
    if (!head) return;
    Array.prototype.forEach.call(head.cells, function (th, col) {
      th.classList.add("sortable");
      th.title = "sort by " + th.textContent.trim();
      th.addEventListener("click", function () {
        sortBy(table, col, th);
      });
    });
  }

  function el(tag, text, cls) {
    var e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = text;
    if (cls) e.className = cls;
    return e;
  }

  function svg(tag, attrs) {
    var e = document.createElementNS(NS, tag);
    Object.keys(attrs).forEach(function (k) {
      e.setAttribute(k, attrs[k]);
    });
    return e;
  }

  function fmt(v) {
    if (v === null || v === undefined) return "";
    if (typeof v !== "number") return String(v);
    return Math.abs(v) >= 1e4 || (v !== 0 && Math.abs(v) < 1e-3) ? v.toExponential(3) : +v.toFixed(4) + "";
  }

  /* the learning curve: validation score (solid, left scale) and training loss (dashed, right) */
  function curveSvg(curve) {
    var W = 380, H = 170, L = 46, R = 46, T = 12, B = 28;
    var s = svg("svg", { width: W, height: H, viewBox: "0 0 " + W + " " + H, class: "curve" });
    var xs = curve.epoch;
    var x0 = Math.min.apply(null, xs), x1 = Math.max.apply(null, xs);
    if (x1 === x0) { x0 -= 0.5; x1 += 0.5; }
    function sx(x) { return L + (W - L - R) * (x - x0) / (x1 - x0); }
    s.appendChild(svg("rect", { x: L, y: T, width: W - L - R, height: H - T - B, fill: "none", stroke: "#bbb" }));
    [["val_score", "#0072B2", "", "start", L - 4, "end"], ["train_loss", "#D55E00", "4 3", "end", W - R + 4, "start"]].forEach(function (s_) {
      var key = s_[0], ys = curve[key].filter(function (v) { return v !== null; });
      if (!ys.length) return;
      var y0 = Math.min.apply(null, ys), y1 = Math.max.apply(null, ys);
      if (y1 === y0) { y0 -= 0.5 * (Math.abs(y0) || 1); y1 += 0.5 * (Math.abs(y1) || 1); }
      function sy(y) { return T + (H - T - B) * (1 - (y - y0) / (y1 - y0)); }
      var pts = [];
      curve[key].forEach(function (y, i) {
        if (y !== null) pts.push(sx(xs[i]).toFixed(1) + "," + sy(y).toFixed(1));
      });
      s.appendChild(svg("polyline", { points: pts.join(" "), fill: "none", stroke: s_[1], "stroke-width": 1.8, "stroke-dasharray": s_[2] }));
      pts.forEach(function (p) {
        var xy = p.split(",");
        s.appendChild(svg("circle", { cx: xy[0], cy: xy[1], r: 2.2, fill: s_[1] }));
      });
      [[y1, T + 8], [y0, H - B]].forEach(function (lab) {
        var t = svg("text", { x: s_[4], y: lab[1], "text-anchor": s_[5], "font-size": 10, fill: s_[1] });
        t.textContent = fmt(lab[0]);
        s.appendChild(t);
      });
    });
    var xl = svg("text", { x: (L + W - R) / 2, y: H - 6, "text-anchor": "middle", "font-size": 10 });
    xl.textContent = "epoch " + fmt(x0 < x1 ? Math.min.apply(null, xs) : x0) + " to " + fmt(Math.max.apply(null, xs)) + " (blue: validation score, red dashed: training loss)";
    s.appendChild(xl);
    return s;
  }

  function kvTable(obj) {
    var t = el("table", null, "kv");
    Object.keys(obj).forEach(function (k) {
      var tr = el("tr");
      tr.appendChild(el("th", k));
      tr.appendChild(el("td", fmt(obj[k])));
      t.appendChild(tr);
    });
    return t;
  }

  function layersTable(layers) {
    var t = el("table", null, "layers");
    var keys = Object.keys(layers);
    var head = el("tr");
    head.appendChild(el("th", "layer"));
    keys.forEach(function (k) { head.appendChild(el("th", k)); });
    t.appendChild(head);
    var n = layers[keys[0]].length;
    for (var i = 0; i < n; i++) {
      var tr = el("tr");
      tr.appendChild(el("td", String(i)));
      keys.forEach(function (k) { tr.appendChild(el("td", fmt(layers[k][i]))); });
      t.appendChild(tr);
    }
    return t;
  }

  function detailRow(tr) {
    var id = tr.getAttribute("data-trial");
    var d = trialData()[id] || {};
    var row = el("tr", null, "detail");
    row.setAttribute("data-for", id);
    row.id = "detail-" + id;
    var td = el("td");
    td.colSpan = tr.cells.length;
    var box = el("div", null, "drill");
    var head = el("p");
    head.appendChild(el("strong", "trial " + id));
    head.appendChild(document.createTextNode(" " + (d.summary || "")));
    box.appendChild(head);
    if (d.message) box.appendChild(el("p", d.message, "message"));
    var cols = el("div", null, "drill-cols");
    var left = el("div");
    left.appendChild(el("h4", "learning curve"));
    if (d.curve && d.curve.epoch.length) left.appendChild(curveSvg(d.curve));
    else left.appendChild(el("p", "no per-epoch score recorded", "empty"));
    left.appendChild(el("h4", "fidelity"));
    left.appendChild(kvTable(d.fidelity || {}));
    cols.appendChild(left);
    var mid = el("div");
    mid.appendChild(el("h4", "diagnostics at initialisation"));
    if (d.diagnostics && Object.keys(d.diagnostics).length) mid.appendChild(kvTable(d.diagnostics));
    else mid.appendChild(el("p", "none recorded", "empty"));
    if (d.layers && Object.keys(d.layers).length) mid.appendChild(layersTable(d.layers));
    cols.appendChild(mid);
    var right = el("div");
    right.appendChild(el("h4", "spec"));
    right.appendChild(el("pre", JSON.stringify(d.spec || {}, null, 1)));
    cols.appendChild(right);
    box.appendChild(cols);
    td.appendChild(box);
    row.appendChild(td);
    return row;
  }

  function toggle(tr, open) {
    var id = tr.getAttribute("data-trial");
    var existing = document.getElementById("detail-" + id);
    if (existing && open !== true) {
      existing.parentNode.removeChild(existing);
      tr.classList.remove("open");
      return null;
    }
    if (existing) return existing;
    var row = detailRow(tr);
    tr.parentNode.insertBefore(row, tr.nextSibling);
    tr.classList.add("open");
    return row;
  }

  function openFromHash() {
    var m = /^#trial-(\d+)$/.exec(window.location.hash);
    if (!m) return;
    var tr = document.querySelector('#all-trials tr.trial[data-trial="' + m[1] + '"]');
    if (!tr) return;
    tr.style.display = "";
    var row = toggle(tr, true);
    if (row && tr.scrollIntoView) tr.scrollIntoView();
  }

  function filterRows(text) {
    var q = text.trim().toLowerCase();
    var shown = 0;
    document.querySelectorAll("#all-trials tr.trial").forEach(function (tr) {
      var hit = !q || tr.textContent.toLowerCase().indexOf(q) >= 0;
      tr.style.display = hit ? "" : "none";
      var d = document.getElementById("detail-" + tr.getAttribute("data-trial"));
      if (d) d.style.display = hit ? "" : "none";
      if (hit) shown++;
    });
    var count = document.getElementById("trial-count");
    if (count) count.textContent = shown + " shown";
  }

  function init() {
    document.querySelectorAll("section table").forEach(makeSortable);
    var all = document.getElementById("all-trials");
    if (all) {
      all.tBodies[0].addEventListener("click", function (ev) {
        var tr = ev.target.closest("tr");
        if (tr && tr.classList.contains("trial") && !ev.target.closest("a")) toggle(tr);
      });
    }
    var box = document.getElementById("trial-filter");
    if (box) box.addEventListener("input", function () { filterRows(box.value); });
    window.addEventListener("hashchange", openFromHash);
    openFromHash();
    document.documentElement.setAttribute("data-ready", "1");
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
