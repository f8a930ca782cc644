// The drive page's behaviour, no framework. Every change goes to the drive's own endpoints with
// the page's request token (cookie-authenticated writes need it): uploads (upload.js, which
// uses the helpers this script gives it as `window.swanDrive`), new
// folders by MKCOL, rename and move by MOVE (never over an existing name), delete by DELETE (the
// drive keeps what is deleted in the trash), share accept/decline by OCS; on the trash page,
// restore by MOVE to the trashbin's restore folder and delete forever by DELETE; on a file's
// versions page, restore by MOVE to the versions' restore/target. A refused change
// is said in the status line in words; a done one reloads the table.
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

  // -- WebDAV ---------------------------------------------------------------------------------

  function davUrl(path) {
    return root.dataset.dav + path.split("/").map(encodeURIComponent).join("/");
  }

  function joined(folder, name) {
    return folder ? folder + "/" + name : name;
  }

  function baseName(path) {
    return path.replace(/\/$/, "").split("/").pop();
  }

  function parentOf(path) {
    const parts = path.replace(/\/$/, "").split("/");
    parts.pop();
    return parts.join("/");
  }

  // What a refused request means, in words, by its status; `{}` is the item it was about.
  const taken = "There is already a file or folder named “{}” there. Choose another name.";
  const full = "There is not enough space left in your drive for “{}”.";
  const REFUSALS = {
    412: taken,
    405: taken,
    403: "You may not change “{}” there: the folder is read-only for you, or the name is not allowed.",
    404: "“{}” is not there any more. Reload the page to see the folder as it is.",
    409: "The folder for “{}” does not exist. Check the folder's path.",
    423: "“{}” is locked by another program. Try again later.",
    400: "“{}” cannot go there (a folder cannot go into itself, and names may not hold “/”).",
    413: full,
    507: full,
  };

  // `own` holds sentences that say more for one kind of request; its `other` replaces the
  // sentence for a status nobody foresaw.
  function refusal(status, what, own = {}) {
    const other = own.other || "The drive could not change “{}” (error {status}). Nothing was changed.";
    const sentence = own[status] || REFUSALS[status] || other;
    return sentence.replace("{status}", () => status).replace("{}", () => what);
  }

  function dav(method, path, extra) {
    return request(method, davUrl(path), extra);
  }

  async function request(method, url, extra) {
    let reply;
    try {
      reply = await fetch(url, {
        method,
        headers: { ...headers, ...(extra || {}) },
        credentials: "same-origin",
      });
    } catch (error) {
      return { ok: false, status: 0 };
    }
    return reply;
  }

  // MOVE without overwriting: 412 when the name is taken.
  function move(from, to) {
    const destination = new URL(davUrl(to), window.location.href).href;
    return dav("MOVE", from, { Destination: destination, Overwrite: "F" });
  }

  async function exists(path) {
    const reply = await dav("PROPFIND", path, { Depth: "0" });
    return reply.status !== 404;
  }

  // A name the user typed: one part of a path, none of "." and "..".
  function badName(name) {
    if (!name) return "Type a name.";
    if (name.includes("/")) return "A name may not hold “/”.";
    if (name === "." || name === "..") return "“" + name + "” is not a name a file or folder can have.";
    return "";
  }

  // -- the table: reloaded in place, so that the status line and the uploads stay -----------

  async function reloadListing() {
    const reply = await fetch(window.location.href, { credentials: "same-origin" });
    if (!reply.ok) {
      window.location.reload();
      return;
    }
    const fresh = new DOMParser().parseFromString(await reply.text(), "text/html");
    for (const selector of ["div.table", "nav.pages", "p.current"]) {
      const now = root.querySelector(selector);
      const then = fresh.querySelector("#drive " + selector);
      if (now && then) now.replaceWith(document.adoptNode(then));
      else if (now) now.remove();
      else if (then) root.appendChild(document.adoptNode(then));
    }
    selectionChanged();
  }

  // -- selection ------------------------------------------------------------------------------

  const buttons = {
    rename: document.getElementById("rename"),
    move: document.getElementById("move"),
    remove: document.getElementById("delete"),
    restore: document.getElementById("restore"),
    purge: document.getElementById("purge"),
    versions: document.getElementById("versions"),
  };

  // the rows the actions may change: a folder's entries (data-path) or the trash's (data-item)
  function boxes() {
    return Array.from(root.querySelectorAll("tbody tr:is([data-path], [data-item]) input[type=checkbox]"));
  }

  function selectedRows() {
    return boxes()
      .filter((box) => box.checked)
      .map((box) => box.closest("tr"));
  }

  function selected() {
    return selectedRows().map((row) => row.dataset.path);
  }

  function selectionChanged() {
    const count = selectedRows().length;
    if (buttons.rename) buttons.rename.disabled = count !== 1;
    if (buttons.move) buttons.move.disabled = count === 0;
    if (buttons.remove) buttons.remove.disabled = count === 0;
    if (buttons.restore) buttons.restore.disabled = count === 0;
    if (buttons.purge) buttons.purge.disabled = count === 0;
    if (buttons.versions) {
      // a folder's name ends in "/" in its row; only files have versions
      const rows = selectedRows();
      const link = rows.length === 1 && rows[0].querySelector("td a");
      buttons.versions.disabled = !link || link.textContent.endsWith("/");
    }
    const all = document.getElementById("select-all");
    if (all) {
      const total = boxes().length;
      all.checked = total > 0 && count === total;
      all.indeterminate = count > 0 && count < total;
    }
  }

  root.addEventListener("change", (event) => {
    if (event.target.id === "select-all") {
      for (const box of boxes()) box.checked = event.target.checked;
    }
    if (event.target.type === "checkbox") selectionChanged();
  });

  // -- dialogs: a form with method=dialog; Escape or Cancel closes without a change ----------

  function ask(id, prepare, act) {
    const dialog = document.getElementById(id);
    if (!dialog) return;
    const form = dialog.querySelector("form");
    dialog.addEventListener("close", () => {
      if (dialog.returnValue !== "ok") return;
      act(form).catch((error) => say(String(error.message || error)));
    });
    return () => {
      form.reset();
      prepare(dialog, form);
      dialog.returnValue = "";
      dialog.showModal();
    };
  }

  function plural(count, one) {
    return count + " " + one + (count === 1 ? "" : "s");
  }

  // Runs `change` on each path; the table is reloaded when anything changed, and the first
  // refusal is said.
  async function each(paths, change, done) {
    let changed = 0;
    for (const path of paths) {
      const reason = await change(path);
      if (reason) {
        if (changed) await reloadListing();
        say(reason + (changed ? " " + plural(changed, "other item") + " did change." : ""));
        return;
      }
      changed += 1;
    }
    await reloadListing();
    say(done);
  }

  const here = root.dataset.dir;

  const newFolder = ask("new-folder-dialog", () => {}, async (form) => {
    const name = form.elements.name.value.trim();
    const bad = badName(name);
    if (bad) return say(bad);
    const reply = await dav("MKCOL", joined(here, name));
    if (!reply.ok) return say(refusal(reply.status, name));
    await reloadListing();
    say("Made the folder “" + name + "”.");
  });

  const rename = ask(
    "rename-dialog",
    (dialog, form) => {
      form.elements.name.value = baseName(selected()[0] || "");
    },
    async (form) => {
      const path = selected()[0];
      const name = form.elements.name.value.trim();
      const bad = badName(name);
      if (bad) return say(bad);
      if (!path || name === baseName(path)) return say("The name stays as it was.");
      const reply = await move(path, joined(parentOf(path), name));
      if (!reply.ok) return say(refusal(reply.status, name));
      await reloadListing();
      say("Renamed “" + baseName(path) + "” to “" + name + "”.");
    },
  );

  const moveTo = ask(
    "move-dialog",
    (dialog, form) => {
      dialog.querySelector(".what").textContent = "Move " + plural(selected().length, "item") + " into the folder:";
      form.elements.folder.value = here;
    },
    async (form) => {
      const folder = form.elements.folder.value.trim().replace(/^\/+|\/+$/g, "");
      const paths = selected();
      if (folder.split("/").some((part) => part === "." || part === "..")) {
        return say("Type the folder's path from the top of your space, without “.” or “..”.");
      }
      const movable = paths.filter((path) => parentOf(path) !== folder);
      if (!movable.length) return say("Those items are in that folder already.");
      // Check every name first, so that a taken one stops the move before anything moved.
      for (const path of movable) {
        if (await exists(joined(folder, baseName(path)))) {
          return say(refusal(412, baseName(path)) + " Nothing was moved.");
        }
      }
      await each(
        movable,
        async (path) => {
          const reply = await move(path, joined(folder, baseName(path)));
          return reply.ok ? "" : refusal(reply.status, baseName(path));
        },
        "Moved " + plural(movable.length, "item") + " to “" + (folder || "the top of your space") + "”.",
      );
    },
  );

  const remove = ask(
    "delete-dialog",
    (dialog) => {
      dialog.querySelector(".what").textContent =
        "Move " + plural(selected().length, "item") + " to the trash? What is in the trash can be restored.";
    },
    async () => {
      const paths = selected();
      await each(
        paths,
        async (path) => {
          const reply = await dav("DELETE", path);
          return reply.ok ? "" : refusal(reply.status, baseName(path));
        },
        "Moved " + plural(paths.length, "item") + " to the trash.",
      );
    },
  );

  for (const [id, open] of [
    ["new-folder", newFolder],
    ["rename", rename],
    ["move", moveTo],
    ["delete", remove],
  ]) {
    const button = document.getElementById(id);
    if (button && open) button.addEventListener("click", open);
  }

  // -- the trash: restore (back where it was, or beside what took its place), delete forever --

  const trashUrl = root.dataset.trash;
  const restoreUrl = root.dataset.restore;
  const conflict = document.getElementById("conflict");
  let conflicted = null; // the item whose place was taken: {item, name, folder}

  function trashItem(row) {
    return { item: row.dataset.item, name: row.dataset.name, folder: row.dataset.folder };
  }

  function where(folder) {
    return folder ? "“" + folder + "”" : "the top of your space";
  }

  // The name the drive gives an item restored beside what took its place.
  function restoredName(name) {
    const dot = name.lastIndexOf(".");
    return dot > 0 ? name.slice(0, dot) + " (restored)" + name.slice(dot) : name + " (restored)";
  }

  function offerRenamed(item) {
    conflicted = item;
    if (conflict) conflict.hidden = !item;
  }

  // MOVE to .../restore/<name>; with `beside`, without Overwrite: F, so that a taken place
  // makes the drive restore the item as "<name> (restored)". Returns a refusal, or "".
  async function restore(item, beside) {
    const destination = new URL(restoreUrl + encodeURIComponent(item.name), window.location.href).href;
    const extra = { Destination: destination };
    if (!beside) extra.Overwrite = "F";
    const reply = await request("MOVE", trashUrl + encodeURIComponent(item.item), extra);
    if (reply.ok) return "";
    if (reply.status === 412) return "taken";
    return refusal(reply.status, item.name, {
      409: "There is already “" + restoredName(item.name) + "” at " + where(item.folder) + " too. Rename or move it, then restore again.",
      404: "“{}” is not in the trash any more. Reload the page to see the trash as it is.",
      507: "There is not enough space left in your drive to restore “{}”.",
      other: "The drive could not restore “{}” (error {status}). Nothing was changed.",
    });
  }

  async function restoreAll(items) {
    offerRenamed(null);
    let restored = 0;
    for (const item of items) {
      const reason = await restore(item, false);
      if (reason) {
        await reloadListing();
        const others = restored ? " " + plural(restored, "other item") + " did come back." : "";
        if (reason !== "taken") return say(reason + others);
        say(
          "There is already a file or folder named “" + item.name + "” at " + where(item.folder) +
            "; restore it under another name?" + others,
        );
        return offerRenamed(item);
      }
      restored += 1;
    }
    await reloadListing();
    say(
      items.length === 1
        ? "Restored “" + items[0].name + "” to " + where(items[0].folder) + "."
        : "Restored " + plural(items.length, "item") + " to where they were.",
    );
  }

  async function restoreBeside() {
    const item = conflicted;
    offerRenamed(null);
    if (!item) return;
    const reason = await restore(item, true);
    await reloadListing();
    if (reason === "taken") return say("The drive could not restore “" + item.name + "” beside what took its place.");
    if (reason) return say(reason);
    say("Restored “" + item.name + "” as “" + restoredName(item.name) + "” at " + where(item.folder) + ".");
  }

  let purging = [];

  const purge = ask(
    "purge-dialog",
    (dialog) => {
      const what = purging.length === 1 ? "“" + purging[0].name + "”" : plural(purging.length, "item");
      dialog.querySelector(".what").textContent = "Delete " + what + " forever? This cannot be undone.";
    },
    async () => {
      offerRenamed(null);
      const items = purging;
      await each(
        items,
        async (item) => {
          const reply = await request("DELETE", trashUrl + encodeURIComponent(item.item));
          if (reply.ok) return "";
          return refusal(reply.status, item.name, {
            404: "“{}” is not in the trash any more.",
            other: "The drive could not delete “{}” (error {status}).",
          });
        },
        "Deleted " + (items.length === 1 ? "“" + items[0].name + "”" : plural(items.length, "item")) + " forever.",
      );
    },
  );

  if (trashUrl) {
    if (buttons.restore) {
      buttons.restore.addEventListener("click", () => restoreAll(selectedRows().map(trashItem)));
    }
    if (buttons.purge && purge) {
      buttons.purge.addEventListener("click", () => {
        purging = selectedRows().map(trashItem);
        purge();
      });
    }
    root.addEventListener("click", (event) => {
      const button = event.target.closest("tr[data-item] button");
      if (button) {
        const item = trashItem(button.closest("tr"));
        if (button.classList.contains("restore")) restoreAll([item]).catch((e) => say(String(e.message || e)));
        else if (purge) {
          purging = [item];
          purge();
        }
        return;
      }
      if (event.target.id === "restore-renamed") restoreBeside().catch((e) => say(String(e.message || e)));
      if (event.target.id === "restore-cancel") {
        if (conflicted) say("“" + conflicted.name + "” stays in the trash.");
        offerRenamed(null);
      }
    });
  }

  // -- versions: the Files page's button opens a file's page; there, Restore -------------------

  if (buttons.versions) {
    buttons.versions.addEventListener("click", () => {
      const path = selected()[0];
      if (path) window.location.assign(root.dataset.versions + "?path=" + encodeURIComponent(path));
    });
  }

  const versionsUrl = root.dataset.versionsDav;
  if (versionsUrl) {
    // MOVE to .../restore/target, as Nextcloud restores: the drive keeps the current content
    // as a version before it puts this one back.
    async function restoreVersion(row) {
      const destination = new URL(root.dataset.restore, window.location.href).href;
      const reply = await request("MOVE", versionsUrl + encodeURIComponent(row.dataset.version), {
        Destination: destination,
      });
      const when = row.dataset.when;
      if (!reply.ok) {
        await reloadListing();
        return say(
          refusal(reply.status, "the version of " + when, {
            404: "The version of " + when + " is not there any more; the list shows what is.",
            507: "There is not enough space left in your drive to restore {}.",
            423: "The file is locked by another program. Try again later.",
            other: "The drive could not restore {} (error {status}). Nothing was changed.",
          }),
        );
      }
      await reloadListing();
      say("Restored the version of " + when + ". What the file held before is now among its versions.");
    }

    root.addEventListener("click", (event) => {
      const button = event.target.closest("tr[data-version] button.restore");
      if (button) restoreVersion(button.closest("tr")).catch((e) => say(String(e.message || e)));
    });
  }

  // -- shares waiting for an answer ----------------------------------------------------------

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

  // -- log out: the drive's session, then the hub's ------------------------------------------

  const logout = document.getElementById("logout");
  if (logout) {
    logout.addEventListener("click", async () => {
      const reply = await fetch(root.dataset.logout, { method: "POST", headers, credentials: "same-origin" });
      if (!reply.ok) return say("The drive could not log you out (error " + reply.status + ").");
      window.location.assign(logout.dataset.next);
    });
  }

  window.swanDrive = { root, here, headers, say, refusal, plural, joined, davUrl, request, reloadListing };

  selectionChanged();
})();
