/* Charts (uPlot, vendored) and the sensor map (a plain canvas: the site may have no internet). */
(function () {
  "use strict";
  function readJSON(id) {
    var el = document.getElementById(id);
    return el ? JSON.parse(el.textContent) : null;
  }
  var LIMIT_COLOURS = ["#c00000", "#e08000", "#7a4bb0", "#555"];

  function drawChart(fig, c) {
    var width = Math.max(fig.clientWidth - 16, 240);
    var data = [c.times, c.values];
    var series = [{}, {label: c.label + " (" + c.unit + ")", stroke: "#23395d", width: 2, spanGaps: false}];
    c.limits.forEach(function (lim, i) {
      data.push(c.times.map(function () { return lim.value; }));
      series.push({label: lim.label, stroke: LIMIT_COLOURS[i % LIMIT_COLOURS.length], dash: [6, 4], width: 1,
                   points: {show: false}});
    });
    var flagged = c.flagged, visits = c.visits || [], observed = c.observed || [];
    var opts = {
      width: width, height: 220, series: series,
      axes: [{}, {label: c.unit}],
      scales: {x: {time: true}},
      // the time axis in the site's zone ([site] timezone), as every time the page writes
      tzDate: function (ts) { return uPlot.tzDate(new Date(ts * 1e3), c.zone || "Etc/UTC"); },
      legend: {show: true},
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
    new uPlot(opts, data, fig);
    fig.setAttribute("data-drawn", "1");
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

  function drawCharts() {
    if (typeof uPlot === "undefined") return;
    var cache = {};
    document.querySelectorAll("figure.chart").forEach(function (fig) {
      var src = fig.getAttribute("data-source");
      if (!(src in cache)) cache[src] = readJSON(src) || [];
      var c = cache[src][+fig.getAttribute("data-index")];
      if (c) drawChart(fig, c);
    });
  }

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
      ctx.fillStyle = p.offline ? "#999" : p.colour; ctx.fill();
      ctx.lineWidth = 2; ctx.strokeStyle = "#222"; ctx.stroke();
      ctx.fillStyle = "#111"; ctx.fillText(p.label, x + 13, y);
    });
    ctx.fillStyle = "#111"; ctx.fillText("N ↑", w - 40, 16);
    canvas.setAttribute("data-drawn", String(points.length));
  }

  drawCharts();
  drawMap();
})();
