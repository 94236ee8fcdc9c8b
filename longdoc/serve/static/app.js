// longdoc's web page: upload files, ask, stream the answer (server-sent events), show cited pages and Figure 5.
// Plain browser JavaScript, no build step; it talks to the same endpoints as any OpenAI client.
"use strict";
const $ = (id) => document.getElementById(id);
let model = null, docId = null;

function headers(extra) {
  const key = $("key").value.trim();
  localStorage.setItem("longdoc-key", key);
  return Object.assign(key ? { Authorization: "Bearer " + key } : {}, extra || {});
}

async function errorText(response) {
  try { return (await response.json()).error.message; } catch (e) { return response.status + " " + response.statusText; }
}

function show(el, text, isError) { el.textContent = text; el.classList.toggle("error", !!isError); }

async function loadModel() {
  const r = await fetch("/v1/models", { headers: headers() });
  if (!r.ok) { show($("model"), await errorText(r), true); return; }
  model = (await r.json()).data[0].id;
  $("model").textContent = model;
}

async function upload(fileList) {
  const files = Array.from(fileList || []);
  if (!files.length) return;
  const form = new FormData();
  files.forEach((f) => form.append("files", f, f.name));
  show($("doc"), "Reading " + files.map((f) => f.name).join(", ") + " …");
  $("question").disabled = $("go").disabled = true;
  const r = await fetch("/v1/longdoc/documents", { method: "POST", body: form, headers: headers() });
  if (!r.ok) { show($("doc"), await errorText(r), true); return; }
  const info = await r.json();
  docId = info.id;
  const skipped = info.skipped.length ? ` (${info.skipped.length} skipped)` : "";
  show($("doc"), `${info.sources.join(", ")}: ${info.tokens.toLocaleString()} tokens, ready${skipped}. [${info.id}]`);
  $("question").disabled = $("go").disabled = false;
  $("question").focus();
}

async function ask(question) {
  if (!model) await loadModel();
  show($("answer"), ""); $("usage").textContent = "";
  $("cited").innerHTML = ""; $("cited-box").hidden = true; $("figure-box").hidden = true;
  $("go").disabled = true;
  const body = { model, stream: true, stream_options: { include_usage: true }, temperature: 0, cite: true,
                 document: docId, messages: [{ role: "user", content: question }] };
  try {
    const r = await fetch("/v1/chat/completions", { method: "POST", body: JSON.stringify(body),
                                                    headers: headers({ "Content-Type": "application/json" }) });
    if (!r.ok) { show($("answer"), await errorText(r), true); return; }
    const reader = r.body.getReader(), decoder = new TextDecoder();
    let buffer = "", last = null;
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const event = buffer.slice(0, cut); buffer = buffer.slice(cut + 2);
        if (!event.startsWith("data: ")) continue;
        const data = event.slice(6);
        if (data === "[DONE]") continue;
        const chunk = JSON.parse(data);
        if (chunk.error) { show($("answer"), chunk.error.message, true); continue; }
        if (chunk.choices && chunk.choices.length) {
          $("answer").textContent += chunk.choices[0].delta.content || "";
          if (chunk.choices[0].finish_reason) last = chunk;
        }
        if (chunk.usage) {
          const u = chunk.usage;
          $("usage").textContent = `${u.prompt_tokens.toLocaleString()} prompt tokens ` +
            `(${u.prompt_tokens_details.cached_tokens.toLocaleString()} reused), ${u.completion_tokens} answer tokens`;
        }
      }
    }
    if (last) showSources(last);
  } finally { $("go").disabled = false; }
}

function showSources(chunk) {
  const cited = chunk.citations || [];
  for (const c of cited) {
    const li = document.createElement("li");
    const title = document.createElement("b"); title.textContent = c.source;
    const share = document.createElement("span"); share.className = "share";
    share.textContent = ` ${(100 * c.share).toFixed(1)}% of the heads' selections`;
    const text = document.createElement("blockquote"); text.textContent = c.text;
    li.append(title, share, text); $("cited").append(li);
  }
  $("cited-box").hidden = !cited.length;
  if (chunk.longdoc && chunk.longdoc.fits_window) {
    const li = document.createElement("li");
    li.textContent = "The whole document fits in one attention window: every head read all of it.";
    $("cited").append(li); $("cited-box").hidden = false;
  }
  if (chunk.longdoc && chunk.longdoc.figure) {
    fetch(chunk.longdoc.figure, { headers: headers() }).then((r) => r.ok ? r.blob() : null).then((blob) => {
      if (!blob) return;
      $("figure").src = URL.createObjectURL(blob); $("figure-box").hidden = false;
    });
  }
}

$("key").value = localStorage.getItem("longdoc-key") || "";
$("key").addEventListener("change", loadModel);
$("files").addEventListener("change", (e) => upload(e.target.files));
const drop = $("drop");
["dragenter", "dragover"].forEach((t) => drop.addEventListener(t, (e) => { e.preventDefault(); drop.classList.add("over"); }));
["dragleave", "drop"].forEach((t) => drop.addEventListener(t, (e) => { e.preventDefault(); drop.classList.remove("over"); }));
drop.addEventListener("drop", (e) => upload(e.dataTransfer.files));
$("ask").addEventListener("submit", (e) => {
  e.preventDefault();
  const q = $("question").value.trim();
  if (q && docId) ask(q);
});
loadModel();
