"""End-to-end tests of `perch serve` with the official `openai` client.

Run by crates/cli/tests/serve_e2e.rs, which starts the real server on loopback ports
with the SmolLM2 test model and passes them in PERCH_BASE_URL (no key),
PERCH_KEYED_URL + PERCH_API_KEY (a key required) and PERCH_TOKENIZER_DIR (the model
imported to MLX format, for counting tokens with transformers).
"""
import json
import os
import time

import httpx
import jsonschema
import openai
import pytest
from transformers import AutoTokenizer

import untrusted

BASE = os.environ["PERCH_BASE_URL"]
MODEL = os.environ["PERCH_MODEL"]
QUESTION = [{"role": "user", "content": "What is the capital of France?"}]
ANSWER = "The capital of France is Paris."


@pytest.fixture(scope="module")
def client():
    return openai.OpenAI(base_url=BASE, api_key="unused")


@pytest.fixture(scope="module")
def tokenizer():
    return AutoTokenizer.from_pretrained(os.environ["PERCH_TOKENIZER_DIR"])


def test_lists_the_served_model(client):
    assert [m.id for m in client.models.list().data] == [MODEL]


def test_chat_answers_and_counts_tokens_like_the_tokenizer(client, tokenizer):
    r = client.chat.completions.create(model=MODEL, messages=QUESTION, temperature=0, max_tokens=40)
    choice = r.choices[0]
    assert choice.message.role == "assistant"
    assert choice.message.content == ANSWER
    assert choice.finish_reason == "stop"
    prompt_ids = tokenizer.apply_chat_template(QUESTION, add_generation_prompt=True, tokenize=True)
    if hasattr(prompt_ids, "keys"):
        prompt_ids = prompt_ids["input_ids"]
    assert r.usage.prompt_tokens == len(prompt_ids)
    # The answer's tokens plus the end-of-turn token.
    assert r.usage.completion_tokens == len(tokenizer.encode(ANSWER, add_special_tokens=False)) + 1
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens
    assert r.usage.prompt_tokens_details.cached_tokens == 0


@pytest.mark.parametrize("role", ["user", "tool", "system"])
def test_control_tokens_written_in_a_message_are_text(client, tokenizer, role):
    def prompt_tokens(content):
        messages = [{"role": "user", "content": "Look this up."},
                    {"role": role, "content": content}]
        return client.chat.completions.create(
            model=MODEL, messages=messages, max_tokens=1).usage.prompt_tokens

    extra = prompt_tokens(untrusted.INJECTION) - prompt_tokens(untrusted.PLAIN)
    assert extra != untrusted.extra_control_tokens(tokenizer)
    assert extra == untrusted.extra_text_tokens(tokenizer)


WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "The weather now in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string", "maxLength": 40}},
                   "required": ["city"], "additionalProperties": False}}}
CLOCK = {"type": "function", "function": {
    "name": "get_time", "description": "The time now in a time zone.",
    "parameters": {"type": "object", "properties": {"zone": {"type": "string", "maxLength": 40}},
                   "required": ["zone"]}}}
ASK_WEATHER = [{"role": "user", "content": "What is the weather in Paris?"}]


def test_tool_call_round_trip_with_tool_choice_required(client):
    r = client.chat.completions.create(
        model=MODEL, messages=ASK_WEATHER, tools=[WEATHER, CLOCK], tool_choice="required",
        parallel_tool_calls=False, max_tokens=60, temperature=0)
    choice = r.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    (call,) = choice.message.tool_calls
    assert call.type == "function" and call.id.startswith("call_")
    assert call.function.name in ("get_weather", "get_time")
    arguments = json.loads(call.function.arguments)
    assert list(arguments) == (["city"] if call.function.name == "get_weather" else ["zone"])

    # The result goes back with the call in the history; the model answers in words.
    history = ASK_WEATHER + [
        choice.message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "18 degrees and sunny"},
    ]
    final = client.chat.completions.create(
        model=MODEL, messages=history, tools=[WEATHER, CLOCK], tool_choice="none",
        max_tokens=30, temperature=0)
    assert final.choices[0].message.tool_calls is None
    assert final.choices[0].message.content.strip()
    assert final.choices[0].finish_reason in ("stop", "length")


def test_streamed_tool_calls_send_id_and_name_then_arguments(client):
    chunks = list(client.chat.completions.create(
        model=MODEL, messages=ASK_WEATHER, tools=[WEATHER],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        parallel_tool_calls=False, max_tokens=60, temperature=0, stream=True))
    deltas = [c.choices[0].delta for c in chunks if c.choices]
    assert not any(d.content for d in deltas), "no markup in content"
    pieces = [t for d in deltas for t in (d.tool_calls or [])]
    assert pieces[0].id.startswith("call_") and pieces[0].function.name == "get_weather"
    assert all(p.index == 0 for p in pieces) and all(p.id is None for p in pieces[1:])
    assert "city" in json.loads("".join(p.function.arguments or "" for p in pieces))
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_streamed_tool_call_round_trip_with_tool_choice_required(client):
    chunks = list(client.chat.completions.create(
        model=MODEL, messages=ASK_WEATHER, tools=[WEATHER, CLOCK], tool_choice="required",
        parallel_tool_calls=False, max_tokens=80, temperature=0, stream=True))
    pieces = [t for c in chunks if c.choices for t in (c.choices[0].delta.tool_calls or [])]
    assert chunks[-1].choices[0].finish_reason == "tool_calls"
    # Gathered by index, as clients do: the first piece of each call has its id and name.
    calls = {}
    for p in pieces:
        call = calls.setdefault(p.index, {"id": p.id, "name": p.function.name, "arguments": ""})
        call["arguments"] += p.function.arguments or ""
    assert calls and all(c["id"] and c["name"] in ("get_weather", "get_time")
                         for c in calls.values())
    history = ASK_WEATHER + [
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": c["id"], "type": "function",
             "function": {"name": c["name"], "arguments": c["arguments"]}}
            for c in calls.values()]},
        *({"role": "tool", "tool_call_id": c["id"], "content": "18 degrees and sunny"}
          for c in calls.values())]
    for c in calls.values():
        json.loads(c["arguments"])
    final = "".join(
        c.choices[0].delta.content or "" for c in client.chat.completions.create(
            model=MODEL, messages=history, tools=[WEATHER, CLOCK], max_tokens=30,
            temperature=0, stream=True) if c.choices)
    assert final.strip()


def test_every_choice_of_a_constrained_request_holds_to_the_schema(client):
    schema = {"type": "object", "required": ["capital"], "additionalProperties": False,
              "properties": {"capital": {"type": "string", "maxLength": 20}}}
    r = client.chat.completions.create(
        model=MODEL, messages=QUESTION, seed=1, temperature=1.0, max_tokens=40, n=3,
        response_format={"type": "json_schema", "json_schema": {
            "name": "capital", "schema": schema, "strict": True}})
    assert len(r.choices) == 3
    for choice in r.choices:
        jsonschema.validate(json.loads(choice.message.content), schema)


def test_json_schema_strict_outputs_validate_over_20_seeds(client):
    schema = {"type": "object", "additionalProperties": False,
              "required": ["city", "population", "landmarks"],
              "properties": {"city": {"type": "string", "maxLength": 30},
                             "population": {"type": "integer", "minimum": 0},
                             "landmarks": {"type": "array", "maxItems": 3,
                                           "items": {"type": "string", "maxLength": 30}}}}
    for seed in range(20):
        r = client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "Describe Paris."}], seed=seed,
            temperature=1.0, max_tokens=150,
            response_format={"type": "json_schema", "json_schema": {
                "name": "city", "schema": schema, "strict": True}})
        assert r.choices[0].finish_reason == "stop", r.choices[0].message.content
        jsonschema.validate(json.loads(r.choices[0].message.content), schema)


def test_json_object_and_format_errors(client):
    r = client.chat.completions.create(
        model=MODEL, messages=QUESTION, temperature=0, max_tokens=60,
        response_format={"type": "json_object"})
    assert isinstance(json.loads(r.choices[0].message.content), dict)
    for body, param, says in [
        ({"response_format": {"type": "yaml"}}, "response_format.type", "yaml"),
        ({"response_format": {"type": "json_schema", "json_schema": {
            "name": "x", "schema": {"type": "object", "properties": {
                "a": {"$ref": "https://example.com/a.json"}}}}}}, "response_format", "example.com"),
        ({"tools": [WEATHER], "tool_choice": {"type": "function", "function": {"name": "nope"}}},
         "tool_choice.function.name", "nope"),
        ({"tool_choice": "required"}, "tool_choice", "tools"),
    ]:
        reply = httpx.post(f"{BASE}/chat/completions", json={
            "model": MODEL, "messages": QUESTION, **body})
        assert reply.status_code == 400, reply.text
        error = reply.json()["error"]
        assert error["param"] == param and says in error["message"], error


def test_streaming_sends_role_deltas_finish_and_usage(client):
    chunks = list(client.chat.completions.create(
        model=MODEL, messages=QUESTION, temperature=0, max_tokens=40, stream=True,
        stream_options={"include_usage": True}))
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == ANSWER
    finals = [c for c in chunks if c.choices and c.choices[0].finish_reason]
    assert len(finals) == 1 and finals[0].choices[0].finish_reason == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens > 0


def test_stop_sequences_and_max_tokens(client):
    r = client.chat.completions.create(model=MODEL, messages=QUESTION, temperature=0, stop=["Paris"])
    assert r.choices[0].message.content == "The capital of France is "
    assert r.choices[0].finish_reason == "stop"
    r = client.chat.completions.create(model=MODEL, messages=QUESTION, temperature=0, max_completion_tokens=3)
    assert r.choices[0].finish_reason == "length"
    assert r.usage.completion_tokens == 3


def test_the_same_seed_gives_the_same_answer(client):
    ask = lambda seed: client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "Tell me a story about a cat."}],
        temperature=1.0, seed=seed, max_tokens=16).choices[0].message.content
    assert ask(7) == ask(7)


def test_n_choices_whole_and_streamed(client):
    story = [{"role": "user", "content": "Tell me a story about a cat."}]
    r = client.chat.completions.create(model=MODEL, messages=story, temperature=1.0, seed=3,
                                       max_tokens=12, n=3)
    assert [c.index for c in r.choices] == [0, 1, 2]
    texts = [c.message.content for c in r.choices]
    assert len(set(texts)) > 1, texts  # each choice draws with its own seed
    # Choice i is what the request alone gives with seed 3 + i; the prompt is counted
    # once, the completions added up.
    alone = [client.chat.completions.create(model=MODEL, messages=story, temperature=1.0,
                                            seed=3 + i, max_tokens=12) for i in range(3)]
    assert [a.choices[0].message.content for a in alone] == texts
    assert r.usage.prompt_tokens == alone[0].usage.prompt_tokens
    assert r.usage.completion_tokens == sum(a.usage.completion_tokens for a in alone)
    streamed = {0: "", 1: "", 2: ""}
    reasons, usage = {}, None
    for chunk in client.chat.completions.create(model=MODEL, messages=story, temperature=1.0, seed=3,
                                                max_tokens=12, n=3, stream=True,
                                                stream_options={"include_usage": True}):
        if chunk.usage:
            usage = chunk.usage
        for c in chunk.choices:
            streamed[c.index] += c.delta.content or ""
            if c.finish_reason:
                reasons[c.index] = c.finish_reason
    assert [streamed[i] for i in range(3)] == texts
    assert set(reasons) == {0, 1, 2}
    assert usage.completion_tokens == r.usage.completion_tokens
    greedy = client.completions.create(model=MODEL, prompt="The capital of France is",
                                       temperature=0, max_tokens=3, n=2)
    assert len(greedy.choices) == 2 and greedy.choices[0].text == greedy.choices[1].text
    assert greedy.usage.completion_tokens == 6


def test_completions_with_text_and_token_ids(client):
    r = client.completions.create(model=MODEL, prompt="The capital of France is", temperature=0, max_tokens=3)
    assert r.choices[0].text.strip() != "" and r.choices[0].finish_reason == "length"
    ids = client.completions.create(model=MODEL, prompt=[504, 3575, 282, 4649, 314], temperature=0, max_tokens=3)
    assert ids.choices[0].text == r.choices[0].text
    lp = client.completions.create(model=MODEL, prompt="Hello", temperature=0, max_tokens=2, logprobs=2)
    assert len(lp.choices[0].logprobs.token_logprobs) == 2


def test_legacy_completions_echo_and_default_to_16_tokens(client):
    prompt = "Once upon a time, in a land far away,"
    r = client.completions.create(model=MODEL, prompt=prompt, temperature=0, echo=True)
    assert r.choices[0].text.startswith(prompt) and len(r.choices[0].text) > len(prompt)
    assert r.usage.completion_tokens <= 16
    if r.choices[0].finish_reason == "length":
        assert r.usage.completion_tokens == 16
    streamed = "".join(c.choices[0].text for c in client.completions.create(
        model=MODEL, prompt=prompt, temperature=0, echo=True, stream=True) if c.choices)
    assert streamed == r.choices[0].text


def test_a_model_by_id_and_the_fingerprint(client):
    assert client.models.retrieve(MODEL).id == MODEL
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("no-such-model")
    one = client.chat.completions.create(model=MODEL, messages=QUESTION, max_tokens=1)
    two = client.chat.completions.create(model=MODEL, messages=QUESTION, max_tokens=1)
    assert one.system_fingerprint.startswith("fp_")
    assert one.system_fingerprint == two.system_fingerprint


def test_chat_logprobs(client):
    r = client.chat.completions.create(model=MODEL, messages=QUESTION, temperature=0, max_tokens=4,
                                       logprobs=True, top_logprobs=3)
    content = r.choices[0].logprobs.content
    assert len(content) == 4 and all(len(t.top_logprobs) == 3 for t in content)
    assert "".join(t.token for t in content) == "The capital of France"


def raw(path, body, **kw):
    return httpx.post(BASE + path, content=body, headers={"content-type": "application/json"}, timeout=60, **kw)


def test_malformed_and_invalid_bodies_get_openai_shaped_400s():
    r = raw("/chat/completions", b"{not json")
    assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_request_error"
    for field, body in [
        ("temperature", {"temperature": 5}),
        ("temperature", {"temperature": "hot"}),
        ("n", {"n": 0}),
        ("n", {"n": 17}),
        ("messages", {"messages": []}),
        ("top_logprobs", {"top_logprobs": 3}),
        ("logit_bias", {"logit_bias": {"abc": 1}}),
    ]:
        payload = {"model": MODEL, "messages": QUESTION, **body}
        r = raw("/chat/completions", json.dumps(payload).encode())
        assert r.status_code == 400, (field, r.text)
        assert r.json()["error"]["param"] == field, r.text


def test_unknown_model_is_404(client):
    with pytest.raises(openai.NotFoundError) as e:
        client.chat.completions.create(model="no-such-model", messages=QUESTION)
    assert e.value.body["code"] == "model_not_found"


def test_oversized_body_is_413():
    r = raw("/chat/completions", json.dumps({"model": MODEL, "messages": [{"role": "user", "content": "x" * 200_000}]}).encode())
    assert r.status_code == 413 and "error" in r.json()


def test_too_long_prompt_says_both_numbers():
    r = raw("/completions", json.dumps({"model": MODEL, "prompt": [42] * 9000}).encode())
    assert r.status_code == 400
    error = r.json()["error"]
    assert error["code"] == "context_length_exceeded" and "9000" in error["message"] and "8192" in error["message"]


def test_disconnect_mid_stream_then_a_normal_request(client):
    body = {"model": MODEL, "stream": True, "max_tokens": 2000,
            "messages": [{"role": "user", "content": "Write a long essay about the sea."}]}
    with httpx.stream("POST", BASE + "/chat/completions", json=body, timeout=60) as r:
        events = 0
        for line in r.iter_lines():
            if line.startswith("data: "):
                events += 1
            if events == 3:
                break
    start = time.time()
    r = client.chat.completions.create(model=MODEL, messages=QUESTION, temperature=0, max_tokens=40)
    assert r.choices[0].message.content == ANSWER
    # The abandoned 2000-token essay (minutes of work here) was cancelled, not finished first.
    assert time.time() - start < 60


def test_api_key_is_required_when_set():
    keyed = os.environ["PERCH_KEYED_URL"]
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=keyed, api_key="wrong").models.list()
    good = openai.OpenAI(base_url=keyed, api_key=os.environ["PERCH_API_KEY"])
    assert [m.id for m in good.models.list().data] == [MODEL]
    assert httpx.get(keyed.removesuffix("/v1") + "/health").status_code == 200


def test_openapi_document_describes_the_endpoints():
    doc = httpx.get(BASE.removesuffix("/v1") + "/openapi.json").json()
    assert {"/v1/models", "/v1/chat/completions", "/v1/completions"} <= set(doc["paths"])
    schemas = doc["components"]["schemas"]
    assert "messages" in json.dumps(schemas["ChatCompletionRequest"])
    assert {"temperature", "stop", "max_tokens", "stream"} <= set(schemas["Sampling"]["properties"])
