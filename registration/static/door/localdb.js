// The door's IndexedDB database (through idb, served from /static/vendor): the queue of scans waiting to be sent,
// the local copy of the seat holders, and what is known about that copy. Shared by every door tab of this browser.
import { openDB } from "../vendor/idb/index.js";

const NAME = "codt-door";

let opening = null;

/** Whether this browser can keep the door's data at all: IndexedDB, crypto.subtle (HTTPS) and service workers. */
export function offlineCapable() {
  return Boolean(window.isSecureContext && window.indexedDB && window.crypto && crypto.subtle
                 && navigator.serviceWorker);
}

/** The database, or null where the browser has none (or refuses it: private mode, storage full). */
export function localDb() {
  if (!opening) {
    opening = offlineCapable()
      ? openDB(NAME, 1, {
        upgrade(db) {
          db.createObjectStore("queue", { keyPath: "id", autoIncrement: true }); // in the order scanned
          db.createObjectStore("people", { keyPath: "id" }); // one per seat holder: hash, name, kana, ...
          db.createObjectStore("meta"); // "dataset": version, key, expiry, clock offset, conflicts
        },
        blocked() {}, // an older tab keeps the old version open: it closes on its next reload
      }).catch((error) => {
        console.warn("IndexedDB unavailable", error);
        return null;
      })
      : Promise.resolve(null);
  }
  return opening;
}
