// aivax console: small behaviours shared by every page (no inline scripts).
(function () {
  "use strict";

  function csrfToken() {
    const meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.content : "";
  }
  window.aivax = { csrfToken: csrfToken };

  // htmx requests carry the CSRF token as a header.
  document.addEventListener("htmx:configRequest", function (event) {
    event.detail.headers["X-CSRFToken"] = csrfToken();
  });

  async function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) {
      await navigator.clipboard.writeText(text);
      return;
    }
    const area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.style.position = "fixed";
    area.style.opacity = "0";
    document.body.appendChild(area);
    area.select();
    document.execCommand("copy");
    area.remove();
  }

  document.addEventListener("click", async function (event) {
    // Copy buttons: data-copy="#element-id" copies that element's text (or value).
    const copyButton = event.target.closest("[data-copy]");
    if (copyButton) {
      const source = document.querySelector(copyButton.dataset.copy);
      if (!source) return;
      const text = "value" in source && source.value !== undefined ? source.value : source.textContent;
      try {
        await copyText(text.trim());
        const label = copyButton.querySelector(".label");
        const before = label ? label.textContent : null;
        copyButton.classList.add("copied");
        if (label) label.textContent = "Copied";
        copyButton.setAttribute("aria-label", "Copied");
        setTimeout(function () {
          copyButton.classList.remove("copied");
          if (label) label.textContent = before;
          copyButton.setAttribute("aria-label", "Copy");
        }, 1600);
      } catch (err) {
        console.error(err);
      }
      return;
    }

    // Mobile navigation drawer: the menu button toggles it, a click beside it closes it.
    const shell = document.querySelector(".shell");
    const toggle = event.target.closest("[data-nav-toggle]");
    if (toggle && shell) {
      const open = shell.classList.toggle("nav-open");
      toggle.setAttribute("aria-expanded", open ? "true" : "false");
      return;
    }
    if (shell && shell.classList.contains("nav-open") && !event.target.closest("#sidebar")) {
      shell.classList.remove("nav-open");
      document.querySelectorAll("[data-nav-toggle]").forEach((b) => b.setAttribute("aria-expanded", "false"));
      return;
    }

    // Links to a <details> element open it.
    const opener = event.target.closest("a[data-open-details]");
    if (opener) {
      const details = document.querySelector(opener.getAttribute("href"));
      if (details) details.open = true;
    }

    // Tabs: buttons with role=tab and aria-controls.
    const tab = event.target.closest('[role="tab"]');
    if (tab) {
      const list = tab.closest('[role="tablist"]');
      list.querySelectorAll('[role="tab"]').forEach(function (other) {
        const selected = other === tab;
        other.setAttribute("aria-selected", selected ? "true" : "false");
        const panel = document.getElementById(other.getAttribute("aria-controls"));
        if (panel) panel.hidden = !selected;
      });
    }
  });

  // Forms with data-confirm ask before submitting (delete, revoke).
  document.addEventListener("submit", function (event) {
    const form = event.target;
    if (form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
      event.preventDefault();
    }
  });

  // After a failed submit, bring the first field with an error into view.
  document.addEventListener("DOMContentLoaded", function () {
    const invalid = document.querySelector(".field.has-error input, .field.has-error select, .field.has-error textarea");
    if (invalid) invalid.focus({ preventScroll: false });
  });

  // Selects with data-autosubmit submit their form on change (organization switcher).
  document.addEventListener("change", function (event) {
    const select = event.target.closest("select[data-autosubmit]");
    if (select) select.form.requestSubmit();
  });
})();
