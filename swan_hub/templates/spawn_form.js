// Keeps the "Copy a URL for this configuration" link in step with the form and copies it.
// The URL starts a server with these options (JupyterHub reads `opt-` query arguments).
(function () {
  var link = document.getElementById("swan-config-url");
  var status = document.getElementById("swan-config-url-status");
  var fields = ["environment", "cpu", "memory", "gpu"];

  function configurationUrl() {
    var query = new URLSearchParams();
    fields.forEach(function (name) {
      var input = document.getElementById("swan-" + name);
      if (!input) return;
      var value = input.type === "checkbox" ? (input.checked ? "yes" : "no") : input.value;
      query.set("opt-" + name, value);
    });
    return window.location.origin + window.location.pathname + "?" + query.toString();
  }

  function refresh() {
    link.href = configurationUrl();
  }

  fields.forEach(function (name) {
    var input = document.getElementById("swan-" + name);
    if (input) input.addEventListener("change", refresh);
  });
  link.addEventListener("click", function (event) {
    event.preventDefault();
    refresh();
    if (!navigator.clipboard) {
      status.textContent = "Copy this link's address to share it.";
      return;
    }
    navigator.clipboard.writeText(link.href).then(
      function () { status.textContent = "Copied."; },
      function () { status.textContent = "Copy this link's address to share it."; }
    );
  });
  refresh();
})();
