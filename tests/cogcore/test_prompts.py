"""The reader prompt: evidence, question, and in a chat the client's system prompt and history."""

from __future__ import annotations

from cogcore.prompts import READER_PREFIX, READER_SYSTEM, reader_prompt


def test_a_single_question_reads_as_measured() -> None:
    prompt = reader_prompt("What is the capital of Peru?", ["The capital of Peru is Lima."])
    assert prompt.messages == (
        {"role": "system", "content": READER_SYSTEM},
        {"role": "user", "content": "Context:\n[1] The capital of Peru is Lima.\n\n"
                                    "Question: What is the capital of Peru?"},
    )
    assert prompt.assistant_prefix == READER_PREFIX


def test_a_chat_keeps_the_clients_system_prompt_and_history() -> None:
    history = [{"role": "user", "content": "What is the capital of Peru?"},
               {"role": "assistant", "content": "Lima."}]
    prompt = reader_prompt("What is the currency code of Peru?", ["PEN."], "Answer in French.",
                           history)
    system, *earlier, question = prompt.messages
    assert system == {"role": "system", "content": f"Answer in French.\n\n{READER_SYSTEM}"}
    assert earlier == history
    assert question["role"] == "user" and question["content"].endswith(
        "Question: What is the currency code of Peru?")
    assert reader_prompt("Q?", ["E."], "   ").messages[0]["content"] == READER_SYSTEM
