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
    var original = status.getAttribute("data-label") || status.textContent;
    status.setAttribute("data-label", original);
    status.textContent = text;
    window.setTimeout(function () { status.textContent = original; }, 2000);
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
      if (dialog && dialog.showModal) { event.preventDefault(); dialog.showModal(); }
      return;
    }
    var closer = event.target.closest && event.target.closest("[data-dialog-close]");
    if (closer) {
      var d = closer.closest("dialog");
      if (d) { event.preventDefault(); d.close(); }
    }
  });

  // Print buttons: <button data-print>.
  document.addEventListener("click", function (event) {
    if (event.target.closest && event.target.closest("[data-print]")) { window.print(); }
  });

  // Close open menus when clicking elsewhere.
  document.addEventListener("click", function (event) {
    document.querySelectorAll("details.menu[open]").forEach(function (menu) {
      if (!menu.contains(event.target)) { menu.removeAttribute("open"); }
    });
  });
})();
