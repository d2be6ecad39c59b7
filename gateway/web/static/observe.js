/* The observation form: a phone without signal keeps each observation in IndexedDB and sends it
   when the link is back; each photo (up to MAX_PHOTOS, chosen together or one after another) is
   redrawn on a canvas (smaller, and without the EXIF position a camera writes) before it is kept. Each observation has its own id, so one sent twice is stored once.
   The queue is tried again on a timer that waits longer each time (a phone on a weak link often
   believes it is online, so the `online` event never comes), and when the page is shown again.
   A refusal a fresh form can mend (403: its token expired, or its cookie was cleared) is sent
   again with a fresh token; any other refusal stays on the phone, shown with its reason, until the
   person sends it again or discards it. */
(function () {
  "use strict";
  var form = document.getElementById("observe");
  if (!form) return;
  var words = JSON.parse(document.getElementById("observe-words").textContent);
  var statusEl = document.getElementById("status"), queuedEl = document.getElementById("queued");
  var refusedEl = document.getElementById("refused"), refusedList = document.getElementById("refused-list");
  var MAX_SIDE = 1280, MAX_PHOTOS = words.max_photos || 4, DB = "minewatch-observe", STORE = "queue";
  var RETRY_FIRST_MS = 5000, RETRY_MAX_MS = 300000;
  // a request the link swallows is given up after this (then tried again later): a hung one would
  // hold the queue until the browser's own timeout, which may never come
  var SEND_BASE_MS = 30000, SEND_BYTES_PER_S = 2000, PAGE_MS = 30000;
  var flushing = false, again = false, retryMs = RETRY_FIRST_MS, retryTimer = null;
  var picked = [];  // the photos chosen for the next observation, in order
  var photoEl = form.elements.photo, countEl = document.getElementById("photo-count");
  var clearEl = document.getElementById("clear-photos");

  if ("serviceWorker" in navigator) navigator.serviceWorker.register("/observe-sw.js").catch(function () {});
  // a service worker and the position are only for a secure context (https, or localhost): on
  // http://192.168.x.x the form cannot reopen without signal, so say why rather than fail silently
  var insecure = window.isSecureContext === false, needsHttps = document.getElementById("needs-https");
  if (insecure && needsHttps) needsHttps.hidden = false;

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

  function kindName(kind) {
    var opt = form.elements.kind.querySelector('option[value="' + kind + '"]');
    return opt ? opt.textContent : kind;
  }

  /* What waits to be sent, and what was refused: each refused one with its reason, to send again
     (with the code and form now on the page) or to discard. Text only: nothing here is HTML. */
  function showQueue() {
    return all().then(function (items) {
      var waiting = items.filter(function (r) { return !r.refused; });
      var refused = items.filter(function (r) { return r.refused; });
      queuedEl.setAttribute("data-count", String(waiting.length));
      queuedEl.textContent = waiting.length ? words.queued.replace("{n}", waiting.length) : "";
      refusedEl.setAttribute("data-count", String(refused.length));
      refusedEl.hidden = !refused.length;
      refusedList.textContent = "";
      refused.forEach(function (rec) {
        var li = document.createElement("li"), what = document.createElement("span");
        var why = document.createElement("span"), resend = document.createElement("button");
        var discard = document.createElement("button");
        li.id = "refused-" + rec.id;
        what.className = "what";
        what.textContent = kindName(rec.fields.kind) + (rec.fields.text ? ": " + rec.fields.text : "");
        why.className = "why";
        why.textContent = words[rec.refused.key].replace("{status}", rec.refused.status);
        resend.type = discard.type = "button";
        resend.className = "send-again"; resend.textContent = words.send_again;
        discard.className = "discard"; discard.textContent = words.discard;
        resend.addEventListener("click", function () {
          rec.fields.code = codeEl.value.trim();
          rec.fields.csrf = form.elements.csrf.value;
          delete rec.refused;
          put(rec).then(function () { retryMs = RETRY_FIRST_MS; return flush(); });
        });
        discard.addEventListener("click", function () { drop(rec.id).then(showQueue); });
        // sent again as it is, a bad time or photo is refused again: those can only be discarded
        var mendable = ["refused_code", "refused_expired", "refused_other"].indexOf(rec.refused.key) >= 0;
        [what, document.createElement("br"), why, document.createTextNode(" ")].concat(
          mendable ? [resend, document.createTextNode(" ")] : []
        ).concat([discard]).forEach(function (n) { li.appendChild(n); });
        refusedList.appendChild(li);
      });
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
    // "now": how long ago on the phone's own clock, so the gateway's clock dates it, not the phone's
    if (!rec.fields.at && rec.made) fd.append("age_s", String(Math.max(0, Math.round((Date.now() - rec.made) / 1000))));
    // `photo`: one, as a page before several photos queued it
    var sent = rec.photos || (rec.photo ? [rec.photo] : []);
    sent.forEach(function (blob, i) { fd.append("photo", blob, "photo-" + (i + 1) + ".jpg"); });
    var opts = {method: "POST", body: fd, credentials: "same-origin"};
    return within("/api/v1/observations", opts, SEND_BASE_MS + 1000 * bytesOf(sent) / SEND_BYTES_PER_S);
  }

  /* fetch, aborted (so rejected, as with no link) unless it has answered within `ms` */
  function within(url, opts, ms) {
    if (!window.AbortController) return fetch(url, opts);
    var ctl = new AbortController();
    opts.signal = ctl.signal;
    setTimeout(function () { ctl.abort(); }, ms);  // after the answer was read, aborting does nothing
    return fetch(url, opts);
  }

  /* The size of what an observation uploads: its photos (a slow link needs longer for them). */
  function bytesOf(blobs) {
    var n = 0;
    blobs.forEach(function (b) { n += (b && b.size) || 0; });
    return n;
  }

  /* A fresh form from the gateway: its token, and the cookie holding the same (set by the answer). */
  function freshToken() {
    return within("/observe", {credentials: "same-origin", cache: "no-store"}, PAGE_MS).then(function (resp) {
      if (!resp.ok) throw new Error("later");
      return resp.text();
    }).then(function (html) {
      var found = /name="csrf" value="([^"]+)"/.exec(html);
      if (!found) throw new Error("later");
      form.elements.csrf.value = found[1];
      return found[1];
    });
  }

  function refusal(status, error) {
    if (status === 401) return "refused_code";
    if (status === 403) return "refused_expired";
    if (status === 413 || status === 415) return "refused_photo";
    if (status === 400 && /^photo/.test(error)) return "refused_photo";
    if (status === 400 && /^at:/.test(error)) return "refused_time";
    if (status === 400 && /^text:/.test(error)) return "refused_text";
    if (status === 400) return "refused_form";
    return "refused_other";
  }

  function deliver(rec, renewed) {
    return send(rec).then(function (resp) {
      // the code's hourly limit: said on the page (it stays queued), not only "waiting to be sent"
      var rateEl = document.getElementById("rate-limited");  // absent from a form kept before it
      if (rateEl) rateEl.hidden = resp.status !== 429;
      if (resp.ok) { say(words.sent); return drop(rec.id); }
      if (resp.status === 429 || resp.status >= 500) throw new Error("later");
      return resp.json().catch(function () { return {}; }).then(function (doc) {
        if (resp.status === 403 && !renewed) {
          return freshToken().then(function (token) {
            rec.fields.csrf = token;
            return put(rec).then(function () { return deliver(rec, true); });
          });
        }
        rec.refused = {key: refusal(resp.status, String(doc.error || "")), status: resp.status};
        say(words.refused + " " + words[rec.refused.key].replace("{status}", resp.status));
        return put(rec);  // kept and shown: sending it as it is cannot help, the person decides
      });
    });
  }

  /* Try again later, waiting twice as long each time up to RETRY_MAX_MS. */
  function later() {
    clearTimeout(retryTimer);
    retryTimer = setTimeout(flush, retryMs);
    retryMs = Math.min(retryMs * 2, RETRY_MAX_MS);
  }

  function flush() {
    if (flushing) { again = true; return Promise.resolve(); }
    flushing = true; again = false;
    clearTimeout(retryTimer); retryTimer = null;
    showQueue();  // what waits is shown now, not once a send over a slow link has ended
    return all().then(function (items) {
      var chain = Promise.resolve();
      items.filter(function (r) { return !r.refused; }).forEach(function (rec) {
        chain = chain.then(function () { return deliver(rec, false); });
      });
      return chain;
    }).then(function () {
      retryMs = RETRY_FIRST_MS;
    }, function () {
      later();  // no link, or the gateway busy: kept for later
    }).then(function () {
      flushing = false;
      if (again) return flush();
      return showQueue();
    });
  }

  document.getElementById("locate").addEventListener("click", function () {
    var pos = document.getElementById("position");
    if (insecure && needsHttps) { pos.textContent = needsHttps.textContent; return; }
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

  /* Photos add up: those chosen now join those chosen before (a phone's camera gives one at a time),
     up to MAX_PHOTOS; the count says how many go with the observation. */
  function showPhotos(extra) {
    if (!countEl) return;  // a form kept by the service worker from before several photos
    countEl.setAttribute("data-count", String(picked.length));
    countEl.textContent = (picked.length ? words.photo_count.replace("{n}", picked.length).replace("{max}", MAX_PHOTOS) : "") +
      (extra ? (picked.length ? " " : "") + extra : "");
    clearEl.hidden = !picked.length;
  }
  photoEl.addEventListener("change", function () {
    var files = Array.prototype.slice.call(photoEl.files || []), over = false;
    files.forEach(function (f) { if (picked.length < MAX_PHOTOS) picked.push(f); else over = true; });
    photoEl.value = "";  // chosen again, the same file is added again
    showPhotos(over && words.photo_too_many ? words.photo_too_many.replace(/\{max\}/g, MAX_PHOTOS) : "");
  });
  if (clearEl) clearEl.addEventListener("click", function () { picked = []; showPhotos(""); });

  var codeEl = document.getElementById("code");
  try { codeEl.value = localStorage.getItem("minewatch-observer-code") || ""; } catch (e) { /* private mode */ }

  form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    var place = form.elements.place.value.split("/"), lat = form.elements.lat.value;
    if (place.length !== 2 && !lat) { say(words.need_where); return; }
    var local = form.elements.at_local.value, made = Date.now();
    var fields = {
      csrf: form.elements.csrf.value, code: codeEl.value.trim(), kind: form.elements.kind.value,
      text: form.elements.text.value, at: local ? new Date(local).toISOString() : "",
      site: place.length === 2 ? place[0] : "", node: place.length === 2 ? place[1] : "",
      lat: place.length === 2 ? "" : lat, lon: place.length === 2 ? "" : form.elements.lon.value,
      place: place.length === 2 ? "node" : (form.elements.place_kind.value || "position")
    };
    try { localStorage.setItem("minewatch-observer-code", fields.code); } catch (e) { /* private mode */ }
    // one after another: a cheap phone holds one full-size picture in memory at a time
    var taken = picked.slice(0, MAX_PHOTOS), shrunk = [], chain = Promise.resolve();
    taken.forEach(function (file) {
      chain = chain.then(function () { return shrink(file); }).then(function (blob) { shrunk.push(blob); });
    });
    chain.then(function () {
      return put({id: newId(), fields: fields, photos: shrunk, made: made}).then(function () {
        say(words.saved);
        form.elements.text.value = "";
        picked = []; showPhotos("");
        return flush();
      });
    }, function () { say(words.photo_unreadable); });
  });

  window.addEventListener("online", function () { retryMs = RETRY_FIRST_MS; flush(); });
  window.addEventListener("focus", flush);
  document.addEventListener("visibilitychange", function () { if (!document.hidden) flush(); });
  flush();
})();
