#!/usr/bin/env python3
"""Load test for `perch serve`: K concurrent clients each send M streaming chat requests;
prints time to first token (p50/p95), aggregate generated tokens per second and errors.

Loopback only, bounded in count (K x M requests) and time (--timeout per request).
Run with scripts/python-env's python:

  load_test.py --url http://127.0.0.1:8435/v1 --model smollm2:135m -k 4 -m 3
"""
import argparse
import json
import statistics
import threading
import time
from urllib.parse import urlparse

from bench_batching import stream

PROMPTS = [
    "Give me three tips for writing clear emails.",
    "Explain what a hash map is in two sentences.",
    "Write a haiku about autumn.",
    "What are the primary colors?",
]


def one_request(url, model, prompt, max_tokens, timeout):
    """One streaming chat request (bench_batching.py's): time to first token (the whole
    request's time when no text came) and tokens generated."""
    start = time.perf_counter()
    first, _, tokens, _ = stream(url.removesuffix("/v1"), model,
                                 [{"role": "user", "content": prompt}], max_tokens,
                                 timeout=timeout)
    return first if first is not None else time.perf_counter() - start, tokens


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--url", default="http://127.0.0.1:8435/v1")
    p.add_argument("--model", default="smollm2:135m")
    p.add_argument("-k", "--clients", type=int, default=4)
    p.add_argument("-m", "--requests", type=int, default=3)
    p.add_argument("--max-tokens", type=int, default=32)
    p.add_argument("--timeout", type=float, default=600)
    args = p.parse_args()
    host = urlparse(args.url).hostname
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit("load_test.py only targets loopback addresses")
    if not (1 <= args.clients <= 64 and 1 <= args.requests <= 100):
        raise SystemExit("keep -k in 1..64 and -m in 1..100")

    ttfts, errors, total_tokens = [], [], 0
    lock = threading.Lock()

    def client(i):
        nonlocal total_tokens
        for j in range(args.requests):
            try:
                ttft, tokens = one_request(args.url, args.model, PROMPTS[(i + j) % len(PROMPTS)],
                                           args.max_tokens, args.timeout)
                with lock:
                    ttfts.append(ttft)
                    total_tokens += tokens
            except Exception as e:  # noqa: BLE001 - every failure is counted and shown
                with lock:
                    errors.append(str(e))

    start = time.perf_counter()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(args.clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    ttfts.sort()
    p95 = ttfts[min(len(ttfts) - 1, int(round(0.95 * (len(ttfts) - 1))))] if ttfts else float("nan")
    print(json.dumps({
        "clients": args.clients, "requests": args.clients * args.requests, "ok": len(ttfts),
        "errors": len(errors), "ttft_p50_s": round(statistics.median(ttfts), 3) if ttfts else None,
        "ttft_p95_s": round(p95, 3), "aggregate_tok_s": round(total_tokens / wall, 2), "wall_s": round(wall, 1),
    }))
    for e in errors[:5]:
        print("error:", e)


if __name__ == "__main__":
    main()
