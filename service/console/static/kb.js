// The knowledge-base page: search (dense, BM25, hybrid; metadata filters), browse, read a
// document's text and metadata, add (pasted text or an uploaded file) and delete.
"use strict";

(() => {
  const {el} = Console;
  const PAGE = 20;
  const notice = document.getElementById("kb-notice");
  let offset = 0;

  const say = (message, kind = "info") => {
    notice.hidden = false;
    Console.show(notice, message, kind);
  };
  const fail = (error) => say(Console.describe(error), "error");
  const docPath = (id) => `/v1/documents/${encodeURIComponent(id)}`;

  // "kind=country, region=Europe|Asia" (or a JSON object) to the search's `filter`.
  function parseFilter(text) {
    text = text.trim();
    if (!text) return null;
    if (text.startsWith("{")) return JSON.parse(text);
    const filter = {};
    for (const pair of text.split(",")) {
      const at = pair.indexOf("=");
      if (at < 1) throw new Error(`filter "${pair.trim()}" is not key=value`);
      const values = pair.slice(at + 1).split("|").map((v) => v.trim());
      filter[pair.slice(0, at).trim()] = values.length > 1 ? values : values[0];
    }
    return filter;
  }

  function docLink(id) {
    return el("a", {class: "doc-id", href: `#doc=${encodeURIComponent(id)}`}, id);
  }

  async function search(event) {
    event.preventDefault();
    const results = document.getElementById("search-results");
    try {
      const body = {query: document.getElementById("search-query").value,
                    mode: document.getElementById("search-mode").value,
                    k: Number(document.getElementById("search-k").value) || 5};
      const filter = parseFilter(document.getElementById("search-filter").value);
      if (filter) body.filter = filter;
      const hits = (await Console.json("/v1/search", body)).data;
      results.replaceChildren(...hits.map((hit) => el("li", {class: "hit"},
        el("div", {}, docLink(hit.document_id),
           el("span", {class: "score"}, ` score ${hit.score.toFixed(3)}`)),
        el("blockquote", {}, hit.text))));
      if (!hits.length) results.replaceChildren(el("li", {class: "hint"}, "No passage found."));
    } catch (error) {
      fail(error);
    }
  }

  async function listDocuments() {
    try {
      const page = await Console.json(`/v1/documents?offset=${offset}&limit=${PAGE}`);
      document.getElementById("doc-total").textContent = `(${page.total})`;
      document.getElementById("doc-list").replaceChildren(...page.data.map((doc) =>
        el("li", {}, docLink(doc.id), el("span", {class: "hint"},
           ` ${doc.text.slice(0, 80)}${doc.text.length > 80 ? "…" : ""}`))));
      const last = Math.min(offset + PAGE, page.total);
      document.getElementById("doc-range").textContent =
        page.total ? `${offset + 1}–${last} of ${page.total}` : "none";
      document.getElementById("doc-prev").disabled = offset === 0;
      document.getElementById("doc-next").disabled = last >= page.total;
    } catch (error) {
      fail(error);
    }
  }

  async function listFiles() {
    try {
      const files = (await Console.json("/v1/files")).data;
      document.getElementById("files").replaceChildren(...files.map((file) =>
        el("li", {class: "file", "data-file": file.id},
           el("span", {}, `${file.filename} `), el("code", {}, file.id),
           el("span", {class: "hint"}, ` ${file.format}, ${file.sections} sections `),
           docLink(`${file.id}#0`),
           el("button", {type: "button", class: "danger small",
                         onclick: () => removeFile(file.id)}, "Delete"))));
      if (!files.length) {
        document.getElementById("files").replaceChildren(el("li", {class: "hint"}, "None."));
      }
    } catch (error) {
      fail(error);
    }
  }

  async function openDocument(id) {
    const view = document.getElementById("doc-view");
    try {
      const doc = await Console.json(docPath(id));
      document.getElementById("doc-id").textContent = doc.id;
      document.getElementById("doc-chunks").textContent =
        `${doc.chunks} chunk${doc.chunks === 1 ? "" : "s"}, ${doc.text.length} characters`;
      document.getElementById("doc-metadata").textContent =
        JSON.stringify(doc.metadata, null, 2);
      document.getElementById("doc-text").textContent = doc.text;
      const remove = document.getElementById("doc-delete");
      remove.textContent = "Delete";
      remove.dataset.id = doc.id;
      delete remove.dataset.armed;
      view.hidden = false;
    } catch (error) {
      view.hidden = true;
      fail(error);
    }
  }

  async function removeDocument(event) {
    const button = event.currentTarget;
    if (!button.dataset.armed) {  // two clicks: a stray one deletes nothing
      button.dataset.armed = "1";
      button.textContent = "Click again to delete";
      return;
    }
    try {
      const done = await Console.json(docPath(button.dataset.id), undefined, "DELETE");
      say(`Deleted ${done.id} (${done.chunks} chunks).`, "ok");
      document.getElementById("doc-view").hidden = true;
      history.replaceState(null, "", location.pathname);
      await listDocuments();
    } catch (error) {
      fail(error);
    }
  }

  async function removeFile(id) {
    try {
      const done = await Console.json(`/v1/files/${encodeURIComponent(id)}`, undefined,
                                      "DELETE");
      say(`Deleted file ${done.id} (${done.chunks} chunks).`, "ok");
      await Promise.all([listFiles(), listDocuments()]);
    } catch (error) {
      fail(error);
    }
  }

  async function add(event) {
    event.preventDefault();
    try {
      const raw = document.getElementById("add-metadata").value.trim();
      const doc = {id: document.getElementById("add-id").value.trim(),
                   text: document.getElementById("add-text").value,
                   metadata: raw ? JSON.parse(raw) : {}};
      const done = (await Console.json("/v1/documents", {documents: [doc]})).data[0];
      say(`Added ${done.id} (${done.chunks} chunks): searchable now.`, "ok");
      event.target.reset();
      location.hash = `doc=${encodeURIComponent(done.id)}`;
      await listDocuments();
    } catch (error) {
      fail(error);
    }
  }

  async function upload(event) {
    event.preventDefault();
    const file = document.getElementById("upload-file").files[0];
    if (!file) return;
    const form = new FormData();
    form.append("file", file, file.name);
    form.append("purpose", "assistants");
    const id = document.getElementById("upload-id").value.trim();
    if (id) form.append("id", id);
    try {
      const done = await (await Console.call("/v1/files", {method: "POST", body: form})).json();
      say(`Uploaded ${done.filename} as ${done.id}: ${done.sections} sections, ` +
          `${done.chunks} chunks.`, "ok");
      event.target.reset();
      await Promise.all([listFiles(), listDocuments()]);
    } catch (error) {
      fail(error);
    }
  }

  function route() {
    const match = location.hash.match(/^#doc=(.+)$/);
    if (match) openDocument(decodeURIComponent(match[1]));
  }

  Console.header("Knowledge base");
  document.getElementById("search-form").addEventListener("submit", search);
  document.getElementById("add-form").addEventListener("submit", add);
  document.getElementById("upload-form").addEventListener("submit", upload);
  document.getElementById("doc-delete").addEventListener("click", removeDocument);
  document.getElementById("doc-prev").addEventListener("click", () => {
    offset = Math.max(0, offset - PAGE);
    listDocuments();
  });
  document.getElementById("doc-next").addEventListener("click", () => {
    offset += PAGE;
    listDocuments();
  });
  window.addEventListener("hashchange", route);
  // One call first: with keys on, it asks for a key once before the others run.
  listDocuments().then(() => Promise.all([listFiles(), route()]));
})();
