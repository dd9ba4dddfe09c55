"""Structured outputs and tool calls through the live service, over HTTP, in one run.

Starts `cogcore serve` on loopback (loadtest/server.py) and drives it with the official
`openai` client:
- 50 schema-constrained chat requests: the 10 schemas of service/structured/examples.py, each
  5 times (greedy, then temperature 0.8 with 4 seeds); every reply must be JSON valid for its
  schema (jsonschema, Draft 2020-12) and end with finish_reason "stop";
- 50 required tool calls (`get_weather` / `get_time`, 10 cities x 5), once with
  `parallel_tool_calls` false (one call) and once with OpenAI's default (true: the model may
  write several): every call's arguments must be valid for its function;
- the per-token cost of the constraint at 32 concurrent streams: rounds that take turns,
  32 streams held to a json_schema (an object of 40 or more integers, so no row can end early)
  and 32 plain streams that may not end (EOS banned by logit_bias), every stream GAP_TOKENS
  long and on the reasoning route (no retrieval). The chunk gaps taken while all 32 rows
  decode (after the last stream's first chunk, before the first one's last) are decode steps
  of the same batch size; the constraint's share is (schema gap - plain gap) / plain gap.

    python benchmarks/structured_eval.py --out docs/structured
    python benchmarks/structured_eval.py --only timing     # the cost alone

Writes structured_eval.json under --out and prints a markdown summary.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import jsonschema
from openai import AsyncOpenAI
from transformers import AutoTokenizer

from loadtest.server import start, stop
from service.structured.examples import EXAMPLES, TIME_TOOL, WEATHER_TOOL

CITIES = ["Paris", "Lima", "Oslo", "Cairo", "Tokyo", "Quito", "Rome", "Hanoi", "Dakar", "Bern"]
SEEDS = (None, 1001, 1002, 1003, 1004)  # None: greedy
TOOLS = [WEATHER_TOOL, TIME_TOOL]
SCHEMAS = {t["function"]["name"]: t["function"]["parameters"] for t in TOOLS}
GAP_TOKENS = 48  # every timed stream's length; a reply to TIMED_SCHEMA needs more tokens
TIMED_SCHEMA = {"type": "object", "additionalProperties": False, "required": ["readings"],
                "properties": {"readings": {"type": "array", "items": {"type": "integer"},
                                            "minItems": 40}}}


def _sampling(seed: int | None) -> dict:
    return {"temperature": 0} if seed is None else {"temperature": 0.8, "seed": seed}


def _schema_request(model: str, example, seed: int | None, constrained: bool = True) -> dict:
    system = "Reply in JSON for this schema: " + json.dumps(example.schema)
    kwargs = {"model": model, "max_tokens": 128, **_sampling(seed),
              "messages": [{"role": "system", "content": system},
                           {"role": "user", "content": example.request}]}
    if constrained:
        kwargs["response_format"] = {"type": "json_schema", "json_schema": {
            "name": example.name, "strict": True, "schema": example.schema}}
    return kwargs


async def schema_replies(client: AsyncOpenAI, model: str) -> list[dict]:
    """The 50 schema-constrained replies, each checked."""
    async def one(example, seed):
        reply = (await client.chat.completions.create(**_schema_request(model, example, seed)
                                                      )).choices[0]
        try:
            errors = [e.message for e in jsonschema.Draft202012Validator(example.schema)
                      .iter_errors(json.loads(reply.message.content))]
        except json.JSONDecodeError as exc:
            errors = [f"not JSON: {exc}"]
        if reply.finish_reason != "stop":
            errors.append(f"finish_reason {reply.finish_reason}")
        return {"schema": example.name, "seed": seed, "content": reply.message.content,
                "errors": errors}
    return await asyncio.gather(*(one(e, s) for e in EXAMPLES for s in SEEDS))


async def tool_calls(client: AsyncOpenAI, model: str, parallel: bool) -> list[dict]:
    """The 50 required tool calls, each checked."""
    async def one(city, seed):
        reply = (await client.chat.completions.create(
            model=model, max_tokens=96, tools=TOOLS, tool_choice="required", **_sampling(seed),
            parallel_tool_calls=parallel,
            messages=[{"role": "user", "content": f"What is the weather in {city}?"}]
        )).choices[0]
        calls = reply.message.tool_calls or []
        errors = [] if calls and reply.finish_reason == "tool_calls" else ["no tool call"]
        for call in calls:
            errors += [e.message for e in jsonschema.Draft202012Validator(
                SCHEMAS[call.function.name]).iter_errors(json.loads(call.function.arguments))]
        return {"city": city, "seed": seed, "parallel": parallel, "errors": errors,
                "finish_reason": reply.finish_reason, "content": reply.message.content,
                "calls": [c.function.model_dump() for c in calls]}
    return await asyncio.gather(*(one(c, s) for c in CITIES for s in SEEDS))


async def stream_gaps(client: AsyncOpenAI, model: str, constrained: bool, streams: int,
                      eos: int) -> list[float]:
    """Every chunk gap (s) of `streams` concurrent streams of GAP_TOKENS tokens, taken while
    all of them decode: after the last stream's first chunk, before the first one's last."""
    async def one(i: int) -> list[float]:
        kwargs: dict = {"model": model, "max_tokens": GAP_TOKENS, "temperature": 0,
                        "extra_body": {"retrieval": "never"}, "messages": [
                            {"role": "user", "content": f"List 40 readings of station {i}."}]}
        if constrained:
            kwargs["response_format"] = {"type": "json_schema", "json_schema": {
                "name": "readings", "strict": True, "schema": TIMED_SCHEMA}}
        else:
            kwargs["logit_bias"] = {str(eos): -100}
        stamps = []
        async for chunk in await client.chat.completions.create(**kwargs, stream=True):
            if chunk.choices and chunk.choices[0].delta.content:
                stamps.append(time.perf_counter())
        return stamps
    runs = await asyncio.gather(*(one(i) for i in range(streams)))
    start, end = max(r[0] for r in runs), min(r[-1] for r in runs)
    gaps = [b - a for r in runs for a, b in zip(r, r[1:], strict=False)
            if a >= start and b <= end]
    if not gaps:
        raise RuntimeError("no step had all streams decoding: raise GAP_TOKENS")
    return gaps


async def run(url: str, model: str, rounds: int, streams: int, eos: int, timing_only: bool
              ) -> dict:
    client = AsyncOpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0, timeout=900)
    try:
        schemas, single, parallel = [], [], []
        if not timing_only:
            schemas = await schema_replies(client, model)
            single = await tool_calls(client, model, parallel=False)
            parallel = await tool_calls(client, model, parallel=True)
        gaps: dict[str, list[float]] = {"plain": [], "schema": []}
        for _ in range(rounds):  # the two kinds take turns, so load drifts hit both
            gaps["plain"] += await stream_gaps(client, model, False, streams, eos)
            gaps["schema"] += await stream_gaps(client, model, True, streams, eos)
    finally:
        await client.close()
    plain, schema = statistics.median(gaps["plain"]), statistics.median(gaps["schema"])
    return {"schema_valid": sum(not r["errors"] for r in schemas), "schema_total": len(schemas),
            "calls_valid": sum(not r["errors"] for r in single), "calls_total": len(single),
            "parallel_calls_valid": sum(not r["errors"] for r in parallel),
            "parallel_calls_total": len(parallel),
            "streams": streams, "rounds": rounds, "gap_tokens": GAP_TOKENS,
            "plain_gap_ms": plain * 1e3, "schema_gap_ms": schema * 1e3,
            "gaps_timed": {kind: len(values) for kind, values in gaps.items()},
            "constraint_share": (schema - plain) / plain,
            "failures": [r for r in schemas + single + parallel if r["errors"]],
            "load_average": os.getloadavg()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=Path("artifacts/core/default"))
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--streams", type=int, default=32)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--only", choices=["all", "timing"], default="all")
    args = parser.parse_args()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as scratch:
        server = start(args.model, Path(scratch) / "serve.log",
                       env={"COGCORE_LOG_LEVEL": "WARNING", "COGCORE_REQUEST_TIMEOUT_S": "3600"})
        try:
            eos = AutoTokenizer.from_pretrained(args.model).eos_token_id
            result = asyncio.run(run(server.url, server.model, args.rounds, args.streams, eos,
                                     args.only == "timing"))
        finally:
            stop(server)
    result["model"], result["load_average_before"] = str(args.model), load_before
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        name = "structured_eval_timing.json" if args.only == "timing" else "structured_eval.json"
        (args.out / name).write_text(json.dumps(result, indent=2) + "\n")
    print(f"Model `{args.model}`; load average {load_before[0]:.1f} before, "
          f"{result['load_average'][0]:.1f} after.\n")
    if args.only == "all":
        print(f"- schema-constrained replies valid: {result['schema_valid']}/"
              f"{result['schema_total']}")
        print(f"- required tool calls valid, one call: {result['calls_valid']}/"
              f"{result['calls_total']}; parallel calls allowed: "
              f"{result['parallel_calls_valid']}/{result['parallel_calls_total']}")
    print(f"- median chunk gap at {args.streams} streams ({args.rounds} rounds each): plain "
          f"{result['plain_gap_ms']:.1f} ms, schema {result['schema_gap_ms']:.1f} ms; the "
          f"constraint's share of a decode step {100 * result['constraint_share']:.1f}%")


if __name__ == "__main__":
    main()
