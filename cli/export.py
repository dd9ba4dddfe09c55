"""`cogcore export ...`: write a checkpoint in another runtime's format (GGUF for llama.cpp)."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

import typer
from rich.console import Console

from cogcore.paths import default_core_dir

console = Console(stderr=True)
app = typer.Typer(help="Export a checkpoint for other runtimes.", no_args_is_help=True)


class GGUFType(StrEnum):
    """The GGUF precisions the export writes (q4_k_m needs the llama.cpp extra)."""

    f32 = "f32"
    f16 = "f16"
    q8_0 = "q8_0"
    q4_k_m = "q4_k_m"


@app.command("gguf")
def gguf(
    out: Path = typer.Option(..., help="The GGUF file to write"),
    model: Path = typer.Option(None, help="Checkpoint directory (default: the default core)"),
    out_type: GGUFType = typer.Option(
        GGUFType.f32, "--type",
        help="f32 is exact; q8_0 is the CPU pick; q4_k_m needs `make llamacpp`",
    ),
) -> None:
    """Write a checkpoint (base or core, trimmed vocabulary included) as one GGUF for llama.cpp."""
    from cogcore.gguf_export import export_gguf

    source = model or default_core_dir()
    with console.status(f"exporting {source} to GGUF ({out_type.value})…"):
        result = export_gguf(source, out, out_type.value)
    console.print(f"wrote {result.describe()}", highlight=False)
    typer.echo(str(result.path))
