"""Measure how `longdoc ask` should frame document + question: accuracy of each prompt format in
longdoc/qa/prompting.py on questions with known answers, at several document lengths, with the real embedded model.

    python examples/cli_prompt_formats.py --lengths 1000 2000 4000 --out docs/prompt_formats.json

Each length gets one document of everyday filler sentences with five facts planted at depths 10%..90%; each
fact has one question. An answer counts as right when it contains the expected word (greedy, 16 tokens).
Reusable formats prefill the document once per length (the engine's prefix pool), like `longdoc chat`.
"""

from __future__ import annotations

import argparse
import json
import random
import time

import torch

FILLER = [
    "The morning train left the station a few minutes late.", "A light rain fell over the hills after lunch.",
    "The library on the corner extended its opening hours.", "Several students gathered to discuss the new timetable.",
    "The bakery sold out of bread before noon again.", "A committee reviewed the budget for the coming year.",
    "The river was calm, and a few boats drifted slowly downstream.", "Workers repaired the old bridge over the summer.",
    "The museum opened a small exhibition about local history.", "Most of the shops closed early on the holiday.",
    "A neighbour planted tomatoes and beans in the garden.", "The council discussed parking rules for the market square.",
    "Children played football in the park until it got dark.", "The weather report promised a sunny weekend.",
    "An old clock in the town hall was finally fixed.", "The new bus line connects the harbour with the university.",
]
FACTS = [  # (sentence, question, expected answer); {n} varies per length
    ("The pass key is {n}. Remember it.", "What is the pass key?", "{n}"),
    ("The capital of Zorbia is Quillton.", "What is the capital of Zorbia?", "Quillton"),
    ("Dr. Mara Ellison's cat is named Pepper.", "What is the name of Dr. Mara Ellison's cat?", "Pepper"),
    ("The annual lantern festival is held in the town of Brevik.", "In which town is the annual lantern festival held?",
     "Brevik"),
    ("The secret ingredient of the soup is saffron.", "What is the secret ingredient of the soup?", "saffron"),
]


def make_document(tokenizer, n_tokens: int, seed: int) -> tuple[str, list[tuple[str, str]]]:
    rng = random.Random(seed)
    n = str(rng.randint(10000, 99999))
    facts = [(s.format(n=n), q, a.format(n=n)) for s, q, a in FACTS]
    sentences = []
    while len(tokenizer(" ".join(sentences)).input_ids) < n_tokens - 80:
        sentences += rng.sample(FILLER, len(FILLER))
    for k, (fact, _, _) in enumerate(facts):
        sentences.insert(int(len(sentences) * (0.1 + 0.2 * k)) + k, fact)
    paragraphs = [" ".join(sentences[i : i + 6]) for i in range(0, len(sentences), 6)]
    return "\n\n".join(paragraphs), [(q, a) for _, q, a in facts]


def main():
    from longdoc.engine import Engine
    from longdoc.qa import prompting
    from longdoc.qa.session import DocumentSession, text_document
    from longdoc.generate import SamplingParams

    ap = argparse.ArgumentParser()
    ap.add_argument("--lengths", type=int, nargs="+", default=[1000, 2000, 4000])
    ap.add_argument("--formats", nargs="+", default=list(prompting.FORMATS))
    ap.add_argument("--max-new-tokens", type=int, default=16)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    torch.set_num_threads(1)
    eng = Engine(prefix_slots=1)
    rows = []
    t_start = time.perf_counter()
    for length in args.lengths:
        doc, qa = make_document(eng.tokenizer, length, seed=length)
        for fmt in args.formats:
            eng.clear_prefixes()
            right, answers, t0 = 0, [], time.perf_counter()
            session = DocumentSession(eng, text_document(doc), fmt=fmt)  # the path `longdoc ask` takes
            for q, expected in qa:
                reply = session.reply(q, SamplingParams(max_new_tokens=args.max_new_tokens))
                text, p = "".join(reply), reply.prompt
                ok = expected.lower() in text.lower()
                right += ok
                answers.append({"question": q, "expected": expected, "answer": text.strip(), "right": ok})
            rows.append({"format": fmt, "length": length, "prompt_tokens": len(p.ids), "right": right, "of": len(qa),
                         "seconds": round(time.perf_counter() - t0, 1), "answers": answers})
            print(f"{fmt:<14} {length:>5}  {right}/{len(qa)}  ({rows[-1]['seconds']} s)", flush=True)
            if args.out:  # after every cell, so an interrupted run keeps what it measured
                with open(args.out, "w") as fh:
                    json.dump({"lengths": args.lengths, "rows": rows}, fh, indent=1)
    print(f"total {time.perf_counter() - t_start:.0f} s")
    print("\n| format | " + " | ".join(f"{n // 1000}k" for n in args.lengths) + " | total |")
    print("|---|" + "---|" * (len(args.lengths) + 1))
    for fmt in args.formats:
        mine = [r for r in rows if r["format"] == fmt]
        cells = [f"{r['right']}/{r['of']}" for r in mine]
        print(f"| {fmt} | " + " | ".join(cells) + f" | {sum(r['right'] for r in mine)}/{sum(r['of'] for r in mine)} |")


if __name__ == "__main__":
    main()
