// The chat page: streams a reply over SSE and shows how it was answered (the `cogcore`
// extension of the first chunk: route, sources, abstention, the query searched) and the
// citations (OpenAI `url_citation` annotations on the last chunk).
"use strict";

(() => {
  const {el} = Console;
  const history = [];  // the conversation sent with each request (follow-ups need it)
  const form = document.getElementById("chat-form");
  const question = document.getElementById("question");
  const conversation = document.getElementById("conversation");
  const notice = document.getElementById("chat-notice");

  function sourceView(source) {
    const meta = source.metadata || {};
    const place = [meta.filename, (meta.heading_path || []).join(" > "),
                   meta.page ? `page ${meta.page}` : ""].filter(Boolean).join(", ");
    return el("li", {class: "source", "data-document": source.id},
      el("div", {},
        el("a", {class: "doc-id", href: `kb.html#doc=${encodeURIComponent(source.id)}`},
           source.id),
        place ? el("span", {class: "place"}, ` ${place}`) : null,
        el("span", {class: "score"}, ` score ${source.score.toFixed(3)}`),
        el("span", {class: "cited", hidden: true}, " cited")),
      el("blockquote", {}, source.text));
  }

  function showGrounding(view, info) {
    const route = el("span", {class: `badge route ${info.route}`}, info.route);
    view.meta.replaceChildren(route);
    if (info.abstained) {
      view.message.classList.add("abstained");
      view.meta.append(el("span", {class: "badge abstention"},
                          "abstained: the knowledge base has no answer"));
    }
    if (info.query) view.meta.append(el("span", {class: "query"}, `searched: ${info.query}`));
    if (info.sources.length) {
      view.sources.replaceChildren(el("h3", {}, `Sources (${info.sources.length})`),
                                   el("ol", {}, info.sources.map(sourceView)));
    }
  }

  function showCitations(view, annotations) {
    for (const {url_citation: cite} of annotations) {
      const item = [...view.sources.querySelectorAll(".source")]
        .find((s) => s.dataset.document === cite.document_id);
      if (item) {
        const mark = item.querySelector(".cited");
        mark.hidden = false;
        mark.textContent = ` cited: ${cite.title}`;
        item.classList.add("was-cited");
      }
    }
  }

  function assistantView() {
    const view = {
      meta: el("div", {class: "meta"}, el("span", {class: "badge pending"}, "waiting…")),
      text: el("div", {class: "text"}),
      sources: el("div", {class: "sources"}),
      footer: el("div", {class: "footer"}),
    };
    view.message = el("article", {class: "message assistant", "data-chunks": "0"},
                      view.meta, view.text, view.sources, view.footer);
    conversation.append(view.message);
    return view;
  }

  async function ask(content) {
    history.push({role: "user", content});
    conversation.append(el("article", {class: "message user"}, el("div", {class: "text"},
                                                                   content)));
    const view = assistantView();
    const started = performance.now();
    let first = null;
    let chunks = 0;
    let reply = "";
    try {
      const body = {
        model: await Console.modelName(), messages: history, stream: true,
        stream_options: {include_usage: true}, retrieval: form.retrieval.value,
        max_tokens: Number(form["max-tokens"].value) || 128,
        temperature: Number(form.temperature.value) || 0,
      };
      const response = await Console.call("/v1/chat/completions", {
        method: "POST", body: JSON.stringify(body),
        headers: {"Content-Type": "application/json"}});
      await Console.readEvents(response, (chunk) => {
        if (chunk.cogcore) showGrounding(view, chunk.cogcore);
        const delta = chunk.choices && chunk.choices[0] && chunk.choices[0].delta;
        if (delta && delta.content) {
          first = first || performance.now();
          reply += delta.content;
          view.text.textContent = reply;
          view.message.dataset.chunks = String(++chunks);
          conversation.scrollTop = conversation.scrollHeight;
        }
        if (delta && delta.annotations) showCitations(view, delta.annotations);
        if (chunk.usage) {
          const seconds = (performance.now() - (first || started)) / 1000;
          const tokens = chunk.usage.completion_tokens;
          view.footer.textContent = `${tokens} tokens · first token after ` +
            `${Math.round((first || performance.now()) - started)} ms` +
            (tokens > 1 && seconds > 0 ? ` · ${(tokens / seconds).toFixed(1)} tokens/s` : "");
        }
      });
      history.push({role: "assistant", content: reply});
      view.message.classList.add("done");
    } catch (error) {
      history.pop();  // the question was not answered: it is not part of the conversation
      view.message.classList.add("failed");
      view.meta.replaceChildren(el("span", {class: "badge error"}, "error"));
      view.footer.textContent = Console.describe(error);
    }
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const content = question.value.trim();
    if (!content) return;
    question.value = "";
    form.send.disabled = true;
    try {
      await ask(content);
    } finally {
      form.send.disabled = false;
      question.focus();
    }
  });

  question.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey) {
      event.preventDefault();
      form.requestSubmit();
    }
  });

  document.getElementById("new-chat").addEventListener("click", () => {
    history.length = 0;
    conversation.replaceChildren();
  });

  Console.header("Chat");
  // Ask for the model's name at once, so that a server with keys prompts for one now.
  Console.modelName().then(
    (name) => { document.title = `Chat · ${name} · Cognitive Core`; notice.hidden = true; },
    (error) => { notice.hidden = false; Console.show(notice, Console.describe(error), "error"); });
})();
