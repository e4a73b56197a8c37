// Whether the server answers, and how many scans this browser still has to send: the two facts that decide whether
// a scan is sent at once or decided on this device. Kept on #door (data-connection, data-queue) for tests too.
import { root } from "./common.js";

// refused: scans the server refused as requests, kept and listed until staff dismiss them (queue.js)
export const connection = { online: navigator.onLine !== false, waiting: 0, refused: 0 };
const listeners = new Set();

function publish() {
  root.dataset.connection = connection.online ? "online" : "offline";
  root.dataset.queue = String(connection.waiting);
  root.dataset.refused = String(connection.refused);
  for (const listener of listeners) listener(connection);
}

/** The server answered (true) or could not be reached, failed or was too slow (false). */
export function setOnline(online) {
  if (connection.online === online) return;
  connection.online = online;
  publish();
}

/** How many decided scans wait in the queue (this tab's count of the shared queue). */
export function setWaiting(count) {
  if (connection.waiting === count) return;
  connection.waiting = count;
  publish();
}

/** How many scans the server refused as requests (kept until staff dismiss them). */
export function setRefused(count) {
  if (connection.refused === count) return;
  connection.refused = count;
  publish();
}

export function onConnection(listener) {
  listeners.add(listener);
}

/** Whether a new scan must be decided here at once: no server, or older scans still to send before it. */
export function decideLocally() {
  return !connection.online || connection.waiting > 0;
}

publish();
