// The dialogue browser of a dialogsim report: filters, search, and one dialogue at a time.
// Everything it shows comes from the JSON in #report-data and is inserted as text, never as HTML.
(function () {
  "use strict";

  var data = JSON.parse(document.getElementById("report-data").textContent);
  var dialogues = data.dialogues;
  var datasets = data.datasets;

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function append(parent) {
    for (var i = 1; i < arguments.length; i++) {
      var child = arguments[i];
      if (child === null || child === undefined) continue;
      parent.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
    }
    return parent;
  }

  function plural(n, word) {
    return n + " " + word + (n === 1 ? "" : "s");
  }

  // ---------------------------------------------------------------- search text

  var haystacks = dialogues.map(function (d) {
    var parts = [d.id, d.domain, d.mode, d.term, d.persona];
    d.taskList.forEach(function (t) { parts.push(t.goal); });
    d.timeline.forEach(function (item) {
      if (item.text) parts.push(item.text);
      if (item.tool) parts.push(item.tool);
      if (item.args) parts.push(JSON.stringify(item.args));
      if (item.result) parts.push(item.result.text);
      if (item.fb) item.fb.forEach(function (f) { parts.push(f.kind, f.detail); });
    });
    return parts.join("\n").toLowerCase();
  });

  // ---------------------------------------------------------------- filters

  var search = document.getElementById("search");
  var fDomain = document.getElementById("f-domain");
  var fMode = document.getElementById("f-mode");
  var fOutcome = document.getElementById("f-outcome");
  var fFeedback = document.getElementById("f-feedback");
  var fDataset = document.getElementById("f-dataset");
  var list = document.getElementById("list");
  var empty = document.getElementById("empty");
  var count = document.getElementById("count");
  var detail = document.getElementById("detail");

  function fillSelect(select, values, label) {
    values.forEach(function (v) {
      var option = el("option", null, label ? label(v) : v);
      option.value = String(v);
      select.appendChild(option);
    });
  }

  function distinct(key) {
    var seen = {};
    dialogues.forEach(function (d) { seen[d[key]] = true; });
    return Object.keys(seen).sort();
  }

  fillSelect(fDomain, distinct("domain"));
  fillSelect(fMode, distinct("mode"));
  var kinds = {};
  dialogues.forEach(function (d) { Object.keys(d.feedback).forEach(function (k) { kinds[k] = true; }); });
  fillSelect(fFeedback, Object.keys(kinds).sort(), function (k) { return k.replace(/_/g, " "); });
  if (datasets.length > 1) {
    document.getElementById("f-dataset-label").hidden = false;
    fillSelect(fDataset, datasets.map(function (_, i) { return i; }), function (i) { return datasets[i].path; });
  }

  function matches(d, index, terms) {
    if (fDomain.value && d.domain !== fDomain.value) return false;
    if (fMode.value && d.mode !== fMode.value) return false;
    if (fOutcome.value === "ok" && !d.ok) return false;
    if (fOutcome.value === "failed" && d.ok) return false;
    if (fOutcome.value === "errors" && !d.errors) return false;
    if (fFeedback.value && !d.feedback[fFeedback.value]) return false;
    if (fDataset.value && String(d.ds) !== fDataset.value) return false;
    for (var i = 0; i < terms.length; i++) {
      if (haystacks[index].indexOf(terms[i]) < 0) return false;
    }
    return true;
  }

  var items = [];

  function applyFilters() {
    var terms = search.value.toLowerCase().split(/\s+/).filter(Boolean);
    var shown = 0;
    dialogues.forEach(function (d, i) {
      var visible = matches(d, i, terms);
      items[i].hidden = !visible;
      if (visible) shown++;
    });
    empty.hidden = shown > 0;
    count.textContent = shown === dialogues.length
      ? plural(dialogues.length, "dialogue")
      : shown + " of " + plural(dialogues.length, "dialogue");
  }

  // ---------------------------------------------------------------- the list

  dialogues.forEach(function (d, i) {
    var li = el("li");
    li.dataset.index = String(i);
    li.dataset.id = d.id;
    var button = el("button");
    button.type = "button";
    var name = el("div", "name", d.id);
    var badges = append(
      el("div"),
      el("span", "badge " + d.mode, d.mode),
      el("span", "badge", d.domain),
      el("span", "badge " + (d.ok ? "ok" : "failed"), d.ok ? "✓ success" : "✗ failed")
    );
    var meta = el("div", "meta",
      plural(d.turns, "turn") + " · " + plural(d.tasks, "task") + " · " + plural(d.calls, "tool call") +
      (d.errors ? " · " + plural(d.errors, "error") : ""));
    append(button, name, badges, meta);
    button.addEventListener("click", function () { open(i); });
    li.appendChild(button);
    list.appendChild(li);
    items.push(li);
  });

  // ---------------------------------------------------------------- one dialogue

  function fact(label, value) {
    return append(el("div"), el("span", null, label), String(value));
  }

  function feedbackChips(fb) {
    var wrap = el("div");
    fb.forEach(function (f) {
      var chip = el("span", "fb fb-" + f.kind, f.kind.replace(/_/g, " ") + " · " + f.task);
      if (f.detail) chip.title = f.detail;
      wrap.appendChild(chip);
    });
    return wrap;
  }

  function pretty(value) {
    try { return JSON.stringify(value, null, 2); } catch (e) { return String(value); }
  }

  function resultText(text) {
    var trimmed = text.trim();
    if (trimmed.charAt(0) === "{" || trimmed.charAt(0) === "[") {
      try { return JSON.stringify(JSON.parse(trimmed), null, 2); } catch (e) { /* not JSON: show as is */ }
    }
    return text;
  }

  function callBlock(item) {
    var failed = item.result && item.result.error;
    var source = item.result && sources[item.result.seq];
    var block = el("details", "call" + (failed ? " error" : "") + (source ? " evidence" : ""));
    block.dataset.kind = "call";
    if (item.result) block.dataset.seq = String(item.result.seq);
    var args = item.args ? JSON.stringify(item.args) : "?";
    var summary = append(el("summary"), item.tool + "(" + (args.length > 90 ? args.slice(0, 89) + "…" : args) + ")");
    var status = !item.result ? "no result" : failed ? "error" + (item.result.code ? ": " + item.result.code : "") : "ok";
    if (item.result) status = "#" + item.result.seq + " · " + status + (source ? " · shows " + source.join(", ") : "");
    summary.appendChild(el("span", "status", status));
    block.appendChild(summary);
    append(block, el("span", "label", "arguments"), el("pre", null, item.args ? pretty(item.args) : "(no call recorded)"));
    if (item.result) {
      append(block, el("span", "label", failed ? "error result" : "result"), el("pre", null, resultText(item.result.text)));
    }
    if (failed) block.open = true;
    return block;
  }

  function timelineNode(item) {
    switch (item.k) {
      case "user": {
        var user = el("div", "msg user" + (item.fb ? " feedback fb-" + item.fb[item.fb.length - 1].kind : ""));
        user.dataset.kind = "message";
        user.appendChild(el("span", "who", "user" + (item.done ? " · marks the goal complete" : "")));
        if (item.fb) user.appendChild(feedbackChips(item.fb));
        user.appendChild(document.createTextNode(item.text));
        return user;
      }
      case "agent": {
        var told = evidence[item.seq];
        var agent = el("div", "msg agent" + (told ? " evidence" : ""));
        agent.dataset.kind = "message";
        agent.dataset.seq = String(item.seq);
        append(agent, el("span", "who", "agent · #" + item.seq + (told ? " · tells the user " + told.join(", ") : "")), item.text);
        return agent;
      }
      case "call":
        return callBlock(item);
      case "task":
        return el("div", "marker", "task " + item.task + " begins");
      case "verdict":
        return el("div", "marker " + (item.ok ? "ok" : "failed"),
          "task " + item.task + (item.ok ? " ✓ verified" : " ✗ not verified") + (item.detail ? ": " + item.detail : ""));
      case "feedback": {
        var fb = el("div", "msg user feedback fb-" + item.fb[item.fb.length - 1].kind);
        append(fb, el("span", "who", "user feedback"), feedbackChips(item.fb));
        return fb;
      }
      case "error":
        return append(el("div", "msg error"), el("span", "who", "error in " + item.where + " · " + item.type), item.text);
      case "end":
        return el("div", "marker", "dialogue ended: " + item.reason.replace(/_/g, " ") + (item.detail ? " (" + item.detail + ")" : ""));
      default:
        return null;
    }
  }

  // Agent messages and tool results that ground a value (by event index), for the current dialogue.
  var evidence = {};
  var sources = {};

  function goTo(seq) {
    var node = detail.querySelector('[data-seq="' + seq + '"]');
    if (!node) return;
    if (node.tagName === "DETAILS") node.open = true;
    node.scrollIntoView({ block: "center" });
    node.classList.add("flash");
    setTimeout(function () { node.classList.remove("flash"); }, 1200);
  }

  function jump(seq, text) {
    var link = el("button", "jump", text);
    link.type = "button";
    link.addEventListener("click", function () { goTo(seq); });
    return link;
  }

  var KIND = { state: "full state", assertion: "assertion", value: "told the user", judge: "judge" };

  function checkItem(c) {
    var li = el("li", "check " + c.v);
    append(li, el("span", "mark", c.v === "pass" ? "✓" : c.v === "fail" ? "✗" : "!"),
      el("span", "kind", KIND[c.k] || c.k), c.n);
    if (c.ev) {
      c.ev.forEach(function (e) {
        if (e.m === null || e.m === undefined) {
          append(li, " — made: ", jump(e.r, "result #" + e.r));
        } else {
          append(li, " — said in ", jump(e.m, "message #" + e.m), " (“" + e.said + "”), shown by ", jump(e.r, "result #" + e.r));
        }
      });
    }
    if (c.d) li.appendChild(el("div", "muted", c.d));
    if (c.diff) {
      var diff = el("ul", "diff");
      c.diff.forEach(function (line) { diff.appendChild(el("li", null, line)); });
      li.appendChild(diff);
    }
    return li;
  }

  function render(d) {
    detail.textContent = "";
    evidence = {};
    sources = {};
    d.taskList.forEach(function (t) {
      (t.checks || []).forEach(function (c) {
        (c.ev || []).forEach(function (e) {
          var what = t.id + " " + c.n.split(":").slice(1).join(":");
          if (e.m !== null && e.m !== undefined) (evidence[e.m] = evidence[e.m] || []).push(what);
          (sources[e.r] = sources[e.r] || []).push(what);
        });
      });
    });
    append(detail,
      el("h2", null, d.id),
      append(el("div"),
        el("span", "badge " + d.mode, d.mode),
        el("span", "badge", d.domain),
        el("span", "badge " + (d.ok ? "ok" : "failed"), d.ok ? "✓ every task verified" : "✗ not every task verified"),
        el("span", "badge", d.term.replace(/_/g, " "))));
    var facts = append(el("div", "facts"),
      fact("turns", d.turns), fact("steps (max)", d.steps), fact("tasks", d.tasks),
      fact("tool calls", d.calls), fact("tool errors", d.errors), fact("persona", d.persona),
      fact("duration", d.duration + " s"), fact("dataset", datasets[d.ds].path));
    Object.keys(d.brains).forEach(function (role) { facts.appendChild(fact(role, d.brains[role])); });
    if (d.branchedFrom) facts.appendChild(fact("branched from", d.branchedFrom));
    if (d.usage) facts.appendChild(fact("tokens in / out · cost", d.usage.in + " / " + d.usage.out + " · $" + d.usage.cost.toFixed(4)));
    detail.appendChild(facts);
    if (d.error) detail.appendChild(append(el("div", "msg error"), el("span", "who", "ended: " + d.term.replace(/_/g, " ")), d.error));

    detail.appendChild(el("h3", null, "Tasks and verification"));
    if (d.state) {
      var st = d.state;
      var box = el("div", "state " + st.v);
      var head = st.v === "pass"
        ? "✓ the final database equals the replay of the " + plural(st.calls, "gold call") + " on a fresh copy"
        : st.v === "fail"
          ? "✗ the final database differs from the replay of the " + plural(st.calls, "gold call") + ": " +
            plural(st.diff.length + st.more, "difference") + " (gold → this dialogue)"
          : "! the full state could not be compared: " + st.detail;
      append(box, el("span", "verdict", "full state"), head);
      if (st.diff.length) {
        var lines = el("ul", "diff");
        st.diff.forEach(function (line) { lines.appendChild(el("li", null, line)); });
        if (st.more) lines.appendChild(el("li", "muted", "… and " + st.more + " more"));
        box.appendChild(lines);
      }
      detail.appendChild(box);
    } else if (d.migratedFrom) {
      detail.appendChild(el("p", "muted", "Recorded in version " + d.migratedFrom + ": no full-state check, values not grounded."));
    }
    var tasks = el("ul", "tasks");
    d.taskList.forEach(function (t) {
      var state = t.ok === null ? "" : t.ok ? "ok" : "failed";
      var li = el("li", state);
      append(li,
        el("span", "verdict", t.ok === null ? "–" : t.ok ? "✓ verified" : "✗ failed"),
        el("span", "muted", t.id + " · " + t.difficulty + " · "), t.goal);
      if (t.checks && t.checks.length) {
        var checks = el("ul", "checks");
        t.checks.forEach(function (c) { checks.appendChild(checkItem(c)); });
        li.appendChild(checks);
      } else if (t.failed.length || t.missing.length) {
        var problems = el("ul");
        t.failed.forEach(function (text) { problems.appendChild(el("li", null, "assertion failed: " + text)); });
        t.missing.forEach(function (text) { problems.appendChild(el("li", null, "not told to the user: " + text)); });
        li.appendChild(problems);
      }
      tasks.appendChild(li);
    });
    detail.appendChild(tasks);

    detail.appendChild(el("h3", null, "Conversation"));
    var conv = el("div", "conv");
    d.timeline.forEach(function (item) {
      var node = timelineNode(item);
      if (node) conv.appendChild(node);
    });
    detail.appendChild(conv);
    detail.scrollTop = 0;
  }

  var current = -1;

  // A dialogue's address in the URL: dataset number and id (ids repeat across a mode comparison).
  function keyOf(d) {
    return d.ds + "/" + d.id;
  }

  function open(index) {
    if (current >= 0) items[current].classList.remove("active");
    current = index;
    items[index].classList.add("active");
    render(dialogues[index]);
    if (history.replaceState) history.replaceState(null, "", "#" + dialogues[index].ds + "/" + encodeURIComponent(dialogues[index].id));
  }

  [search, fDomain, fMode, fOutcome, fFeedback, fDataset].forEach(function (control) {
    control.addEventListener("input", applyFilters);
    control.addEventListener("change", applyFilters);
  });
  document.addEventListener("keydown", function (event) {
    if (event.key === "/" && document.activeElement !== search) {
      event.preventDefault();
      search.focus();
    }
  });

  applyFilters();
  var wanted = decodeURIComponent(location.hash.slice(1));
  var start = dialogues.findIndex(function (d) { return keyOf(d) === wanted || d.id === wanted; });
  if (dialogues.length) open(start >= 0 ? start : 0);
})();
