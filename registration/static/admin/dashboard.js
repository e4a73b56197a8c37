// The dashboard's door panel refreshes itself: every few seconds (data-refresh-seconds) it fetches
// /admin/door-panel and swaps the new panel in. A failed fetch keeps the figures shown and says so; the next
// attempt comes at the usual interval. The live region announces the summary only when it changes, so that a
// screen reader is not interrupted every 15 seconds with the same figures.

const section = document.querySelector("[data-door-panel-url]");

function fill(template, values) {
  return template.replace(/\{(\w+)\}/g, (match, name) => (name in values ? values[name] : match));
}

function start(section) {
  const body = section.querySelector("[data-door-panel-body]");
  const status = section.querySelector("[data-refresh-status]");
  const live = section.querySelector("[data-door-live]");
  const url = section.dataset.doorPanelUrl;
  const seconds = Math.max(1, Number(section.dataset.refreshSeconds) || 15);
  let lastSummary = body.querySelector("[data-door-panel]")?.dataset.summary || "";
  let failing = false;
  let inFlight = false;

  function announce(text) {
    if (live.textContent !== text) live.textContent = text;
  }

  function swap(panel) {
    // Tables the reader opened stay open across the swap.
    const open = new Set([...body.querySelectorAll("figure[data-chart] details[open]")]
      .map((details) => details.closest("figure").dataset.chart));
    body.replaceChildren(panel);
    for (const figure of body.querySelectorAll("figure[data-chart]")) {
      if (open.has(figure.dataset.chart)) figure.querySelector("details")?.setAttribute("open", "");
    }
  }

  async function refresh() {
    if (inFlight) return;
    inFlight = true;
    try {
      // A server that never answers must not stall the refreshes: give up after the interval (10 s at least).
      const response = await fetch(url, { credentials: "same-origin", cache: "no-store",
                                          headers: { Accept: "text/html" },
                                          signal: AbortSignal.timeout(Math.max(10, seconds) * 1000) });
      if (!response.ok || response.redirected) throw new Error(`status ${response.status}`);
      const page = new DOMParser().parseFromString(await response.text(), "text/html");
      const panel = page.querySelector("[data-door-panel]");
      if (!panel) throw new Error("no panel in the answer"); // e.g. the sign-in page after the session ended
      swap(document.importNode(panel, true));
      status.textContent = fill(section.dataset.updatedText, { time: panel.dataset.updatedAt });
      status.classList.remove("failed");
      failing = false;
      if (panel.dataset.summary !== lastSummary) {
        lastSummary = panel.dataset.summary;
        announce(lastSummary);
      }
    } catch (error) {
      const shown = body.querySelector("[data-door-panel]")?.dataset.updatedAt || "";
      // The time of the figures shown, as the server gave it: in a rehearsal the server's clock is simulated, so
      // the browser's own clock would say something else.
      status.textContent = fill(section.dataset.failedText, { time: shown });
      status.classList.add("failed");
      if (!failing) announce(status.textContent);
      failing = true;
    } finally {
      inFlight = false;
    }
  }

  section.dataset.refreshing = "on"; // tells a test the script runs
  setInterval(refresh, seconds * 1000);
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") refresh();
  });
}

if (section) start(section);
