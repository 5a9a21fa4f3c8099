// Live updates: listen to the stream named in <body data-live-url> (server-sent events from
// `dispatcher live`) and show each change where the page shows that job: its status chips
// (data-status-of), its timeline (data-timeline-of), the review badge, its goal's parent
// summaries and what its delegated jobs wait for (data-summary-of, data-waiting-of: one
// fetch of the goal's rows), and the page's live regions (data-live-region: Today's lists,
// re-read whole). Without this script, or without a stream, every page shows the same after
// a reload.
"use strict";
(function () {
  const url = document.body.dataset.liveUrl;
  if (!url || !window.EventSource) return;

  const badge = document.getElementById("review-count");
  const REVIEW = new Set(["delivered", "in_review"]);
  let badgeTimer = null;

  function refreshBadge() {
    clearTimeout(badgeTimer);
    badgeTimer = setTimeout(async () => {
      try {
        const response = await fetch(document.body.dataset.badgeUrl, { headers: { Accept: "application/json" } });
        if (!response.ok) return;
        const n = (await response.json()).review;
        badge.textContent = String(n);
        badge.classList.toggle("zero", !n);
      } catch (error) { /* the next change or a reload shows it */ }
    }, 300);
  }

  function showStatus(change) {
    for (const chip of document.querySelectorAll(`[data-status-of="${change.job}"]`)) {
      chip.textContent = change.to_label;
      chip.className = "chip " + (change.to_class || "");
      chip.classList.add("changed");
    }
  }

  function addToTimeline(change) {
    const section = document.querySelector(`[data-timeline-of="${change.job}"]`);
    if (!section || document.getElementById("event-" + change.id)) return;
    let list = section.querySelector("ol.timeline");
    if (!list) {
      list = document.createElement("ol");
      list.className = "timeline";
      const empty = section.querySelector(".empty");
      if (empty) empty.remove();
      section.append(list);
    }
    const item = document.createElement("li");
    item.id = "event-" + change.id;
    item.className = "changed";
    const when = document.createElement("span");
    when.className = "meta when";
    when.textContent = change.at ? new Date(change.at).toLocaleString() : "";
    const what = document.createElement("span");
    what.className = "what";
    const kind = document.createElement("strong");
    kind.textContent = change.label;
    what.append(kind);
    if (change.from || change.to) {
      const arrow = document.createElement("span");
      arrow.className = "transition";
      arrow.textContent = (change.from || "—").replace(/_/g, " ") + " → " + (change.to || "—").replace(/_/g, " ");
      what.append(" ", arrow);
    }
    item.append(when, " ", what);
    list.append(item);
  }

  // Parents' summaries and waiting lines of the changed jobs' goals, fetched once per burst.
  const goalsToRefresh = new Set();
  let rowsTimer = null;

  function refreshRows(goal) {
    if (!goal) return;
    goalsToRefresh.add(String(goal));
    clearTimeout(rowsTimer);
    rowsTimer = setTimeout(() => {
      const goals = [...goalsToRefresh];
      goalsToRefresh.clear();
      for (const g of goals) fetchRows(g);
    }, 250);
  }

  async function fetchRows(goal) {
    const shown = [...document.querySelectorAll(`[data-summary-of][data-goal="${goal}"], [data-waiting-of][data-goal="${goal}"]`)];
    if (!shown.length) return;
    const ids = [...new Set(shown.map((el) => el.dataset.summaryOf || el.dataset.waitingOf))];
    const where = new URL(`goals/${goal}/rows`, new URL(document.body.dataset.badgeUrl, location.href));
    where.searchParams.set("ids", ids.join(","));
    let rows;
    try {
      const response = await fetch(where, { headers: { Accept: "application/json" } });
      if (!response.ok) return;
      rows = (await response.json()).rows;
    } catch (error) { return; /* the next change or a reload shows it */ }
    for (const el of shown) {
      const row = rows[el.dataset.summaryOf || el.dataset.waitingOf];
      if (!row) continue;
      const text = el.dataset.summaryOf ? row.summary : row.waiting;
      if (text === undefined || el.textContent === text) continue;
      el.textContent = text;
      if (el.dataset.summaryOf) el.className = "chip summary " + (row.class || "");
      el.classList.add("changed");
    }
  }

  // Regions re-read whole (Today's lists): the page is fetched again and each region swapped
  // for its new version, but for one the owner is typing in.
  let regionTimer = null;

  function refreshRegions() {
    if (!document.querySelector("[data-live-region][id]")) return;
    clearTimeout(regionTimer);
    regionTimer = setTimeout(async () => {
      let html;
      try {
        const response = await fetch(location.href, { headers: { Accept: "text/html" } });
        if (!response.ok) return;
        html = await response.text();
      } catch (error) { return; }
      const fresh = new DOMParser().parseFromString(html, "text/html");
      for (const region of document.querySelectorAll("[data-live-region][id]")) {
        const next = fresh.getElementById(region.id);
        if (!next || region.contains(document.activeElement) || region.innerHTML === next.innerHTML) continue;
        region.replaceWith(document.adoptNode(next));
      }
      document.body.dataset.liveRefreshed = String(Number(document.body.dataset.liveRefreshed || 0) + 1);
    }, 300);
  }

  const source = new EventSource(url);
  source.addEventListener("change", (event) => {
    let change;
    try { change = JSON.parse(event.data); } catch (error) { return; }
    if (change.job && change.to) showStatus(change);
    if (change.job) addToTimeline(change);
    if (badge && (REVIEW.has(change.to) || REVIEW.has(change.from))) refreshBadge();
    if (change.goal) refreshRows(change.goal);
    refreshRegions();
  });
  source.addEventListener("open", () => { document.body.dataset.live = "on"; });
  source.addEventListener("error", () => {
    // A refused token (expired) closes the stream for good; a drop is retried by the browser.
    if (source.readyState === EventSource.CLOSED) document.body.dataset.live = "off";
  });
})();
