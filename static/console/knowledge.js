// Knowledge collection page: drag-and-drop (or pick) several files; htmx posts them and swaps in the documents
// table, which then polls itself while documents are queued or processing.
(function () {
  "use strict";
  const form = document.getElementById("upload-form");
  if (!form) return;
  const input = document.getElementById("upload-files");
  const state = document.getElementById("upload-state");

  function send(files) {
    if (!files || !files.length) return;
    if (files !== input.files) {
      const transfer = new DataTransfer();
      Array.from(files).forEach((file) => transfer.items.add(file));
      input.files = transfer.files;
    }
    state.textContent = `Uploading ${input.files.length} file${input.files.length === 1 ? "" : "s"}…`;
    form.requestSubmit();
  }

  ["dragenter", "dragover"].forEach(function (name) {
    form.addEventListener(name, function (event) {
      event.preventDefault();
      form.classList.add("dragover");
    });
  });
  ["dragleave", "dragend", "drop"].forEach(function (name) {
    form.addEventListener(name, function () {
      form.classList.remove("dragover");
    });
  });
  form.addEventListener("drop", function (event) {
    event.preventDefault();
    send(event.dataTransfer.files);
  });
  form.addEventListener("click", function (event) {
    if (event.target === input || event.target.closest("label")) return;
    input.click();
  });
  input.addEventListener("change", function () {
    send(input.files);
  });

  form.addEventListener("htmx:xhr:progress", function (event) {
    if (event.detail.lengthComputable && event.detail.total) {
      state.textContent = `Uploading… ${Math.round((event.detail.loaded / event.detail.total) * 100)}%`;
    }
  });
  form.addEventListener("htmx:afterRequest", function (event) {
    state.textContent = event.detail.successful ? "Uploaded. Indexing runs in the background." : "";
    input.value = "";
  });
  // A 400 (every file refused) still carries the table with the reasons: show it.
  document.body.addEventListener("htmx:beforeSwap", function (event) {
    if (event.detail.xhr.status === 400 && event.detail.target.id === "documents") {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });
})();
