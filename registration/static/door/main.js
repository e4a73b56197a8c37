// The door page: camera scanning, a scanner field that keeps focus for keyboard-wedge scanners, manual search, the
// answer on the whole screen with a sound, undo, the gate and a live counter; and, where the browser can keep data
// (IndexedDB, crypto.subtle, a service worker: HTTPS or localhost), a local copy of the seat holders and a queue of
// scans, so that the door goes on deciding when the network does not answer. This module wires the parts together.
// Every text comes from the page (#door-messages), translated on the server.
import { answered, api } from "./api.js";
import { $, onCheckinsChanged, root, sleep, storage, urls } from "./common.js";
import { startScanning } from "./camera.js";
import { checkIn } from "./checkin.js";
import { connection, onConnection, setOnline } from "./connection.js";
import { loadCopy, onCopy, syncCopy, wipeCopy } from "./dataset.js";
import { refocus } from "./focus.js";
import { offlineCapable } from "./localdb.js";
import { countWaiting, onQueue, sendQueued } from "./queue.js";
import { setCheckIn as searchChecksIn } from "./search.js";
import { setCheckIn as scannerChecksIn } from "./scanner.js";
import { clearNotice, refreshStats, showConflicts, showConnection, showNotice, showRefused } from "./status.js";

const SYNC_INTERVAL_MS = 3000; // the local copy's refresh, and a try at sending waiting scans
const STATS_INTERVAL_MS = 4000;
const SIGN_OUT_WAIT_MS = 3000; // how long signing out waits for waiting scans to go
const PAGE_CACHE = "codt-door-page"; // the service worker's copy of this page (sw.js)

let signingOut = false; // the copy is wiped and the sign-out waits for the server: nothing is fetched again

searchChecksIn(checkIn);
scannerChecksIn(checkIn);

// --- the local copy and the queue --------------------------------------------------------------------

async function forgetPage() {
  if (window.caches) await caches.delete(PAGE_CACHE);
}

async function sync() {
  if (signingOut) return;
  const outcome = await syncCopy();
  if (outcome === "online") {
    setOnline(true);
    clearNotice("network");
  } else if (outcome === "offline") {
    setOnline(false);
  } else if (outcome === "unauthorized") {
    showNotice("unauthorized");
    forgetPage(); // a page opened from the cache would show a door nobody is signed in to
  }
}

async function tick() {
  if (signingOut) {
    await finishSignOut();
    return;
  }
  if (!document.hidden) await sync();
  if (await countWaiting()) await sendQueued();
}

onCopy(() => {
  showConnection();
  showConflicts();
  if (!connection.online) refreshStats(); // counted from the local copy
});
onConnection((state) => {
  if (state.online && state.waiting) sendQueued(); // back online: the waiting scans go first
});
onQueue("unauthorized", () => showNotice("unauthorized"));
onQueue("answered", (item, answer) => {
  if (answer.data && answer.data.conflict) sync(); // the conflict list comes with the data set
});
onCheckinsChanged(() => refreshStats());

setInterval(tick, SYNC_INTERVAL_MS);
setInterval(() => {
  if (!document.hidden) refreshStats();
}, STATS_INTERVAL_MS);
document.addEventListener("visibilitychange", () => {
  if (!document.hidden) {
    refreshStats();
    tick();
  }
});
window.addEventListener("offline", () => setOnline(false));
window.addEventListener("online", () => tick());

// --- the service worker: the page, its scripts and the decoder without network ---------------------------

function registerServiceWorker() {
  if (!offlineCapable()) return;
  const controlled = () => {
    if (navigator.serviceWorker.controller) root.dataset.sw = "ready";
  };
  navigator.serviceWorker.addEventListener("controllerchange", controlled);
  controlled();
  navigator.serviceWorker.register(urls.serviceWorker, { scope: root.dataset.swScope })
    .catch((error) => console.warn("service worker not registered", error));
}

// --- signing out: waiting scans go first (if they can), the local copy and the saved page are wiped --------

const signOut = $("door-sign-out");
signOut.addEventListener("submit", async (event) => {
  event.preventDefault();
  for (const button of signOut.querySelectorAll("button")) button.disabled = true;
  await Promise.race([sendQueued(), sleep(SIGN_OUT_WAIT_MS)]).catch(() => {});
  // Scans still waiting stay in the queue: they are sent after the next sign-in on this device.
  signingOut = true;
  await Promise.all([wipeCopy(), forgetPage()]).catch((error) => console.warn("could not wipe", error));
  await finishSignOut();
});

let finishing = false;

/** Send the sign-out form if the server answers; else say that this device is wiped and try again later (tick). */
async function finishSignOut() {
  if (finishing) return;
  finishing = true;
  try {
    const answer = await api("GET", urls.stats, undefined, { timeout: SIGN_OUT_WAIT_MS }).catch(() => null);
    if (answer && answer.status === 401) {
      location.assign(urls.login); // the session has ended already
    } else if (answer && answered(answer)) {
      // Back online after a sign-out that waited: the scans that waited with it go first, while the session lasts.
      await Promise.race([sendQueued(), sleep(SIGN_OUT_WAIT_MS)]).catch(() => {});
      signOut.submit();
    } else {
      // Without network the form would only bring the browser's error page, and leave the session open.
      setOnline(false);
      showNotice("signing_out");
      root.dataset.signOut = "pending";
    }
  } finally {
    finishing = false;
  }
}

// --- start -----------------------------------------------------------------------------------------------

refocus();
startScanning(checkIn, storage("door.camera", "on") === "on");
registerServiceWorker();
showConnection();
loadCopy()
  .catch((error) => console.warn("the local copy could not be read", error))
  .then(() => Promise.all([countWaiting(), showConflicts(), showRefused()]))
  .finally(() => {
    showConnection();
    root.dataset.ready = "true";
    tick();
    refreshStats(); // a page from the service worker's cache shows the counter it was saved with
  });
