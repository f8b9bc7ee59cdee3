"""End-to-end tests of `perch serve`'s Anthropic Messages API with the official `anthropic`
client.

Run by crates/cli/tests/serve_e2e.rs beside test_openai.py, against the same servers:
PERCH_BASE_URL (no key; the OpenAI base, ending in /v1), PERCH_KEYED_URL + PERCH_API_KEY
(a key required), PERCH_MODEL and PERCH_TOKENIZER_DIR.
"""
import json
import os
import re

import anthropic
import httpx
import pytest
from transformers import AutoTokenizer

import untrusted

ROOT = os.environ["PERCH_BASE_URL"].removesuffix("/v1")
KEYED_ROOT = os.environ["PERCH_KEYED_URL"].removesuffix("/v1")
MODEL = os.environ["PERCH_MODEL"]
QUESTION = [{"role": "user", "content": "What is the capital of France?"}]
ANSWER = "The capital of France is Paris."
# This SDK no longer takes sampling fields as arguments; the API still does.
GREEDY = {"extra_body": {"temperature": 0}}
WEATHER = {"name": "get_weather", "description": "The weather now in a city.",
           "input_schema": {"type": "object", "required": ["city"],
                            "properties": {"city": {"type": "string", "maxLength": 40}}}}


@pytest.fixture(scope="module")
def client():
    return anthropic.Anthropic(base_url=ROOT, api_key="unused")


def test_a_message_with_usage_and_a_stop_sequence(client):
    r = client.messages.create(model=MODEL, max_tokens=40, **GREEDY, messages=QUESTION)
    assert r.type == "message" and r.role == "assistant" and r.id.startswith("msg_")
    assert [b.type for b in r.content] == ["text"] and r.content[0].text == ANSWER
    assert r.stop_reason == "end_turn" and r.stop_sequence is None
    counted = client.messages.count_tokens(model=MODEL, messages=QUESTION)
    assert r.usage.input_tokens == counted.input_tokens > 10
    assert r.usage.output_tokens > 5

    r = client.messages.create(model=MODEL, max_tokens=40, **GREEDY, messages=QUESTION,
                               stop_sequences=["Lyon", "Nice", "Lille", "Metz", "Paris"])
    assert r.content[0].text == "The capital of France is "
    assert r.stop_reason == "stop_sequence" and r.stop_sequence == "Paris"
    r = client.messages.create(model=MODEL, max_tokens=3, **GREEDY, messages=QUESTION)
    assert r.stop_reason == "max_tokens" and r.usage.output_tokens == 3


def test_system_prompt_as_text_or_blocks_and_several_turns(client):
    history = [{"role": "user", "content": "Hi, who are you?"},
               {"role": "assistant", "content": [{"type": "text", "text": "I am a model."}]},
               {"role": "user", "content": [{"type": "text", "text": "Name a color."}]}]
    as_text = client.messages.count_tokens(model=MODEL, system="Be brief.", messages=history)
    as_blocks = client.messages.count_tokens(
        model=MODEL, messages=history,
        system=[{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}])
    bare = client.messages.count_tokens(model=MODEL, messages=history[2:])
    assert as_text.input_tokens == as_blocks.input_tokens > bare.input_tokens
    r = client.messages.create(model=MODEL, max_tokens=20, **GREEDY, system="Be brief.",
                               messages=history)
    assert r.content[0].text.strip()


def test_streaming_sends_anthropics_event_sequence(client):
    with client.messages.stream(model=MODEL, max_tokens=40, **GREEDY,
                                messages=QUESTION) as stream:
        events = [event.type for event in stream]
        final = stream.get_final_message()
    assert events[0] == "message_start"
    assert events[-2:] == ["message_delta", "message_stop"]
    assert events.count("content_block_start") == events.count("content_block_stop") == 1
    assert "content_block_delta" in events
    assert final.content[0].text == ANSWER and final.stop_reason == "end_turn"
    # The raw stream: ping after message_start; input tokens known from the start.
    raw = httpx.post(f"{ROOT}/v1/messages", json={
        "model": MODEL, "max_tokens": 5, "messages": QUESTION, "stream": True})
    names = [line.removeprefix("event: ") for line in raw.text.splitlines()
             if line.startswith("event: ")]
    assert names[:3] == ["message_start", "ping", "content_block_start"]
    start = json.loads(raw.text.split("data: ", 1)[1].split("\n", 1)[0])
    assert start["message"]["usage"]["input_tokens"] > 10


def test_tool_use_round_trip(client):
    ask = [{"role": "user", "content": "What is the weather in Paris?"}]
    r = client.messages.create(model=MODEL, max_tokens=60, **GREEDY, messages=ask,
                               tools=[WEATHER], tool_choice={"type": "any",
                                                             "disable_parallel_tool_use": True})
    assert r.stop_reason == "tool_use"
    (use,) = [b for b in r.content if b.type == "tool_use"]
    assert use.name == "get_weather" and isinstance(use.input["city"], str)
    assert not [b for b in r.content if b.type == "text" and "<tool_call>" in b.text]

    history = ask + [
        {"role": "assistant", "content": r.content},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id,
                                      "content": "18 degrees and sunny"}]},
    ]
    final = client.messages.create(model=MODEL, max_tokens=30, **GREEDY, messages=history,
                                   tools=[WEATHER], tool_choice={"type": "none"})
    assert final.stop_reason in ("end_turn", "max_tokens")
    assert [b.type for b in final.content] == ["text"] and final.content[0].text.strip()


def test_streamed_tool_use_sends_input_json_deltas(client):
    with client.messages.stream(
            model=MODEL, max_tokens=60, **GREEDY, tools=[WEATHER],
            tool_choice={"type": "tool", "name": "get_weather", "disable_parallel_tool_use": True},
            messages=[{"role": "user", "content": "Weather in Rome?"}]) as stream:
        deltas = [e.delta.type for e in stream if e.type == "content_block_delta"]
        final = stream.get_final_message()
    assert deltas and set(deltas) == {"input_json_delta"}
    assert final.stop_reason == "tool_use"
    assert final.content[-1].type == "tool_use" and "city" in final.content[-1].input


def test_control_tokens_written_in_a_message_or_tool_result_are_text(client):
    tokenizer = AutoTokenizer.from_pretrained(os.environ["PERCH_TOKENIZER_DIR"])
    count = lambda blocks: client.messages.count_tokens(
        model=MODEL, messages=[{"role": "user", "content": blocks}]).input_tokens
    for block in (lambda text: {"type": "text", "text": text},
                  lambda text: {"type": "tool_result", "tool_use_id": "t1", "content": text}):
        extra = count([block(untrusted.INJECTION)]) - count([block(untrusted.PLAIN)])
        assert extra != untrusted.extra_control_tokens(tokenizer)
        assert extra == untrusted.extra_text_tokens(tokenizer)


def test_errors_in_anthropics_shape(client):
    with pytest.raises(anthropic.NotFoundError) as missing:
        client.messages.create(model="no-such-model", max_tokens=5, messages=QUESTION)
    assert missing.value.body["type"] == "error"
    assert missing.value.body["error"]["type"] == "not_found_error"
    with pytest.raises(anthropic.BadRequestError) as bad:
        client.messages.create(model=MODEL, max_tokens=5, messages=QUESTION, extra_body={"temperature": 1.5})
    assert bad.value.body["error"]["type"] == "invalid_request_error"
    assert "temperature" in bad.value.body["error"]["message"]
    with pytest.raises(anthropic.BadRequestError) as bad:
        client.messages.create(model=MODEL, max_tokens=5, messages=QUESTION,
                               stop_sequences=[f"stop {i}" for i in range(65)])
    assert "at most 64 stop sequences" in bad.value.body["error"]["message"]
    with pytest.raises(anthropic.BadRequestError):
        client.messages.create(model=MODEL, max_tokens=5, messages=[
            {"role": "user", "content": [{"type": "image", "source": {
                "type": "base64", "media_type": "image/png", "data": "AAAA"}}]}])
    keyed = anthropic.Anthropic(base_url=KEYED_ROOT, api_key="wrong")
    with pytest.raises(anthropic.AuthenticationError) as refused:
        keyed.messages.create(model=MODEL, max_tokens=5, messages=QUESTION)
    assert refused.value.body["error"]["type"] == "authentication_error"
    # The client sends its key as x-api-key, as Anthropic's API takes it.
    good = anthropic.Anthropic(base_url=KEYED_ROOT, api_key=os.environ["PERCH_API_KEY"])
    assert good.messages.create(model=MODEL, max_tokens=3, messages=QUESTION).usage.output_tokens


def test_what_claude_code_sends(client):
    # System turns inside the conversation, and adaptive thinking.
    history = [{"role": "user", "content": "Hi"},
               {"role": "system", "content": "Answer in French."},
               {"role": "user", "content": "Name a color."}]
    with_system = client.messages.count_tokens(model=MODEL, messages=history,
                                               thinking={"type": "adaptive"})
    without = client.messages.count_tokens(model=MODEL, messages=[history[0], history[2]])
    assert with_system.input_tokens > without.input_tokens
    # A prompt longer than the context is still counted: the client asks whether it fits.
    long = [{"role": "user", "content": "word " * 9000}]
    assert client.messages.count_tokens(model=MODEL, messages=long).input_tokens > 8192
    # Too many tokens asked for: Anthropic's wording, which Claude Code retries on with less.
    # (Sent raw: this SDK wants a stream for so large a max_tokens.)
    refused = httpx.post(f"{ROOT}/v1/messages", json={
        "model": MODEL, "max_tokens": 32000, "messages": QUESTION})
    assert refused.status_code == 400
    message = refused.json()["error"]["message"]
    assert re.search(r"input length and `max_tokens` exceed context limit: \d+ \+ 32000 > 8192",
                     message), message
