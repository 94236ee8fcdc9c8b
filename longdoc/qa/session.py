"""DocumentSession: the one document-QA path every interface takes (CLI commands, ChatLongDoc, LongDocLLM,
WholeDocumentQueryEngine).

    document (longdoc.documents) -> prompt frame (prompting.py) -> stored or pooled document prefix (store.py,
    the Engine's pool) -> streamed answer -> citations (citations.py)

One frame, one store key, one answer: the same document, question and settings give the same prompt tokens,
the same stored ingest and, greedy, the same answer byte for byte whichever interface asked.

    session = DocumentSession(engine, load(["report.pdf"]), store=Store())
    reply = session.reply("What does the report conclude?", SamplingParams(max_new_tokens=128), cite=True)
    for piece in reply: print(piece, end="")
    reply.citations()        # [Source("report.pdf p. 4", 0.41), ...]

A conversation passes its earlier turns: `session.reply(q2, history=[(q1, a1)])` (or `Conversation`). They go
after the document in the frame, so the document's prefill is still reused.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Iterator

from longdoc.documents import Document
from longdoc.generate import ProgressFn, SamplingParams, Usage
from longdoc.longheads.layout import Selection
from longdoc.qa import prompting
from longdoc.qa.citations import Source, sources, weighted_sources
from longdoc.reread import chunk_prior
from longdoc.errors import StoreError
from longdoc.store import Store, make_key, store_failure


def text_document(text: str, source: str = "<text>") -> Document:
    """A Document made of one string (no pages): what a caller that already holds the text gives a session."""
    from longdoc.documents import Span

    return Document(text, [Span(0, len(text), source, None, None, 1)], [source])


@dataclass
class Ingest:
    """How the document prefix of a prompt got into the engine's pool."""

    key: str | None
    tokens: int
    reused: bool  # loaded from the store
    stored: bool  # written to the store by this call
    seconds: float  # prefill or load time
    pooled: bool = False  # already in the engine's pool: nothing was loaded or prefilled
    prefilled: int = 0  # tokens this call prefilled (the rest came from the store or the pool)
    not_stored: str | None = None  # why a wanted store did not happen ("cannot write to ... (read-only file system)")


def prefix_key(engine, content_hash: str, format_id: str) -> str:
    """The store key of a document prefix: its content, the model, the LongHeads settings and the frame."""
    config = engine.config.to_dict() if engine.config is not None else None
    return make_key(content_hash, f"{engine.name}|{engine.lm.source}", config, format_id)


def ensure_prefix(engine, prefix_ids: list[int], key: str | None, store: Store | None, *, save: bool = True,
                  progress: ProgressFn | None = None, info: dict | None = None) -> Ingest:
    """Make sure the engine's prefix pool holds `prefix_ids`: load it from the store, or prefill it (and store
    it when `save`). With no store or key (or LongHeads off), it is only prefilled in memory. The store is an
    optimisation only: an unreadable one is read past, an unwritable or full one leaves `Ingest.not_stored` saying
    why (the answer still comes)."""
    t0 = time.perf_counter()
    engine.check_length(len(prefix_ids) + 1)  # fail before any work for a document that is too long
    if engine.holds_prefix(prefix_ids):  # an earlier question's prefill is still pooled
        return Ingest(key, len(prefix_ids), False, False, time.perf_counter() - t0, pooled=True)
    usable = store is not None and key is not None and engine.config is not None
    if usable:
        try:
            found = store.load(key, device=engine.lm.device, dtype=engine.model.dtype)  # the compute dtype
        except OSError:  # an unreadable store folder: read the document instead
            found = None
        if found is not None and found[0] == list(prefix_ids):
            engine.add_prefix(prefix_ids, found[1])
            return Ingest(key, len(prefix_ids), True, False, time.perf_counter() - t0)
        if found is not None:  # same key, other tokens (e.g. a changed tokenizer): not ours to use
            try:
                store.remove(key)
            except StoreError:
                pass
    cache, reused = engine.prefill_prefix(list(prefix_ids), progress=progress)
    seconds = time.perf_counter() - t0
    stored, not_stored = False, None
    if usable and save:
        try:
            saved = store.save(key, prefix_ids, cache, {"model": engine.name, "prefill_s": round(seconds, 3),
                                                        **(info or {})})
        except Exception as e:  # OSError, safetensors' own error on a full disk...: storing is optional
            saved, not_stored = None, store_failure(e, store.root)
        stored = saved is not None
        if not stored and not_stored is None:
            not_stored = f"the entry is larger than the cache size cap ({store.max_bytes:,} bytes)"
    return Ingest(key, len(prefix_ids), False, stored, seconds, prefilled=len(prefix_ids) - reused,
                  not_stored=not_stored)


REREAD_DEFAULT = True  # 16k pass keys: 12/20 with the re-read vs 2/20 without (README, "Reading"); prompts
# inside the window are answered directly whatever this says (every head already reads all of them)


REREAD_SCORES = "contrast"  # real-PDF questions: the gold page among the re-read chunks 38/40 vs 29/40 with plain
# attention mass, the top chunk on the most common page 0.10 vs 0.62 (README, "Reading"); attention mass itself
# beat the heads' votes (16k essay needles 10/10 vs 0/10, real-PDF answers 8/40 vs 3/40)


REREAD_SHARE = 0.5  # of the window, the default re-read: on the embedded model (2k window) a 1,024-token re-read
# answered 13/40 real-PDF questions vs 4/40 for 2,048 tokens with the same chunks ranked first (README, "Reading"):
# the 135M model reads a short dense prompt better, with fewer look-alike chunks to confuse it. Measured on that
# model only; `reread_tokens` / `--reread-tokens` set it


REREAD_QUESTION_FIRST = True  # the re-read reads the question after chunk 0 too (query-aware contextualization):
# pass key 18/20 vs 10/20 at 16k and at 32k, planted facts 6/20 vs 3/20 and essay needles 18/20 both at 16k,
# real-PDF answers 14/40 vs 13/40 (README, "Reading"); the model stopped repeating the question instead of
# answering (12/20 -> 1/20 of the `qa` answers)


REREAD_PEAK_SPANS = True  # each chosen chunk read where the question's attention peaks, up to half a chunk into a
# neighbour (`reread.place_spans`): a pass key cut by a chunk boundary is read whole; pass key 20/20 vs 18/20 at
# 16k and at 32k, planted facts 12/20 vs 6/20 at 16k, same prefills (README, "Reading")


class DocumentSession:
    """A document and an engine, ready to answer questions about the document.

    fmt, system: the prompt frame (prompting.FORMATS; docs/prompt_formats.md measured the default) and an
        optional system line; both are part of the store key. store: where prefilled documents are kept across
        processes (None: only the engine's in-memory pool).
    reread: answer with a LongHeads-guided re-read (longdoc/reread.py, `Engine.reread_stream`): the heads'
        selections for the question choose chunks (hub-corrected with the document's own choices, which its
        cache carries), a dense pass of at most `reread_tokens` tokens (default: REREAD_SHARE of the window, or
        what leaves room for one chosen chunk next to the question; at most the window) over [chunk 0 | chosen chunks | question] answers. On by default (REREAD_DEFAULT), by measurement (README, "Reading").
    reread_scores: how the re-read ranks chunks, "votes" (the heads' selections), "attention" (the question's
        token-level attention mass, `reread.attention_votes`) or "contrast" (that mass per head over the mass
        neutral questions give the same document, `reread.contrast`); REREAD_SCORES by measurement.
    reread_order: "text" (the chosen chunks in document order) or "score" (the best next to the question).
    reread_question_first: the re-read also reads the question right after chunk 0, before the chosen chunks
        (`reread.plan(lead=...)`); REREAD_QUESTION_FIRST by measurement.
    reread_peak: each chosen chunk is read as the chunk-sized window where the question's attention peaks, up to
        half a chunk into a neighbour ("attention" / "contrast" scores; `reread.place_spans`); REREAD_PEAK_SPANS.
    """

    def __init__(self, engine, document: Document, *, fmt: str = prompting.DEFAULT_FORMAT, system: str | None = None,
                 store: Store | None = None, reread: bool = REREAD_DEFAULT, reread_tokens: int | None = None,
                 reread_scores: str = REREAD_SCORES, reread_order: str = "text",
                 reread_question_first: bool | None = None, reread_peak: bool | None = None):
        self.engine, self.document, self.fmt, self.system, self.store = engine, document, fmt, system, store
        self.reread, self.reread_tokens, self.reread_scores = reread, reread_tokens, reread_scores
        self.reread_order = reread_order
        self.reread_question_first = REREAD_QUESTION_FIRST if reread_question_first is None else reread_question_first
        self.reread_peak = REREAD_PEAK_SPANS if reread_peak is None else reread_peak
        self.ingest: Ingest | None = None
        self._neutral_prompts: list[list[int]] | None = None

    def reread_budget(self, prompt: prompting.Prompt, lead: int = 0) -> int | None:
        """Tokens of the dense re-read for this prompt (with `lead` tokens read after chunk 0), or None to answer
        directly (re-read off, LongHeads off, no reusable document prefix, or a prompt that fits the window:
        every head already reads all of it)."""
        cfg = self.engine.config
        if not self.reread or cfg is None or not prompt.prefix_len or len(prompt.ids) <= cfg.window:
            return None
        l = cfg.chunk_size
        tail = len(prompt.ids) - prompt.prefix_len // l * l  # the partial chunk + the question (reread.plan)
        default = max(int(cfg.window * REREAD_SHARE) // l * l, 2 * l + tail + lead)  # chunk 0 and one chosen
        return min(self.reread_tokens or default, cfg.window)

    def leaves_room(self, prompt: prompting.Prompt, budget: int, lead: int = 0) -> bool:
        """Whether a re-read of `budget` tokens with `lead` tokens after chunk 0 has room for one chosen chunk."""
        l = self.engine.config.chunk_size
        tail = len(prompt.ids) - prompt.prefix_len // l * l
        return budget - min(l, len(prompt.ids)) - tail - lead >= l

    @property
    def key(self) -> str:
        return prefix_key(self.engine, self.document.content_hash(), prompting.format_id(self.fmt, self.system))

    def prompt(self, question: str, history: list[tuple[str, str]] = ()) -> prompting.Prompt:
        return prompting.build(self.engine.tokenizer, self.document.text, question, fmt=self.fmt, system=self.system,
                               history=list(history))

    def prepare(self, prompt: prompting.Prompt | None = None, *, save: bool = True,
                progress: ProgressFn | None = None) -> Ingest | None:
        """Get the document prefix into the engine: from the store, or prefilled (then stored). Once per session;
        None for a frame with no reusable prefix."""
        prompt = prompt or prompting.build_prefix(self.engine.tokenizer, self.document.text, fmt=self.fmt,
                                                  system=self.system)
        self.engine.check_length(len(prompt.ids))
        if prompt.prefix_len and self.ingest is None:
            self.ingest = ensure_prefix(self.engine, prompt.prefix_ids, self.key, self.store, save=save,
                                        progress=progress, info=self.manifest_info())
        return self.ingest

    def neutral_prompts(self) -> list[list[int]]:
        """The document framed with each of `reread.NEUTRAL_QUESTIONS` (the "contrast" re-read's baseline);
        tokenised once per session."""
        from longdoc.reread import NEUTRAL_QUESTIONS

        if self._neutral_prompts is None:
            self._neutral_prompts = [self.prompt(q).ids for q in NEUTRAL_QUESTIONS]
        return self._neutral_prompts

    def question_lead(self, question: str) -> list[int]:
        """The tokens a question-first re-read reads after chunk 0: the question, then a blank line."""
        return self.engine.encode(question.strip() + "\n\n")

    def manifest_info(self) -> dict:
        return {"sources": self.document.sources, "chars": len(self.document.text), "format": self.fmt}

    def reply(self, question: str, params: SamplingParams | None = None, *, history: list[tuple[str, str]] = (),
              cite: bool = False, progress: ProgressFn | None = None, prefix_progress: ProgressFn | None = None,
              on_complete: Callable[["Reply"], None] | None = None, usage: Usage | None = None,
              charge_prefix: bool = False) -> "Reply":
        """Start answering `question` (after the earlier `history` turns). Iterate the Reply for text pieces.

        The prompt's stop strings are added to params.stop. cite=True records the heads' selections for
        `Reply.citations()`. charge_prefix=True counts a document prefilled for this reply in its usage (as
        prompt tokens not read from a cache, and in prefill_s) rather than apart in `session.ingest`.
        Raises TooLongError (before any work) for a prompt over the engine's reach.
        """
        prompt = self.prompt(question, history)
        before = self.ingest
        self.prepare(prompt, progress=prefix_progress)
        made = self.ingest if self.ingest is not before else None
        prefilled = made if (charge_prefix and made is not None and made.prefilled) else None
        params = params or SamplingParams()
        params = SamplingParams(**{**params.__dict__, "stop": list(dict.fromkeys([*params.stop, *prompt.stop]))})
        lead = self.question_lead(question) if self.reread_question_first else []
        budget = self.reread_budget(prompt, len(lead))
        if budget and lead and not self.leaves_room(prompt, budget, len(lead)):
            lead, budget = [], self.reread_budget(prompt)  # a question too long to read twice: read it once
        lead = lead if budget else []
        return Reply(self, prompt, params, [] if cite else None, progress, on_complete, usage, prefilled,
                     reread=budget, lead_ids=lead)


class Reply:
    """One answer being generated. Iterate for its text pieces (leading whitespace dropped); afterwards `text`,
    `usage` and `citations()`. Closing it early frees the engine (the prompt's prefill stays pooled)."""

    def __init__(self, session: DocumentSession, prompt: prompting.Prompt, params: SamplingParams,
                 selections: list[Selection] | None, progress: ProgressFn | None,
                 on_complete: Callable[["Reply"], None] | None = None, usage: Usage | None = None,
                 prefilled: Ingest | None = None, reread: int | None = None, lead_ids: list[int] = ()):
        self.session, self.prompt, self.params, self.selections = session, prompt, params, selections
        self._on_complete = on_complete
        self._prefilled = prefilled
        self.usage = usage if usage is not None else Usage()
        self.parts: list[str] = []
        self.reread = None  # the RereadPlan the answer came from (set before the first piece), if re-read
        if reread:  # hub-corrected: the document's prior travels in its cache (prefill, pool and store agree)
            self._pieces = session.engine.reread_stream(
                prompt.ids, params, prefix_len=prompt.prefix_len, question_start=prompt.prefix_len, budget=reread,
                selections=selections,
                scores=session.reread_scores,
                neutral_prompts=session.neutral_prompts() if session.reread_scores == "contrast" else (),
                order=session.reread_order,
                lead_ids=lead_ids, peak_spans=session.reread_peak,
                usage=self.usage, progress=progress, on_plan=self._planned)
        else:
            self._pieces = session.engine.stream(prompt.ids, params, prefix_len=prompt.prefix_len, usage=self.usage,
                                                 progress=progress, selections=selections)

    def _planned(self, plan) -> None:
        self.reread = plan

    def __iter__(self) -> Iterator[str]:
        for piece in self._pieces:
            if not self.parts:
                piece = piece.lstrip()  # the answer a completion frame starts with a space
                if not piece:
                    continue
            self.parts.append(piece)
            yield piece
        if self._prefilled is not None:  # the document was prefilled for this reply: not read from a cache
            self.usage.cached_tokens = max(0, self.usage.cached_tokens - self._prefilled.prefilled)
            self.usage.prefill_s += self._prefilled.seconds
        if self._on_complete is not None:
            self._on_complete(self)

    def close(self) -> None:
        self._pieces.close()

    @property
    def text(self) -> str:
        return "".join(self.parts)

    def citations(self, top: int | None = 5) -> list[Source] | None:
        """The pages / files the answer came from: for a re-read, the chunks it read (weighted by their votes);
        else the chunks the heads read most while answering (None unless the reply was started with cite)."""
        config = self.session.engine.config
        if config is None:
            return None
        if self.reread is not None:
            weights = {c: max(float(self.reread.scores[c]), 1e-9) for c in self.reread.chunks}
            return weighted_sources(weights, self.session.document, self.prompt, config, top=top)
        if self.selections is None:
            return None
        prior = None
        if self.prompt.prefix_len:  # the document's own choices came first in selections (Engine.stream)
            prior = chunk_prior(self.selections, config, self.prompt.prefix_len // config.chunk_size + 1,
                                self.prompt.prefix_len)
        return sources(self.selections, self.session.document, self.prompt, config, top=top, prior=prior)

    def fits_window(self) -> bool:
        """The whole prompt fits in one attention window: every head read all of it, so no citation is made."""
        config = self.session.engine.config
        return config is not None and len(self.prompt.ids) <= config.window


@dataclass
class Conversation:
    """A conversation about one document: every question sees the earlier questions and answers (a turn is
    remembered once its reply has been read to the end)."""

    session: DocumentSession
    history: list[tuple[str, str]] = field(default_factory=list)

    def reply(self, question: str, params: SamplingParams | None = None, **kw) -> Reply:
        return self.session.reply(question, params, history=list(self.history),
                                  on_complete=lambda r: self.history.append((question, r.text)), **kw)
