// Live updates: listen to the stream named in <body data-live-url> (server-sent events from
// `dispatcher live`) and show each change where the page shows that job: its status chips
// (data-status-of), its timeline (data-timeline-of) and the review badge. Without this script,
// or without a stream, every page shows the same after a reload.
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

  const source = new EventSource(url);
  source.addEventListener("change", (event) => {
    let change;
    try { change = JSON.parse(event.data); } catch (error) { return; }
    if (change.job && change.to) showStatus(change);
    if (change.job) addToTimeline(change);
    if (badge && (REVIEW.has(change.to) || REVIEW.has(change.from))) refreshBadge();
  });
  source.addEventListener("error", () => {
    // A refused token (expired) closes the stream for good; a drop is retried by the browser.
    if (source.readyState === EventSource.CLOSED) document.body.dataset.live = "off";
  });
})();
