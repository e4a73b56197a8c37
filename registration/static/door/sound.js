// The answer's sound: short and high for "come in", double and low for "stop". Browsers start sound only after a
// gesture, so the first tap or key (a wedge scanner types) unlocks it.
import { root } from "./common.js";

let audio = null;

function audioContext() {
  const Context = window.AudioContext || window.webkitAudioContext;
  if (!Context) return null;
  if (!audio) audio = new Context();
  if (audio.state === "suspended") audio.resume().catch(() => {});
  return audio;
}

for (const type of ["pointerdown", "keydown"]) {
  document.addEventListener(type, () => audioContext(), { passive: true });
}

function tone(ctx, frequency, start, duration, type) {
  const oscillator = ctx.createOscillator();
  const gain = ctx.createGain();
  oscillator.type = type;
  oscillator.frequency.value = frequency;
  const t = ctx.currentTime + start;
  gain.gain.setValueAtTime(0.0001, t);
  gain.gain.exponentialRampToValueAtTime(0.35, t + 0.01);
  gain.gain.setValueAtTime(0.35, t + duration - 0.02);
  gain.gain.exponentialRampToValueAtTime(0.0001, t + duration);
  oscillator.connect(gain).connect(ctx.destination);
  oscillator.start(t);
  oscillator.stop(t + duration + 0.02);
}

export function beep(ok) {
  try {
    const ctx = audioContext();
    if (!ctx) return;
    if (ok) {
      tone(ctx, 1760, 0, 0.12, "sine");
    } else {
      tone(ctx, 220, 0, 0.16, "square");
      tone(ctx, 220, 0.24, 0.16, "square");
    }
    root.dataset.lastBeep = ok ? "ok" : "refused";
  } catch {
    /* no sound is no reason to fail */
  }
}
