/* The observation form: a phone without signal keeps each observation in IndexedDB and sends it
   when the link is back; a photo is redrawn on a canvas (smaller, and without the EXIF position a
   camera writes) before it is kept. Each observation has its own id, so one sent twice is stored once. */
(function () {
  "use strict";
  var form = document.getElementById("observe");
  if (!form) return;
  var words = JSON.parse(document.getElementById("observe-words").textContent);
  var statusEl = document.getElementById("status"), queuedEl = document.getElementById("queued");
  var MAX_SIDE = 1280, DB = "minewatch-observe", STORE = "queue";
  var flushing = false;

  if ("serviceWorker" in navigator) navigator.serviceWorker.register("/observe-sw.js").catch(function () {});

  function say(text) { statusEl.textContent = text; }

  function openDb() {
    return new Promise(function (resolve, reject) {
      var req = indexedDB.open(DB, 1);
      req.onupgradeneeded = function () { req.result.createObjectStore(STORE, {keyPath: "id"}); };
      req.onsuccess = function () { resolve(req.result); };
      req.onerror = function () { reject(req.error); };
    });
  }
  function tx(mode, work) {
    return openDb().then(function (db) {
      return new Promise(function (resolve, reject) {
        var t = db.transaction(STORE, mode), result = work(t.objectStore(STORE));
        t.oncomplete = function () { db.close(); resolve(result && result.result); };
        t.onerror = function () { db.close(); reject(t.error); };
      });
    });
  }
  function all() { return tx("readonly", function (s) { return s.getAll(); }); }
  function put(rec) { return tx("readwrite", function (s) { s.put(rec); }); }
  function drop(id) { return tx("readwrite", function (s) { s.delete(id); }); }

  function showQueue() {
    return all().then(function (items) {
      queuedEl.setAttribute("data-count", String(items.length));
      queuedEl.textContent = items.length ? words.queued.replace("{n}", items.length) : "";
    });
  }

  function newId() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    var b = new Uint8Array(16); crypto.getRandomValues(b);
    b[6] = (b[6] & 15) | 64; b[8] = (b[8] & 63) | 128;
    var h = Array.prototype.map.call(b, function (x) { return (x + 256).toString(16).slice(1); }).join("");
    return h.slice(0, 8) + "-" + h.slice(8, 12) + "-" + h.slice(12, 16) + "-" + h.slice(16, 20) + "-" + h.slice(20);
  }

  /* Redraw the picture: only its pixels reach the canvas, so the JPEG it gives has no metadata. */
  function shrink(file) {
    if (!file) return Promise.resolve(null);
    return new Promise(function (resolve, reject) {
      // a data: URL, not a blob: one, which the pages' Content-Security-Policy does not allow
      var img = new Image(), reader = new FileReader();
      reader.onload = function () { img.src = reader.result; };
      reader.onerror = function () { reject(new Error("photo")); };
      img.onload = function () {
        var scale = Math.min(1, MAX_SIDE / Math.max(img.naturalWidth, img.naturalHeight));
        var c = document.createElement("canvas");
        c.width = Math.max(1, Math.round(img.naturalWidth * scale));
        c.height = Math.max(1, Math.round(img.naturalHeight * scale));
        c.getContext("2d").drawImage(img, 0, 0, c.width, c.height);
        c.toBlob(function (blob) { blob ? resolve(blob) : reject(new Error("photo")); }, "image/jpeg", 0.8);
      };
      img.onerror = function () { reject(new Error("photo")); };
      reader.readAsDataURL(file);
    });
  }

  function send(rec) {
    var fd = new FormData();
    Object.keys(rec.fields).forEach(function (k) { fd.append(k, rec.fields[k]); });
    fd.append("id", rec.id);
    if (rec.photo) fd.append("photo", rec.photo, "photo.jpg");
    return fetch("/api/v1/observations", {method: "POST", body: fd, credentials: "same-origin"});
  }

  function flush() {
    if (flushing) return Promise.resolve();
    flushing = true;
    return all().then(function (items) {
      var chain = Promise.resolve();
      items.forEach(function (rec) {
        chain = chain.then(function () {
          return send(rec).then(function (resp) {
            if (resp.ok) { say(words.sent); return drop(rec.id); }
            if (resp.status === 429 || resp.status >= 500) throw new Error("later");
            return resp.json().catch(function () { return {}; }).then(function (doc) {
              say(words.refused + " " + (doc.error || resp.status));
              return drop(rec.id);  // refused for good: sending it again cannot help
            });
          });
        });
      });
      return chain;
    }).catch(function () { /* no link: kept for later */ }).then(function () {
      flushing = false;
      return showQueue();
    });
  }

  document.getElementById("locate").addEventListener("click", function () {
    var pos = document.getElementById("position");
    if (!navigator.geolocation) { pos.textContent = words.no_position; return; }
    navigator.geolocation.getCurrentPosition(function (p) {
      document.getElementById("lat").value = p.coords.latitude.toFixed(5);
      document.getElementById("lon").value = p.coords.longitude.toFixed(5);
      document.getElementById("place-kind").value = "position";
      pos.textContent = words.located;
    }, function () { pos.textContent = words.no_position; }, {timeout: 15000, maximumAge: 60000});
  });

  /* The site's map: the nodes where their status puts them (as the overview draws them, no tiles:
     the site may have no internet); a tap chooses the point the observation is about. */
  var mapEl = document.getElementById("observe-map");
  var mapPoints = mapEl ? JSON.parse(document.getElementById("observe-map-data").textContent) : [];
  var view = null, chosen = null;
  function project() {
    var w = mapEl.width, h = mapEl.height, pad = 30;
    var lats = mapPoints.map(function (p) { return p.lat; }), lons = mapPoints.map(function (p) { return p.lon; });
    var minLat = Math.min.apply(null, lats), maxLat = Math.max.apply(null, lats);
    var minLon = Math.min.apply(null, lons), maxLon = Math.max.apply(null, lons);
    var k = Math.cos((minLat + maxLat) / 2 * Math.PI / 180);
    // at least ~1 km across, so a single node still leaves room to tap around it
    var spanX = Math.max((maxLon - minLon) * k, 0.01), spanY = Math.max(maxLat - minLat, 0.01);
    return {k: k, scale: Math.min((w - 2 * pad) / spanX, (h - 2 * pad) / spanY), cx: w / 2, cy: h / 2,
            lon: (minLon + maxLon) / 2, lat: (minLat + maxLat) / 2};
  }
  function xy(lat, lon) { return [view.cx + (lon - view.lon) * view.k * view.scale, view.cy - (lat - view.lat) * view.scale]; }
  function drawObserveMap() {
    var ctx = mapEl.getContext("2d");
    ctx.fillStyle = "#fff"; ctx.fillRect(0, 0, mapEl.width, mapEl.height);
    ctx.font = "14px sans-serif"; ctx.textBaseline = "middle";
    mapPoints.forEach(function (p) {
      var at = xy(p.lat, p.lon);
      ctx.beginPath(); ctx.arc(at[0], at[1], 7, 0, 2 * Math.PI); ctx.fillStyle = "#23395d"; ctx.fill();
      ctx.fillStyle = "#111"; ctx.fillText(p.node, at[0] + 10, at[1]);
    });
    if (chosen) {
      var c = xy(chosen[0], chosen[1]);
      ctx.strokeStyle = "#8e24aa"; ctx.lineWidth = 3;
      ctx.beginPath(); ctx.moveTo(c[0] - 9, c[1] - 9); ctx.lineTo(c[0] + 9, c[1] + 9);
      ctx.moveTo(c[0] + 9, c[1] - 9); ctx.lineTo(c[0] - 9, c[1] + 9); ctx.stroke();
    }
    ctx.fillStyle = "#111"; ctx.fillText("N \u2191", mapEl.width - 40, 16);
    mapEl.setAttribute("data-drawn", "1");
  }
  if (mapEl && mapPoints.length) {
    view = project();
    drawObserveMap();
    mapEl.addEventListener("click", function (ev) {
      var r = mapEl.getBoundingClientRect();
      var x = (ev.clientX - r.left) * mapEl.width / r.width, y = (ev.clientY - r.top) * mapEl.height / r.height;
      var lat = view.lat - (y - view.cy) / view.scale, lon = view.lon + (x - view.cx) / (view.k * view.scale);
      chosen = [lat, lon];
      document.getElementById("lat").value = lat.toFixed(5);
      document.getElementById("lon").value = lon.toFixed(5);
      document.getElementById("place-kind").value = "map";
      form.elements.place.value = "";  // a point on the map, not a sensor
      document.getElementById("map-point").textContent = words.map_point.replace("{lat}", lat.toFixed(5)).replace("{lon}", lon.toFixed(5));
      drawObserveMap();
    });
  }

  var codeEl = document.getElementById("code");
  try { codeEl.value = localStorage.getItem("minewatch-observer-code") || ""; } catch (e) { /* private mode */ }

  form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    var place = form.elements.place.value.split("/"), lat = form.elements.lat.value;
    if (place.length !== 2 && !lat) { say(words.need_where); return; }
    var local = form.elements.at_local.value;
    var fields = {
      csrf: form.elements.csrf.value, code: codeEl.value.trim(), kind: form.elements.kind.value,
      text: form.elements.text.value, at: local ? new Date(local).toISOString() : new Date().toISOString(),
      site: place.length === 2 ? place[0] : "", node: place.length === 2 ? place[1] : "",
      lat: place.length === 2 ? "" : lat, lon: place.length === 2 ? "" : form.elements.lon.value,
      place: place.length === 2 ? "node" : (form.elements.place_kind.value || "position")
    };
    try { localStorage.setItem("minewatch-observer-code", fields.code); } catch (e) { /* private mode */ }
    var file = form.elements.photo.files[0];
    shrink(file).then(function (photo) {
      return put({id: newId(), fields: fields, photo: photo});
    }).then(function () {
      say(words.saved);
      form.elements.text.value = "";
      form.elements.photo.value = "";
      return flush();
    }).catch(function (e) { say(words.refused + " " + e.message); });
  });

  window.addEventListener("online", flush);
  flush();
})();
