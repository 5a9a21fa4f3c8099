/* Plan tree: drag and drop, keyboard moves, and in-place title editing.
 *
 * Markup it works on (templates/planning/plan.html):
 *   <ul data-plan-tree data-jobs-url="/goals/1/jobs">
 *     <li class="node" id="job-7" data-id="7">
 *       <div class="row" draggable="true"> ... <span data-title tabindex="0">Title</span>
 *         <button name="move" value="7:up"> (up, down, indent, outdent) ... </div>
 *       <ul> ...children... </ul>
 *     </li>
 *   </ul>
 * Moves POST JSON to {jobs-url}/{id}/move ({direction} or {parent_id, position}); renames POST
 * {title} to {jobs-url}/{id}/title. The server answers with where the job ended up and the page
 * follows it. Without this script the move buttons submit their form and titles are renamed on
 * each job's breakdown page, so nothing here is required to use the plan.
 */
(function () {
  "use strict";

  var tree = document.querySelector("[data-plan-tree]");
  if (!tree) return;
  var jobsUrl = tree.getAttribute("data-jobs-url");
  var live = document.querySelector("[data-plan-live]");
  var tokenMeta = document.querySelector('meta[name="csrf-token"]');
  var csrf = tokenMeta ? tokenMeta.getAttribute("content") : "";
  var banner = null;

  function say(message) {
    if (live) live.textContent = message;
  }

  function showError(message) {
    if (!banner) {
      banner = document.createElement("div");
      banner.className = "flash error";
      banner.setAttribute("role", "alert");
      tree.parentNode.insertBefore(banner, tree);
    }
    banner.textContent = message;
    banner.hidden = false;
    say(message);
  }

  function clearError() {
    if (banner) banner.hidden = true;
  }

  function post(url, body) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: {
        "Content-Type": "application/json",
        "Accept": "application/json",
        "X-CSRFToken": csrf
      },
      body: JSON.stringify(body)
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (data) {
        if (!response.ok) {
          throw new Error(data.error || data.detail || data.title || ("HTTP " + response.status));
        }
        return data;
      });
    });
  }

  function nodeOf(el) {
    return el ? el.closest("li.node") : null;
  }

  function byId(id) {
    return document.getElementById("job-" + id);
  }

  function titleOf(li) {
    return li.querySelector(":scope > .row [data-title]");
  }

  function childNodes(list) {
    return Array.prototype.filter.call(list.children, function (el) {
      return el.matches("li.node");
    });
  }

  function parentIdOf(li) {
    var list = li.parentElement;
    if (list === tree) return null;
    return Number(nodeOf(list).getAttribute("data-id"));
  }

  function childList(li, create) {
    var list = li.querySelector(":scope > ul");
    if (!list && create) {
      list = document.createElement("ul");
      li.appendChild(list);
    }
    return list;
  }

  /* Put `li` where the server says it now is. */
  function place(li, parentId, position) {
    var oldList = li.parentElement;
    var list = parentId === null ? tree : childList(byId(parentId), true);
    var others = childNodes(list).filter(function (el) { return el !== li; });
    list.insertBefore(li, others[position] || null);
    if (oldList !== tree && oldList !== list && childNodes(oldList).length === 0) {
      oldList.remove();
    }
  }

  function describeMove(li) {
    var parentId = parentIdOf(li);
    var where = parentId === null ? "the top level" : titleOf(byId(parentId)).textContent;
    var position = childNodes(li.parentElement).indexOf(li) + 1;
    return "Moved \u201c" + titleOf(li).textContent + "\u201d to " + where +
      ", position " + position + ".";
  }

  function move(li, body) {
    clearError();
    return post(jobsUrl + "/" + li.getAttribute("data-id") + "/move", body)
      .then(function (data) {
        place(li, data.parent_id, data.position);
        titleOf(li).focus();
        say(describeMove(li));
      })
      .catch(function (error) { showError(error.message); });
  }

  /* Buttons and keyboard ------------------------------------------------------------------ */

  tree.addEventListener("click", function (event) {
    var button = event.target.closest('button[name="move"]');
    if (!button) return;
    event.preventDefault();
    var parts = button.value.split(":");
    move(byId(parts[0]), { direction: parts[1] });
  });

  var KEYS = { ArrowUp: "up", ArrowDown: "down", ArrowRight: "indent", ArrowLeft: "outdent" };

  function visibleTitles() {
    return Array.prototype.slice.call(tree.querySelectorAll("[data-title]"));
  }

  tree.addEventListener("keydown", function (event) {
    var title = event.target;
    if (!title.matches || !title.matches("[data-title]")) return;
    if (event.altKey && KEYS[event.key]) {
      event.preventDefault();
      move(nodeOf(title), { direction: KEYS[event.key] });
    } else if (event.key === "Enter" || event.key === "F2") {
      event.preventDefault();
      startEdit(title);
    } else if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      var all = visibleTitles();
      var next = all[all.indexOf(title) + (event.key === "ArrowDown" ? 1 : -1)];
      if (next) {
        event.preventDefault();
        next.focus();
      }
    }
  });

  /* In-place rename ----------------------------------------------------------------------- */

  tree.addEventListener("dblclick", function (event) {
    var title = event.target.closest("[data-title]");
    if (title) startEdit(title);
  });

  function startEdit(title) {
    var row = title.parentElement;
    var li = nodeOf(title);
    var before = title.textContent;
    var input = document.createElement("input");
    var finished = false;
    input.className = "edit";
    input.value = before;
    input.maxLength = 300;
    input.setAttribute("aria-label", "Title");
    title.hidden = true;
    row.draggable = false;
    title.after(input);
    input.focus();
    input.select();

    function finish(save) {
      if (finished) return;
      finished = true;
      var value = input.value.trim();
      input.remove();
      title.hidden = false;
      row.draggable = true;
      title.focus();
      if (!save || !value || value === before) return;
      clearError();
      title.textContent = value;
      post(jobsUrl + "/" + li.getAttribute("data-id") + "/title", { title: value })
        .then(function (data) {
          title.textContent = data.title;
          say("Renamed to \u201c" + data.title + "\u201d.");
        })
        .catch(function (error) {
          title.textContent = before;
          showError(error.message);
        });
    }

    input.addEventListener("keydown", function (event) {
      if (event.key === "Enter") {
        event.preventDefault();
        finish(true);
      } else if (event.key === "Escape") {
        event.preventDefault();
        finish(false);
      }
      event.stopPropagation();
    });
    input.addEventListener("blur", function () { finish(true); });
  }

  /* Drag and drop ------------------------------------------------------------------------- */

  var dragged = null;
  var marked = null;

  function unmark() {
    if (marked) marked.classList.remove("drop-before", "drop-after", "drop-inside");
    marked = null;
  }

  function zoneOf(row, y) {
    var box = row.getBoundingClientRect();
    var share = (y - box.top) / Math.max(box.height, 1);
    if (share < 0.3) return "before";
    if (share > 0.7) return "after";
    return "inside";
  }

  function dropTarget(event) {
    if (!dragged) return null;
    var row = event.target.closest ? event.target.closest(".row") : null;
    var target = nodeOf(row);
    if (!target || dragged.contains(target)) return null; // never into its own subtree
    return { li: target, zone: zoneOf(row, event.clientY) };
  }

  tree.addEventListener("dragstart", function (event) {
    var row = event.target.closest ? event.target.closest(".row") : null;
    if (!row) return;
    dragged = nodeOf(row);
    dragged.classList.add("dragging");
    event.dataTransfer.effectAllowed = "move";
    event.dataTransfer.setData("text/plain", dragged.getAttribute("data-id"));
  });

  tree.addEventListener("dragend", function () {
    unmark();
    if (dragged) dragged.classList.remove("dragging");
    dragged = null;
  });

  tree.addEventListener("dragover", function (event) {
    var target = dropTarget(event);
    if (!target) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = "move";
    unmark();
    marked = target.li;
    marked.classList.add("drop-" + target.zone);
  });

  tree.addEventListener("drop", function (event) {
    var target = dropTarget(event);
    unmark();
    if (!target) return;
    event.preventDefault();
    var li = dragged;
    var body;
    if (target.zone === "inside") {
      var list = childList(target.li, false);
      var count = list ? childNodes(list).filter(function (el) { return el !== li; }).length : 0;
      body = { parent_id: Number(target.li.getAttribute("data-id")), position: count };
    } else {
      var siblings = childNodes(target.li.parentElement).filter(function (el) { return el !== li; });
      var index = siblings.indexOf(target.li) + (target.zone === "after" ? 1 : 0);
      body = { parent_id: parentIdOf(target.li), position: index };
    }
    move(li, body);
  });
})();
