// What every console page shares: the header, the user's key, API calls and their errors.
// The key lives in sessionStorage only: it is sent with each call as a Bearer token and is
// forgotten when the tab closes. A 401 (no or unknown key) or a 403 (a read key where a
// write needs an admin key) opens a prompt for a key, then the call is tried again.
"use strict";

const Console = (() => {
  const KEY = "cogcore.key";
  const PAGES = [["./", "Chat"], ["kb.html", "Knowledge base"], ["status.html", "Status"]];

  class ApiError extends Error {
    constructor(status, message, code) {
      super(message);
      this.status = status;
      this.code = code;
    }
  }

  function el(tag, attrs = {}, ...children) {
    // Text always goes in as text nodes: passages and documents are never parsed as HTML.
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs)) {
      if (name === "class") node.className = value;
      else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
      else if (value !== undefined && value !== null && value !== false) {
        node.setAttribute(name, value === true ? "" : value);
      }
    }
    for (const child of children.flat()) {
      if (child !== undefined && child !== null) {
        node.append(child instanceof Node ? child : String(child));
      }
    }
    return node;
  }

  function getKey() {
    return sessionStorage.getItem(KEY) || "";
  }

  function setKey(key) {
    if (key) sessionStorage.setItem(KEY, key);
    else sessionStorage.removeItem(KEY);
    renderKeyState();
  }

  function renderKeyState() {
    const button = document.getElementById("key-button");
    if (button) button.textContent = getKey() ? "API key: set" : "API key: none";
  }

  let dialog = null;

  function keyDialog() {
    if (dialog) return dialog;
    const input = el("input", {id: "key-input", type: "password", autocomplete: "off",
                               placeholder: "Bearer token", "aria-label": "API key"});
    dialog = el("dialog", {id: "key-dialog"},
      el("form", {method: "dialog"},
        el("h2", {}, "API key"),
        el("p", {id: "key-message"}),
        el("p", {class: "hint"}, "Kept in this browser tab only (sessionStorage) and sent " +
           "as Authorization: Bearer with each call. An admin key also reads."),
        input,
        el("menu", {},
          el("button", {id: "key-save", value: "save", type: "submit"}, "Use this key"),
          el("button", {id: "key-clear", value: "clear", type: "submit", class: "secondary"},
             "Forget key"),
          el("button", {id: "key-cancel", value: "cancel", type: "submit", class: "secondary"},
             "Cancel"))));
    document.body.append(dialog);
    return dialog;
  }

  let pending = null;  // one prompt at a time; concurrent 401s wait for the same answer

  function promptKey(message) {
    if (pending) return pending;
    const d = keyDialog();
    d.querySelector("#key-message").textContent = message;
    const input = d.querySelector("#key-input");
    input.value = getKey();
    pending = new Promise((resolve) => {
      d.addEventListener("close", () => {
        pending = null;
        if (d.returnValue === "save" && input.value.trim()) {
          setKey(input.value.trim());
          resolve(true);
        } else {
          if (d.returnValue === "clear") setKey("");
          resolve(false);
        }
      }, {once: true});
    });
    d.returnValue = "";
    d.showModal();
    input.focus();
    return pending;
  }

  async function errorOf(response) {
    let message = `${response.status} ${response.statusText}`;
    let code = null;
    try {
      const body = await response.json();
      if (body && body.error) {
        message = body.error.message || message;
        code = body.error.code || null;
      }
    } catch (_) { /* not the JSON envelope: keep the status line */ }
    return new ApiError(response.status, message, code);
  }

  // fetch() with the key; on 401/403 ask for a key and try again. Returns the Response.
  async function call(path, options = {}) {
    for (let attempt = 0; ; attempt++) {
      const headers = new Headers(options.headers || {});
      const key = getKey();
      if (key) headers.set("Authorization", `Bearer ${key}`);
      const response = await fetch(path, {...options, headers});
      if (response.ok) return response;
      const error = await errorOf(response);
      if ((error.status === 401 || error.status === 403) && attempt < 3) {
        const why = error.status === 403 ? "This needs an admin key: " + error.message
          : key ? "This key was not accepted: " + error.message
            : "This server needs an API key: " + error.message;
        if (await promptKey(why)) continue;
      }
      throw error;
    }
  }

  async function json(path, body, method) {
    const options = body === undefined ? {method: method || "GET"} : {
      method: method || "POST", body: JSON.stringify(body),
      headers: {"Content-Type": "application/json"}};
    return (await call(path, options)).json();
  }

  // Server-sent events of a streamed response: calls onEvent with each parsed `data:` JSON.
  async function readEvents(response, onEvent) {
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const {value, done} = await reader.read();
      if (done) break;
      buffer += value;
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const event = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const data = event.split("\n").filter((l) => l.startsWith("data:"))
          .map((l) => l.slice(5).trimStart()).join("\n");
        if (!data) continue;
        if (data === "[DONE]") return;
        const parsed = JSON.parse(data);
        if (parsed.error) throw new ApiError(0, parsed.error.message, parsed.error.code);
        onEvent(parsed);
      }
    }
  }

  let model = null;

  async function modelName() {
    if (!model) model = (await json("/v1/models")).data[0].id;
    return model;
  }

  function header(current) {
    const nav = el("nav", {}, PAGES.map(([href, label]) =>
      el("a", {href, class: label === current ? "current" : ""}, label)));
    const key = el("button", {id: "key-button", type: "button", class: "secondary",
                              onclick: () => promptKey("Enter an API key (or an admin key).")},
                   "");
    document.body.prepend(el("header", {}, el("strong", {}, "Cognitive Core"), nav, key));
    renderKeyState();
  }

  function show(target, message, kind = "info") {
    target.textContent = message;
    target.className = `notice ${kind}`;
  }

  function describe(error) {
    return error instanceof ApiError && error.status
      ? `${error.status}${error.code ? " " + error.code : ""}: ${error.message}`
      : String(error.message || error);
  }

  return {ApiError, el, call, json, readEvents, modelName, header, show, describe, promptKey};
})();
