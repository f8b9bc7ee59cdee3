"""Soak test of a running `perch serve` on loopback: many requests of mixed lengths from
clients of which some go away while their request is queued, while its prompt is being
read, or while it is generating. Reports the survivors' errors (goal: none), how long the
server takes to drain once the clients are done, the cancellations it counted by phase,
and the server's resident memory and threads before and after.

Run through scripts/soak, which builds and starts the server; bounded in requests and in
time, loopback only.
"""
import argparse
import asyncio
import random
import re
import subprocess
import sys
import time

import httpx

PHASES = ("survivor", "queued", "prefill", "decode")


def status_of(pid: int) -> dict:
    """Resident memory (bytes) and thread count of a process, through `ps` (Linux and
    macOS)."""
    rss = subprocess.run(["ps", "-o", "rss=", "-p", str(pid)], capture_output=True,
                         text=True, check=True).stdout
    if sys.platform == "darwin":
        threads = len(subprocess.run(["ps", "-M", "-p", str(pid)], capture_output=True,
                                     text=True, check=True).stdout.splitlines()) - 1
    else:
        threads = int(subprocess.run(["ps", "-o", "nlwp=", "-p", str(pid)], capture_output=True,
                                     text=True, check=True).stdout)
    return {"rss": int(rss) * 1024, "threads": threads}


def metric(text: str, name: str) -> float:
    match = re.search(rf"^{re.escape(name)} (\S+)$", text, re.M)
    return float(match.group(1)) if match else 0.0


def prompt(rng: random.Random, tokens: int) -> list:
    return [rng.randrange(100, 20_000) for _ in range(tokens)]


async def survivor(base, model, rng, results):
    body = {"model": model, "prompt": prompt(rng, rng.randint(2, 30)),
            "max_tokens": rng.randint(1, 8), "temperature": 0, "stream": rng.random() < 0.5}
    try:
        async with httpx.AsyncClient(timeout=600) as client:
            if body["stream"]:
                async with client.stream("POST", f"{base}/v1/completions", json=body) as r:
                    lines = [line async for line in r.aiter_lines() if line.startswith("data: ")]
                    ok = r.status_code == 200 and lines and lines[-1] == "data: [DONE]"
                    status = r.status_code
            else:
                r = await client.post(f"{base}/v1/completions", json=body)
                ok = r.status_code == 200 and r.json()["choices"][0]["finish_reason"]
                status = r.status_code
    except httpx.HTTPError as e:
        ok, status = False, type(e).__name__
    results["survivor"] += 1
    if not ok:
        results["errors"].append(status)


async def leaver(base, model, rng, phase, results):
    """Sends a request and goes away in roughly `phase`."""
    if phase == "queued":
        body = {"model": model, "prompt": prompt(rng, 50), "max_tokens": 4}
        wait = rng.uniform(0.01, 0.1)
    elif phase == "prefill":
        # Long enough to get through the queue and into a prompt that takes far longer.
        body = {"model": model, "prompt": prompt(rng, rng.randint(300, 1500)), "max_tokens": 4}
        wait = rng.uniform(2, 20)
    else:
        body = {"model": model, "prompt": prompt(rng, 5), "max_tokens": 400, "stream": True,
                "temperature": 1.0}
        wait = None
    try:
        async with httpx.AsyncClient(timeout=600) as client:
            if wait is not None:
                await asyncio.wait_for(client.post(f"{base}/v1/completions", json=body), wait)
            else:
                leave_after = rng.randint(1, 5)
                async with client.stream("POST", f"{base}/v1/completions", json=body) as r:
                    seen = 0
                    async for line in r.aiter_lines():
                        seen += line.startswith("data: ")
                        if seen >= leave_after:
                            break
    except (asyncio.TimeoutError, httpx.HTTPError):
        pass
    results[phase] += 1


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--base", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--pid", type=int, required=True)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--deadline", type=float, default=3600, help="seconds")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    results = {p: 0 for p in PHASES} | {"errors": []}

    before = status_of(args.pid)
    print(f"soak: {args.requests} requests, {args.concurrency} clients at once, "
          f"server RSS {before['rss'] / 1e6:.0f} MB, {before['threads']} threads", flush=True)
    queue = asyncio.Queue()
    for _ in range(args.requests):
        queue.put_nowait(rng.choices(PHASES, weights=(60, 10, 15, 15))[0])
    start = time.monotonic()

    async def client_loop(seed):
        local = random.Random(seed)
        while not queue.empty() and time.monotonic() - start < args.deadline:
            kind = queue.get_nowait()
            if kind == "survivor":
                await survivor(args.base, args.model, local, results)
            else:
                await leaver(args.base, args.model, local, kind, results)
            done = sum(results[p] for p in PHASES)
            if done % 50 == 0:
                print(f"soak: {done}/{args.requests} in {time.monotonic() - start:.0f} s, "
                      f"{len(results['errors'])} errors", flush=True)

    await asyncio.gather(*(client_loop(args.seed * 1000 + i) for i in range(args.concurrency)))
    clients_done = time.monotonic()
    async with httpx.AsyncClient(timeout=30) as client:
        while True:
            text = (await client.get(f"{args.base}/metrics")).text
            if metric(text, "perch_requests_admitted") == 0:
                break
            await asyncio.sleep(0.05)
    drained = time.monotonic() - clients_done
    await asyncio.sleep(1)
    after = status_of(args.pid)

    sent = sum(results[p] for p in PHASES)
    print(f"\nsoak: {sent} requests in {clients_done - start:.0f} s "
          f"({', '.join(f'{results[p]} {p}' for p in PHASES)})")
    print(f"survivors' errors: {len(results['errors'])} {results['errors'][:10]}")
    print(f"queue drained {drained:.2f} s after the last client")
    cancelled = {p: metric(text, f'perch_requests_cancelled_total{{phase="{p}"}}')
                 for p in ("queued", "prefill", "decode")}
    print("cancelled by the server: " + ", ".join(f"{int(v)} {p}" for p, v in cancelled.items()))
    print(f"server RSS: {before['rss'] / 1e6:.0f} MB before, {after['rss'] / 1e6:.0f} MB after")
    print(f"server threads: {before['threads']} before, {after['threads']} after")
    if results["errors"] or sent < args.requests:
        raise SystemExit(1)


if __name__ == "__main__":
    asyncio.run(main())
