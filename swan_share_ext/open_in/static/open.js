// The confirmation page of /swan/open: on "Open", POST the link to /swan/api/open and show the
// newline-delimited JSON events it streams, then go to the notebook.
"use strict";

(function () {
  const page = document.getElementById("swan-open");
  if (!page || page.dataset.state !== "confirm") {
    return;
  }
  const button = document.getElementById("open-confirm");
  const log = document.getElementById("open-log");
  const status = document.getElementById("open-status");
  const bar = document.getElementById("open-bar");
  const summary = document.getElementById("open-summary");
  const next = document.getElementById("open-continue");
  // Changes that touched the user's own edits are worth a look before moving on.
  const notable = new Set(["kept", "beside", "merged"]);
  let sawNotable = false;

  function line(text, kind) {
    const item = document.createElement("li");
    item.textContent = text;
    if (kind) {
      item.className = kind;
    }
    log.appendChild(item);
    item.scrollIntoView({ block: "nearest" });
  }

  function handle(event) {
    if (event.event === "step") {
      line(event.message);
    } else if (event.event === "progress") {
      bar.hidden = false;
      if (event.total) {
        bar.max = event.total;
        bar.value = event.received;
      }
    } else if (event.event === "file") {
      if (event.action !== "unchanged") {
        line(event.action + ": " + event.path + (event.message ? " (" + event.message + ")" : ""), event.action);
      }
      sawNotable = sawNotable || notable.has(event.action);
    } else if (event.event === "done") {
      remember();
      status.textContent = "Done";
      bar.hidden = true;
      next.href = event.url;
      if (event.summary) {
        summary.textContent = "Files: " + event.summary + ".";
        summary.hidden = false;
      }
      if (sawNotable) {
        next.textContent = "Continue to " + event.path;
        next.hidden = false;
      } else {
        window.location.assign(event.url);
      }
    } else if (event.event === "error") {
      const password = document.getElementById("open-password");
      bar.hidden = true;
      if (event.status === 401 && password) {
        // not a failure: the link wants its password, asked for plainly
        forget();
        status.textContent = password.value ? "That password is not right" : "This link asks for a password";
        status.className = "asks";
        line(password.value ? "Type the password again, then press Open." : "Type the password the link's owner gave you, then press Open.");
        button.disabled = false;
        password.focus();
        return;
      }
      status.textContent = "This link cannot be opened";
      status.className = "error";
      line(event.message, "error");
      if (password) {
        // another password may be tried
        button.disabled = false;
      }
    }
  }

  // A password that opened the link is remembered for the browser session (a session cookie
  // that only this page's path receives), so the same link is not asked for again.
  function rememberedName() {
    const link = JSON.parse(page.dataset.params).url || "";
    let hash = 5381;
    for (let i = 0; i < link.length; i++) {
      hash = ((hash * 33) ^ link.charCodeAt(i)) >>> 0;
    }
    return "swan-link-password-" + hash.toString(16);
  }

  function cookieAttributes(maxAge) {
    const secure = window.location.protocol === "https:" ? "; Secure" : "";
    return "; Path=" + window.location.pathname + "; SameSite=Strict" + maxAge + secure;
  }

  function remember() {
    const password = document.getElementById("open-password");
    if (password && password.value) {
      document.cookie = rememberedName() + "=" + encodeURIComponent(password.value) + cookieAttributes("");
    }
  }

  function forget() {
    document.cookie = rememberedName() + "=" + cookieAttributes("; Max-Age=0");
  }

  function remembered() {
    const name = rememberedName() + "=";
    const found = document.cookie.split("; ").find((c) => c.startsWith(name));
    return found ? decodeURIComponent(found.slice(name.length)) : "";
  }

  // The link's query, and the password typed for a password link (never part of the link).
  function body() {
    const password = document.getElementById("open-password");
    if (!password || !password.value) {
      return page.dataset.params;
    }
    return JSON.stringify(Object.assign(JSON.parse(page.dataset.params), { password: password.value }));
  }

  async function open() {
    button.disabled = true;
    document.getElementById("open-progress").hidden = false;
    let response;
    try {
      response = await fetch(page.dataset.api, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-XSRFToken": page.dataset.xsrf },
        body: body(),
      });
    } catch (err) {
      handle({ event: "error", message: "Your SWAN server did not answer (" + err + ")." });
      return;
    }
    if (!response.ok) {
      let message = response.status + " " + response.statusText;
      try {
        message = (await response.json()).message || message;
      } catch (err) {
        // not JSON: keep the status line
      }
      handle({ event: "error", message: message });
      return;
    }
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffered = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) {
        break;
      }
      buffered += decoder.decode(value, { stream: true });
      let newline;
      while ((newline = buffered.indexOf("\n")) >= 0) {
        const text = buffered.slice(0, newline).trim();
        buffered = buffered.slice(newline + 1);
        if (text) {
          handle(JSON.parse(text));
        }
      }
    }
  }

  const password = document.getElementById("open-password");
  if (password) {
    password.value = remembered();
  }
  button.addEventListener("click", open);
})();
