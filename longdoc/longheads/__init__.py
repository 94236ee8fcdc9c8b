"""The LongHeads mechanism (Lu et al. 2024, "LongHeads: Multi-Head Attention is Secretly a Long Context
Processor"), readable in one sitting, in this order:

    config.py     LongHeadsConfig: every knob (chunk size l, chunks K, ...), validated
    rope.py       relative RoPE rotations (how a cached key moves to another position)
    layout.py     the window's slot layout [first | selected ... | previous | current] and the shift per slot
    chunks.py     chunk summaries (eq. 1-2), chunk scores, per-head selection (eq. 3)
    attention.py  the attention function transformers calls (vectorised fast path)
    backends.py   the attention kernels (flash-attn on CUDA, SDPA elsewhere)
    reference.py  a plain per-token loop the fast path is tested against
    cache.py      LongHeadsCache: a transformers Cache holding keys, values and chunk state
    plan.py       ForwardPlan: what one forward call asks of the attention (passed as a model kwarg)
    patch.py      the transformers hookup: enable_longheads / disable_longheads
"""
