"""End-to-end tests of embeddings through the real clients: the official `openai` client
(`/v1/embeddings`: batches, base64 and float, token ids, `dimensions`, errors), LangChain's
`OpenAIEmbeddings`, and the `ollama` client (`/api/embed` and the older `/api/embeddings`).

Run by crates/cli/tests/serve_e2e.rs beside test_openai.py, with the same environment:
PERCH_BASE_URL, PERCH_MODEL and PERCH_TOKENIZER_DIR. That the vectors are right (the
pooling over the model's hidden states) is checked against mlx-lm in
crates/engine/tests/embeddings.rs; here every client must get the same vectors.
"""
import base64
import math
import os
import struct

import httpx
import ollama
import openai
import pytest
from langchain_openai import OpenAIEmbeddings
from transformers import AutoTokenizer

BASE = os.environ["PERCH_BASE_URL"]
ROOT = BASE.removesuffix("/v1")
MODEL = os.environ["PERCH_MODEL"]
WIDTH = 576  # SmolLM2-135M's hidden size
TEXTS = [
    "The cat sat on the mat.",
    "Rust guarantees memory safety without a garbage collector, through ownership.",
    "Bonjour",
]


@pytest.fixture(scope="module")
def client():
    return openai.OpenAI(base_url=BASE, api_key="unused")


@pytest.fixture(scope="module")
def vectors(client):
    """The texts' embeddings, as floats, one request each."""
    return [
        client.embeddings.create(model=MODEL, input=t, encoding_format="float").data[0].embedding
        for t in TEXTS
    ]


def norm(v):
    return math.sqrt(sum(x * x for x in v))


def assert_close(a, b, tolerance=1e-4):
    assert len(a) == len(b)
    worst = max(abs(x - y) for x, y in zip(a, b))
    assert worst < tolerance, f"vectors differ by {worst}"


def test_a_batch_comes_back_in_order_and_matches_each_input_alone(client, vectors):
    # The client asks for base64 unless told otherwise, and decodes it.
    batch = client.embeddings.create(model=MODEL, input=TEXTS)
    assert batch.object == "list" and batch.model == MODEL
    assert [d.index for d in batch.data] == [0, 1, 2]
    for got, alone in zip(batch.data, vectors):
        assert len(got.embedding) == WIDTH
        assert abs(norm(got.embedding) - 1) < 1e-4
        # Batched inputs are left-padded together; padding must change nothing.
        assert_close(got.embedding, alone)
    assert max(abs(x - y) for x, y in zip(vectors[0], vectors[1])) > 0.01


def test_usage_counts_the_tokenizer_tokens(client, vectors):
    tokenizer = AutoTokenizer.from_pretrained(os.environ["PERCH_TOKENIZER_DIR"])
    r = client.embeddings.create(model=MODEL, input=TEXTS, encoding_format="float")
    want = sum(len(tokenizer.encode(t)) for t in TEXTS)
    assert r.usage.prompt_tokens == want and r.usage.total_tokens == want
    # The same input as token ids gives the same vector.
    ids = tokenizer.encode(TEXTS[1])
    by_ids = client.embeddings.create(model=MODEL, input=[ids], encoding_format="float")
    assert_close(by_ids.data[0].embedding, vectors[1])


def test_base64_is_little_endian_float32(vectors):
    r = httpx.post(f"{BASE}/embeddings",
                   json={"model": MODEL, "input": TEXTS[0], "encoding_format": "base64"})
    raw = base64.b64decode(r.json()["data"][0]["embedding"])
    decoded = struct.unpack(f"<{WIDTH}f", raw)
    assert_close(decoded, vectors[0], 1e-7)


def test_dimensions_cut_and_normalise_again(client, vectors):
    r = client.embeddings.create(model=MODEL, input=TEXTS[0], dimensions=64,
                                 encoding_format="float")
    short = r.data[0].embedding
    assert len(short) == 64 and abs(norm(short) - 1) < 1e-5
    head = vectors[0][:64]
    assert_close(short, [x / norm(head) for x in head])


@pytest.mark.parametrize("body,words", [
    ({"input": []}, "nothing to embed"),
    ({"input": [[1, 2], []]}, "input 1 is empty"),
    ({"input": "hi", "dimensions": 0}, "dimensions"),
    ({"input": "hi", "dimensions": WIDTH + 1}, "dimensions"),
    ({"input": "hi", "encoding_format": "hex"}, "encoding_format"),
    ({"input": [[49152]]}, "vocabulary"),
    ({"input": [[42] * 9000]}, "9000 tokens"),
])
def test_bad_requests_get_400s_that_say_why(body, words):
    r = httpx.post(f"{BASE}/embeddings", json={"model": MODEL, **body})
    assert r.status_code == 400, r.text
    assert words in r.json()["error"]["message"]


def test_unknown_model_is_404(client):
    with pytest.raises(openai.NotFoundError):
        client.embeddings.create(model="no-such-model", input="hi")


def test_langchain_openai_embeddings(vectors):
    # LangChain's documented setting for OpenAI-compatible servers: send the text, not
    # OpenAI's (tiktoken) token ids, which mean nothing to another model.
    lc = OpenAIEmbeddings(model=MODEL, base_url=BASE, api_key="unused",
                          check_embedding_ctx_length=False)
    documents = lc.embed_documents(TEXTS)
    for got, want in zip(documents, vectors):
        assert_close(got, want)
    assert_close(lc.embed_query(TEXTS[2]), vectors[2])


def test_ollama_client_embed_and_embeddings(vectors):
    c = ollama.Client(host=ROOT)
    r = c.embed(model=MODEL, input=TEXTS)
    assert r.model == MODEL and r.prompt_eval_count > 0
    for got, want in zip(r.embeddings, vectors):
        assert_close(got, want)
    short = c.embed(model=MODEL, input=TEXTS[0], dimensions=32).embeddings[0]
    assert len(short) == 32
    assert_close(c.embeddings(model=MODEL, prompt=TEXTS[1]).embedding, vectors[1])
    # Nothing to embed only loads the model.
    assert c.embed(model=MODEL, input=[]).embeddings == []
    with pytest.raises(ollama.ResponseError) as e:
        c.embed(model="no-such-model", input="hi")
    assert e.value.status_code == 404
