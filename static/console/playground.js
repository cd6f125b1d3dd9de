// Playground: posts the conversation to the console's chat endpoint (session + CSRF, no API key in the
// browser) and renders the OpenAI SSE stream token by token: `data: {chat.completion.chunk}` ... `data: [DONE]`,
// or, with the API switch on "Responses", the Responses API's events (`response.output_text.delta` ...
// `response.completed`).
(function () {
  "use strict";

  const form = document.getElementById("chat-form");
  if (!form) return;
  const log = document.getElementById("chat-log");
  const input = document.getElementById("chat-text");
  const sendButton = document.getElementById("chat-send");
  const stopButton = document.getElementById("chat-stop");
  const resetButton = document.getElementById("chat-reset");
  const emptyState = document.getElementById("chat-empty");
  const temperature = document.getElementById("pg-temperature");
  const maxTokens = document.getElementById("pg-max-tokens");
  const apiSwitch = document.getElementById("pg-api");
  let messages = [];
  let controller = null;

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function addMessage(role, text) {
    if (emptyState) emptyState.hidden = true;
    const wrap = el("div", "msg msg-" + role);
    const bubble = el("div", "bubble", text);
    wrap.appendChild(bubble);
    log.appendChild(wrap);
    log.scrollTop = log.scrollHeight;
    return wrap;
  }

  function money(value) {
    const n = Number(value);
    if (!isFinite(n)) return String(value);
    return "$" + n.toFixed(n !== 0 && Math.abs(n) < 0.01 ? 6 : 4);
  }

  function renderMeta(wrap, usage, context, answeredBy, route) {
    const meta = el("div", "meta");
    if (answeredBy) {
      // A routing gateway picks the model per message: say which one answered, and why.
      const reason = route ? route.split(";").slice(1).join(";").trim() : "";
      const line = el("div", "answered-by", `Answered by ${answeredBy}` + (reason ? ` (${reason})` : ""));
      line.dataset.model = answeredBy;
      meta.appendChild(line);
    }
    if (usage) {
      meta.appendChild(
        el("div", "", `${usage.prompt_tokens ?? 0} prompt + ${usage.completion_tokens ?? 0} completion tokens`)
      );
    }
    const lines = (context && context.generated_usage) || [];
    if (lines.length) {
      const table = el("table", "billed");
      table.setAttribute("aria-label", "Billed lines");
      let total = 0;
      lines.forEach(function (line) {
        const row = document.createElement("tr");
        const sku = el("td", "", line.sku);
        if (line.description) sku.title = line.description;
        row.appendChild(sku);
        row.appendChild(el("td", "", String(line.quantity ?? "")));
        row.appendChild(el("td", "", money(line.amount)));
        table.appendChild(row);
        total += Number(line.amount) || 0;
      });
      const row = document.createElement("tr");
      row.appendChild(el("td", "", "Total"));
      row.appendChild(el("td", ""));
      row.appendChild(el("td", "", money(total)));
      table.appendChild(row);
      meta.appendChild(table);
    }
    const docs = (context && context.documents) || [];
    if (docs.length) {
      meta.appendChild(el("div", "", "Documents used:"));
      const list = el("ul", "documents");
      docs.forEach(function (doc) {
        const score = typeof doc.score === "number" ? ` (${doc.score.toFixed(2)})` : "";
        list.appendChild(el("li", "", (doc.documentName || doc.documentId) + score));
      });
      meta.appendChild(list);
    }
    const functions = (context && context.runned_functions) || [];
    if (functions.length) {
      const names = functions.map((f) => f.function_name + (f.success === false ? " (failed)" : ""));
      meta.appendChild(el("div", "", "Functions: " + names.join(", ")));
    }
    if (meta.childNodes.length) wrap.appendChild(meta);
  }

  function showError(wrap, message) {
    wrap.classList.remove("streaming");
    wrap.classList.add("msg-error");
    const bubble = wrap.querySelector(".bubble");
    bubble.textContent = (bubble.textContent ? bubble.textContent + "\n\n" : "") + message;
  }

  function busy(on) {
    sendButton.disabled = on;
    stopButton.hidden = !on;
    input.disabled = on;
  }

  async function send(text) {
    messages.push({ role: "user", content: text });
    addMessage("user", text);
    const wrap = addMessage("assistant", "");
    wrap.classList.add("streaming");
    const bubble = wrap.querySelector(".bubble");
    const body = { messages: messages, stream: true };
    if (temperature && temperature.value !== "") body.temperature = Number(temperature.value);
    if (maxTokens && maxTokens.value !== "") body.max_tokens = Number(maxTokens.value);
    if (apiSwitch && apiSwitch.value === "responses") body.api = "responses";
    controller = new AbortController();
    busy(true);
    let answer = "";
    let usage = null;
    let context = null;
    let answeredBy = null;
    let route = null;
    let failed = false;
    try {
      const response = await fetch(form.dataset.url, {
        method: "POST",
        headers: {
          "Content-Type": "application/json",
          Accept: "text/event-stream",
          "X-CSRFToken": window.aivax.csrfToken(),
        },
        body: JSON.stringify(body),
        credentials: "same-origin",
        signal: controller.signal,
      });
      const type = response.headers.get("Content-Type") || "";
      route = response.headers.get("x-aivax-route");
      if (!response.ok || !type.startsWith("text/event-stream")) {
        let message = `The request failed (${response.status}).`;
        try {
          const data = await response.json();
          if (data.error && data.error.message) message = data.error.message;
        } catch (e) {
          /* not JSON */
        }
        failed = true;
        showError(wrap, message);
        return;
      }
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      let buffer = "";
      let done = false;
      while (!done) {
        const chunk = await reader.read();
        if (chunk.done) break;
        buffer += decoder.decode(chunk.value, { stream: true });
        let boundary;
        while ((boundary = buffer.search(/\r?\n\r?\n/)) !== -1) {
          const event = buffer.slice(0, boundary);
          buffer = buffer.slice(boundary).replace(/^\r?\n\r?\n/, "");
          const data = event
            .split(/\r?\n/)
            .filter((line) => line.startsWith("data:"))
            .map((line) => line.slice(5).replace(/^ /, ""))
            .join("\n");
          if (!data) continue; // a keep-alive comment
          if (data === "[DONE]") {
            done = true;
            break;
          }
          let parsed;
          try {
            parsed = JSON.parse(data);
          } catch (e) {
            continue;
          }
          if (typeof parsed.type === "string" && parsed.type.startsWith("response.")) {
            // Responses API events: text deltas, then the final response with usage and generation_context.
            if (parsed.type === "response.output_text.delta") {
              answer += parsed.delta;
              bubble.textContent = answer;
              log.scrollTop = log.scrollHeight;
            } else if (parsed.type === "response.failed") {
              failed = true;
              const error = parsed.response && parsed.response.error;
              showError(wrap, (error && error.message) || "The model failed.");
            } else if (parsed.type === "response.completed" || parsed.type === "response.incomplete") {
              const u = parsed.response.usage;
              if (u) usage = { prompt_tokens: u.input_tokens, completion_tokens: u.output_tokens };
              if (parsed.response.generation_context) context = parsed.response.generation_context;
              if (parsed.response.model) answeredBy = parsed.response.model;
            }
            continue;
          }
          if (parsed.error) {
            failed = true;
            showError(wrap, parsed.error.message || "The model failed.");
            continue;
          }
          const choice = parsed.choices && parsed.choices[0];
          const delta = choice && choice.delta && choice.delta.content;
          if (delta) {
            answer += delta;
            bubble.textContent = answer;
            log.scrollTop = log.scrollHeight;
          }
          if (parsed.usage) usage = parsed.usage;
          if (parsed.generation_context) context = parsed.generation_context;
          if (parsed.model) answeredBy = parsed.model;
        }
      }
    } catch (err) {
      failed = true;
      showError(wrap, err.name === "AbortError" ? "Stopped." : "The connection was lost.");
    } finally {
      wrap.classList.remove("streaming");
      busy(false);
      controller = null;
      if (answer) messages.push({ role: "assistant", content: answer });
      else if (!failed) bubble.textContent = "(empty answer)";
      if (!answer && failed) messages.pop(); // the question that failed is not part of the conversation
      renderMeta(wrap, usage, context, answeredBy, route);
      wrap.dataset.done = "true";
      log.scrollTop = log.scrollHeight;
      input.focus();
    }
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    const text = input.value.trim();
    if (!text || controller) return;
    input.value = "";
    send(text);
  });

  input.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      form.requestSubmit();
    }
  });

  stopButton.addEventListener("click", function () {
    if (controller) controller.abort();
  });

  if (resetButton) {
    resetButton.addEventListener("click", function () {
      if (controller) controller.abort();
      messages = [];
      log.querySelectorAll(".msg").forEach((node) => node.remove());
      if (emptyState) emptyState.hidden = false;
      input.focus();
    });
  }

  const picker = document.querySelector("select[data-navigate]");
  if (picker) {
    picker.addEventListener("change", function () {
      window.location.href = picker.value;
    });
  }
})();
