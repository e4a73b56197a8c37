// Injected by bench/door_speed.py into the door page (Playwright add_init_script) to time "code in front of the
// camera" -> "answer on screen". Bench-only: the door's own code is not touched, only watched.
//
// - Every frame the door's <video> presents (requestVideoFrameCallback), the marker strip drawn by
//   bench/fake_camera.py is read from the frame: which code it shows and since how many frames. The moment a code's
//   frames began = the capture time of the first frame seen of it, minus its frame offset / 30 fps.
// - [data-testid=result]: a MutationObserver sees data-kind become ok/already/refused; the answer counts as on screen
//   at the next requestAnimationFrame (the frame that paints it), and "painted" one task after that.
// Results are read from window.__doorBench by the Python side.
(() => {
  const STRIP = __STRIP__; // filled in by door_speed.py
  const FINAL = new Set(["ok", "already", "refused"]);
  if (location.pathname !== "/door" && location.pathname !== "/door/") return;
  try {
    performance.setResourceTimingBufferSize(10000); // the check-in requests, for the diagnosis
  } catch {
    /* not important */
  }
  const bench = { frames: [], answers: [], samplerMs: [], videoStarts: [], errors: [],
                  decodes: [], doorAnswers: [], requests: [] };
  window.__doorBench = bench;
  // The page's own measures ("door-decode" per camera frame, "door-answer" per scan) and the check-in requests, kept
  // as they come: the page may clear its measures, and the resource buffer fills up.
  try {
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) {
        if (e.name === "door-decode") bench.decodes.push({ start: e.startTime, duration: e.duration });
        else if (e.name === "door-answer") bench.doorAnswers.push({ start: e.startTime, duration: e.duration });
      }
    }).observe({ type: "measure" });
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) {
        if (e.name.includes("/api/v1/checkins")) {
          bench.requests.push({ name: e.name, start: e.startTime, end: e.responseEnd, duration: e.duration });
        }
      }
    }).observe({ type: "resource" });
  } catch (error) {
    bench.errors.push(`PerformanceObserver: ${error}`);
  }

  const width = STRIP.left + STRIP.count * STRIP.stride;
  const height = STRIP.top + STRIP.square;
  let canvas = null;
  let context = null;

  function readStrip(video) {
    if (!canvas) {
      canvas = document.createElement("canvas");
      canvas.width = width;
      canvas.height = height;
      context = canvas.getContext("2d", { willReadFrequently: true });
    }
    // The strip's corner of the frame, at the file's 640x480 scale (the camera may deliver another size).
    const sx = video.videoWidth / STRIP.frame_width;
    const sy = video.videoHeight / STRIP.frame_height;
    context.drawImage(video, 0, 0, width * sx, height * sy, 0, 0, width, height);
    const pixels = context.getImageData(0, 0, width, height).data;
    const y = STRIP.top + (STRIP.square >> 1);
    const bits = [];
    for (let i = 0; i < STRIP.count; i++) {
      const x = STRIP.left + i * STRIP.stride + (STRIP.square >> 1);
      bits.push(pixels[(y * width + x) * 4] < 128 ? 1 : 0);
    }
    if (!bits[0]) return { code: -1, offset: 0 };
    let code = 0;
    let offset = 0;
    for (let i = 0; i < STRIP.index_bits; i++) code = code * 2 + bits[1 + i];
    for (let i = 0; i < STRIP.offset_bits; i++) offset = offset * 2 + bits[1 + STRIP.index_bits + i];
    return { code, offset };
  }

  function watchVideo(video) {
    if (!video || !("requestVideoFrameCallback" in video)) {
      bench.errors.push("no requestVideoFrameCallback on #door-video");
      return;
    }
    const onFrame = (now, meta) => {
      const started = performance.now();
      try {
        if (video.videoWidth && video.videoHeight) {
          const { code, offset } = readStrip(video);
          bench.frames.push({
            code, offset, n: meta.presentedFrames,
            capture: meta.captureTime ?? null, presentation: meta.presentationTime, callback: now,
          });
        }
      } catch (error) {
        if (bench.errors.length < 20) bench.errors.push(String(error));
      }
      bench.samplerMs.push(performance.now() - started);
      video.requestVideoFrameCallback(onFrame);
    };
    video.requestVideoFrameCallback(onFrame);
    video.addEventListener("playing", () => bench.videoStarts.push(performance.now()));
  }

  function watchResult(box) {
    let lastAnswer = null;
    const observer = new MutationObserver(() => {
      const kind = box.dataset.kind;
      const answer = box.firstElementChild;
      if (!FINAL.has(kind) || !answer || answer === lastAnswer) return;
      lastAnswer = answer;
      const record = {
        kind, mutation: performance.now(), offline: box.dataset.offline === "true",
        name: (box.querySelector(".door-answer-name") || {}).textContent || "",
        text: box.textContent.slice(0, 200),
      };
      bench.answers.push(record);
      requestAnimationFrame(() => {
        record.frame = performance.now();
        setTimeout(() => {
          record.painted = performance.now();
        }, 0);
      });
    });
    observer.observe(box, { attributes: true, attributeFilter: ["data-kind"], childList: true });
  }

  document.addEventListener("DOMContentLoaded", () => {
    watchVideo(document.getElementById("door-video") || document.querySelector("#door video"));
    const box = document.querySelector("[data-testid=result]");
    if (box) watchResult(box);
    else bench.errors.push("no [data-testid=result]");
  });
})();
