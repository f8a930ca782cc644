// A file drop's page: the chosen files are sent to the link one after the other, each said
// added or refused in a sentence. Nothing of the folder is read; a taken name is never replaced.
(() => {
  const form = document.getElementById("drop");
  if (!form) return;
  const status = document.getElementById("status");
  const sent = document.getElementById("dropped");
  const REFUSALS = {
    401: "This link asks for its password again: reload the page and type it. “{}” was not sent.",
    404: "This link does not exist or has expired. “{}” was not sent.",
    412: "A file named “{}” is there already; rename yours and send it again.",
    413: "“{}” is larger than this drive accepts.",
    507: "There is not enough space left for “{}”.",
  };

  function said(text) {
    const item = document.createElement("li");
    item.textContent = text;
    sent.append(item);
  }

  async function send(file) {
    try {
      const reply = await fetch(form.dataset.drop + encodeURIComponent(file.name), {
        method: "PUT",
        body: file,
        credentials: "same-origin",
      });
      if (reply.ok) return "Added “" + file.name + "”.";
      const known = REFUSALS[reply.status];
      return known ? known.replace("{}", file.name) : "“" + file.name + "” was refused (error " + reply.status + ").";
    } catch {
      return "“" + file.name + "” was not sent: the connection broke. Send it again.";
    }
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const files = Array.from(form.elements.file.files);
    form.querySelector("button").disabled = true;
    for (const [index, file] of files.entries()) {
      status.textContent = "Sending " + (index + 1) + " of " + files.length + ": " + file.name;
      said(await send(file));
    }
    status.textContent = "Done: " + files.length + (files.length === 1 ? " file" : " files") + " sent.";
    form.reset();
    form.querySelector("button").disabled = false;
  });
})();
