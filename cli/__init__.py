"""The `cogcore` command: one entry point, one sub-command per job.

The command line sits on top of every package and imports downward only: each module here
parses one job's options and calls the package that does the work. Heavy imports (torch,
transformers, faiss) happen inside the commands so that `cogcore --help` stays instant.
"""

from __future__ import annotations

import sys

import typer
from rich.console import Console

from cli import base, evaluate, export, kb, loadtest, prune, serve
from cogcore.errors import CogcoreError

app = typer.Typer(
    name="cogcore",
    help="Cognitive Core: a pruned language model served with retrieval.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(base.app, name="base")
app.add_typer(prune.app, name="prune")
app.command("generate")(base.generate)
app.command("eval")(evaluate.evaluate)
app.command("serve")(serve.serve)
app.command("loadtest")(loadtest.loadtest)
app.add_typer(kb.app, name="kb")
app.add_typer(export.app, name="export")


def main() -> None:
    """Run the command line; domain errors become one line on stderr and exit status 1."""
    try:
        app()
    except CogcoreError as exc:
        Console(stderr=True).print(f"[bold red]error:[/] {exc}", highlight=False)
        sys.exit(1)
