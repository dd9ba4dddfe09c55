"""OpenAI's `response_format` (as a plain dict) to the grammar that enforces it."""

from __future__ import annotations

from service.structured.grammar import Grammar, GrammarCompiler, StructuredOutputError

PARAM = "response_format"
# json_object: any JSON object (OpenAI's JSON mode also asks for an object at the top).
ANY_OBJECT: dict = {"type": "object"}


def response_format_grammar(compiler: GrammarCompiler, response_format: object) -> Grammar | None:
    """The grammar for `response_format`; None for plain text (absent or {"type": "text"})."""
    if response_format is None:
        return None
    if not isinstance(response_format, dict):
        raise StructuredOutputError("response_format must be an object", PARAM)
    kind = response_format.get("type")
    if kind == "text":
        return None
    if kind == "json_object":
        return compiler.json_schema(ANY_OBJECT, PARAM)
    if kind == "json_schema":
        spec = response_format.get("json_schema")
        if not isinstance(spec, dict):
            raise StructuredOutputError(
                'response_format {"type": "json_schema"} needs a "json_schema" object', PARAM)
        name = spec.get("name")
        if not isinstance(name, str) or not name:
            raise StructuredOutputError("response_format.json_schema.name is required", PARAM)
        schema = spec.get("schema", ANY_OBJECT)
        # strict or not, the schema is enforced (as vLLM does): a best effort would still be
        # the same grammar on this engine.
        return compiler.json_schema(schema, f"{PARAM}.json_schema.schema")
    raise StructuredOutputError(
        f"response_format type {kind!r} is not supported; use text, json_object or json_schema",
        PARAM)
