#!/usr/bin/env python3
"""Benchmarks of Perch serving many clients at once, against a running `perch serve` on
loopback (scripts/bench-batching starts them). Prints one JSON object per measurement:

  concurrency  K streaming clients (each sends M requests in turn): aggregate generated
               tok/s, time to first token p50/p95, inter-token gap p95, errors
  interference the inter-token gap p95 of running streams with nothing else happening,
               and while a long prompt arrives and is read
  agent-turn   time to first token of a long prompt, cold, and of the next turn that
               shares it (and the cached tokens the server reports)
  memory       what N streams add to the loaded, idle server's resident memory, beside
               the KV cache the planner gives their tokens

Run with scripts/python-env's python.
"""
import argparse
import json
import statistics
import threading
import time

import httpx

WORDS = ("river stone lantern orchard harbor meadow copper violet thunder garden silver "
         "canyon pepper window marble falcon").split()


def percentile(values, q):
    if not values:
        return None
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def long_text(words, seed=0):
    """About `words` words of varied filler (a different text for each seed)."""
    return " ".join(WORDS[(i * 7 + seed * 3 + i // 5) % len(WORDS)] for i in range(words))


def stream(url, model, messages, max_tokens, on_token=None, timeout=900):
    """One streaming chat request: (time to first token, gaps between tokens, tokens,
    usage)."""
    body = {"model": model, "stream": True, "max_tokens": max_tokens, "temperature": 0,
            "stream_options": {"include_usage": True}, "messages": messages}
    start = time.perf_counter()
    first, last, gaps, usage, deltas = None, None, [], None, 0
    with httpx.stream("POST", url + "/v1/chat/completions", json=body, timeout=timeout) as r:
        if r.status_code != 200:
            raise RuntimeError(f"HTTP {r.status_code}: {r.read()[:200]!r}")
        for line in r.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            if chunk.get("usage"):
                usage = chunk["usage"]
            if chunk.get("choices") and chunk["choices"][0]["delta"].get("content"):
                deltas += 1
                now = time.perf_counter()
                if first is None:
                    first = now - start
                else:
                    gaps.append(now - last)
                last = now
                if on_token:
                    on_token(now)
    # A server that reports no usage: one token a text delta.
    return first, gaps, (usage or {}).get("completion_tokens", deltas), usage


def ask(i):
    return [{"role": "user", "content": f"Tell me a long story about a {WORDS[i % len(WORDS)]}."}]


def concurrency(url, model, clients, requests, max_tokens):
    ttfts, gaps, errors, tokens = [], [], [], 0
    lock = threading.Lock()

    def client(i):
        nonlocal tokens
        for j in range(requests):
            try:
                first, g, n, _ = stream(url, model, ask(i * requests + j), max_tokens)
                with lock:
                    ttfts.append(first)
                    gaps.extend(g)
                    tokens += n
            except Exception as e:  # noqa: BLE001 - counted and shown
                with lock:
                    errors.append(str(e))

    start = time.perf_counter()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    return {"measure": "concurrency", "clients": clients, "requests": clients * requests,
            "errors": len(errors), "aggregate_tok_s": round(tokens / wall, 2),
            "ttft_p50_s": round(statistics.median(ttfts), 3) if ttfts else None,
            "ttft_p95_s": round(percentile(ttfts, 0.95), 3) if ttfts else None,
            "inter_token_p95_ms": round(percentile(gaps, 0.95) * 1e3, 1) if gaps else None,
            "first_errors": errors[:3]}


def interference(url, model, streams, prompt_words, window):
    """Gaps of `streams` running streams: over `window` seconds with nothing else, then
    while a prompt of about `prompt_words` words is read (until its first token)."""
    stamps, lock, stop = [], threading.Lock(), threading.Event()

    def on_token(now):
        with lock:
            stamps.append((threading.get_ident(), now))

    def runner(i):
        while not stop.is_set():
            stream(url, model, ask(i), 400, on_token)

    threads = [threading.Thread(target=runner, args=(i,), daemon=True) for i in range(streams)]
    for t in threads:
        t.start()
    time.sleep(3)  # every stream past its first token
    idle_from = time.perf_counter()
    time.sleep(window)
    idle_to = time.perf_counter()
    # One token: the request's whole time is its prompt's (the token may be no text).
    started = time.perf_counter()
    # Read beside the streams, a long prompt may take many minutes on a slow engine.
    _, _, _, usage = stream(url, model, [{"role": "user", "content": long_text(prompt_words)}], 1,
                            timeout=3600)
    busy_to = time.perf_counter()
    first = busy_to - started
    stop.set()

    def gaps_within(lo, hi):
        by_thread = {}
        for ident, t in stamps:
            by_thread.setdefault(ident, []).append(t)
        gaps = []
        for ts in by_thread.values():
            ts.sort()
            gaps.extend(b - a for a, b in zip(ts, ts[1:]) if lo <= a and b <= hi)
        return gaps

    idle, busy = gaps_within(idle_from, idle_to), gaps_within(idle_to, busy_to)
    for t in threads:
        t.join(timeout=120)
    p95 = lambda g: round(percentile(g, 0.95) * 1e3, 1) if g else None
    return {"measure": "interference", "streams": streams,
            "prompt_tokens": (usage or {}).get("prompt_tokens"),
            "prompt_ttft_s": round(first, 2),
            "inter_token_p95_idle_ms": p95(idle), "inter_token_p95_during_prompt_ms": p95(busy),
            "ratio": round(p95(busy) / p95(idle), 2) if idle and busy else None,
            "gaps_counted": [len(idle), len(busy)]}


def agent_turn(url, model, prompt_words):
    first_turn = [{"role": "system", "content": "You are a careful assistant."},
                  {"role": "user", "content": long_text(prompt_words, seed=11) + "\nSummarise this."}]
    cold_ttft, _, _, cold_usage = stream(url, model, first_turn, 16)
    reply = httpx.post(url + "/v1/chat/completions", timeout=900, json={
        "model": model, "max_tokens": 16, "temperature": 0, "messages": first_turn}).json()
    second_turn = first_turn + [reply["choices"][0]["message"],
                                {"role": "user", "content": "Now in one word."}]
    warm_ttft, _, _, warm_usage = stream(url, model, second_turn, 16)
    cached = ((warm_usage or {}).get("prompt_tokens_details") or {}).get("cached_tokens")
    return {"measure": "agent-turn", "prompt_tokens": cold_usage["prompt_tokens"],
            "cold_ttft_s": round(cold_ttft, 3), "next_turn_prompt_tokens": warm_usage["prompt_tokens"],
            "next_turn_cached_tokens": cached, "next_turn_ttft_s": round(warm_ttft, 3),
            "ratio": round(warm_ttft / cold_ttft, 3)}


def rss(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def memory(url, model, pid, streams, max_tokens):
    """What `streams` streams add to the idle server's resident memory (sampled every
    50 ms), beside the KV cache the planner gives their tokens; with the planned weights
    on both sides."""
    idle = rss(pid)
    listed = httpx.get(url + "/api/perch/models", timeout=60).json()["models"]
    need = next(m for m in listed if m["name"] == model)["fit"]["need"]
    peak, stop = [idle], threading.Event()

    def sample():
        while not stop.is_set():
            peak[0] = max(peak[0], rss(pid))
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    usages = []

    def client(i):
        usages.append(stream(url, model, ask(i), max_tokens)[3])

    threads = [threading.Thread(target=client, args=(i,)) for i in range(streams)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stop.set()
    sampler.join()
    weights = need["weights"]
    kv_per_token = need["kv"] // (need["context"] * need["sequences"])
    tokens = sum(u["prompt_tokens"] + u["completion_tokens"] for u in usages)
    kv = kv_per_token * tokens
    added = peak[0] - idle
    return {"measure": "memory", "streams": streams, "tokens": tokens,
            "rss_idle_mb": round(idle / 1e6, 1), "rss_peak_mb": round(peak[0] / 1e6, 1),
            "added_mb": round(added / 1e6, 1), "kv_predicted_mb": round(kv / 1e6, 1),
            "weights_mb": round(weights / 1e6, 1),
            "weights_plus_added_over_weights_plus_kv": round((weights + added) / (weights + kv), 3)}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--url", required=True)
    p.add_argument("--model", required=True)
    p.add_argument("--measure", required=True,
                   choices=["concurrency", "interference", "agent-turn", "memory"])
    p.add_argument("--clients", type=int, default=1)
    p.add_argument("--requests", type=int, default=2)
    p.add_argument("--max-tokens", type=int, default=64)
    p.add_argument("--prompt-words", type=int, default=1500)
    p.add_argument("--pid", type=int)
    p.add_argument("--tag", action="append", default=[],
                   help="KEY=VALUE added to the result (which server, which setting)")
    args = p.parse_args()
    if httpx.URL(args.url).host not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit("bench_batching.py only targets loopback addresses")
    if args.measure == "concurrency":
        result = concurrency(args.url, args.model, args.clients, args.requests, args.max_tokens)
    elif args.measure == "interference":
        result = interference(args.url, args.model, args.clients, args.prompt_words, window=6)
    elif args.measure == "agent-turn":
        result = agent_turn(args.url, args.model, args.prompt_words)
    else:
        result = memory(args.url, args.model, args.pid, args.clients, args.max_tokens)
    for tag in args.tag:
        key, _, value = tag.partition("=")
        result[key] = value
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
