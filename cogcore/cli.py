"""The `cogcore` command: one entry point, one sub-command per job.

Each package owns the module that defines its sub-commands; heavy imports (torch,
transformers, faiss) happen inside the commands so that `cogcore --help` stays instant.
"""

from __future__ import annotations

import sys

import typer
from rich.console import Console

from cogcore.errors import CogcoreError
from pruning import base_cli, eval_cli, prune_cli
from retrieval import kb_cli
from service import cli as service_cli
from service.loadtest import cli as loadtest_cli

app = typer.Typer(
    name="cogcore",
    help="Cognitive Core: a pruned language model served with retrieval.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(base_cli.app, name="base")
app.add_typer(prune_cli.app, name="prune")
app.command("generate")(base_cli.generate)
app.command("eval")(eval_cli.evaluate)
app.command("serve")(service_cli.serve)
app.command("loadtest")(loadtest_cli.loadtest)
app.add_typer(kb_cli.app, name="kb")


def main() -> None:
    """Run the command line; domain errors become one line on stderr and exit status 1."""
    try:
        app()
    except CogcoreError as exc:
        Console(stderr=True).print(f"[bold red]error:[/] {exc}", highlight=False)
        sys.exit(1)
