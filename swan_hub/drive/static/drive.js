// The drive page's behaviour: uploads by WebDAV PUT and share accept/decline by OCS, both sent
// with the page's request token (cookie-authenticated writes need it). No framework.
"use strict";

(function () {
  const root = document.getElementById("drive");
  if (!root) return;
  const token = root.dataset.requesttoken;
  const status = document.getElementById("status");
  const headers = { requesttoken: token, "OCS-APIRequest": "true" };

  function say(text) {
    if (status) status.textContent = text;
  }

  async function upload(file) {
    const dir = root.dataset.dir ? root.dataset.dir + "/" : "";
    const url = root.dataset.dav + (dir + file.name).split("/").map(encodeURIComponent).join("/");
    const reply = await fetch(url, { method: "PUT", body: file, headers, credentials: "same-origin" });
    if (!reply.ok) throw new Error(file.name + ": " + reply.status + " " + (await reply.text()));
  }

  const form = document.getElementById("upload");
  if (form) {
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const files = Array.from(form.elements.file.files);
      try {
        for (const [i, file] of files.entries()) {
          say("Uploading " + (i + 1) + " of " + files.length + ": " + file.name);
          await upload(file);
        }
        say("Uploaded.");
        window.location.reload();
      } catch (error) {
        say(String(error.message || error));
      }
    });
  }

  async function answer(id, method) {
    const url = root.dataset.ocs + "/shares/pending/" + encodeURIComponent(id) + "?format=json";
    const reply = await fetch(url, { method, headers, credentials: "same-origin" });
    if (!reply.ok) throw new Error("The share could not be updated (" + reply.status + ")");
    window.location.reload();
  }

  root.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-accept], button[data-decline]");
    if (!button) return;
    const accept = button.dataset.accept;
    answer(accept || button.dataset.decline, accept ? "POST" : "DELETE").catch((e) => say(e.message));
  });
})();
