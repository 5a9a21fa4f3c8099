// The review queue for speed: decide without a page reload, and by keyboard.
// Each decision form is posted as it is (fetch with the same fields, plus X-Fragment: 1) and
// the delivery's item is swapped for the server's answer (web/review_fragments.py); focus
// moves to the next delivery still open. On a refusal or a lost connection the item stays as
// it was, with the reason beside the form, so nothing typed is lost. Without this script the
// same forms post and redirect as before.
"use strict";
(function () {
  const queue = document.getElementById("queue");
  if (!queue || !window.fetch) return;
  const help = document.getElementById("shortcuts");
  const count = document.getElementById("queue-count");
  let current = null;

  function items() { return [...queue.querySelectorAll("article.delivery")]; }
  function openItems() { return items().filter((item) => item.classList.contains("open")); }

  function select(item, focus = true) {
    if (current) current.classList.remove("current");
    current = item || null;
    if (!current) return;
    current.classList.add("current");
    if (focus) {
      current.focus({ preventScroll: true });
      current.scrollIntoView({ block: "nearest" });
    }
  }

  function step(delta) {
    const all = items();
    if (!all.length) return;
    const at = all.indexOf(current);
    const next = at < 0 ? 0 : Math.max(0, Math.min(all.length - 1, at + delta));
    select(all[next]);
  }

  // The next open item after `item` (else the last open one before it).
  function nextOpen(item) {
    const all = items();
    const at = all.indexOf(item);
    const after = all.slice(at + 1).find((i) => i.classList.contains("open"));
    if (after) return after;
    const before = all.slice(0, Math.max(at, 0)).reverse().find((i) => i.classList.contains("open"));
    return before || null;
  }

  const NOT_TYPED = new Set(["checkbox", "radio", "button", "submit", "reset"]);

  // A field that takes keys (a tick box or a button does not: shortcuts work there).
  function typing(target) {
    if (!(target instanceof Element)) return false;
    if (target.isContentEditable || target.closest("textarea, select")) return true;
    return target instanceof HTMLInputElement && !NOT_TYPED.has(target.type);
  }

  function openDecision(item, kind) {
    const details = item.querySelector(`details.decision[data-decision="${kind}"]`);
    if (!details) return false;
    details.open = true;
    const box = details.querySelector("textarea");
    if (box) box.focus();
    return true;
  }

  function submitAccept(item) {
    const form = item.querySelector("form.decision.accept");
    if (form) form.requestSubmit();
  }

  function showHelp() {
    if (!help) return;
    help.classList.add("highlight");
    help.focus();
    help.scrollIntoView({ block: "nearest" });
    setTimeout(() => help.classList.remove("highlight"), 2000);
  }

  function inlineError(form, text) {
    let box = form.querySelector(".inline-error");
    if (!box) {
      box = document.createElement("div");
      box.className = "flash error inline-error";
      box.setAttribute("role", "alert");
      form.prepend(box);
    }
    box.textContent = text;
  }

  function fragment(html) {
    const template = document.createElement("template");
    template.innerHTML = html.trim();
    return template.content.querySelector("article.delivery");
  }

  function setCount(delta) {
    if (count) count.textContent = String(Math.max(0, Number(count.textContent) + delta));
    const badge = document.getElementById("review-count");
    if (badge) {
      const n = Math.max(0, Number(badge.textContent) + delta);
      badge.textContent = String(n);
      badge.classList.toggle("zero", !n);
    }
  }

  async function decide(form) {
    const item = form.closest("article.delivery");
    const button = form.querySelector("button[type=submit]");
    if (button) { button.disabled = true; button.setAttribute("aria-busy", "true"); }
    let response;
    let html = "";
    try {
      response = await fetch(form.action, {
        method: "POST",
        body: new FormData(form),
        headers: { "X-Fragment": "1" },
        credentials: "same-origin",
      });
      html = await response.text();
    } catch (error) {
      response = null;
    } finally {
      if (button) { button.disabled = false; button.removeAttribute("aria-busy"); }
    }
    if (!response) {
      inlineError(form, "Not sent: the server did not answer. What you typed is kept; try again.");
      return;
    }
    const answer = fragment(html);
    if (response.ok && answer) {
      const wasOpen = item.classList.contains("open");
      item.replaceWith(answer);
      if (wasOpen && !answer.classList.contains("open")) setCount(-1);
      const next = nextOpen(answer);
      select(next || answer);
      return;
    }
    if (response.status === 400 && answer) {
      // The form again, with its errors and what was typed (the server echoes it back).
      const kind = form.closest("details[data-decision=reject]") ? "reject"
        : form.closest("details[data-decision=revise]") ? "revise" : "accept";
      item.replaceWith(answer);
      select(answer, false);
      const bad = answer.querySelector(`[aria-invalid="true"]`) ||
        (kind !== "accept" && answer.querySelector(`details.decision[data-decision="${kind}"] textarea`));
      if (bad) bad.focus(); else answer.focus();
      return;
    }
    const reason = answer && answer.querySelector(".outcome");
    if (reason) inlineError(form, reason.textContent);
    else if (response.redirected) inlineError(form, "Not done: you were logged out. Log in again in another tab, then send this again; what you typed is kept.");
    else inlineError(form, `Not done (the server answered ${response.status}). What you typed is kept.`);
  }

  queue.addEventListener("submit", (event) => {
    const form = event.target;
    if (!(form instanceof HTMLFormElement) || !form.closest(".decisions")) return;
    event.preventDefault();
    decide(form);
  });

  queue.addEventListener("focusin", (event) => {
    const item = event.target.closest && event.target.closest("article.delivery");
    if (item && item !== current) select(item, false);
  });

  document.addEventListener("keydown", (event) => {
    if (event.altKey || event.isComposing) return;
    const target = event.target;
    if (typing(target)) {
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey) && target.matches("textarea")) {
        event.preventDefault();
        if (target.form) target.form.requestSubmit();
      } else if (event.key === "Escape") {
        const item = target.closest("article.delivery");
        target.blur();
        if (item) select(item);
      }
      return;
    }
    if (event.ctrlKey || event.metaKey) return;
    const item = current || openItems()[0];
    switch (event.key) {
      case "j": step(1); break;
      case "k": step(-1); break;
      case "a": if (item) { select(item); submitAccept(item); } break;
      case "r": if (!item || !openDecision(item, "revise")) return; break;
      case "x": if (!item || !openDecision(item, "reject")) return; break;
      case "?": showHelp(); break;
      default: return;
    }
    event.preventDefault();
  });

  document.body.dataset.reviewQueue = "ready";
})();
