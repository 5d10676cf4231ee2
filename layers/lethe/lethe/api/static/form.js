"use strict";
(function () {
  var TYPE_LABELS = {
    access: "A copy of your data", portability: "Your data to take elsewhere", rectification: "A correction",
    erasure: "Deletion of your data", restriction: "Stop using your data for now", objection: "An objection",
    marketing_opt_out: "No more marketing", consent_withdrawal: "Withdrawal of consent",
    child_data_report: "A report about a child's data", complaint: "A complaint"
  };
  var STATUS_LABELS = {
    identity_unverified: "Waiting for your code", pending: "Confirmed", awaiting_approval: "Being reviewed",
    in_progress: "In progress", completed: "Completed", denied: "Declined", canceled: "Canceled",
    expired: "Expired", failed: "Delayed"
  };
  var DONE = { access: "Done. We emailed you a link to download your data. The link works for 7 days.",
    portability: "Done. We emailed you a link to download your data as a file you can move elsewhere. The link works for 7 days.",
    erasure: "Done. We emailed you a certificate that lists what we erased or anonymized, and anything we must keep and why." };
  var TERMINAL = { completed: true, denied: true, canceled: true, expired: true };
  var POLL_MS = 2000;
  var pollTimer = null;
  var current = { id: null, email: null };
  // The API's root, wherever the form is served: "/", a stage ("/prod/") or a custom domain's base path.
  // The form is the root route, so its own path (with a trailing slash) is the base of every other route.
  var BASE = window.location.pathname.replace(/\/?$/, "/");

  function $(id) { return document.getElementById(id); }
  function announce(text) {
    var region = $("announcer");
    region.textContent = "";
    window.setTimeout(function () { region.textContent = text; }, 50);
  }
  function formatDate(iso) {
    if (!iso) { return ""; }
    var when = new Date(iso);
    if (isNaN(when.getTime())) { return iso; }
    return new Intl.DateTimeFormat(undefined, { dateStyle: "long" }).format(when);
  }
  function showStep(name) {
    ["request", "verify", "status"].forEach(function (step) { $("step-" + step).hidden = step !== name; });
    var heading = document.querySelector("#step-" + name + " h1, #step-" + name + " h2");
    if (heading) { heading.focus(); }
  }
  function clearErrors(box, form) {
    box.textContent = "";
    Array.prototype.forEach.call(form.querySelectorAll("[aria-invalid]"), function (el) {
      el.removeAttribute("aria-invalid");
    });
  }
  function showErrors(box, messages, fields) {
    box.textContent = "";
    var intro = document.createElement("p");
    intro.textContent = messages.length > 1 ? "There are problems:" : "There is a problem:";
    var list = document.createElement("ul");
    messages.forEach(function (text) {
      var item = document.createElement("li");
      item.textContent = text;
      list.appendChild(item);
    });
    box.appendChild(intro);
    box.appendChild(list);
    (fields || []).forEach(function (el) { el.setAttribute("aria-invalid", "true"); });
    if (fields && fields.length) { fields[0].focus(); } else { box.focus(); }
  }
  function submissionKey() {
    // One key per submission: nobody else sending the same form from this network shares its request.
    var bytes = new Uint8Array(18);
    crypto.getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }
  function api(method, path, body, headers) {
    var init = { method: method, headers: Object.assign({ Accept: "application/json" }, headers || {}) };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    return fetch(BASE + path, init).then(function (response) {
      return response.text().then(function (text) {
        var data = null;
        try { data = text ? JSON.parse(text) : {}; } catch (e) { data = null; }
        if (response.ok && data) { return data; }
        var err = (data && data.error) || {};
        var failure = new Error(err.message || "The service did not answer as expected (HTTP " + response.status + ").");
        failure.code = err.code || "http_" + response.status;
        failure.status = response.status;
        throw failure;
      });
    }, function () {
      var failure = new Error("We could not reach the service. Check your connection and try again.");
      failure.code = "network";
      throw failure;
    });
  }

  // ---- corrections (rectification only)
  var rowCount = 0;
  function addCorrectionRow() {
    rowCount += 1;
    var n = rowCount;
    var row = document.createElement("div");
    row.className = "row";
    row.innerHTML =
      '<div><label for="cfield-' + n + '">Detail</label><input type="text" id="cfield-' + n + '" class="cfield" maxlength="100" placeholder="e.g. name"></div>' +
      '<div><label for="cvalue-' + n + '">Should be</label><input type="text" id="cvalue-' + n + '" class="cvalue" maxlength="500"></div>' +
      '<button type="button" class="secondary remove" aria-label="Remove correction ' + n + '">Remove</button>';
    row.querySelector(".remove").addEventListener("click", function () {
      row.parentNode.removeChild(row);
      if (!$("correction-rows").children.length) { addCorrectionRow(); }
      $("add-correction").focus();
    });
    $("correction-rows").appendChild(row);
    return row;
  }
  function selectedType() {
    var checked = document.querySelector('input[name="type"]:checked');
    return checked ? checked.value : "access";
  }
  function syncCorrections() {
    var show = selectedType() === "rectification";
    $("corrections").hidden = !show;
    if (show && !$("correction-rows").children.length) { addCorrectionRow(); }
  }

  // ---- step 1: the request
  function collect() {
    var form = $("request-form");
    var problems = [], fields = [];
    var email = $("email").value.trim();
    if (!email) { problems.push("Enter your email address."); fields.push($("email")); }
    else if (!/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(email)) {
      problems.push("Enter an email address like name@example.com."); fields.push($("email"));
    }
    var body = { type: selectedType(), email: email };
    // "Somewhere else, or not sure" names no regulation: the API then applies its default rule.
    if ($("regulation").value) { body.regulation = $("regulation").value; }
    var name = $("name").value.trim();
    if (name) { body.name = name; }
    var details = $("details").value.trim();
    if (details) { body.details = details; }
    var agentName = $("agent-name").value.trim(), agentEmail = $("agent-email").value.trim();
    if (agentName || agentEmail) {
      if (!agentName) { problems.push("Give your name or business, as the person's agent."); fields.push($("agent-name")); }
      if (!/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(agentEmail)) {
        problems.push("Give your email as the agent, like agent@example.com."); fields.push($("agent-email"));
      }
      body.agent = { name: agentName, email: agentEmail };
    }
    if (body.type === "rectification") {
      var corrections = {};
      Array.prototype.forEach.call(form.querySelectorAll("#correction-rows .row"), function (row) {
        var key = row.querySelector(".cfield").value.trim();
        var value = row.querySelector(".cvalue").value.trim();
        if (key || value) {
          if (!key) { problems.push("Say which detail should become \u201c" + value + "\u201d."); fields.push(row.querySelector(".cfield")); }
          else { corrections[key] = value; }
        }
      });
      if (!Object.keys(corrections).length && !problems.length) {
        problems.push("Tell us at least one detail to correct and what it should be.");
        fields.push(form.querySelector("#correction-rows .cfield"));
      }
      body.corrections = corrections;
    }
    return { body: body, problems: problems, fields: fields };
  }
  function fieldFor(message) {
    var name = (message.split(":")[0] || "").split(".")[0].trim();
    return { email: $("email"), name: $("name"), details: $("details"), regulation: $("regulation"),
             agent: $("agent-email") }[name] || null;
  }
  $("request-form").addEventListener("submit", function (event) {
    event.preventDefault();
    var box = $("request-errors");
    clearErrors(box, this);
    var collected = collect();
    if (collected.problems.length) {
      showErrors(box, collected.problems, collected.fields);
      announce("The form has " + collected.problems.length + " problem" + (collected.problems.length > 1 ? "s" : "") + ".");
      return;
    }
    var button = $("submit-request");
    button.disabled = true;
    announce("Sending your request…");
    api("POST", "requests", collected.body, { "Idempotency-Key": submissionKey() }).then(function (data) {
      current = { id: data.request_id, email: collected.body.email };
      $("verify-email").textContent = collected.body.email;
      $("code").value = "";
      showStep("verify");
      announce("Request received. We emailed a 6-digit code to " + collected.body.email + ". Enter it to continue.");
    }).catch(function (error) {
      var field = fieldFor(error.message);
      showErrors(box, [error.message], field ? [field] : []);
      announce("The request was not sent: " + error.message);
    }).then(function () { button.disabled = false; });
  });

  // ---- step 2: the code
  $("verify-form").addEventListener("submit", function (event) {
    event.preventDefault();
    var box = $("verify-errors");
    clearErrors(box, this);
    var code = $("code").value.replace(/\s+/g, "");
    if (!/^[0-9]{6}$/.test(code)) {
      showErrors(box, ["Enter the 6 digits from the email."], [$("code")]);
      announce("Enter the 6 digits from the email.");
      return;
    }
    var button = $("submit-code");
    button.disabled = true;
    announce("Checking your code…");
    api("POST", "requests/" + encodeURIComponent(current.id) + "/verify", { code: code }).then(function () {
      openStatus(current.id);
      announce("Thank you, your request is confirmed.");
    }).catch(function (error) {
      showErrors(box, [error.message], error.status === 400 ? [$("code")] : []);
      announce("The code was not accepted: " + error.message);
    }).then(function () { button.disabled = false; });
  });
  $("start-over").addEventListener("click", function () { resetForm(); });
  $("new-request").addEventListener("click", function () { resetForm(); });
  function resetForm() {
    stopPolling();
    current = { id: null, email: null };
    if (window.location.hash) { history.replaceState(null, "", window.location.pathname + window.location.search); }
    showStep("request");
  }

  // ---- step 3: the status
  function nextStepText(data) {
    var due = formatDate(data.due_at);
    switch (data.status) {
      case "identity_unverified": return "We are waiting for you to enter the code we emailed you.";
      case "pending": return "Your request is confirmed and queued. We will start on it shortly.";
      case "awaiting_approval": return "A member of our privacy team reviews this kind of request before we act on it. We will email you when it moves on.";
      case "in_progress": return "We are working through every system that holds your data.";
      case "completed": return DONE[data.type] || "Done. We emailed you a summary of what we did.";
      case "denied": return "We could not carry out this request, and we emailed you the reason." + (data.reason ? " Reason: " + data.reason : "");
      case "canceled": return "This request was canceled.";
      case "expired": return "This request expired because the email address was never confirmed. You can make a new request.";
      case "failed": return "Something went wrong on our side. Our team has been alerted and will pick it up" + (due ? " before " + due : "") + ".";
      default: return "";
    }
  }
  function renderStatus(data) {
    var badge = $("status-badge");
    var changed = badge.getAttribute("data-status") !== data.status;
    badge.textContent = STATUS_LABELS[data.status] || data.status;
    badge.setAttribute("data-status", data.status);
    $("status-text").textContent = nextStepText(data);
    var due = formatDate(data.due_at);
    $("due-text").textContent = TERMINAL[data.status] ? "" : (due ? "We will answer by " + due + " at the latest." : "");
    $("status-id").textContent = data.request_id || current.id;
    $("status-type").textContent = TYPE_LABELS[data.type] || data.type || "";
    $("status-created").textContent = formatDate(data.created_at);
    $("status-due").textContent = due;
    if (changed) { announce("Status: " + badge.textContent + ". " + $("status-text").textContent); }
  }
  function stopPolling() { if (pollTimer) { window.clearTimeout(pollTimer); pollTimer = null; } }
  function poll(id) {
    api("GET", "requests/" + encodeURIComponent(id)).then(function (data) {
      renderStatus(data);
      if (!TERMINAL[data.status]) { pollTimer = window.setTimeout(function () { poll(id); }, POLL_MS); }
    }).catch(function (error) {
      $("status-text").textContent = error.message;
      announce(error.message);
      if (error.code === "network") { pollTimer = window.setTimeout(function () { poll(id); }, POLL_MS * 3); }
    });
  }
  function openStatus(id) {
    stopPolling();
    current.id = id;
    history.replaceState(null, "", "#request=" + encodeURIComponent(id));
    $("status-badge").setAttribute("data-status", "");
    showStep("status");
    poll(id);
  }

  Array.prototype.forEach.call(document.querySelectorAll("a[data-path]"), function (link) {
    link.setAttribute("href", BASE + link.getAttribute("data-path"));
  });
  Array.prototype.forEach.call(document.querySelectorAll('input[name="type"]'), function (radio) {
    radio.addEventListener("change", syncCorrections);
  });
  $("add-correction").addEventListener("click", function () { addCorrectionRow().querySelector(".cfield").focus(); });
  syncCorrections();
  var match = /^#request=([^&]+)$/.exec(window.location.hash);
  if (match) { openStatus(decodeURIComponent(match[1])); }
})();
