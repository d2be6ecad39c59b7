/* Keeps the observation form and its script for a phone without signal: the page from the network
   when there is one (and the copy refreshed), else the copy; the copy too when the network has not
   answered within NETWORK_MS (a weak link often looks up but carries nothing, and the browser's own
   timeout is minutes), the network's answer still refreshing the copy when it comes. Submissions are not touched here: the
   page queues them itself (observe.js). */
"use strict";
var CACHE = "minewatch-observe-v1";
var KEPT = ["/observe", "/static/observe.js", "/static/site.css"];
var NETWORK_MS = 4000;

self.addEventListener("install", function (ev) {
  ev.waitUntil(caches.open(CACHE).then(function (c) { return c.addAll(KEPT); }).then(function () {
    return self.skipWaiting();
  }));
});
self.addEventListener("activate", function (ev) { ev.waitUntil(self.clients.claim()); });
self.addEventListener("fetch", function (ev) {
  var url = new URL(ev.request.url);
  if (ev.request.method !== "GET" || url.origin !== self.location.origin || KEPT.indexOf(url.pathname) < 0) return;
  // the page's own fetch of a fresh form (its token) must come from the gateway, never the copy
  if (ev.request.cache === "no-store") return;
  ev.respondWith(networkFirst(ev.request, url.pathname));
});

function networkFirst(request, path) {
  var network = fetch(request).then(function (resp) {
    if (resp.ok) { var copy = resp.clone(); caches.open(CACHE).then(function (c) { c.put(path, copy); }); }
    return resp;
  });
  return new Promise(function (resolve, reject) {
    var answered = false;
    network.then(function (resp) { answered = true; resolve(resp); }, function (err) {
      caches.match(path).then(function (kept) { if (kept) resolve(kept); else reject(err); });
    });
    setTimeout(function () {
      if (answered) return;
      caches.match(path).then(function (kept) { if (kept) resolve(kept); });  // none kept: wait on
    }, NETWORK_MS);
  });
}
