/* Charts (uPlot, vendored), the sensor map (a plain canvas: the site may have no internet), and the
   pages' own refresh: every `data-refresh-s` seconds the page fetches itself and swaps in its
   `data-live` parts and chart data, without a reload (a form being filled in is left alone), and
   stops while the tab is hidden. Charts follow the screen: a resize or a rotation redraws them. */
(function () {
  "use strict";
  function readJSON(id, root) {
    var el = (root || document).getElementById(id);
    return el ? JSON.parse(el.textContent) : null;
  }
  var LIMIT_COLOURS = ["#c00000", "#e08000", "#7a4bb0", "#555"];
  var UPSTREAM_COLOUR = "#8a8a8a";
  // A finger has no hover: the legend then lists the series (tap one to hide it) rather than values
  // under a cursor that never comes.
  var TOUCH = (window.matchMedia && window.matchMedia("(pointer: coarse)").matches) || "ontouchstart" in window;

  // The time axis in the site's zone ([site] timezone, sent with each chart), as every time the
  // page writes; a page holds one site, so one zone.
  var ZONE = "Etc/UTC";
  function tz(ts) { return uPlot.tzDate(new Date(ts * 1e3), ZONE); }
  var PLOTS = typeof uPlot !== "undefined";  // the overview and alerts pages load no uPlot
  var fmtTime = PLOTS ? uPlot.fmtDate("{HH}:{mm}") : null;
  var fmtDay = PLOTS ? uPlot.fmtDate("{MM}-{DD}") : null;
  var fmtFull = PLOTS ? uPlot.fmtDate("{YYYY}-{MM}-{DD} {HH}:{mm}") : null;

  /* Numbers only on the time axis (24-hour clock, month-day), so no English month or am/pm shows on
     a page in another language. */
  function timeTicks(u, splits) {
    var span = u.scales.x.max - u.scales.x.min;
    return splits.map(function (s) { return span > 2 * 86400 ? fmtDay(tz(s)) : fmtTime(tz(s)); });
  }

  function size(fig) {
    var width = Math.max(fig.clientWidth - 16, 200);
    // a phone on its side has little height: keep the plot and its legend on the screen
    var height = Math.max(Math.min(220, Math.round(window.innerHeight * 0.55)), 140);
    return {width: width, height: height};
  }

  function chartData(c) {
    var data = [c.times, c.values];
    if (c.upstream) data.push(c.upstream.values);
    c.limits.forEach(function (lim) { data.push(c.times.map(function () { return lim.value; })); });
    return data;
  }

  function drawChart(fig, c) {
    if (c.zone) ZONE = c.zone;
    var series = [
      {value: function (u, v) { return v == null ? "--" : fmtFull(tz(v)); }},
      {label: c.label + " (" + c.unit + ")", stroke: "#23395d", width: 2, spanGaps: false}
    ];
    if (c.upstream) {
      series.push({label: c.upstream.label, stroke: UPSTREAM_COLOUR, width: 2, dash: [3, 3], spanGaps: false});
    }
    c.limits.forEach(function (lim, i) {
      series.push({label: lim.label, stroke: LIMIT_COLOURS[i % LIMIT_COLOURS.length], dash: [6, 4], width: 1,
                   points: {show: false}});
    });
    var flagged = c.flagged, visits = c.visits || [], observed = c.observed || [];
    var box = size(fig);
    var opts = {
      width: box.width, height: box.height, series: series,
      axes: [{values: timeTicks}, {label: c.unit}],
      scales: {x: {time: true}},
      tzDate: tz,
      legend: {show: true, live: !TOUCH},
      hooks: {draw: [drawVisits(visits), drawObserved(observed), function (u) {
        if (!flagged.length) return;
        var ctx = u.ctx, top = u.bbox.top + u.bbox.height - 6 * devicePixelRatio;
        ctx.save();
        ctx.fillStyle = "#e08000";
        flagged.forEach(function (t) {
          var x = u.valToPos(t, "x", true);
          if (x >= u.bbox.left && x <= u.bbox.left + u.bbox.width) ctx.fillRect(x - 1, top, 2, 6 * devicePixelRatio);
        });
        ctx.restore();
      }]}
    };
    var u = new uPlot(opts, chartData(c), fig);
    fig._chart = {u: u, series: series.length};
    fig.setAttribute("data-drawn", "1");
    fig.setAttribute("data-width", String(box.width));
    if (c.upstream) fig.setAttribute("data-upstream", c.upstream.node);
    return u;
  }

  /* Maintenance visits: a grey band over the readings a visit marks, a grey line at the visit. */
  function drawVisits(visits) {
    return function (u) {
      if (!visits.length) return;
      var ctx = u.ctx, b = u.bbox, left = b.left, right = b.left + b.width;
      ctx.save();
      visits.forEach(function (v) {
        if (v.from !== null && v.to !== null) {
          var x0 = Math.max(u.valToPos(v.from, "x", true), left), x1 = Math.min(u.valToPos(v.to, "x", true), right);
          if (x1 > x0) { ctx.fillStyle = "rgba(120,120,120,0.18)"; ctx.fillRect(x0, b.top, x1 - x0, b.height); }
        }
        var x = u.valToPos(v.t, "x", true);
        if (x >= left && x <= right) { ctx.fillStyle = "#666"; ctx.fillRect(x - 1, b.top, 2 * devicePixelRatio, b.height); }
      });
      ctx.restore();
      u.root.setAttribute("data-visits", String(visits.filter(function (v) {
        var x = u.valToPos(v.t, "x", true); return x >= left && x <= right;
      }).length));
    };
  }

  /* Residents' observations a monitor accepted: a purple triangle at the top of the chart. */
  function drawObserved(observed) {
    return function (u) {
      if (!observed.length) return;
      var ctx = u.ctx, b = u.bbox, s = 6 * devicePixelRatio, shown = 0;
      ctx.save();
      ctx.fillStyle = "#7a4bb0";
      observed.forEach(function (o) {
        var x = u.valToPos(o.t, "x", true);
        if (x < b.left || x > b.left + b.width) return;
        ctx.beginPath(); ctx.moveTo(x - s, b.top); ctx.lineTo(x + s, b.top); ctx.lineTo(x, b.top + 1.5 * s);
        ctx.closePath(); ctx.fill();
        shown++;
      });
      ctx.restore();
      u.root.setAttribute("data-observed", String(shown));
    };
  }

  function eachChart(fn) {
    var cache = {};
    document.querySelectorAll("figure.chart").forEach(function (fig) {
      var src = fig.getAttribute("data-source");
      if (!(src in cache)) cache[src] = readJSON(src) || [];
      var c = cache[src][+fig.getAttribute("data-index")];
      if (c) fn(fig, c);
    });
  }

  function drawCharts() {
    if (!PLOTS) return;
    eachChart(function (fig, c) { if (!fig._chart) drawChart(fig, c); });
  }

  /* New data into the charts drawn: the same series get setData (no flicker); a chart whose series
     changed (a limit or the reference came or went) is drawn again. */
  function updateCharts() {
    if (!PLOTS) return;
    eachChart(function (fig, c) {
      var had = fig._chart;
      var n = 2 + (c.upstream ? 1 : 0) + c.limits.length;
      if (had && had.series === n) { had.u.setData(chartData(c)); return; }
      if (had) { had.u.destroy(); fig._chart = null; }
      drawChart(fig, c);
    });
  }

  var resizes = 0;
  function resizeCharts() {
    resizes++;
    document.querySelectorAll("figure.chart").forEach(function (fig) {
      if (!fig._chart) return;
      var box = size(fig);
      fig._chart.u.setSize(box);
      fig.setAttribute("data-width", String(box.width));
      fig.setAttribute("data-resized", String(resizes));
    });
    drawMap();
  }

  var resizeTimer = null;
  function onResize() {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(resizeCharts, 100);
  }
  window.addEventListener("resize", onResize);
  window.addEventListener("orientationchange", onResize);

  function drawMap() {
    var canvas = document.getElementById("map");
    var points = readJSON("map-data");
    if (!canvas || !points || !points.length) return;
    var ctx = canvas.getContext("2d"), w = canvas.width, h = canvas.height, pad = 40;
    var lats = points.map(function (p) { return p.lat; }), lons = points.map(function (p) { return p.lon; });
    var minLat = Math.min.apply(null, lats), maxLat = Math.max.apply(null, lats);
    var minLon = Math.min.apply(null, lons), maxLon = Math.max.apply(null, lons);
    // Equirectangular with the longitude shrunk by cos(latitude), so short distances keep their shape.
    var k = Math.cos((minLat + maxLat) / 2 * Math.PI / 180);
    var spanX = Math.max((maxLon - minLon) * k, 1e-4), spanY = Math.max(maxLat - minLat, 1e-4);
    var scale = Math.min((w - 2 * pad) / spanX, (h - 2 * pad) / spanY);
    var cx = w / 2, cy = h / 2, midLon = (minLon + maxLon) / 2, midLat = (minLat + maxLat) / 2;
    ctx.fillStyle = "#fff"; ctx.fillRect(0, 0, w, h);
    ctx.font = "14px sans-serif"; ctx.textBaseline = "middle";
    points.forEach(function (p) {
      var x = cx + (p.lon - midLon) * k * scale, y = cy - (p.lat - midLat) * scale;
      ctx.beginPath(); ctx.arc(x, y, 9, 0, 2 * Math.PI);
      // an offline node keeps the colour of its last values (grey would say "nothing to worry
      // about" at 154.6 µg/m³); a grey dashed ring says they are not current
      ctx.fillStyle = p.colour; ctx.fill();
      ctx.setLineDash(p.offline ? [3, 3] : []);
      ctx.lineWidth = p.offline ? 3 : 2; ctx.strokeStyle = p.offline ? "#888" : "#222"; ctx.stroke();
      ctx.setLineDash([]);
      ctx.fillStyle = "#111"; ctx.fillText(p.label, x + 13, y);
    });
    ctx.fillStyle = "#111"; ctx.fillText("N ↑", w - 40, 16);
    canvas.setAttribute("data-drawn", String(points.length));
  }

  /* The page refreshing itself. */
  var root = document.documentElement;
  var every = +(root.getAttribute("data-refresh-s") || 0);
  var timer = null, last = Date.now(), refreshes = 0;

  function swap(doc) {
    document.querySelectorAll("[data-live]").forEach(function (el) {
      if (!el.id || (el.parentElement && el.parentElement.closest("[data-live]"))) return;
      var fresh = doc.getElementById(el.id);
      if (fresh) el.innerHTML = fresh.innerHTML;
    });
    document.querySelectorAll("script[type='application/json'][id]").forEach(function (el) {
      var fresh = doc.getElementById(el.id);
      if (fresh) el.textContent = fresh.textContent;
    });
  }

  function refresh() {
    last = Date.now();
    return fetch(location.href, {cache: "no-store", credentials: "same-origin"})
      .then(function (resp) {
        if (!resp.ok) throw new Error(String(resp.status));
        return resp.text();
      })
      .then(function (text) {
        swap(new DOMParser().parseFromString(text, "text/html"));
        updateCharts();
        drawMap();
        refreshes++;
        root.setAttribute("data-refreshed", String(refreshes));
        var stale = document.getElementById("refresh-failed");
        if (stale) stale.hidden = true;
      })
      .catch(function () {
        // the gateway is unreachable: keep what is shown, and say it is no longer current
        var stale = document.getElementById("refresh-failed");
        if (stale) stale.hidden = false;
        root.setAttribute("data-refresh-failed", String(Date.now()));
      })
      .then(schedule);
  }

  function schedule() {
    clearTimeout(timer);
    timer = null;
    if (!every || document.visibilityState === "hidden") {
      root.setAttribute("data-refreshing", "off");
      return;
    }
    var wait = Math.max(every * 1000 - (Date.now() - last), 0);
    timer = setTimeout(refresh, wait);
    root.setAttribute("data-refreshing", "on");
  }

  document.addEventListener("visibilitychange", schedule);  // hidden: stop; shown: catch up, go on

  drawCharts();
  drawMap();
  schedule();
  window.minewatch = {refresh: refresh, schedule: schedule, resize: resizeCharts};
})();
