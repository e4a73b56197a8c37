// The camera and the QR decoder: the standard BarcodeDetector where the browser has one for QR codes, else
// zxing-wasm served from /static (never a CDN), loaded and warmed up at page load. Frames are decoded 10 times a
// second, never queued; each decode is measured as performance.measure("door-decode") for the speed bench.
import { $, inflight, lastSeen, root, store, T, urls } from "./common.js";
import { cleanCode } from "./code.js";
import { refocus } from "./focus.js";

const SAME_CODE_QUIET_MS = 3000; // a code the camera keeps seeing is sent once, then ignored until out of view so long
const SCAN_INTERVAL_MS = 100;
const MAX_MEASURES = 20_000; // about half an hour of frames: then the oldest measures go

const cameraStatus = $("door-camera-status");
const cameraToggle = $("door-camera-toggle");
const video = $("door-video");
// No picture-in-picture button over the camera (set here: the attribute is not in the HTML standard vnu checks).
video.disablePictureInPicture = true;
let stream = null;
let scanTimer = null;
let decoding = false;
let measures = 0;
let onCode = () => {}; // set by main: the check-in flow

/** The QR decoder: an async function from the video to the texts of the codes in view. */
async function loadDecoder() {
  if ("BarcodeDetector" in window) {
    try {
      const formats = await window.BarcodeDetector.getSupportedFormats();
      if (formats.includes("qr_code")) {
        const detector = new window.BarcodeDetector({ formats: ["qr_code"] });
        const blank = document.createElement("canvas");
        blank.width = blank.height = 64;
        await detector.detect(blank);
        root.dataset.decoder = "native";
        return async (source) => (await detector.detect(source)).map((code) => code.rawValue);
      }
    } catch {
      /* fall through to zxing-wasm */
    }
  }
  const zxing = await import(urls.zxingModule);
  // The .wasm comes from our own server, never from the library's default CDN.
  zxing.setZXingModuleOverrides({
    locateFile: (path, prefix) => (path.endsWith(".wasm") ? urls.zxingWasm : prefix + path),
  });
  const options = { formats: ["QRCode"], maxNumberOfSymbols: 1 };
  await zxing.readBarcodes(new ImageData(64, 64), options); // compile and instantiate now, not at the first ticket
  const canvas = document.createElement("canvas");
  const context = canvas.getContext("2d", { willReadFrequently: true });
  root.dataset.decoder = "zxing";
  return async (source) => {
    const scale = Math.min(1, 640 / Math.max(source.videoWidth, source.videoHeight));
    const width = Math.round(source.videoWidth * scale);
    const height = Math.round(source.videoHeight * scale);
    if (!width || !height) return [];
    if (canvas.width !== width || canvas.height !== height) {
      canvas.width = width;
      canvas.height = height;
    }
    context.drawImage(source, 0, 0, width, height);
    const found = await zxing.readBarcodes(context.getImageData(0, 0, width, height), options);
    return found.filter((code) => code.isValid && code.text).map((code) => code.text);
  };
}

const decoderReady = loadDecoder();
decoderReady.catch(() => {
  root.dataset.decoder = "unavailable";
});

function setCameraStatus(text) {
  cameraStatus.textContent = text;
}

function onCameraCode(text, seenAt) {
  const code = cleanCode(text);
  if (!code) return;
  const now = performance.now();
  const last = lastSeen.get(code);
  lastSeen.set(code, now);
  if (inflight.has(code) || (last !== undefined && now - last < SAME_CODE_QUIET_MS)) return; // still in view
  onCode({ code }, seenAt);
  if (lastSeen.size > 200) lastSeen.clear();
}

async function scanFrame(decode) {
  if (!stream) return;
  const started = performance.now();
  if (!document.hidden && !decoding && video.readyState >= 2) {
    decoding = true;
    try {
      const texts = await decode(video);
      performance.measure("door-decode", { start: started, end: performance.now() });
      if (++measures > MAX_MEASURES) {
        performance.clearMeasures("door-decode");
        measures = 0;
      }
      for (const text of texts) onCameraCode(text, started);
    } catch (error) {
      console.warn("QR decode failed", error);
    } finally {
      decoding = false;
    }
  }
  if (stream) {
    scanTimer = setTimeout(() => scanFrame(decode), Math.max(0, SCAN_INTERVAL_MS - (performance.now() - started)));
  }
}

async function startCamera() {
  store("door.camera", "on");
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    setCameraStatus(window.isSecureContext ? T.camera_unavailable : T.camera_insecure);
    return;
  }
  setCameraStatus(T.camera_starting);
  cameraToggle.disabled = true;
  try {
    const [decode, media] = await Promise.all([
      decoderReady.catch(() => null),
      navigator.mediaDevices.getUserMedia({
        audio: false,
        video: { facingMode: { ideal: "environment" }, width: { ideal: 640 }, height: { ideal: 480 } },
      }),
    ]);
    if (!decode) {
      media.getTracks().forEach((track) => track.stop());
      setCameraStatus(T.decoder_unavailable);
      return;
    }
    stream = media;
    video.srcObject = stream;
    await video.play().catch(() => {});
    root.dataset.camera = "on";
    cameraToggle.textContent = T.camera_stop;
    cameraToggle.setAttribute("aria-pressed", "true");
    setCameraStatus(T.camera_on);
    scanFrame(decode);
  } catch {
    setCameraStatus(T.camera_unavailable);
  } finally {
    cameraToggle.disabled = false;
    refocus();
  }
}

function stopCamera() {
  store("door.camera", "off");
  clearTimeout(scanTimer);
  if (stream) stream.getTracks().forEach((track) => track.stop());
  stream = null;
  video.srcObject = null;
  root.dataset.camera = "off";
  cameraToggle.textContent = T.camera_start;
  cameraToggle.setAttribute("aria-pressed", "false");
  setCameraStatus(T.camera_off);
}

cameraToggle.addEventListener("click", () => {
  if (stream) stopCamera();
  else startCamera();
  refocus();
});

/** Start scanning (unless staff switched the camera off on this device); `flow(scan, seenAt)` checks a code in. */
export function startScanning(flow, on) {
  onCode = flow;
  if (on) startCamera();
}
