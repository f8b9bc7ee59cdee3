#!/usr/bin/env python3
"""Times mlx-lm on a model the way `perch bench` times Perch: one warm-up, then several
runs of prefill (a prompt of N tokens) and greedy decode (M tokens, end-of-sequence
ignored); prints medians as one JSON line. Run with scripts/python-env's python.

  bench_mlx_lm.py MODEL_DIR --prompt-tokens 256 --gen-tokens 128 --runs 3
"""
import argparse
import json
import statistics
import time

import mlx.core as mx
from mlx_lm import load
from mlx_lm.generate import generate_step

TEXT = "The quick brown fox jumps over the lazy dog while the river runs past the old mill. "


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("model")
    parser.add_argument("--prompt-tokens", type=int, default=256)
    parser.add_argument("--gen-tokens", type=int, default=128)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    start = time.perf_counter()
    model, tokenizer = load(args.model)
    if mx.default_device() == mx.cpu:
        model.set_dtype(mx.float32)  # as Perch computes on the CPU
    mx.eval(model.parameters())
    load_s = time.perf_counter() - start

    base = tokenizer.encode(TEXT, add_special_tokens=False)
    prompt = mx.array([base[i % len(base)] for i in range(args.prompt_tokens)])
    mx.reset_peak_memory()
    prefill, decode = [], []
    for run in range(args.runs + 1):
        start = time.perf_counter()
        first = None
        for n, _ in zip(range(args.gen_tokens), generate_step(prompt, model, max_tokens=args.gen_tokens)):
            if n == 0:
                first = time.perf_counter()
        end = time.perf_counter()
        if run > 0:
            prefill.append(args.prompt_tokens / (first - start))
            decode.append((args.gen_tokens - 1) / (end - first))
    print(json.dumps({
        "load_s": load_s,
        "prefill_tok_s": statistics.median(prefill),
        "decode_tok_s": statistics.median(decode),
        "peak_memory_mb": mx.get_peak_memory() / 1e6,
    }))


if __name__ == "__main__":
    main()
