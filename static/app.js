/* Small progressive enhancements; every control also works without JavaScript. */
(function () {
  "use strict";
  document.documentElement.classList.add("js");

  // Organisation switcher: submit on change.
  document.addEventListener("change", function (event) {
    var el = event.target;
    if (el.matches && el.matches("select[data-autosubmit]")) {
      el.form.requestSubmit ? el.form.requestSubmit() : el.form.submit();
    }
  });

  // Copy buttons: <button data-copy-target="#id">; Clipboard API with a select-all fallback.
  function showCopied(button, text) {
    var status = button.parentElement.querySelector("[data-copy-status]") || button;
    if (!status.hasAttribute("data-label")) { status.setAttribute("data-label", status.textContent); }
    window.clearTimeout(status._copyTimer);
    status.textContent = text;
    status.classList.add("is-shown");
    status._copyTimer = window.setTimeout(function () {
      status.textContent = status.getAttribute("data-label");
      status.classList.remove("is-shown");
    }, 4000);
  }
  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("[data-copy-target]");
    if (!button) { return; }
    event.preventDefault();
    var field = document.querySelector(button.getAttribute("data-copy-target"));
    if (!field) { return; }
    var value = field.value !== undefined ? field.value : field.textContent;
    function fallback() {
      field.focus();
      if (field.select) { field.select(); }
      showCopied(button, "Press Ctrl+C to copy");
    }
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(value).then(function () { showCopied(button, "Copied"); }, fallback);
    } else {
      fallback();
    }
  });

  // Dialogs: <button data-dialog-open="#id"> opens a <dialog>; [data-dialog-close] closes it.
  document.addEventListener("click", function (event) {
    var opener = event.target.closest && event.target.closest("[data-dialog-open]");
    if (opener) {
      var dialog = document.querySelector(opener.getAttribute("data-dialog-open"));
      if (dialog && dialog.showModal) {
        event.preventDefault();
        dialog._opener = opener;
        dialog.showModal();
      }
      return;
    }
    var closer = event.target.closest && event.target.closest("[data-dialog-close]");
    if (closer) {
      var d = closer.closest("dialog");
      if (d) { event.preventDefault(); d.close(); }
    }
  });

  // A form with data-confirm-select whose chosen <option> names a dialog (data-confirm-dialog)
  // opens that dialog instead of submitting; the dialog's own form sends the confirmation.
  // The server refuses the unconfirmed change too, so this only saves a round trip.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.matches || !form.matches("form[data-confirm-select]")) { return; }
    var option = form.querySelector("select option:checked");
    var selector = option && option.getAttribute("data-confirm-dialog");
    var dialog = selector && document.querySelector(selector);
    if (!dialog || !dialog.showModal) { return; }
    event.preventDefault();
    event.stopImmediatePropagation();  // capture phase: htmx on the form never sees it
    dialog._opener = event.submitter || form.querySelector("[type=submit]");
    dialog.showModal();
  }, true);

  // An open modal dialog keeps Tab inside itself: past the last control back to the first,
  // Shift+Tab before the first round to the last (the browser would move on to its own UI).
  var FOCUSABLE = "a[href], button:not([disabled]), input:not([disabled]):not([type=hidden]), " +
    "select:not([disabled]), textarea:not([disabled]), summary, [tabindex]:not([tabindex='-1'])";
  function focusables(dialog) {
    return Array.prototype.filter.call(dialog.querySelectorAll(FOCUSABLE), function (el) {
      return el.getClientRects().length > 0;
    });
  }
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Tab" || event.altKey || event.ctrlKey || event.metaKey) { return; }
    var open = Array.prototype.filter.call(document.querySelectorAll("dialog[open]"), function (d) {
      return d.matches(":modal");
    });
    var dialog = open[open.length - 1];
    if (!dialog) { return; }
    var items = focusables(dialog);
    var active = document.activeElement;
    if (!items.length) { event.preventDefault(); return; }
    var first = items[0], last = items[items.length - 1];
    if (event.shiftKey && (active === first || !dialog.contains(active))) {
      event.preventDefault();
      last.focus();
    } else if (!event.shiftKey && (active === last || !dialog.contains(active))) {
      event.preventDefault();
      first.focus();
    }
  });

  // Provisioning activity: a click anywhere on a request's row opens its details, as its time does.
  document.addEventListener("click", function (event) {
    var row = event.target.closest && event.target.closest("tr.activity-summary");
    if (!row || event.target.closest("summary, a, button, input, select, textarea")) { return; }
    if (String(window.getSelection ? window.getSelection() : "")) { return; }  // selecting text
    var toggle = row.querySelector("details.row-toggle");
    if (toggle) { toggle.open = !toggle.open; }
  });

  // Print buttons: <button data-print>.
  document.addEventListener("click", function (event) {
    if (event.target.closest && event.target.closest("[data-print]")) { window.print(); }
  });

  // Links marked data-auto-follow are followed at once (e.g. on to an IdP after "Sign in
  // with SSO"); a plain navigation, which CSP form-action does not restrict.
  var follow = document.querySelector("a[data-auto-follow]");
  if (follow) { window.location.assign(follow.href); }

  // Give focus back to whatever opened a dialog when it closes (Escape, Cancel).
  document.addEventListener("close", function (event) {
    var dialog = event.target;
    if (dialog.tagName === "DIALOG" && dialog._opener && document.contains(dialog._opener)) {
      dialog._opener.focus();
    }
  }, true);

  // HTMX ignores 4xx/5xx responses; swap the ones our server marked as meant to be shown
  // (error fragments retargeted to the flash area, a panel re-rendered after a conflict).
  document.addEventListener("htmx:beforeSwap", function (event) {
    var xhr = event.detail.xhr;
    if (xhr.status >= 400 && (xhr.getResponseHeader("HX-Retarget") || xhr.getResponseHeader("HX-Reswap"))) {
      event.detail.shouldSwap = true;
    }
  });

  // A secret shown once (a new SCIM token) must not come back from the back-forward cache.
  window.addEventListener("pagehide", function () {
    document.querySelectorAll("[data-secret]").forEach(function (field) {
      field.value = "";
      field.setAttribute("data-scrubbed", "");
    });
  });
  window.addEventListener("pageshow", function (event) {
    if (event.persisted && document.querySelector("[data-scrubbed]")) { window.location.reload(); }
  });

  // "Grant a role until…": send the browser's UTC offset so a date and time (or "tomorrow
  // 18:00") mean the person's own time; without JavaScript they are UTC, as the label says.
  // Choosing a preset previews its end in the date field; editing the date clears the preset.
  function pad(n) { return (n < 10 ? "0" : "") + n; }
  function localValue(d) {
    return d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) + "T" +
      pad(d.getHours()) + ":" + pad(d.getMinutes());
  }
  function offsetLabel(minutes) {
    var m = Math.abs(minutes);
    return "UTC" + (minutes < 0 ? "-" : "+") + pad(Math.floor(m / 60)) + ":" + pad(m % 60);
  }
  var GRANT_PRESETS = { "1h": 36e5, "8h": 8 * 36e5, "7d": 7 * 864e5, "30d": 30 * 864e5 };
  function presetEnd(value) {
    if (GRANT_PRESETS[value]) { return new Date(Date.now() + GRANT_PRESETS[value]); }
    if (value === "tomorrow-18") {
      var d = new Date();
      d.setDate(d.getDate() + 1);
      d.setHours(18, 0, 0, 0);
      return d;
    }
    return null;
  }
  function syncGrantForm(form) {
    var until = form.querySelector("[name=until]");
    var when = until && until.value ? new Date(until.value) : new Date();
    if (isNaN(when.getTime())) { when = new Date(); }
    var offset = -when.getTimezoneOffset();  // minutes east of UTC at the chosen end
    form.querySelector("[data-tz-offset]").value = String(offset);
    var hint = form.querySelector("[data-tz-hint]");
    if (hint) { hint.textContent = "(your time, " + offsetLabel(offset) + ")"; }
  }
  function initGrantForms(root) {
    if (root.matches && root.matches("form[data-grant-form]")) { syncGrantForm(root); }
    if (root.querySelectorAll) { root.querySelectorAll("form[data-grant-form]").forEach(syncGrantForm); }
  }
  document.addEventListener("change", function (event) {
    var form = event.target.closest && event.target.closest("form[data-grant-form]");
    if (!form) { return; }
    if (event.target.name === "preset") {
      var end = presetEnd(event.target.value);
      if (end) { form.querySelector("[name=until]").value = localValue(end); }
    } else if (event.target.name === "until") {
      form.querySelector("[name=preset]").value = "";
    }
    syncGrantForm(form);
  });
  initGrantForms(document);
  document.addEventListener("htmx:load", function (event) { initGrantForms(event.detail.elt); });

  // Close open menus when clicking elsewhere.
  document.addEventListener("click", function (event) {
    document.querySelectorAll("details.menu[open]").forEach(function (menu) {
      if (!menu.contains(event.target)) { menu.removeAttribute("open"); }
    });
  });
})();
