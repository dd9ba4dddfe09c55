"""`cogcore kb ...`: build, fill, search, inspect and evaluate a knowledge base."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

from cogcore.paths import artifacts_dir, default_kb_dir
from retrieval.index_registry import DEFAULT_KIND, KINDS

if TYPE_CHECKING:
    from retrieval.embedder import TextEncoder

console = Console(stderr=True)
app = typer.Typer(help="The knowledge base: documents, FAISS + BM25 search.", no_args_is_help=True)

KB_OPTION = typer.Option(None, "--kb", help="Knowledge base directory [default: artifacts/kb/…]")
KB_URL_OPTION = typer.Option(
    None, "--kb-url", envvar="COGCORE_KB_URL", help="A PostgreSQL + pgvector knowledge base, "
    "postgresql://… (instead of --kb; docs/scale-out.md)")


def _index_kind(value: str | None) -> str | None:
    """Refuse an index kind that no registered backend implements."""
    if value is not None and value not in KINDS:
        raise typer.BadParameter(f"{value!r} is not one of {', '.join(KINDS)}")
    return value


INDEX_OPTION = typer.Option(
    None, callback=_index_kind, help=f"Dense index: {', '.join(KINDS)} (default: as the "
    f"knowledge base was built, {DEFAULT_KIND} for a new one)")


def _progress() -> Progress:
    return Progress("{task.description}", BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=console)


def _location(kb: Path | None, kb_url: str | None) -> Path | str:
    """The knowledge base the options name: a database URL, else a directory."""
    from retrieval.backends import is_database_url

    if kb_url is not None and not is_database_url(kb_url):
        raise typer.BadParameter("not a postgresql:// URL", param_hint="--kb-url")
    return kb_url or kb or default_kb_dir()


def _open(kb: Path | None, kb_url: str | None, index: str | None = None,
          readonly: bool = False, embedder: TextEncoder | None = None):
    from retrieval.backends import open_knowledge_base
    from retrieval.knowledge_base import KBSettings

    return open_knowledge_base(_location(kb, kb_url), embedder, KBSettings(index=index),
                               readonly)


@app.command("build")
def build(
    source: str = typer.Option("default", help="What to build from: default (countries, "
                               "elements, US states from their data packages)"),
    kb: Path = KB_OPTION,
    kb_url: str = KB_URL_OPTION,
    index: str = INDEX_OPTION,
) -> None:
    """Build (or bring up to date) a knowledge base from a built-in source."""
    from retrieval.default_kb import SOURCES, build_default, default_documents
    from retrieval.embedder import Embedder
    from retrieval.knowledge_base import KBSettings

    if source not in SOURCES:
        raise typer.BadParameter(f"unknown source {source!r}; choose one of {SOURCES}")
    embedder = Embedder()
    with _progress() as bar:
        task = bar.add_task("embedding documents", total=len(default_documents()))
        stats = build_default(_location(kb, kb_url), embedder=embedder,
                              settings=KBSettings(index=index),
                              progress=lambda n: bar.advance(task, n))
    if "path" in stats:  # a database's replicas fit the router at start (service/app.py)
        _fit_router(Path(stats["path"]), embedder)
    console.print(f"{stats['documents']} documents, {stats['chunks']} chunks")
    typer.echo(stats.get("path") or stats["url"])


def _fit_router(path: Path, embedder: TextEncoder) -> None:
    """Fit the service's router once, beside the knowledge base, so `serve` only loads it."""
    from service.routing.router import ROUTER_FILE, load_or_fit_router

    with console.status("fitting the router…"):
        load_or_fit_router(path, embedder)
    console.print(f"router: {path / ROUTER_FILE}")


@app.command("add")
def add(
    paths: list[Path] = typer.Argument(
        ..., help=".txt, .md, .html, .pdf or .jsonl (id/text/metadata) files"),
    kb: Path = KB_OPTION,
    kb_url: str = KB_URL_OPTION,
    index: str = INDEX_OPTION,
    fmt: str = typer.Option(
        None, "--format", help="Read every file as text, markdown, html or pdf "
        "[default: by extension]"),
) -> None:
    """Add or replace documents from files (directories are searched for such files).

    A .jsonl file holds one document per line; any other file is split by its structure
    (headings, paragraphs, PDF pages) into documents `<path>#<n>` that record where they lie.
    """
    from retrieval.formats import FORMATS, drop_sections, section_id, sections_held
    from retrieval.sources import expand, read_documents

    if fmt is not None and fmt not in FORMATS:
        raise typer.BadParameter(f"{fmt!r} is not one of {', '.join(FORMATS)}",
                                 param_hint="--format")
    files = expand(paths)
    documents = [d for f in files for d in read_documents(f, fmt)]
    parts = {d.metadata["file_id"]: d.metadata["sections"] for d in documents
             if isinstance(d.metadata, dict)
             and d.id == section_id(str(d.metadata.get("file_id")), d.metadata.get("section"))}
    with _open(kb, kb_url, index) as base, _progress() as bar:
        held = {file_id: sections_held(base, file_id) for file_id in parts}
        task = bar.add_task("adding documents", total=len(documents))
        for start in range(0, len(documents), 128):
            chunk = documents[start : start + 128]
            for doc_id, n_chunks in base.upsert(chunk):
                typer.echo(f"{doc_id}\t{n_chunks} chunks")
            bar.advance(task, len(chunk))
        for file_id, count in parts.items():  # a shorter new version: its old tail goes
            drop_sections(base, file_id, count, held[file_id])
    if base.path is not None:
        _fit_router(base.path, base.embedder)


@app.command("search")
def search(
    query: str = typer.Argument(..., help="The question or keywords"),
    k: int = typer.Option(5, min=1, help="How many chunks"),
    mode: str = typer.Option("hybrid", help="dense, bm25 or hybrid"),
    filter_: list[str] = typer.Option(
        None, "--filter", help="key=value, or key=v1,v2 for any of; repeat to AND"),
    kb: Path = KB_OPTION,
    kb_url: str = KB_URL_OPTION,
    as_json: bool = typer.Option(False, "--json", help="Print hits as JSON lines"),
) -> None:
    """Search the knowledge base."""
    filters: dict[str, object] = {}
    for item in filter_ or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise typer.BadParameter(f"--filter {item!r} is not key=value")
        filters[key] = value.split(",") if "," in value else value
    with _open(kb, kb_url, readonly=True) as base:
        hits = base.search(query, k=k, mode=mode, filters=filters or None)
    for hit in hits:
        if as_json:
            typer.echo(json.dumps({"chunk_id": hit.chunk_id, "document_id": hit.document_id,
                                   "score": hit.score, "text": hit.text,
                                   "metadata": hit.metadata}))
        else:
            typer.echo(f"{hit.score:.4f}\t{hit.document_id}\t{hit.text[:200]}")


@app.command("delete")
def delete(doc_id: str = typer.Argument(..., help="Document id"), kb: Path = KB_OPTION,
           kb_url: str = KB_URL_OPTION) -> None:
    """Delete one document and its chunks."""
    with _open(kb, kb_url) as base:
        removed = base.delete(doc_id)
    typer.echo(f"deleted {doc_id} ({removed} chunks)")


@app.command("stats")
def stats(kb: Path = KB_OPTION, kb_url: str = KB_URL_OPTION) -> None:
    """Counts, sizes and settings of a knowledge base, as JSON."""
    with _open(kb, kb_url, readonly=True) as base:
        typer.echo(json.dumps(base.stats(), indent=2))


@app.command("eval")
def evaluate(
    kb: Path = KB_OPTION,
    kb_url: str = KB_URL_OPTION,
    out: Path = typer.Option(None, help="Report directory [default: artifacts/reports]"),
) -> None:
    """recall@1/@5 and MRR per mode and split on the question set from the same facts."""
    from retrieval.embedder import CachedEncoder, Embedder
    from retrieval.evaluation import evaluate, write_report
    from retrieval.knowledge_base import MODES
    from retrieval.questions import question_set

    questions = question_set()
    base = _open(kb, kb_url, readonly=True,
                 embedder=CachedEncoder(Embedder(), max_entries=None))
    with base, _progress() as bar:
        task = bar.add_task("searching", total=len(questions) * len(MODES))
        report = evaluate(base, questions, progress=lambda n: bar.advance(task, n))
    report["kb"] = str(base.path or base.url)
    json_path, md_path = write_report(report, out or artifacts_dir() / "reports")
    typer.echo(md_path.read_text())
    console.print(f"wrote {json_path} and {md_path}")


@app.command("migrate")
def migrate(kb_url: str = typer.Option(..., "--kb-url", envvar="COGCORE_KB_URL",
                                       help="The PostgreSQL knowledge base, postgresql://…")
            ) -> None:
    """Create or upgrade a PostgreSQL knowledge base's schema (a server also does at start)."""
    from retrieval.embedder import Embedder
    from retrieval.postgres.knowledge_base import migrate_database
    from retrieval.postgres.schema import LATEST

    before, applied = migrate_database(str(_location(None, kb_url)), Embedder().dim)
    done = f"applied {', '.join(map(str, applied))}" if applied else "nothing to apply"
    typer.echo(f"schema version {before} -> {LATEST}: {done}")


@app.command("snapshot")
def snapshot(out: Path = typer.Option(..., "--out", help="The snapshot directory (new)"),
             kb: Path = KB_OPTION, kb_url: str = KB_URL_OPTION) -> None:
    """Write a consistent copy of a knowledge base while writers go on (docs/scale-out.md)."""
    from retrieval.snapshot import snapshot as take

    manifest = take(_location(kb, kb_url), out)
    console.print(f"{manifest['documents']} documents, {manifest['chunks']} chunks "
                  f"({manifest['backend']}, schema {manifest['schema_version']})")
    typer.echo(out)


@app.command("restore")
def restore(path: Path = typer.Argument(..., help="A directory `kb snapshot` wrote"),
            kb: Path = KB_OPTION, kb_url: str = KB_URL_OPTION,
            force: bool = typer.Option(False, "--force", help="Replace the documents a "
                                       "non-empty knowledge base holds")) -> None:
    """Restore a snapshot into an empty knowledge base (either backend)."""
    from retrieval.snapshot import restore as put

    location = _location(kb, kb_url)
    manifest = put(path, location, force)
    console.print(f"{manifest['documents']} documents, {manifest['chunks']} chunks restored")
    typer.echo(location)
