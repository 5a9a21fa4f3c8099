// The goal page's tree: open a folded job by fetching the rows under it, fold an open one,
// and keep what is open in the URL (?open=...) so a reload or a shared link shows the same.
// Without this script the same links reload the page with the job opened or folded.
// Also asks before the actions that carry data-confirm (no inline handlers: strict CSP).
"use strict";
(function () {
  document.addEventListener("submit", (event) => {
    const message = event.target.dataset && event.target.dataset.confirm;
    if (message && !window.confirm(message)) event.preventDefault();
  });

  const tree = document.querySelector("[data-goal-tree]");
  if (!tree || !window.fetch || !window.history) return;

  const idOf = (row) => row.id.replace("job-", "");

  function openSet() {
    const raw = new URLSearchParams(location.search).get("open") || "";
    return new Set(raw.split(",").filter((id) => /^\d+$/.test(id)));
  }

  function stateUrl(set, anchor) {
    const params = new URLSearchParams(location.search);
    if (set.size) params.set("open", [...set].sort((a, b) => a - b).join(","));
    else params.delete("open");
    const query = params.toString().replace(/%2C/g, ",");
    return location.pathname + (query ? "?" + query : "") + (anchor ? "#" + anchor : "");
  }

  function rowsUnder(row) {
    const depth = Number(row.dataset.depth);
    const out = [];
    for (let next = row.nextElementSibling; next; next = next.nextElementSibling) {
      if (Number(next.dataset.depth) <= depth) break;
      out.push(next);
    }
    return out;
  }

  function show(link, row, open) {
    const set = openSet();
    link.setAttribute("aria-expanded", open ? "true" : "false");
    link.textContent = open ? "▾" : "▸";
    const label = link.getAttribute("aria-label") || "";
    link.setAttribute("aria-label", label.replace(/^(Open|Fold)/, open ? "Fold" : "Open"));
    const other = new Set(set);
    if (open) other.delete(idOf(row));
    else other.add(idOf(row));
    link.setAttribute("href", stateUrl(other, row.id));
    const more = row.querySelector("a.open-link");
    if (more) more.hidden = open;
  }

  async function open(link, row) {
    const set = openSet();
    set.add(idOf(row));
    const url = new URL(tree.dataset.subtreeBase + idOf(row) + "/subtree", location.href);
    url.searchParams.set("open", [...set].join(","));
    row.classList.add("loading");
    try {
      const response = await fetch(url, { headers: { Accept: "text/html" } });
      if (!response.ok) throw new Error("HTTP " + response.status);
      const template = document.createElement("template");
      template.innerHTML = await response.text(); // rows rendered (and escaped) by our server
      row.after(template.content);
      history.replaceState(null, "", stateUrl(set, location.hash.slice(1)));
      show(link, row, true);
    } catch (error) {
      location.href = link.getAttribute("href"); // fall back to loading the page
    } finally {
      row.classList.remove("loading");
    }
  }

  function fold(link, row) {
    const set = openSet();
    set.delete(idOf(row));
    for (const child of rowsUnder(row)) {
      set.delete(idOf(child));
      child.remove();
    }
    history.replaceState(null, "", stateUrl(set, location.hash.slice(1)));
    show(link, row, false);
  }

  tree.addEventListener("click", (event) => {
    const link = event.target.closest("a.fold, a.open-link");
    if (!link || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey) return;
    const row = link.closest("li.node");
    const toggle = row.querySelector("a.fold");
    event.preventDefault();
    if (toggle.getAttribute("aria-expanded") === "true") fold(toggle, row);
    else open(toggle, row);
  });
})();
