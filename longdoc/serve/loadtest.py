"""A bounded load test of a running server: `clients` concurrent clients (the async `openai` package) each send
`requests` chat completions about one of `documents` documents; a 429 is retried after its Retry-After (at most
`retries` times; it is the documented answer of a full queue), anything else counts as failed.

    stats = asyncio.run(load_test("http://127.0.0.1:8000", "SmolLM2-135M-Instruct", clients=8, requests=5))
    print(format_stats(stats))

Latency is from sending a request to its last byte, 429 waits included (what a client sees).
"""

from __future__ import annotations

import asyncio
import statistics
import time
from dataclasses import dataclass, field


@dataclass
class LoadStats:
    sent: int = 0
    ok: int = 0
    failed: list[str] = field(default_factory=list)
    throttled: int = 0  # 429 answers (then retried)
    latencies_s: list[float] = field(default_factory=list)
    completion_tokens: int = 0
    cached_tokens: int = 0
    prompt_tokens: int = 0
    wall_s: float = 0.0

    def percentile(self, q: float) -> float:
        if not self.latencies_s:
            return float("nan")
        xs = sorted(self.latencies_s)
        return xs[min(len(xs) - 1, max(0, round(q * (len(xs) - 1))))]


def make_documents(n: int, lines: int = 40) -> list[str]:
    return ["\n".join(f"Line {i}: warehouse {d} holds crate {1000 * d + 7 * i}." for i in range(lines))
            for d in range(n)]


async def load_test(base_url: str, model: str, *, clients: int = 8, requests: int = 5, documents: int = 3,
                    max_tokens: int = 16, retries: int = 50, api_key: str = "unused") -> LoadStats:
    from openai import APIStatusError, AsyncOpenAI, RateLimitError

    docs = make_documents(documents)
    stats = LoadStats()

    async def one_client(c: int, client) -> None:
        for r in range(requests):
            doc = docs[(c + r) % len(docs)]
            messages = [{"role": "system", "content": doc}, {"role": "user", "content": f"Which crate is on line {r}?"}]
            stats.sent += 1
            t0 = time.perf_counter()
            for attempt in range(retries + 1):
                try:
                    out = await client.chat.completions.create(model=model, messages=messages, max_tokens=max_tokens,
                                                               temperature=0)
                except RateLimitError as e:
                    stats.throttled += 1
                    if attempt == retries:
                        stats.failed.append(f"client {c} request {r}: still 429 after {retries} retries")
                        break
                    await asyncio.sleep(float(e.response.headers.get("retry-after", "1")))
                    continue
                except APIStatusError as e:
                    stats.failed.append(f"client {c} request {r}: {e.status_code} {e.message}")
                    break
                stats.ok += 1
                stats.latencies_s.append(time.perf_counter() - t0)
                stats.completion_tokens += out.usage.completion_tokens
                stats.prompt_tokens += out.usage.prompt_tokens
                stats.cached_tokens += out.usage.prompt_tokens_details.cached_tokens
                break

    t0 = time.perf_counter()
    async with AsyncOpenAI(base_url=base_url + "/v1", api_key=api_key, max_retries=0, timeout=600) as client:
        await asyncio.gather(*(one_client(c, client) for c in range(clients)))
    stats.wall_s = time.perf_counter() - t0
    return stats


def format_stats(s: LoadStats, label: str = "") -> str:
    rows = [("requests sent", f"{s.sent}"), ("answered", f"{s.ok}"), ("failed", f"{len(s.failed)}"),
            ("429 answers (retried)", f"{s.throttled}"),
            ("latency p50 / p95 s", f"{s.percentile(0.5):.2f} / {s.percentile(0.95):.2f}"),
            ("throughput requests/s", f"{s.ok / s.wall_s:.2f}" if s.wall_s else "-"),
            ("answer tokens/s", f"{s.completion_tokens / s.wall_s:.1f}" if s.wall_s else "-"),
            ("prompt tokens reused", f"{s.cached_tokens / max(1, s.prompt_tokens):.0%}"),
            ("wall s", f"{s.wall_s:.1f}")]
    head = f"| {label or 'load test'} | |\n|---|---:|\n"
    return head + "\n".join(f"| {k} | {v} |" for k, v in rows)
