"""The embedded backend's contract tests, run unchanged against the PostgreSQL backend.

Importing them here collects them again with this directory's `kb` fixture (a PostgreSQL
knowledge base holding the same documents): one set of cases, both backends.
"""

from tests.retrieval.test_knowledge_base import (  # noqa: F401
    test_delete_removes_the_document_from_every_mode,
    test_each_mode_finds_the_document_and_filters_restrict_it,
    test_same_content_is_a_no_op_and_metadata_changes_skip_the_embedder,
    test_same_id_replaces_text_and_old_chunks_leave_the_index,
    test_upsert_reports_chunks_and_get_list_count,
)
