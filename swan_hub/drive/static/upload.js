// The drive page's uploads: files chosen with the form or dropped on the Files view (folders
// too, where the browser gives them), each with its progress bar and a Cancel button. A small
// file is one WebDAV PUT; a large one goes in parts through Nextcloud chunking v2 (MKCOL an
// upload folder, PUT numbered parts, MOVE its `.file` to the destination), each part retried
// with backoff, and an upload cut off (a reload, a closed tab) resumes from the parts the drive
// holds. Nothing is published over a file unless the user chose Replace: a new name is sent
// with `If-None-Match: *`, a replacement with `If-Match` of the file the user saw.
"use strict";

(function () {
  const drive = window.swanDrive;
  const form = document.getElementById("upload");
  const list = document.getElementById("uploads");
  if (!drive || !form || !list) return;
  const { root, here, headers, say, refusal, plural, joined, davUrl, request, reloadListing } = drive;

  const MiB = 1 << 20;
  // a file above `partsAbove` bytes goes in parts of `partSize` bytes
  const partSize = () => Number(root.dataset.partSize) || 8 * MiB;
  const partsAbove = () => Number(root.dataset.partsAbove) || 10 * MiB;
  const TRIES = 5; // sends of one part before the upload stops (it can be resumed later)
  const uploadsUrl = root.dataset.uploads;

  const sentences = {
    412: "“{}” was changed or made by someone else meanwhile; nothing was replaced. Upload it again to decide anew.",
  };

  // -- one request, as an XMLHttpRequest: progress and abort ------------------------------

  // Resolves to the status (0 when the connection broke off, -1 when cancelled).
  function send(method, url, body, extra, progress, job) {
    return new Promise((resolve) => {
      const xhr = new XMLHttpRequest();
      xhr.open(method, url);
      xhr.withCredentials = true;
      for (const [name, value] of Object.entries({ ...headers, ...extra })) xhr.setRequestHeader(name, value);
      if (progress) {
        xhr.upload.addEventListener("progress", (event) => {
          if (event.lengthComputable) progress(event.loaded);
        });
      }
      xhr.addEventListener("load", () => resolve(xhr.status));
      xhr.addEventListener("error", () => resolve(0));
      xhr.addEventListener("abort", () => resolve(-1));
      job.abort = () => xhr.abort();
      xhr.send(body === undefined ? null : body);
    });
  }

  const retryable = (status) => status === 0 || status === 408 || status === 429 || status >= 500;

  function pause(ms, job) {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      job.abort = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  // Sends until the drive answers something other than a broken connection or a 5xx, at most
  // TRIES times, waiting 1, 2, 4, 8 s between.
  async function persist(job, attempt) {
    for (let tries = 1; ; tries += 1) {
      const status = await attempt();
      if (job.cancelled) return -1;
      if (!retryable(status) || tries >= TRIES) return status;
      const wait = 1000 * 2 ** (tries - 1);
      job.outcome.textContent = "the drive did not take a part (" + (status || "connection broke off") + "); trying again in " + wait / 1000 + " s";
      say(job.name + ": " + job.outcome.textContent + ".");
      await pause(wait, job);
      if (job.cancelled) return -1;
      job.outcome.textContent = "";
    }
  }

  // -- what is at a path: nothing, a folder, or a file with its ETag ------------------------

  async function lookUp(path) {
    const reply = await request("PROPFIND", davUrl(path), { Depth: "0" });
    if (reply.status === 404) return { absent: true };
    if (reply.status !== 207) return { status: reply.status };
    const xml = new DOMParser().parseFromString(await reply.text(), "application/xml");
    const folder = xml.getElementsByTagNameNS("DAV:", "collection").length > 0;
    const tag = xml.getElementsByTagNameNS("DAV:", "getetag")[0];
    return { folder, etag: tag ? tag.textContent : "" };
  }

  // "data.csv" -> "data (2).csv", the first name not taken
  async function freeName(folder, name) {
    const dot = name.lastIndexOf(".");
    const [stem, ext] = dot > 0 ? [name.slice(0, dot), name.slice(dot)] : [name, ""];
    for (let n = 2; n < 1000; n += 1) {
      const candidate = stem + " (" + n + ")" + ext;
      if ((await lookUp(joined(folder, candidate))).absent) return candidate;
    }
    return "";
  }

  const conflictDialog = document.getElementById("upload-conflict-dialog");

  // "replace", "keep" or "skip" (Escape skips)
  function askConflict(name) {
    if (!conflictDialog) return Promise.resolve("skip");
    conflictDialog.querySelector(".what").textContent = "There is already a file named “" + name + "” there.";
    conflictDialog.returnValue = "";
    conflictDialog.showModal();
    return new Promise((resolve) => {
      conflictDialog.addEventListener("close", () => resolve(conflictDialog.returnValue || "skip"), { once: true });
    });
  }

  // The headers that publish `job.name` in `job.folder` without overwriting what the user did
  // not choose to replace; null when the file is skipped (the reason is in job.outcome).
  async function condition(job) {
    const found = await lookUp(joined(job.folder, job.name));
    if (found.absent) return { "If-None-Match": "*" };
    if (found.status) return fail(job, refusal(found.status, job.name));
    if (found.folder) return fail(job, refusal(412, job.name));
    const choice = await askConflict(job.name);
    if (choice === "replace") return found.etag ? { "If-Match": found.etag } : { "If-None-Match": "*" };
    if (choice === "keep") {
      const name = await freeName(job.folder, job.name);
      if (!name) return fail(job, refusal(412, job.name));
      job.name = name;
      job.label.textContent = joined(job.shownFolder, name);
      return { "If-None-Match": "*" };
    }
    job.outcome.textContent = "skipped: the file there stays as it is";
    job.item.classList.add("skipped");
    return null;
  }

  function fail(job, sentence) {
    job.outcome.textContent = "not uploaded: " + sentence;
    job.item.classList.add("failed");
    return null;
  }

  // the same, where a sending function answers whether the file was uploaded
  function stop(job, sentence) {
    fail(job, sentence);
    return false;
  }

  function progressed(job, done) {
    job.bar.value = Math.min(done, job.bar.max);
  }

  // -- one PUT ------------------------------------------------------------------------------

  async function sendWhole(job, extra) {
    const url = davUrl(joined(job.folder, job.name));
    const status = await send("PUT", url, job.file, extra, (loaded) => progressed(job, loaded), job);
    if (job.cancelled) return false;
    if (status >= 200 && status < 300) return true;
    if (status === 0) return stop(job, "the connection to the drive broke off. Nothing was changed; upload it again.");
    return stop(job, refusal(status, job.name, sentences));
  }

  // -- in parts: Nextcloud chunking v2 -----------------------------------------------------

  function memoryKey(job) {
    const { file } = job;
    return "swan-upload\n" + joined(job.folder, file.name) + "\n" + file.size + "\n" + file.lastModified;
  }

  const remembered = {
    get: (key) => window.localStorage.getItem(key),
    set: (key, id) => window.localStorage.setItem(key, id),
    forget: (key) => window.localStorage.removeItem(key),
  };

  // the sizes of the parts the drive holds of an upload, by part number; null if it has none
  async function partsHeld(id) {
    const reply = await request("PROPFIND", uploadsUrl + encodeURIComponent(id) + "/", { Depth: "1" });
    if (reply.status !== 207) return null;
    const xml = new DOMParser().parseFromString(await reply.text(), "application/xml");
    const held = new Map();
    for (const response of xml.getElementsByTagNameNS("DAV:", "response")) {
      const href = response.getElementsByTagNameNS("DAV:", "href")[0].textContent;
      const name = decodeURIComponent(href.replace(/\/$/, "").split("/").pop());
      const length = response.getElementsByTagNameNS("DAV:", "getcontentlength")[0];
      if (/^\d+$/.test(name) && length) held.set(Number(name), Number(length.textContent));
    }
    return held;
  }

  function newId() {
    const bytes = crypto.getRandomValues(new Uint8Array(12));
    return "web-" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  async function sendInParts(job, extra) {
    const { file } = job;
    const size = partSize();
    const count = Math.ceil(file.size / size);
    const destination = new URL(davUrl(joined(job.folder, job.name)), window.location.href).href;
    const key = memoryKey(job);
    let id = remembered.get(key);
    let held = id ? await partsHeld(id) : null;
    if (id && held) job.outcome.textContent = "resuming";
    if (!held) {
      id = newId();
      const made = await persist(job, () => send("MKCOL", uploadsUrl + id, undefined, { Destination: destination }, null, job));
      if (job.cancelled) return false;
      if (made < 200 || made >= 300) return stop(job, refusal(made, job.name, sentences));
      remembered.set(key, id);
      held = new Map();
    }
    job.id = id;
    job.key = key;
    const folderUrl = uploadsUrl + encodeURIComponent(id) + "/";
    let done = 0;
    for (let index = 1; index <= count; index += 1) {
      const start = (index - 1) * size;
      const part = file.slice(start, Math.min(start + size, file.size));
      if (held.get(index) === part.size) {
        done += part.size;
        progressed(job, done);
        continue;
      }
      const name = String(index).padStart(5, "0");
      const status = await persist(job, () =>
        send("PUT", folderUrl + name, part, { Destination: destination }, (loaded) => progressed(job, done + loaded), job),
      );
      if (job.cancelled) return false;
      if (status < 200 || status >= 300) {
        const why = status === 0 ? "the connection to the drive broke off" : refusal(status, job.name, sentences);
        return stop(job, why + " Upload the same file again to go on from part " + index + " of " + count + ".");
      }
      done += part.size;
      progressed(job, done);
      say("Uploading " + job.name + ": part " + index + " of " + count + " sent.");
    }
    const publish = {
      ...extra,
      Destination: destination,
      "OC-Total-Length": String(file.size),
      "X-OC-Mtime": String(Math.floor(file.lastModified / 1000)),
    };
    let answerLost = false; // a MOVE the drive may have done, its answer lost on the way
    const status = await persist(job, async () => {
      const sent = await send("MOVE", folderUrl + ".file", undefined, publish, null, job);
      answerLost = answerLost || sent === 0;
      return sent;
    });
    if (job.cancelled) return false;
    if (status >= 200 && status < 300) {
      remembered.forget(key);
      return true;
    }
    if (status === 0) return stop(job, "the connection to the drive broke off. Upload the same file again to finish.");
    if (status === 404 && answerLost) {
      // the parts are gone: the drive most likely put the file in place before the answer was lost
      remembered.forget(key);
      await reloadListing();
      return stop(job, "the connection broke off as the drive was putting the file in place: it is probably there; the list shows what is.");
    }
    // refused for good (the file changed meanwhile, no space): the parts go too
    await request("DELETE", folderUrl);
    remembered.forget(key);
    return stop(job, refusal(status, job.name, sentences));
  }

  async function cancel(job) {
    job.cancelled = true;
    if (job.abort) job.abort();
    job.cancel.disabled = true;
    if (job.id) {
      await request("DELETE", uploadsUrl + encodeURIComponent(job.id) + "/");
      remembered.forget(job.key);
    }
    job.outcome.textContent = "cancelled: nothing was changed";
    job.item.classList.add("failed");
  }

  // -- the list of uploads, and the queue ------------------------------------------------------

  const queue = [];
  let running = false;
  let tally = { uploaded: 0, total: 0 };

  function enlist(file, folder) {
    const item = document.createElement("li");
    const label = document.createElement("span");
    const shownFolder = folder === here ? "" : folder.slice(here ? here.length + 1 : 0);
    label.textContent = joined(shownFolder, file.name);
    const bar = document.createElement("progress");
    bar.max = Math.max(file.size, 1);
    bar.value = 0;
    bar.setAttribute("aria-label", "Upload of " + file.name);
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = "Cancel";
    button.setAttribute("aria-label", "Cancel the upload of " + file.name);
    const outcome = document.createElement("span");
    outcome.className = "outcome";
    item.append(label, " ", bar, " ", button, " ", outcome);
    list.appendChild(item);
    const job = { file, folder, shownFolder, name: file.name, item, label, bar, outcome, cancel: button };
    button.addEventListener("click", () => cancel(job).catch((e) => say(String(e.message || e))));
    queue.push(job);
    tally.total += 1;
  }

  async function upload(job) {
    if (job.cancelled) return false;
    const extra = await condition(job);
    if (!extra || job.cancelled) return false;
    const inParts = uploadsUrl && job.file.size > partsAbove();
    const ok = await (inParts ? sendInParts(job, extra) : sendWhole(job, extra));
    if (!ok || job.cancelled) return false;
    job.bar.value = job.bar.max;
    job.outcome.textContent = "uploaded";
    job.item.classList.add("done");
    return true;
  }

  async function pump() {
    if (running) return;
    running = true;
    try {
      for (let job = queue.shift(); job; job = queue.shift()) {
        say("Uploading " + (tally.uploaded + 1) + " of " + tally.total + ": " + job.name);
        if (await upload(job)) tally.uploaded += 1;
        job.cancel.disabled = true;
      }
      const { uploaded, total } = tally;
      tally = { uploaded: 0, total: 0 };
      if (uploaded) await reloadListing();
      say(
        uploaded === total
          ? "Uploaded " + plural(uploaded, "file") + "."
          : "Uploaded " + uploaded + " of " + plural(total, "file") + "; the list says why the others were not.",
      );
    } finally {
      running = false;
    }
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const files = Array.from(form.elements.file.files);
    if (!files.length) return say("Choose the files to upload first.");
    if (!running) list.replaceChildren();
    for (const file of files) enlist(file, here);
    form.reset();
    pump().catch((e) => say(String(e.message || e)));
  });

  // -- drag and drop: anywhere on the Files view, or onto a folder's row ----------------------

  function folderRow(target) {
    const row = target.closest && target.closest("tr[data-path]");
    const link = row && row.querySelector("td a");
    return link && link.textContent.endsWith("/") ? row : null;
  }

  let marked = null;
  function mark(row) {
    if (marked === row) return;
    if (marked) marked.classList.remove("drop-here");
    marked = row;
    if (row) row.classList.add("drop-here");
    const into = row ? row.dataset.path : here;
    root.dataset.dropLabel = "Drop to upload into " + (into ? "“" + into + "”" : "the top of your space");
  }

  const carriesFiles = (event) => event.dataTransfer && Array.from(event.dataTransfer.types).includes("Files");

  root.addEventListener("dragover", (event) => {
    if (!carriesFiles(event)) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = "copy";
    root.classList.add("dropping");
    mark(folderRow(event.target));
  });

  root.addEventListener("dragleave", (event) => {
    if (event.relatedTarget && root.contains(event.relatedTarget)) return;
    root.classList.remove("dropping");
    mark(null);
  });

  // The files below a dropped folder, each with the folder it goes into; folders are made on
  // the way (one that exists already is fine).
  async function walk(entry, folder) {
    if (entry.isFile) {
      const file = await new Promise((resolve, reject) => entry.file(resolve, reject));
      enlist(file, folder);
      return;
    }
    const inside = joined(folder, entry.name);
    const made = await request("MKCOL", davUrl(inside));
    if (!made.ok && made.status !== 405) throw new Error(refusal(made.status, entry.name));
    const reader = entry.createReader();
    for (;;) {
      const batch = await new Promise((resolve, reject) => reader.readEntries(resolve, reject));
      if (!batch.length) break;
      for (const child of batch) await walk(child, inside);
    }
  }

  root.addEventListener("drop", (event) => {
    if (!carriesFiles(event)) return;
    event.preventDefault();
    const row = folderRow(event.target);
    const folder = row ? row.dataset.path : here;
    root.classList.remove("dropping");
    mark(null);
    // entries must be taken while the event lasts; their contents are read after
    const entries = [];
    const files = [];
    for (const item of Array.from(event.dataTransfer.items || [])) {
      if (item.kind !== "file") continue;
      const entry = item.webkitGetAsEntry ? item.webkitGetAsEntry() : null;
      if (entry && entry.isDirectory) entries.push(entry);
      else files.push(item.getAsFile());
    }
    if (!event.dataTransfer.items) files.push(...Array.from(event.dataTransfer.files));
    (async () => {
      if (!running) list.replaceChildren();
      for (const file of files) if (file) enlist(file, folder);
      for (const entry of entries) await walk(entry, folder);
      if (!queue.length) return say("Nothing to upload was dropped.");
      await pump();
    })().catch((e) => say(String(e.message || e)));
  });
})();
