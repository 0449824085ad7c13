// changewire console: the only script. Loaded from the gateway itself
// (the Content-Security-Policy allows no inline script); pages work
// without it, it adds live updates and one-click magic links.
"use strict";

(function () {
  // A magic link's page: open the session at once (a link previewer that
  // only fetches the page does not use the link up).
  for (const form of document.querySelectorAll("form[data-autosubmit]")) {
    form.submit();
  }

  // Events: new rows appear on top, without a reload.
  const rows = document.getElementById("event-rows");
  if (!rows || !rows.dataset.live) {
    return;
  }
  const status = document.getElementById("live-status");
  let newest = Number(rows.dataset.newest || 0);
  let stopped = false;

  async function poll() {
    if (stopped || document.hidden) {
      return;
    }
    const sep = rows.dataset.live.includes("?") ? "&" : "?";
    try {
      const response = await fetch(rows.dataset.live + sep + "after=" + newest, {
        credentials: "same-origin",
        headers: { Accept: "text/html" },
      });
      if (!response.ok || response.redirected) {
        stopped = true;
        if (status) status.textContent = " · live updates stopped (sign in again)";
        return;
      }
      const html = (await response.text()).trim();
      if (html) {
        rows.insertAdjacentHTML("afterbegin", html);
        const first = rows.querySelector("tr[data-event-id]");
        newest = Math.max(newest, Number(first ? first.dataset.eventId : 0));
        for (const tr of rows.querySelectorAll("tr:not(.seen)")) {
          tr.classList.add("seen");
        }
        const empty = document.getElementById("no-events");
        if (empty) empty.remove();
      }
      if (status) status.textContent = " · live";
    } catch (_) {
      if (status) status.textContent = " · live (reconnecting)";
    }
  }

  for (const tr of rows.querySelectorAll("tr")) {
    tr.classList.add("seen");
  }
  setInterval(poll, 2000);
  document.addEventListener("visibilitychange", poll);
})();
