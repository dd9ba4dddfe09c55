"""Structured outputs and tool calls: response_format and tools compiled to grammars that
constrain decoding row by row (docs/structured.md)."""

from service.structured.call_stream import CallDelta, CallStream
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
    TOOL_OPEN,
    ParsedReply,
    ToolPlan,
    could_be_tool_call,
    new_call_id,
    parse_reply,
    plan_tools,
    tool_grammar,
)

__all__ = [
    "TOOL_OPEN", "CallDelta", "CallStream", "Grammar", "GrammarCompiler", "GrammarConstraint",
    "MaskBatch", "ParsedReply", "StructuredOutputError", "ToolPlan", "could_be_tool_call",
    "new_call_id", "parse_reply", "plan_tools", "render_messages", "response_format_grammar",
    "tool_grammar",
]
