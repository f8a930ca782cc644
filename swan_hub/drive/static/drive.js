// The drive page's behaviour, no framework. Every change goes to the drive's own endpoints with
// the page's request token (cookie-authenticated writes need it): uploads (upload.js, which
// uses the helpers this script gives it as `window.swanDrive`), new
// folders by MKCOL, rename and move by MOVE (never over an existing name), delete by DELETE (the
// drive keeps what is deleted in the trash), share accept/decline and unshare by OCS; on the trash page,
// restore by MOVE to the trashbin's restore folder and delete forever by DELETE; on a file's
// versions page, restore by MOVE to the versions' restore/target; the share dialog makes,
// changes and removes shares and links by OCS, and so do the Shared by me and Links views (a
// share's permission; a link's password, expiry and visitors' rights). A refused change
// is said in the status line in words; a done one reloads the table.
"use strict";

// Until every script of the page has run, its controls take no clicks (drive.css), so a click
// that comes early waits for them instead of doing nothing. Deferred scripts all run before
// DOMContentLoaded.
document.addEventListener("DOMContentLoaded", () => document.body.classList.add("scripted"));

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

  async function request(method, url, extra, body) {
    let reply;
    try {
      reply = await fetch(url, {
        method,
        headers: { ...headers, ...(extra || {}) },
        credentials: "same-origin",
        body,
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
    for (const selector of ["div.table", "#invites", "nav.pages", "p.current", "section.pending"]) {
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
    share: document.getElementById("share"),
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
    if (buttons.share) buttons.share.disabled = count !== 1;
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

  // -- shares: accept or decline one received, unshare one given or a link -------------------

  const SHARE_REFUSALS = {
    404: "The share of “{}” is not there any more; the list now shows what is.",
    403: "Only the owner of “{}” can change its share.",
    other: "The drive could not change the share of “{}” (error {status}). Nothing was changed.",
  };

  async function changeShare(method, path, name, done) {
    const reply = await ocs(method, path);
    await reloadListing();
    say(reply.ok ? done : refusal(reply.status, name, SHARE_REFUSALS));
  }

  root.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-accept], button[data-decline], tr[data-share] button.unshare");
    if (!button) return;
    const holder = button.closest("[data-name]");
    const name = holder ? holder.dataset.name : "the item";
    let change;
    if (button.dataset.accept) {
      change = changeShare("POST", button.dataset.accept, name, "Accepted “" + name + "”: it is in your Shared folder.");
    } else if (button.dataset.decline) {
      change = changeShare("DELETE", button.dataset.decline, name, "Declined “" + name + "”.");
    } else {
      const row = button.closest("tr");
      change = changeShare("DELETE", "/shares/" + encodeURIComponent(row.dataset.share), name,
        "“" + name + "” is no longer shared that way.");
    }
    change.catch((e) => say(String(e.message || e)));
  });

  // -- the share dialog: people, groups and users of other sites; public links -------------

  // An OCS request with a form; the reply's status, its data and the drive's own sentence.
  async function ocs(method, path, form) {
    const body = form ? new URLSearchParams(form) : undefined;
    const url = root.dataset.ocs + path + (path.includes("?") ? "&" : "?") + "format=json";
    const reply = await request(method, url, {}, body);
    let doc = null;
    try {
      doc = await reply.json();
    } catch (error) {
      doc = null;
    }
    const meta = (doc && doc.ocs && doc.ocs.meta) || {};
    return { ok: reply.ok, status: reply.status, data: doc && doc.ocs && doc.ocs.data, message: meta.message || "" };
  }

  const shareDialog = document.getElementById("share-dialog");
  let sharing = null; // {path, name, folder}
  let sharees = new Map(); // what the last search found: shareWith -> shareType

  function permissionOf(share) {
    if (!(share.permissions & 1)) return "upload only";
    return share.permissions & 6 ? "can edit" : "view only";
  }

  // A link as the dialog's list and the link editor's sentences say it (never its password).
  function linkFacts(share) {
    return [
      share.share_with ? "password" : "no password",
      share.expiration ? "expires " + share.expiration.slice(0, 10) : "no expiry",
      permissionOf(share),
    ].join(", ");
  }

  function tell(text) {
    shareDialog.querySelector(".refusal").textContent = text;
  }

  // The drive's refusal of an OCS request in a sentence: ours where we know better, else the
  // drive's own words.
  function ocsRefusal(reply, what, own = {}) {
    const told = reply.message ? reply.message.replace(/\.?$/, ".") + " " : "";
    return refusal(reply.status, what, {
      400: told + "Nothing was changed.",
      403: told + "Nothing was changed.",
      other: "The drive could not change “{}” (error {status}). " + told + "Nothing was changed.",
      ...(typeof own === "function" ? own(told) : own),
    });
  }

  function shareRefusal(reply, what, own = {}) {
    return ocsRefusal(reply, what, (told) => ({
      404: "“{}” is not there any more, or that share is gone. Nothing was changed.",
      other: "The drive could not share “{}” (error {status}). " + told + "Nothing was changed.",
      ...own,
    }));
  }

  // -- a public link changed in place: its password, expiry and what visitors may do ---------

  const linkDialog = document.getElementById("link-dialog");
  let editing = null; // the link in the editor: see linkOf
  const VISITORS = { view: 1, edit: 15, drop: 4 };

  function visitorsOf(permissions) {
    if (!(permissions & 1)) return "drop";
    return permissions & 6 ? "edit" : "view";
  }

  // What the editor needs of a link; `done` says the sentence after a change and shows the
  // list as it is then.
  function linkOf(share, name, done) {
    return {
      id: share.id,
      name,
      permissions: Number(share.permissions),
      expires: (share.expiration || "").slice(0, 10),
      folder: share.item_type === "folder",
      password: Boolean(share.share_with),
      done,
    };
  }

  function editLink(link) {
    editing = link;
    const form = linkDialog.querySelector("form");
    form.reset();
    form.elements.password.disabled = false;
    linkDialog.querySelector("h2").textContent = "Edit the link of “" + link.name + "”";
    linkDialog.querySelector(".refusal").textContent = "";
    linkDialog.querySelector(".now").textContent = link.password
      ? "The link has a password (it is never shown)."
      : "The link has no password.";
    linkDialog.querySelector(".unset").hidden = !link.password;
    form.elements.expire.value = link.expires;
    const drop = form.elements.visitors.querySelector("option[value=drop]");
    drop.hidden = drop.disabled = !link.folder;
    form.elements.visitors.value = visitorsOf(link.permissions);
    linkDialog.showModal();
  }

  // Only what the person changed is sent: an expired link keeps its day unless it is changed.
  async function saveLink(form) {
    const link = editing;
    const change = {};
    if (form.elements.nopassword.checked) change.password = "";
    else if (form.elements.password.value) change.password = form.elements.password.value;
    if (form.elements.expire.value !== link.expires) change.expireDate = form.elements.expire.value;
    const visitors = form.elements.visitors.value;
    if (visitors !== visitorsOf(link.permissions)) change.permissions = VISITORS[visitors];
    if (!Object.keys(change).length) {
      linkDialog.close();
      return link.done("The link of “" + link.name + "” stays as it was.");
    }
    const reply = await ocs("PUT", "/shares/" + encodeURIComponent(link.id), change);
    if (!reply.ok) {
      linkDialog.querySelector(".refusal").textContent = shareRefusal(reply, link.name);
      return;
    }
    linkDialog.close();
    await link.done("Changed the link of “" + link.name + "” (" + linkFacts(reply.data) + ").");
  }

  if (linkDialog) {
    const form = linkDialog.querySelector("form");
    form.elements.nopassword.addEventListener("change", (event) => {
      form.elements.password.disabled = event.target.checked;
    });
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      saveLink(form).catch((e) => (linkDialog.querySelector(".refusal").textContent = String(e.message || e)));
    });
    linkDialog.querySelector(".close").addEventListener("click", () => linkDialog.close());
  }

  async function listed(sentence) {
    await reloadListing();
    say(sentence);
  }

  // The Links view's Edit, and Shared by me's choice of a share's permission.
  root.addEventListener("click", (event) => {
    const button = event.target.closest("tr[data-share] button.edit-link");
    if (!button || !linkDialog) return;
    const row = button.closest("tr");
    const share = {
      id: row.dataset.share,
      permissions: row.dataset.permissions,
      expiration: row.dataset.expires,
      item_type: "folder" in row.dataset ? "folder" : "file",
      share_with: row.dataset.password === "yes",
    };
    editLink(linkOf(share, row.dataset.name, listed));
  });

  root.addEventListener("change", (event) => {
    const choice = event.target.closest("tr[data-share] select.permission");
    if (!choice) return;
    const row = choice.closest("tr");
    const name = row.dataset.name;
    const edit = choice.value === "edit";
    ocs("PUT", "/shares/" + encodeURIComponent(row.dataset.share), { permissions: edit ? 15 : 1 })
      .then((reply) =>
        listed(
          reply.ok
            ? "“" + name + "” is now " + (edit ? "editable" : "view only") + " for " + row.cells[1].textContent + "."
            : shareRefusal(reply, name),
        ),
      )
      .catch((e) => say(String(e.message || e)));
  });

  async function listShares() {
    const list = shareDialog.querySelector(".existing");
    const reply = await ocs("GET", "/shares?path=" + encodeURIComponent(sharing.path));
    if (!reply.ok) return tell(shareRefusal(reply, sharing.name));
    const items = reply.data.map((share) => {
      const item = document.createElement("li");
      item.dataset.share = share.id;
      if (share.share_type === 3) {
        const link = document.createElement("a");
        link.href = link.textContent = share.url;
        const edit = document.createElement("button");
        edit.type = "button";
        edit.textContent = "Edit";
        edit.setAttribute("aria-label", "Edit the public link");
        edit.addEventListener("click", () => editLink(linkOf(share, sharing.name, shared)));
        item.append("Public link ", link, " (" + linkFacts(share) + ") ", edit, " ");
      } else {
        const who = share.share_type === 1 ? "group " + share.share_with : share.share_with;
        const choice = document.createElement("select");
        choice.setAttribute("aria-label", "Permission of " + who);
        for (const [value, label] of [["view", "view only"], ["edit", "can edit"]]) {
          choice.add(new Option(label, value, false, permissionOf(share) === label));
        }
        choice.className = "permission";
        item.append(who + " ", choice, " ");
      }
      const remove = document.createElement("button");
      remove.type = "button";
      remove.className = "remove";
      remove.textContent = "Remove";
      remove.setAttribute("aria-label", share.share_type === 3 ? "Remove the public link" : "Remove the share with " + share.share_with);
      item.append(remove);
      return item;
    });
    if (!items.length) {
      const none = document.createElement("li");
      none.textContent = "Not shared yet.";
      items.push(none);
    }
    list.replaceChildren(...items);
  }

  // After a change: the dialog's list and the table's markers as they are now.
  async function shared(sentence) {
    await listShares();
    await reloadListing();
    tell("");
    say(sentence);
  }

  async function search(text) {
    const reply = await ocs("GET", "/sharees?search=" + encodeURIComponent(text));
    if (!reply.ok) return;
    const found = new Map();
    const data = reply.data;
    for (const group of [data.exact, data]) {
      for (const entry of [...group.users, ...group.groups, ...group.remotes]) {
        found.set(entry.value.shareWith, entry.value.shareType);
      }
    }
    sharees = found;
    shareDialog.querySelector("#sharees").replaceChildren(
      ...Array.from(found, ([value, kind]) => new Option(kind === 1 ? "group" : kind === 6 ? "another site" : "user", value)),
    );
  }

  function openShare(row) {
    const link = row.querySelector("td a");
    sharing = { path: row.dataset.path, name: baseName(row.dataset.path), folder: link.textContent.endsWith("/") };
    shareDialog.querySelector("h2").textContent = "Share “" + sharing.name + "”";
    for (const form of shareDialog.querySelectorAll("form")) form.reset();
    shareDialog.querySelector(".drop").hidden = !sharing.folder;
    tell("");
    shareDialog.querySelector(".existing").replaceChildren();
    shareDialog.showModal();
    listShares().catch((e) => tell(String(e.message || e)));
  }

  if (shareDialog) {
    const person = shareDialog.querySelector("form.person");
    const linkForm = shareDialog.querySelector("form.link");
    person.elements.with.addEventListener("input", (event) => {
      const text = event.target.value.trim();
      if (text) search(text).catch(() => {});
    });
    person.addEventListener("submit", async (event) => {
      event.preventDefault();
      const who = person.elements.with.value.trim();
      if (!sharees.has(who)) await search(who);
      if (!sharees.has(who)) return tell("There is no user or group named “" + who + "” here. Nothing was shared.");
      const edit = person.elements.permission.value === "edit";
      const reply = await ocs("POST", "/shares", {
        path: sharing.path,
        shareType: sharees.get(who),
        shareWith: who,
        permissions: edit ? 15 : 1,
      });
      if (!reply.ok) return tell(shareRefusal(reply, sharing.name));
      person.reset();
      await shared("Shared “" + sharing.name + "” with " + who + ".");
    });
    linkForm.addEventListener("submit", async (event) => {
      event.preventDefault();
      const form = { path: sharing.path, shareType: 3, permissions: 1 };
      if (linkForm.elements.password.value) form.password = linkForm.elements.password.value;
      if (linkForm.elements.expire.value) form.expireDate = linkForm.elements.expire.value;
      if (sharing.folder && linkForm.elements.drop.checked) form.permissions = 4;
      const reply = await ocs("POST", "/shares", form);
      if (!reply.ok) return tell(shareRefusal(reply, sharing.name));
      linkForm.reset();
      await shared("Made a public link to “" + sharing.name + "”: " + reply.data.url);
    });
    shareDialog.addEventListener("change", async (event) => {
      if (!event.target.classList.contains("permission")) return;
      const id = event.target.closest("li").dataset.share;
      const edit = event.target.value === "edit";
      const reply = await ocs("PUT", "/shares/" + encodeURIComponent(id), { permissions: edit ? 15 : 1 });
      if (!reply.ok) return tell(shareRefusal(reply, sharing.name));
      await shared("“" + sharing.name + "” is now " + (edit ? "editable" : "view only") + " for that share.");
    });
    shareDialog.addEventListener("click", async (event) => {
      if (event.target.classList.contains("close")) return shareDialog.close();
      if (!event.target.classList.contains("remove")) return;
      const id = event.target.closest("li").dataset.share;
      const reply = await ocs("DELETE", "/shares/" + encodeURIComponent(id));
      if (!reply.ok) {
        await listShares();
        return tell(shareRefusal(reply, sharing.name));
      }
      await shared("Removed a share of “" + sharing.name + "”.");
    });
    const shareButton = document.getElementById("share");
    shareButton.addEventListener("click", () => {
      const rows = selectedRows();
      if (rows.length === 1) openShare(rows[0]);
    });
    root.addEventListener("click", (event) => {
      const button = event.target.closest("tr[data-path] button.share");
      if (button) openShare(button.closest("tr"));
    });
  }

  // -- people of other sites: invites made, withdrawn and accepted, contacts removed ---------

  // The other site's or the drive's own words (mistyped, expired, withdrawn, used, untrusted).
  function inviteRefusal(reply, what) {
    return ocsRefusal(reply, what, (told) => ({
      404: told + "The lists now show what is.",
      409: told + "Nothing was changed.",
      503: told + "Nothing was changed; try again later.",
    }));
  }

  const makeInvite = document.getElementById("make-invite");
  const newInvite = document.getElementById("new-invite");
  if (makeInvite) {
    makeInvite.addEventListener("click", async () => {
      const reply = await ocs("POST", "/ocm_invites");
      if (!reply.ok) return say(inviteRefusal(reply, "the invite"));
      const until = new Date(reply.data.expiration);
      const days = Math.round((until - Date.now()) / 86400000);
      newInvite.querySelector(".link").textContent = reply.data.link;
      newInvite.querySelector(".token").textContent = reply.data.token;
      newInvite.querySelector(".site").textContent = reply.data.provider;
      newInvite.querySelector(".valid").textContent =
        "Valid for " + plural(days, "day") + ", until " + until.toLocaleString() + ", for one person, once.";
      newInvite.hidden = false;
      await listed("Made an invite: send its link (or its token and your site's address) to the person you invite.");
    });
    document.getElementById("copy-invite").addEventListener("click", async () => {
      const link = newInvite.querySelector(".link").textContent;
      const token = newInvite.querySelector(".token").textContent;
      const site = newInvite.querySelector(".site").textContent;
      try {
        await navigator.clipboard.writeText("Invite link: " + link + "\nInvite token: " + token + "\nSite: " + site);
        say("Copied the invite's link, token and site: paste them into your message.");
      } catch (error) {
        window.getSelection().selectAllChildren(newInvite.querySelector("dl"));
        say("The browser did not let the page copy: the link, token and site are selected, copy them yourself.");
      }
    });
  }

  root.addEventListener("click", (event) => {
    const button = event.target.closest("tr[data-token] button.withdraw, tr[data-contact] button.remove-contact");
    if (!button) return;
    const row = button.closest("tr");
    let path, what, done;
    if (row.dataset.token !== undefined) {
      path = "/ocm_invites/" + encodeURIComponent(row.dataset.token);
      what = "the invite";
      done = "Withdrew the invite: its token is no good any more.";
      if (newInvite && newInvite.querySelector(".token").textContent === row.dataset.token) newInvite.hidden = true;
    } else {
      path = "/ocm_contacts/" + encodeURIComponent(row.dataset.contact);
      what = row.dataset.contact;
      done = row.dataset.contact + " is no longer one of your contacts (you stay one of theirs until they remove you).";
    }
    ocs("DELETE", path)
      .then((reply) => listed(reply.ok ? done : inviteRefusal(reply, what)))
      .catch((e) => say(String(e.message || e)));
  });

  const acceptInvite = document.getElementById("accept-invite");
  if (acceptInvite) {
    acceptInvite.addEventListener("submit", async (event) => {
      event.preventDefault();
      say("Accepting the invite…");
      const reply = await ocs("POST", "/ocm_invites/accept", {
        token: acceptInvite.elements.token.value.trim(),
        provider: acceptInvite.elements.provider.value.trim(),
      });
      if (!reply.ok) return say(inviteRefusal(reply, "the invite"));
      acceptInvite.reset();
      await listed(reply.data.address + " is now one of your contacts: share with them by typing their name.");
    });
  }

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
