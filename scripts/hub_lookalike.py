#!/usr/bin/env python3
"""A Hugging Face hub look-alike for Perch's download tests.

Serves the repositories under ROOT (ROOT/owner/repo/FILES) the way the hub does for a
pull: GET /api/models/OWNER/REPO/revision/REV?blobs=true lists the files with their sizes,
Git blob ids and (for weights) LFS sha256; GET /OWNER/REPO/resolve/COMMIT/PATH serves a
file, honouring Range. Anything else is 404, as on the hub.

Tests steer it with POST /_control (JSON):
  {"cut_after": N}     the next weights transfer closes the connection after N bytes
  {"corrupt": "PATH"}  PATH is served with one byte flipped (its listed hash stays right)
  {"rate": BYTES}      transfers are paced to BYTES per second (0: full speed)
  {"claim": {"PATH": N}}  the listing says PATH has N bytes (a model too big for the disk)
and read GET /_stats: {"bytes_served": …, "transfers": [{"path", "start", "bytes"}]}.

Prints its base URL on the first line of stdout, then serves until killed.
"""

import hashlib
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ROOT = os.path.abspath(sys.argv[1])
LOCK = threading.Lock()
STATE = {"cut_after": None, "corrupt": set(), "rate": 0, "claim": {}}
STATS = {"bytes_served": 0, "transfers": []}
HASHES = {}


def is_lfs(path):
    return path.endswith((".gguf", ".safetensors"))


def commit_of(repo):
    return hashlib.sha1(repo.encode()).hexdigest()


def hashes(full):
    if full not in HASHES:
        sha256, data = hashlib.sha256(), open(full, "rb").read()
        sha256.update(data)
        blob = hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
        HASHES[full] = (sha256.hexdigest(), blob)
    return HASHES[full]


class Hub(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, status, body=b"", content_type="application/json"):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        if self.path != "/_control":
            return self.reply(404, b'{"error":"not found"}')
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with LOCK:
            if "cut_after" in body:
                STATE["cut_after"] = body["cut_after"]
            if "corrupt" in body:
                STATE["corrupt"].add(body["corrupt"])
            if "rate" in body:
                STATE["rate"] = body["rate"]
            if "claim" in body:
                STATE["claim"].update(body["claim"])
        self.reply(200, b"{}")

    def do_GET(self):
        path = self.path.split("?")[0]
        if path == "/_stats":
            with LOCK:
                return self.reply(200, json.dumps(STATS).encode())
        parts = path.strip("/").split("/")
        if len(parts) >= 6 and parts[:2] == ["api", "models"] and parts[4] == "revision":
            return self.revision(parts[2] + "/" + parts[3])
        if len(parts) >= 5 and parts[2] == "resolve":
            return self.resolve(parts[0] + "/" + parts[1], parts[3], "/".join(parts[4:]))
        self.reply(404, b'{"error":"Repository not found"}')

    def revision(self, repo):
        folder = os.path.join(ROOT, repo)
        if not os.path.isdir(folder):
            return self.reply(404, b'{"error":"Repository not found"}')
        siblings = []
        for name in sorted(os.listdir(folder)):
            full = os.path.join(folder, name)
            sha256, blob = hashes(full)
            with LOCK:
                size = STATE["claim"].get(name, os.path.getsize(full))
            entry = {"rfilename": name, "size": size, "blobId": blob}
            if is_lfs(name):
                entry["lfs"] = {"sha256": sha256, "size": size, "pointerSize": 134}
            siblings.append(entry)
        body = {"id": repo, "sha": commit_of(repo), "siblings": siblings}
        self.reply(200, json.dumps(body).encode())

    def resolve(self, repo, commit, name):
        full = os.path.join(ROOT, repo, name)
        if commit != commit_of(repo) or not os.path.isfile(full) or ".." in name:
            return self.reply(404, b'{"error":"Entry not found"}')
        data = bytearray(open(full, "rb").read())
        with LOCK:
            if name in STATE["corrupt"]:
                data[len(data) // 2] ^= 0xFF
            cut = STATE["cut_after"] if is_lfs(name) else None
            if cut is not None:
                STATE["cut_after"] = None
            rate = STATE["rate"]
        start = 0
        ranged = self.headers.get("Range")
        if ranged and ranged.startswith("bytes="):
            start = int(ranged[len("bytes="):].split("-")[0])
            if start >= len(data):
                return self.reply(416)
        self.send_response(206 if ranged else 200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(data) - start))
        if ranged:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.end_headers()
        record = {"path": name, "start": start, "bytes": 0}
        with LOCK:
            STATS["transfers"].append(record)
        sent, end = start, len(data) if cut is None else min(len(data), start + cut)
        while sent < end:
            chunk = bytes(data[sent:min(end, sent + (1 << 16))])
            try:
                self.wfile.write(chunk)
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(chunk)
            with LOCK:
                record["bytes"] += len(chunk)
                STATS["bytes_served"] += len(chunk)
            if rate:
                time.sleep(len(chunk) / rate)
        if cut is not None:
            self.close_connection = True
            self.wfile.flush()
            self.connection.shutdown(2)


server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[2]) if len(sys.argv) > 2 else 0), Hub)
print(f"http://127.0.0.1:{server.server_address[1]}", flush=True)
server.serve_forever()
