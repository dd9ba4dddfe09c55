"""Ten JSON schemas that span what response_format is asked for (nested objects, arrays, enums,
bounded numbers, strings with lengths and patterns, booleans, optional fields, anyOf, oneOf,
const, nullable), each with a request, a valid and an invalid document.

The coverage set: the real-model tests generate each one, benchmarks/structured_overhead.py
measures each library on them, docs/structured.md lists them. Strings and arrays are bounded so
that a small max_tokens always holds a whole document.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Example:
    """A schema, a user request for it, and one valid and one invalid document."""

    name: str
    schema: dict
    request: str
    valid: str
    invalid: str  # valid JSON that breaks exactly one rule of the schema


def _obj(properties: dict, required: list[str] | None = None) -> dict:
    return {"type": "object", "properties": properties,
            "required": list(properties) if required is None else required,
            "additionalProperties": False}


NAME = {"type": "string", "minLength": 1, "maxLength": 16}

EXAMPLES = (
    Example("person", _obj({"name": NAME, "age": {"type": "integer", "minimum": 0,
                                                   "maximum": 120}}),
            "Describe a person.", '{"name": "Ada", "age": 36}', '{"name": "Ada", "age": 130}'),
    Example("color", _obj({"color": {"enum": ["red", "green", "blue"]},
                           "shade": {"enum": ["light", "dark"]}}),
            "Pick a color.", '{"color": "red", "shade": "dark"}',
            '{"color": "pink", "shade": "dark"}'),
    Example("address", _obj({"name": NAME, "address": _obj({
                "city": NAME, "zip": {"type": "string", "pattern": "^[0-9]{5}$"}})}),
            "Give a name and a postal address.",
            '{"name": "Bo", "address": {"city": "Paris", "zip": "75001"}}',
            '{"name": "Bo", "address": {"city": "Paris", "zip": "7500"}}'),
    Example("tags", _obj({"tags": {"type": "array", "items": NAME, "minItems": 1,
                                   "maxItems": 3}}),
            "Tag an article about rivers.", '{"tags": ["water", "geography"]}',
            '{"tags": []}'),
    Example("weather", _obj({"temperature": {"type": "number", "minimum": -50, "maximum": 60},
                             "humidity": {"type": "integer", "minimum": 0, "maximum": 100}}),
            "Report today's weather.", '{"temperature": 21.5, "humidity": 40}',
            '{"temperature": 21.5, "humidity": 140}'),
    Example("task", _obj({"title": NAME, "done": {"type": "boolean"},
                          "priority": {"type": "integer", "minimum": 1, "maximum": 5}},
                         required=["title", "done"]),
            "Write a to-do item.", '{"title": "Shop", "done": false}',
            '{"title": "Shop", "done": "no"}'),
    Example("order", _obj({"items": {"type": "array", "maxItems": 3, "items": _obj({
                "product": NAME, "quantity": {"type": "integer", "minimum": 1,
                                              "maximum": 10}})}}),
            "List a small grocery order.",
            '{"items": [{"product": "milk", "quantity": 2}]}',
            '{"items": [{"product": "milk", "quantity": 0}]}'),
    Example("answer", _obj({"answer": {"anyOf": [{"type": "integer", "minimum": 0,
                                                   "maximum": 1000},
                                                  {"type": "string", "maxLength": 16}]}}),
            "How many legs does a spider have?", '{"answer": 8}', '{"answer": true}'),
    Example("shape", _obj({"shape": {"oneOf": [
                _obj({"kind": {"const": "circle"},
                      "radius": {"type": "number", "minimum": 0, "maximum": 100}}),
                _obj({"kind": {"const": "square"},
                      "side": {"type": "number", "minimum": 0, "maximum": 100}})]}}),
            "Describe a shape.", '{"shape": {"kind": "circle", "radius": 2}}',
            '{"shape": {"kind": "circle", "side": 2}}'),
    Example("record", _obj({"version": {"const": "1.0"},
                            "note": {"type": ["string", "null"], "maxLength": 16},
                            "scores": {"type": "array", "minItems": 2, "maxItems": 4,
                                       "items": {"type": "integer", "minimum": 0,
                                                 "maximum": 9}}}),
            "Record some scores.", '{"version": "1.0", "note": null, "scores": [3, 9]}',
            '{"version": "2.0", "note": null, "scores": [3, 9]}'),
)

# A function for the tool-call tests and benchmark: a required call must fill these arguments.
WEATHER_TOOL = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather in a city.",
    "parameters": {"type": "object", "additionalProperties": False,
                   "required": ["city", "unit"],
                   "properties": {"city": {"type": "string", "maxLength": 32},
                                  "unit": {"enum": ["celsius", "fahrenheit"]}}}}}
TIME_TOOL = {"type": "function", "function": {
    "name": "get_time", "description": "Current local time in a time zone.",
    "parameters": {"type": "object", "additionalProperties": False, "required": ["zone"],
                   "properties": {"zone": {"type": "string", "maxLength": 32}}}}}
