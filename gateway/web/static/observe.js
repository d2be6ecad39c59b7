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
      pos.textContent = words.located;
    }, function () { pos.textContent = words.no_position; }, {timeout: 15000, maximumAge: 60000});
  });

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
      lat: place.length === 2 ? "" : lat, lon: place.length === 2 ? "" : form.elements.lon.value
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
