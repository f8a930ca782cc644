// The link generator page of the swan-links hub service: asks api/links for the link and badge.
"use strict";

(function () {
  const form = document.getElementById("link-form");
  const fields = ["url", "branch", "open", "path", "owner"];

  function source() {
    return form.querySelector("input[name=source]:checked").value;
  }

  function showFields() {
    const kind = source();
    form.querySelectorAll("label[class]").forEach(function (label) {
      label.hidden = !label.classList.contains("for-" + kind);
    });
  }

  function query() {
    const kind = source();
    const params = new URLSearchParams();
    fields.forEach(function (name) {
      const input = form.elements[name];
      if (!input.closest("label").hidden && input.value.trim()) {
        params.set(name, input.value.trim());
      }
    });
    if (kind === "git") {
      params.set("kind", "git");
    }
    return params;
  }

  async function makeLink(event) {
    event.preventDefault();
    const error = document.getElementById("link-error");
    const result = document.getElementById("link-result");
    error.hidden = true;
    const response = await fetch("api/links?" + query().toString());
    const body = await response.json();
    if (!response.ok) {
      error.textContent = body.message || "The link could not be made.";
      error.hidden = false;
      result.hidden = true;
      return;
    }
    document.getElementById("link-url").value = body.link;
    document.getElementById("link-markdown").value = body.markdown;
    document.getElementById("link-html").value = body.html;
    document.getElementById("link-open").href = body.link;
    document.getElementById("link-preview").href = body.link;
    result.hidden = false;
  }

  form.querySelectorAll("input[name=source]").forEach(function (radio) {
    radio.addEventListener("change", showFields);
  });
  form.addEventListener("submit", makeLink);
  showFields();
})();
