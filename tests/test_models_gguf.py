"""GGUF file types through longdoc's one loading path (`load_model(path.gguf)`: dequantised once to safetensors),
each on a tiny Llama GGUF written here with the `gguf` package: F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q4_K_M, Q5_K_M,
Q6_K, with llama.cpp's per-tensor type mix for the _M files. Every loaded weight is compared with what the
`gguf` package dequantises from the bytes written; a tensor type it cannot read is named in the error."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from longdoc.errors import ModelError
from longdoc.models import gguf_file_type, load_model

HIDDEN, FFN, HEADS, KV_HEADS, LAYERS = 256, 512, 4, 2, 1
HEAD_DIM = HIDDEN // HEADS
BYTES = [bytes([b]) for b in range(256)]


def _byte_chars() -> list[str]:
    """GPT-2's byte-to-unicode table: every byte as one printable character (the byte-level BPE alphabet)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs, n = bs[:], 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return [chr(c) for _, c in sorted(zip(bs, cs))]


TOKENS = _byte_chars() + ["Ġt", "he", "Ġthe", "<|endoftext|>"]
MERGES = ["Ġ t", "h e", "Ġt he"]
VOCAB = len(TOKENS)

# tensor name -> (numpy shape (rows, cols) as transformers sees it; HF cols = GGUF ne0)
SHAPES = {"token_embd.weight": (VOCAB, HIDDEN), "output.weight": (VOCAB, HIDDEN)}
for i in range(LAYERS):
    SHAPES |= {f"blk.{i}.attn_q.weight": (HIDDEN, HIDDEN), f"blk.{i}.attn_k.weight": (KV_HEADS * HEAD_DIM, HIDDEN),
               f"blk.{i}.attn_v.weight": (KV_HEADS * HEAD_DIM, HIDDEN), f"blk.{i}.attn_output.weight": (HIDDEN, HIDDEN),
               f"blk.{i}.ffn_gate.weight": (FFN, HIDDEN), f"blk.{i}.ffn_up.weight": (FFN, HIDDEN),
               f"blk.{i}.ffn_down.weight": (HIDDEN, FFN)}
NORMS = ["output_norm.weight"] + [f"blk.{i}.{n}.weight" for i in range(LAYERS) for n in ("attn_norm", "ffn_norm")]
HF_NAME = {"token_embd": "model.embed_tokens", "output": "lm_head", "attn_q": "self_attn.q_proj",
           "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj", "attn_output": "self_attn.o_proj",
           "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj", "ffn_down": "mlp.down_proj"}


def tensor_type(file_type: str, name: str) -> str:
    """The tensor type llama.cpp's llama-quantize gives `name` in a file of `file_type` (its *_M mixes keep
    attn_v, ffn_down and output at Q6_K)."""
    big = {"F32": "F32", "F16": "F16", "BF16": "BF16", "Q8_0": "Q8_0", "Q4_0": "Q4_0", "Q4_1": "Q4_1",
           "Q4_K_M": "Q4_K", "Q5_K_M": "Q5_K", "Q6_K": "Q6_K"}[file_type]
    if file_type.endswith("_K_M") and any(k in name for k in ("attn_v", "ffn_down", "output.weight")):
        return "Q6_K"
    if file_type in ("Q4_0", "Q4_1") and name == "output.weight":
        return "Q6_K"
    return big


def _encode(values: np.ndarray, qtype_name: str, rng) -> np.ndarray:
    """Bytes of `values` in `qtype_name`: quantised by the gguf package where it can; for the K-quants (which it
    only dequantises) random blocks with small, finite super-block scales."""
    from gguf import GGML_QUANT_SIZES, GGMLQuantizationType
    from gguf.quants import quant_shape_to_byte_shape, quantize

    qtype = GGMLQuantizationType[qtype_name]
    if qtype_name == "F32":
        return values.astype(np.float32)
    if qtype_name in ("F16", "BF16", "Q8_0", "Q4_0", "Q4_1"):
        return quantize(values, qtype)
    block, size = GGML_QUANT_SIZES[qtype]
    raw = rng.integers(0, 256, size=quant_shape_to_byte_shape(values.shape, qtype), dtype=np.uint8)
    blocks = raw.reshape(-1, size)
    scale = np.full(blocks.shape[0], 0.002, dtype=np.float16).view(np.uint8).reshape(-1, 2)
    if qtype_name == "Q6_K":
        blocks[:, -2:] = scale  # ... d
    else:  # Q4_K, Q5_K: d, dmin first
        blocks[:, 0:2] = scale
        blocks[:, 2:4] = scale
    return blocks.reshape(raw.shape)


def write_tiny_gguf(path, file_type: str, seed: int = 0) -> dict[str, np.ndarray]:
    """A 1-layer Llama GGUF of `file_type` with a byte-level BPE tokenizer; returns {gguf name: the float32
    weights the gguf package dequantises from the bytes written}."""
    from gguf import GGMLQuantizationType, GGUFWriter, LlamaFileType, TokenType
    from gguf.quants import dequantize

    rng = np.random.default_rng(seed)
    w = GGUFWriter(str(path), "llama")
    w.add_name(f"tiny-{file_type}")
    w.add_context_length(256)
    w.add_embedding_length(HIDDEN)
    w.add_block_count(LAYERS)
    w.add_feed_forward_length(FFN)
    w.add_head_count(HEADS)
    w.add_head_count_kv(KV_HEADS)
    w.add_rope_dimension_count(HEAD_DIM)
    w.add_rope_freq_base(10000.0)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_file_type(LlamaFileType[("ALL_" if file_type == "F32" else "MOSTLY_") + file_type])
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("default")
    w.add_token_list(TOKENS)
    w.add_token_types([TokenType.CONTROL if t.startswith("<|") else TokenType.NORMAL for t in TOKENS])
    w.add_token_merges(MERGES)
    w.add_bos_token_id(VOCAB - 1)
    w.add_eos_token_id(VOCAB - 1)
    expected = {}
    for name, shape in SHAPES.items():
        ttype = tensor_type(file_type, name)
        data = _encode((rng.standard_normal(shape) * 0.05).astype(np.float32), ttype, rng)
        qtype = GGMLQuantizationType[ttype]
        w.add_tensor(name, data, raw_dtype=qtype if ttype not in ("F32", "F16") else None)  # bytes: shape derived
        expected[name] = data if ttype == "F32" else dequantize(data, qtype).reshape(shape).astype(np.float32)
    for name in NORMS:
        data = (1 + 0.1 * rng.standard_normal(HIDDEN)).astype(np.float32)
        w.add_tensor(name, data)
        expected[name] = data
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return expected


FILE_TYPES = ["F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q4_K_M", "Q5_K_M", "Q6_K"]


@pytest.mark.parametrize("file_type", FILE_TYPES)
def test_each_gguf_file_type_loads_through_the_one_path(tmp_path, file_type):
    path = tmp_path / f"tiny-{file_type}.gguf"
    expected = write_tiny_gguf(path, file_type)
    reported, tensor_types = gguf_file_type(path)
    assert reported == file_type and tensor_types == sorted({"F32"} | {tensor_type(file_type, n) for n in SHAPES})
    lm = load_model(str(path))
    state = lm.model.state_dict()
    for gguf_name, want in expected.items():
        parts = gguf_name.split(".")
        if gguf_name in NORMS:
            hf = "model.norm.weight" if parts[0] == "output_norm" else \
                f"model.layers.{parts[1]}.{'input_layernorm' if parts[2] == 'attn_norm' else 'post_attention_layernorm'}.weight"
        elif parts[0] == "blk":
            hf = f"model.layers.{parts[1]}.{HF_NAME[parts[2]]}.weight"
        else:
            hf = f"{HF_NAME[parts[0]]}.weight"
        got = state[hf].float().numpy()
        if parts[-2] in ("attn_q", "attn_k"):  # llama.cpp permutes q/k rows for its RoPE layout; compare as sets
            got, want = np.sort(got, axis=0), np.sort(want, axis=0)
        np.testing.assert_allclose(got, want, atol=1e-6, rtol=1e-5, err_msg=f"{file_type} {gguf_name}")
    ids = lm.tokenizer("the the", return_tensors="pt").input_ids
    assert ids.shape[1] >= 2 and lm.tokenizer.decode(ids[0], skip_special_tokens=True).strip() == "the the"
    with torch.inference_mode():
        assert torch.isfinite(lm.model(ids).logits).all()


def test_a_gguf_type_that_cannot_be_read_is_named(tmp_path):
    """Q8_1 is a llama.cpp intermediate type the gguf package cannot dequantise: the error names it."""
    from gguf import GGML_QUANT_SIZES, GGMLQuantizationType, GGUFWriter

    path = tmp_path / "odd.gguf"
    w = GGUFWriter(str(path), "llama")
    w.add_block_count(1)
    block, size = GGML_QUANT_SIZES[GGMLQuantizationType.Q8_1]
    w.add_tensor("token_embd.weight", np.zeros((8, 256 // block * size), dtype=np.uint8),
                 raw_dtype=GGMLQuantizationType.Q8_1)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    with pytest.raises(ModelError, match=r"odd\.gguf .*type Q8_1, which the gguf reader cannot dequantise"):
        load_model(str(path))


def test_a_file_that_is_not_gguf_gets_one_line(tmp_path):
    path = tmp_path / "broken.gguf"
    path.write_bytes(b"GGUF" + b"\x00" * 40)
    with pytest.raises(ModelError, match="Could not read GGUF file") as e:
        load_model(str(path))
    assert "\n" not in str(e.value)
