"""The `longdoc serve` application: OpenAI-compatible endpoints over one Engine, plus the web page.

    app = create_app(engine, ServeSettings(api_key="..."))
    uvicorn.run(app, host="127.0.0.1", port=8000)           # what `longdoc serve` does (cli/serve.py)

Endpoints
    POST /v1/chat/completions, /v1/completions   OpenAI's (streaming as server-sent events, or not)
    GET  /v1/models, /v1/models/{id}, /health
    POST /v1/longdoc/documents                    upload files (multipart field "files"), prefill them once:
                                                  -> {"id": "doc-…", "tokens", ...}; later requests send
                                                  `document: "doc-…"` or a `file` content part with that id
    GET  /v1/longdoc/documents[/{id}]             what was uploaded
    GET  /v1/longdoc/figures/{completion id}.png  the per-head chunk picture (Figure 5) of a recent answer
    GET  /                                        the web page (longdoc/serve/static)

Flow of a completion: check the body and the model -> build the prompt in a worker thread (prompts.py, or the
document session for an uploaded document) -> take the engine (gate.py: one generation at a time, 429 when the
queue is full) -> generate in a worker thread (worker.py), a watcher cancelling it when the client goes away ->
the answer as JSON, or as `data: {chunk}` events ending with `data: [DONE]`.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Callable, Iterator

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from longdoc.errors import LongdocError
from longdoc.generate import Usage
from longdoc.serve import errors as api_errors
from longdoc.serve import protocol
from longdoc.serve.errors import APIError, error_body, error_response
from longdoc.serve.gate import Gate, QueueFull
from longdoc.serve.guard import Guard
from longdoc.serve.library import Library, TooLarge, UnknownDocument
from longdoc.serve.prompts import chat_prompt, completion_prompt, message_parts
from longdoc.serve.settings import ServeSettings
from longdoc.serve.worker import Generation

log = logging.getLogger("longdoc.serve")

RECENT_ANSWERS = 16  # answers whose Figure 5 can still be drawn
CITATION_TEXT_CHARS = 2000  # text shown per cited page / file
DISCONNECT_POLL_S = 0.25


@dataclass
class Job:
    """One completion to run. make_iter(progress) -> text pieces (called in the worker thread); usage: filled
    in as it runs; extras(): response fields known once it has finished (citations, the figure's address)."""

    make_iter: Callable[[Callable[[int, int], None]], Iterator[str]]
    usage: Usage
    extras: Callable[[], dict] = field(default=lambda: {})


class Server:
    """The state behind the routes: the engine, the gate, uploaded documents, the ingest store, recent answers."""

    def __init__(self, engine, settings: ServeSettings):
        self.engine, self.settings = engine, settings
        self.gate = Gate(settings.max_queue)
        self.library = Library(settings.resolved_documents_dir(), settings.max_document_bytes)
        self.store = settings.store()
        self.model_ids = tuple(settings.model_names) or (engine.name,)
        self.created = int(time.time())
        self.recent: OrderedDict[str, tuple] = OrderedDict()  # completion id -> (reply, document) for figures
        self.running: set[Generation] = set()
        self.ingests: set[threading.Thread] = set()
        self._figure_lock = threading.Lock()  # matplotlib's pyplot is not thread-safe

    @property
    def max_document_tokens(self) -> int:
        return self.settings.max_document_tokens or self.engine.max_input_tokens

    # -- checks ----------------------------------------------------------------------------------------------
    def check_model(self, model: str) -> str:
        if model not in self.model_ids:
            raise APIError(404, f"The model {model!r} does not exist on this server: use "
                                f"{' or '.join(repr(m) for m in self.model_ids)} (GET /v1/models).",
                           param="model", code="model_not_found")
        return model

    def check_document_tokens(self, n: int) -> None:
        if n > self.max_document_tokens:
            raise APIError(413, f"The document is {n:,} tokens; this server takes documents of at most "
                                f"{self.max_document_tokens:,} tokens (--max-document-tokens): shorten or split it.",
                           code="document_too_large")

    # -- jobs ------------------------------------------------------------------------------------------------
    def raw_job(self, prompt, params) -> Job:
        """A prompt (prompts.RawPrompt) through `Engine.stream`, its document prefix pooled for reuse."""
        self.check_document_tokens(prompt.document_tokens)
        self.engine.check_length(len(prompt.ids))
        usage = Usage()

        def make_iter(progress):
            return self.engine.stream(prompt.ids, params, prefix_len=prompt.prefix_len, usage=usage,
                                      progress=progress)

        return Job(make_iter, usage)

    def session_job(self, doc_id: str, turns, params, *, cite: bool, rid: str) -> Job:
        """Chat turns about an uploaded document through `DocumentSession` (the CLI's frame and stored ingest)."""
        from longdoc.integrations._shared import conversation
        from longdoc.qa.citations import citation_dicts
        from longdoc.qa.session import DocumentSession

        try:
            document, info = self.library.get(doc_id)
        except UnknownDocument as e:
            raise APIError(404, str(e), param="document", code="document_not_found") from None
        system, history, question = conversation([(r, t) for r, t in turns if t.strip()])
        session = DocumentSession(self.engine, document, system=system, store=self.store)
        prompt = session.prompt(question, history)
        self.check_document_tokens(prompt.prefix_len)
        self.engine.check_length(len(prompt.ids))
        usage, held = Usage(), {}

        def make_iter(progress):
            reply = session.reply(question, params, history=history, cite=True, progress=progress,
                                  prefix_progress=progress, usage=usage, charge_prefix=True)
            held["reply"] = reply
            return iter(reply)

        def extras() -> dict:
            reply = held.get("reply")
            if reply is None:
                return {}
            self.remember(rid, reply, document)
            out = {"longdoc": {"document": doc_id, "fits_window": reply.fits_window(),
                               "figure": f"/v1/longdoc/figures/{rid}.png" if self.engine.config else None}}
            if cite:  # pages / files only: the share the prompt frame and question got is left out
                found = reply.citations() if not reply.fits_window() else []
                texts = page_texts(document)
                out["citations"] = [{**c, "text": texts[c["source"]][:CITATION_TEXT_CHARS]}
                                    for c in citation_dicts(found) if c["source"] in texts]
            return out

        return Job(make_iter, usage, extras)

    def remember(self, rid: str, reply, document) -> None:
        self.recent[rid] = (reply, document)
        while len(self.recent) > RECENT_ANSWERS:
            self.recent.popitem(last=False)

    # -- running ---------------------------------------------------------------------------------------------
    async def enter(self, request: Request):
        """The engine for this request, in arrival order; 429 with Retry-After when the queue is full; a client
        that goes away while waiting leaves the queue."""
        waiting = asyncio.ensure_future(self.gate.enter())
        while True:
            done, _ = await asyncio.wait({waiting}, timeout=DISCONNECT_POLL_S)
            if done:
                try:
                    return waiting.result()
                except QueueFull as e:
                    raise self.busy(e) from None
            if await request.is_disconnected():
                waiting.cancel()
                try:
                    slot = await waiting
                    slot.release()
                except (asyncio.CancelledError, QueueFull):
                    pass
                raise APIError(499, "The client closed the request.")

    @staticmethod
    def busy(e: QueueFull) -> APIError:
        return APIError(429, f"The server is busy: one answer is being generated and the queue is full; retry "
                             f"in {e.retry_after} s.", code="rate_limit_exceeded",
                        headers={"Retry-After": str(e.retry_after)})

    async def start(self, request: Request, job: Job) -> Generation:
        slot = await self.enter(request)
        gen = Generation(job.make_iter, on_done=slot.release)
        self.running.add(gen)
        try:
            gen.start()
        except BaseException:
            slot.release()
            self.running.discard(gen)
            raise
        asyncio.ensure_future(self._watch(request, gen))
        return gen

    async def _watch(self, request: Request, gen: Generation) -> None:
        """Cancel `gen` when the client disconnects (bounded: ends when the generation does)."""
        try:
            while not gen.finished.is_set():
                if await request.is_disconnected():
                    gen.cancel()
                    break
                await asyncio.sleep(DISCONNECT_POLL_S)
        except Exception:  # the connection's receive channel is gone: nobody is listening
            gen.cancel()
        finally:
            while not gen.finished.is_set():  # a cancelled generation stops at its next piece or prefill block
                await asyncio.sleep(DISCONNECT_POLL_S)
            self.running.discard(gen)

    async def collect(self, gen: Generation) -> str:
        parts = [piece async for piece in gen.pieces()]
        return "".join(parts)

    def cancel_all(self) -> None:
        for gen in list(self.running):
            gen.cancel()


def page_texts(document) -> dict[str, str]:
    """{citation label: its text} of a document (a PDF page, a converted file's section, a text file)."""
    from longdoc.qa.citations import source_label

    out: dict[str, list[str]] = {}
    for span in document.spans:
        out.setdefault(source_label(document, span), []).append(document.text[span.start:span.end])
    return {k: "".join(v) for k, v in out.items()}


def sse(data) -> str:
    return f"data: {json.dumps(data) if not isinstance(data, str) else data}\n\n"


# -- the application ---------------------------------------------------------------------------------------------
def create_app(engine, settings: ServeSettings | None = None) -> FastAPI:
    """The FastAPI app serving `engine` (a longdoc.engine.Engine) with `settings`."""
    from contextlib import asynccontextmanager

    settings = settings or ServeSettings()
    server = Server(engine, settings)

    @asynccontextmanager
    async def lifespan(app):
        yield
        # uvicorn has stopped accepting and waited (up to --drain-timeout) for requests in flight: stop what is
        # left, then wait for ingests, whose stores are written whole or not at all (store.py, library.py).
        server.cancel_all()
        for thread in list(server.ingests):
            await asyncio.to_thread(thread.join)

    app = FastAPI(title="longdoc", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    app.state.server = server
    api_errors.install(app)
    static = resources.files("longdoc.serve") / "static"

    @app.get("/health")
    async def health():
        return {"status": "ok", "model": server.model_ids[0], "busy": server.gate.busy,
                "waiting": server.gate.waiting, "max_queue": settings.max_queue}

    @app.get("/v1/models")
    async def models():
        return {"object": "list", "data": [model_card(m) for m in server.model_ids]}

    @app.get("/v1/models/{model_id:path}")
    async def model(model_id: str):
        return model_card(server.check_model(model_id))

    def model_card(m: str) -> dict:
        return {"id": m, "object": "model", "created": server.created, "owned_by": "longdoc",
                "max_model_len": int(engine.max_input_tokens)}

    @app.post("/v1/chat/completions")
    async def chat_completions(body: protocol.ChatCompletionRequest, request: Request):
        body.check_supported()
        model = server.check_model(body.model)
        params = body.sampling(settings.max_tokens)
        turns, files = message_parts(body.messages)
        doc_ids = list(dict.fromkeys(([body.document] if body.document else []) + files))
        if len(doc_ids) > 1:
            raise APIError(400, "A request may refer to one uploaded document; upload the files together "
                                "instead (one POST /v1/longdoc/documents with several files).", param="document")
        if not any(r == "user" for r, _ in turns):
            raise APIError(400, "messages has no user message: the last message should be the user's question.",
                           param="messages", code="invalid_request")
        rid = protocol.new_id("chatcmpl")
        if doc_ids:
            job = await run_in_threadpool(server.session_job, doc_ids[0], turns, params, cite=body.cite, rid=rid)
        else:
            prompt = await run_in_threadpool(chat_prompt, engine, turns)
            job = await run_in_threadpool(server.raw_job, prompt, params)
        gen = await server.start(request, job)
        if body.stream:
            return StreamingResponse(chat_events(gen, job, rid, model, body.include_usage),
                                     media_type="text/event-stream", headers=_STREAM_HEADERS)
        text = await server.collect(gen)
        return protocol.chat_response(rid, model, text, job.usage, job.extras())

    async def chat_events(gen: Generation, job: Job, rid: str, model: str, include_usage: bool):
        created = int(time.time())
        try:
            yield sse(protocol.chat_chunk(rid, model, created, {"role": "assistant", "content": ""}))
            async for piece in gen.pieces():
                yield sse(protocol.chat_chunk(rid, model, created, {"content": piece}))
            yield sse(protocol.chat_chunk(rid, model, created, {}, job.usage.finish_reason or "stop",
                                          extra=job.extras()))
            if include_usage:
                yield sse(protocol.chat_chunk(rid, model, created, {}, usage=protocol.usage_object(job.usage),
                                              choices=False))
        except Exception as e:  # the status line went out already: the error travels as an event
            yield sse(_stream_error(e))
        finally:
            gen.cancel()
        yield sse("[DONE]")

    @app.post("/v1/completions")
    async def completions(body: protocol.CompletionRequest, request: Request):
        body.check_supported()
        model = server.check_model(body.model)
        if body.document:
            raise APIError(400, "document is for /v1/chat/completions: ask about an uploaded document there.",
                           param="document")
        params = body.sampling(settings.max_tokens)
        prompt = await run_in_threadpool(completion_prompt, engine, body.prompt_text)
        job = await run_in_threadpool(server.raw_job, prompt, params)
        rid = protocol.new_id("cmpl")
        gen = await server.start(request, job)
        if body.stream:
            return StreamingResponse(completion_events(gen, job, rid, model, body.include_usage),
                                     media_type="text/event-stream", headers=_STREAM_HEADERS)
        text = await server.collect(gen)
        return protocol.completion_response(rid, model, text, job.usage)

    async def completion_events(gen: Generation, job: Job, rid: str, model: str, include_usage: bool):
        created = int(time.time())
        try:
            async for piece in gen.pieces():
                yield sse(protocol.completion_chunk(rid, model, created, piece))
            yield sse(protocol.completion_chunk(rid, model, created, "", job.usage.finish_reason or "stop"))
            if include_usage:
                yield sse(protocol.completion_chunk(rid, model, created, "", usage=protocol.usage_object(job.usage),
                                                    choices=False))
        except Exception as e:
            yield sse(_stream_error(e))
        finally:
            gen.cancel()
        yield sse("[DONE]")

    # -- documents -------------------------------------------------------------------------------------------
    @app.post("/v1/longdoc/documents")
    async def upload(request: Request, prefill: bool = True):
        try:
            form = await request.form(max_files=1000, max_fields=100, max_part_size=settings.max_request_bytes)
        except HTTPException as e:
            if e.status_code != 400:  # 413 from the body cap
                raise
            raise APIError(400, f"The upload is not a readable multipart form ({e.detail}): send the files as "
                                "multipart/form-data in the field 'files'.") from None
        except Exception as e:  # python-multipart's own parse errors
            raise APIError(400, f"The upload is not a readable multipart form ({type(e).__name__}): send the files "
                                "as multipart/form-data in the field 'files'.") from None
        files = []
        for item in form.getlist("files"):
            if isinstance(item, str):
                raise APIError(400, "The form field 'files' must hold files, not text.", param="files")
            files.append((item.filename or "upload", await item.read()))
        await form.close()
        try:
            info = await run_in_threadpool(server.library.add, files)
        except TooLarge as e:
            raise APIError(413, str(e), code="document_too_large") from None
        out = info.public()
        if prefill:
            out["ingest"] = await ingest(request, info.id)
            info = server.library.get(info.id)[1]
            out["tokens"] = info.tokens
        return out

    async def ingest(request: Request, doc_id: str) -> dict:
        """Prefill the uploaded document into the pool and the store (the CLI's frame: `longdoc ingest`)."""
        from longdoc.qa import prompting
        from longdoc.qa.session import DocumentSession

        document, _ = server.library.get(doc_id)
        session = DocumentSession(engine, document, store=server.store)
        prefix = await run_in_threadpool(prompting.build_prefix, engine.tokenizer, document.text)
        server.library.set_tokens(doc_id, len(prefix.ids))
        server.check_document_tokens(len(prefix.ids))
        slot = await server.enter(request)
        done: dict[str, Any] = {}

        def work():
            try:
                done["ingest"] = session.prepare(prefix)
            except BaseException as e:
                done["error"] = e
            finally:
                slot.release()

        thread = threading.Thread(target=work, name="longdoc-serve-ingest")
        server.ingests.add(thread)
        thread.start()
        try:
            await asyncio.to_thread(thread.join)
        finally:
            server.ingests.discard(thread)
        if "error" in done:
            raise done["error"]
        ing = done["ingest"]
        return {"tokens": ing.tokens, "stored": ing.stored, "loaded": ing.reused, "pooled": ing.pooled,
                "seconds": round(ing.seconds, 3), "not_stored": ing.not_stored}

    @app.get("/v1/longdoc/documents")
    async def documents():
        infos = await run_in_threadpool(server.library.list)
        return {"object": "list", "data": [i.public() for i in infos]}

    @app.get("/v1/longdoc/documents/{doc_id}")
    async def document(doc_id: str):
        try:
            return server.library.get(doc_id)[1].public()
        except UnknownDocument as e:
            raise APIError(404, str(e), code="document_not_found") from None

    @app.get("/v1/longdoc/figures/{rid}.png")
    async def figure(rid: str):
        held = server.recent.get(rid)
        if held is None or engine.config is None:
            raise APIError(404, f"No recent answer {rid!r} about an uploaded document: the picture is kept for the "
                                f"last {RECENT_ANSWERS} answers.", code="figure_not_found")
        png = await run_in_threadpool(draw_figure, server, *held)
        return Response(png, media_type="image/png", headers={"Cache-Control": "no-store"})

    # -- the web page ----------------------------------------------------------------------------------------
    @app.get("/")
    async def index():
        return FileResponse(str(static / "index.html"), media_type="text/html")

    @app.get("/static/{name}")
    async def static_file(name: str):
        path = static / name
        if "/" in name or name.startswith(".") or not path.is_file():
            raise APIError(404, f"No file {name!r}.")
        kind = {"js": "text/javascript", "css": "text/css"}.get(name.rsplit(".", 1)[-1], "application/octet-stream")
        return FileResponse(str(path), media_type=kind)

    return Guard(app, settings.api_key, settings.max_request_bytes)


_STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def _stream_error(e: Exception) -> dict:
    if isinstance(e, APIError):
        return error_body(e.status, e.message, e.code)
    if isinstance(e, LongdocError):
        err = api_errors.from_longdoc(e)
        return error_body(err.status, err.message, err.code)
    log.exception("unexpected error while streaming", exc_info=e)
    return error_body(500, f"The server failed while generating ({type(e).__name__}); the details are in its log.",
                      "internal_error")


def draw_figure(server: Server, reply, document) -> bytes:
    """Figure 5 (longdoc/qa/figure.py) of a recent answer, as PNG bytes."""
    from longdoc.qa.figure import render

    cfg = server.engine.model.config
    buf = io.BytesIO()
    title = f"{', '.join(document.sources)[:80]} ({len(reply.prompt.ids):,} tokens, window {server.engine.config.window})"
    with server._figure_lock:
        render(buf, reply.selections or [], document, reply.prompt, server.engine.config, cfg.num_hidden_layers,
               cfg.num_attention_heads, title=title)
    return buf.getvalue()
