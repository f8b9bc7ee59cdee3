#!/usr/bin/env python3
"""Reference outputs from the mlx-lm package, for Perch's correctness tests.

Reads a JSON request on stdin and prints JSON results on stdout.

  {"model": DIR, "chats": [[{"role": ..., "content": ...}, ...], ...], "max_tokens": 32, "top": 5}
    -> [{"prompt_ids": [...], "tokens": [...], "top": [[id, logprob], ...]}, ...]
  {"model": DIR, "logits_for": [[id, ...], ...]}
    -> [{"logits": [[...vocab...] per position]}, ...]
  {"model": DIR, "prompts_for": [{"messages": [...], "tools": [...]}, ...]}
    -> [{"prompt_ids": [...], "prompt_text": "..."}, ...]
  {"model": DIR, "embed_for": [[id, ...], ...], "pooling": "last" | "mean",
   "normalize": true, "dimensions": N}
    -> [{"embedding": [...]}, ...]

Greedy decoding with mlx-lm's own generate_step; the chat is tokenized with the model's
template through transformers, as mlx-lm's server does. Embeddings pool the final hidden
states of mlx-lm's model body (after its last norm), one input at a time, with no padding:
an independent computation of what Perch does in batches. The model is cast to float32,
as Perch computes on the CPU. Run it through scripts/python-env's python, e.g.

  echo '{"model": "/tmp/smollm2-mlx", "chats": [[{"role": "user", "content": "Hi"}]]}' \
    | "$(scripts/python-env)" scripts/mlx_lm_reference.py
"""
import json
import sys
from pathlib import Path

import mlx.core as mx
from mlx_lm import load
from mlx_lm.generate import generate_step
from mlx_lm.utils import load_model
from transformers import AutoTokenizer


def chat_ids(tokenizer, chat, tools=None):
    ids = tokenizer.apply_chat_template(chat, tools=tools, add_generation_prompt=True, tokenize=True)
    if isinstance(ids, dict) or hasattr(ids, "keys"):
        ids = ids["input_ids"]
    return [int(i) for i in ids]


def greedy(model, tokenizer, prompt_ids, max_tokens, top):
    eos = set(tokenizer.eos_token_ids)
    tokens, first_top = [], []
    steps = generate_step(mx.array(prompt_ids), model, max_tokens=max_tokens)
    for n, (token, logprobs) in enumerate(steps):
        token = int(token)
        if n == 0:
            order = mx.argsort(-logprobs)[:top].tolist()
            first_top = [[int(i), float(logprobs[i].item())] for i in order]
        if token in eos:
            break
        tokens.append(token)
    return tokens, first_top


def embedding(model, ids, pooling, normalize, dimensions):
    hidden = model.model(mx.array([ids]))[0].astype(mx.float32)
    pooled = hidden[-1] if pooling == "last" else mx.mean(hidden, axis=0)
    if dimensions:
        pooled = pooled[:dimensions]
    if normalize:
        pooled = pooled / mx.linalg.norm(pooled)
    return pooled.tolist()


def main():
    request = json.load(sys.stdin)
    results = []
    if request.get("prompts_for"):  # the template through transformers only: no weights
        tokenizer = AutoTokenizer.from_pretrained(request["model"])
        for prompt in request["prompts_for"]:
            text = tokenizer.apply_chat_template(prompt["messages"], tools=prompt.get("tools"),
                                                 add_generation_prompt=True, tokenize=False)
            ids = chat_ids(tokenizer, prompt["messages"], prompt.get("tools"))
            results.append({"prompt_ids": ids, "prompt_text": text})
        json.dump(results, sys.stdout)
        return
    if request.get("chats") or request.get("embed_for"):
        model, tokenizer = load(request["model"])
    else:  # logits only: the directory may hold no tokenizer
        model, _ = load_model(Path(request["model"]))
    model.set_dtype(mx.float32)
    for chat in request.get("chats", []):
        ids = chat_ids(tokenizer, chat)
        tokens, top = greedy(model, tokenizer, ids, request.get("max_tokens", 32), request.get("top", 5))
        results.append({"prompt_ids": ids, "tokens": tokens, "top": top})
    for ids in request.get("embed_for", []):
        vector = embedding(model, ids, request.get("pooling", "last"),
                           request.get("normalize", True), request.get("dimensions"))
        results.append({"embedding": vector})
    for ids in request.get("logits_for", []):
        logits = model(mx.array([ids]))[0].astype(mx.float32)
        results.append({"logits": logits.tolist()})
    json.dump(results, sys.stdout)


if __name__ == "__main__":
    main()
