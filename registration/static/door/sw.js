// The door's service worker: the door page opens without network once it has been loaded. Served at /door/sw.js
// (scope /door) by registration/staffarea/door_app.py, which puts `const DOOR = {version, page, files}` first:
// the version changes with the content of any file listed, so a new deploy installs a new worker.
// The page: network first (a fresh CSRF token, the current staff), the saved copy when the network fails or is
// slow. The scripts, styles, icons and the QR decoder: from the cache of this version, fetched once at install.
/* global DOOR */

const STATIC_CACHE = `codt-door-static-${DOOR.version}`;
const PAGE_CACHE = "codt-door-page"; // main.js deletes it on sign-out
const NAVIGATION_TIMEOUT_MS = 4000;
const files = new Set(DOOR.files);

/** Keep a copy of the door page, if this is the signed-in page itself (not a redirect to the sign-in page). */
async function keepPage(response) {
  if (response && response.ok && response.type === "basic" && !response.redirected) {
    const cache = await caches.open(PAGE_CACHE);
    await cache.put(DOOR.page, response);
  }
}

self.addEventListener("install", (event) => {
  event.waitUntil((async () => {
    const cache = await caches.open(STATIC_CACHE);
    await cache.addAll(DOOR.files.map((url) => new Request(url, { cache: "reload" })));
    // The page that registered this worker was loaded without it: save it now.
    const page = await fetch(DOOR.page, { credentials: "same-origin", cache: "no-store" }).catch(() => null);
    await keepPage(page);
    await self.skipWaiting();
  })());
});

self.addEventListener("activate", (event) => {
  event.waitUntil((async () => {
    for (const name of await caches.keys()) {
      if (name.startsWith("codt-door-static-") && name !== STATIC_CACHE) await caches.delete(name);
    }
    await self.clients.claim();
  })());
});

function timeout(ms) {
  return new Promise((resolve, reject) => {
    setTimeout(() => reject(new Error("timeout")), ms);
  });
}

async function pageFromNetwork(event) {
  const network = fetch(event.request).then((response) => {
    event.waitUntil(keepPage(response.clone()).catch(() => {}));
    return response;
  });
  try {
    const response = await Promise.race([network, timeout(NAVIGATION_TIMEOUT_MS)]);
    if (response.status < 500) return response;
  } catch {
    /* no network, or too slow: the saved page */
  }
  const saved = await caches.match(DOOR.page, { cacheName: PAGE_CACHE });
  return saved || network;
}

async function fromCache(request, path) {
  const cache = await caches.open(STATIC_CACHE);
  const cached = await cache.match(path);
  if (cached) return cached;
  const response = await fetch(request);
  if (response.ok) await cache.put(path, response.clone());
  return response;
}

self.addEventListener("fetch", (event) => {
  const { request } = event;
  if (request.method !== "GET") return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  if (request.mode === "navigate" && url.pathname === DOOR.page) {
    event.respondWith(pageFromNetwork(event));
  } else if (files.has(url.pathname)) {
    event.respondWith(fromCache(request, url.pathname));
  }
  // Everything else (the API above all) goes to the network as if there were no worker.
});
