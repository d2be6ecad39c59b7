/* Keeps the observation form and its script for a phone without signal: the page from the network
   when there is one (and the copy refreshed), else the copy. Submissions are not touched here: the
   page queues them itself (observe.js). */
"use strict";
var CACHE = "minewatch-observe-v1";
var KEPT = ["/observe", "/static/observe.js", "/static/site.css"];

self.addEventListener("install", function (ev) {
  ev.waitUntil(caches.open(CACHE).then(function (c) { return c.addAll(KEPT); }).then(function () {
    return self.skipWaiting();
  }));
});
self.addEventListener("activate", function (ev) { ev.waitUntil(self.clients.claim()); });
self.addEventListener("fetch", function (ev) {
  var url = new URL(ev.request.url);
  if (ev.request.method !== "GET" || url.origin !== self.location.origin || KEPT.indexOf(url.pathname) < 0) return;
  ev.respondWith(fetch(ev.request).then(function (resp) {
    if (resp.ok) { var copy = resp.clone(); caches.open(CACHE).then(function (c) { c.put(url.pathname, copy); }); }
    return resp;
  }).catch(function () { return caches.match(url.pathname); }));
});
