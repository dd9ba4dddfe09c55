"""Structured outputs and tool calls: response_format and tools compiled to grammars that
constrain decoding row by row (docs/structured.md)."""

from service.structured.grammar import (
    Grammar,
    GrammarCompiler,
    GrammarConstraint,
    MaskBatch,
    StructuredOutputError,
)
from service.structured.prompt import render_messages
from service.structured.response_format import response_format_grammar
from service.structured.tools import (
    ParsedReply,
    ToolPlan,
    could_be_tool_call,
    parse_reply,
    plan_tools,
    tool_grammar,
)

__all__ = [
    "Grammar", "GrammarCompiler", "GrammarConstraint", "MaskBatch", "ParsedReply",
    "StructuredOutputError", "ToolPlan", "could_be_tool_call", "parse_reply", "plan_tools",
    "render_messages", "response_format_grammar", "tool_grammar",
]
