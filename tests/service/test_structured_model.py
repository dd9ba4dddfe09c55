"""Structured outputs on the real served model (the default core, or the base on a clean
clone): 10 schemas x 2 replies and 10 required tool calls, generated as the engine batches
them (one left-padded KV cache, a decode step per token, every row's grammar masked in one
`MaskBatch.apply`) and checked with `jsonschema`. The 50-request proofs run through the live
service in benchmarks/structured_eval.py."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from service import batch
from service.sampling import SamplingParams, make_generator, sample_rows
from service.structured import (
    GrammarCompiler,
    GrammarConstraint,
    MaskBatch,
    parse_reply,
    plan_tools,
    render_messages,
    response_format_grammar,
    tool_grammar,
)
from service.structured.examples import EXAMPLES, TIME_TOOL, WEATHER_TOOL

pytestmark = pytest.mark.real_model
REPLIES_PER_SCHEMA = 2  # the first greedy, the other at temperature 0.8 with a fixed seed
MAX_TOKENS = 128
CITIES = ["Paris", "Lima", "Oslo", "Cairo", "Tokyo", "Quito", "Rome", "Hanoi", "Dakar", "Bern"]


@pytest.fixture(scope="module")
def core(served_model_dir: Path) -> tuple:
    """The served model (tests/conftest.py), its tokenizer and a grammar compiler over its
    own vocabulary."""
    path = served_model_dir
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
    compiler = GrammarCompiler(tokenizer, vocab_size=model.config.vocab_size,
                               eos_ids=[model.generation_config.eos_token_id])
    return model, tokenizer, compiler


def _params(i: int) -> SamplingParams:
    if i % REPLIES_PER_SCHEMA == 0:
        return SamplingParams(max_tokens=MAX_TOKENS)
    return SamplingParams(max_tokens=MAX_TOKENS, temperature=0.8, seed=1000 + i)


@torch.inference_mode()
def _generate(model, tokenizer, chats: list[list[dict]],
              constraints: list[GrammarConstraint]) -> list[tuple[str, bool]]:
    """Each chat's reply text and whether it ended on EOS (not on MAX_TOKENS)."""
    texts = [tokenizer.apply_chat_template(c, add_generation_prompt=True, tokenize=False)
             for c in chats]
    prompts = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
    params = [_params(i) for i in range(len(chats))]
    generators = [make_generator(p) for p in params]
    eos = {int(model.generation_config.eos_token_id)}
    masks = MaskBatch(model.config.vocab_size, len(chats))
    # The rows' shared start (the system prompt listing the tools) is encoded once, as the
    # engine does.
    shared = batch.common_prefix(prompts, min(len(p) for p in prompts) - 1)
    prefix = batch.encode_prefix(model, prompts[0][:shared]) if shared >= 16 else None
    state, logits = batch.prefill(model, prompts, tokenizer.pad_token_id, prefix)
    replies: list[list[int]] = [[] for _ in chats]
    ended = [False] * len(chats)
    for _ in range(MAX_TOKENS):
        masks.apply(logits, [(r, c) for r, c in enumerate(constraints) if not ended[r]])
        tokens = sample_rows(logits, params, generators, replies)
        masks.advance([(c, t) for c, t, e in zip(constraints, tokens, ended, strict=True)
                       if not e])
        for row, token in enumerate(tokens):
            if not ended[row]:
                ended[row] = token in eos
                if not ended[row]:
                    replies[row].append(token)
        if all(ended):
            break
        logits = batch.decode(model, state, tokens)
    return [(tokenizer.decode(r, skip_special_tokens=True), e)
            for r, e in zip(replies, ended, strict=True)]


def test_schema_constrained_replies_are_valid(core: tuple) -> None:
    model, tokenizer, compiler = core
    chats, constraints, schemas = [], [], []
    for example in EXAMPLES:
        fmt = {"type": "json_schema", "json_schema": {"name": example.name, "strict": True,
                                                      "schema": example.schema}}
        grammar = response_format_grammar(compiler, fmt)
        for _ in range(REPLIES_PER_SCHEMA):
            system = "Reply in JSON for this schema: " + json.dumps(example.schema)
            chats.append([{"role": "system", "content": system},
                          {"role": "user", "content": example.request}])
            constraints.append(compiler.constraint(grammar))
            schemas.append(example.schema)
    results = _generate(model, tokenizer, chats, constraints)
    failures = []
    for (text, ended), schema in zip(results, schemas, strict=True):
        errors = [] if ended else ["cut by max_tokens"]
        if ended:
            errors = [e.message for e in jsonschema.Draft202012Validator(schema).iter_errors(
                json.loads(text))]
        if errors:
            failures.append((text, errors))
    assert not failures, failures
    assert len(results) == 2 * len(EXAMPLES)
    assert compiler.misses == len(EXAMPLES), "each schema compiled once, then from the cache"


def test_required_tool_calls_have_valid_arguments(core: tuple) -> None:
    model, tokenizer, compiler = core
    plan = plan_tools([WEATHER_TOOL, TIME_TOOL], "required")
    grammar = tool_grammar(compiler, plan)
    chats = [render_messages([{"role": "user", "content": f"What is the weather in {city}?"}],
                             plan) for city in CITIES]
    results = _generate(model, tokenizer, chats, [compiler.constraint(grammar) for _ in chats])
    schemas = {t["function"]["name"]: t["function"]["parameters"]
               for t in (WEATHER_TOOL, TIME_TOOL)}
    bad = []
    for text, ended in results:
        reply = parse_reply(text, plan.names)
        calls = reply.tool_calls
        if not ended or not calls or reply.content is not None:
            bad.append(text)
            continue
        for call in calls:
            arguments = json.loads(call["function"]["arguments"])
            if not jsonschema.Draft202012Validator(
                    schemas[call["function"]["name"]]).is_valid(arguments):
                bad.append(text)
    assert not bad, bad
    assert len(results) == len(CITIES)
