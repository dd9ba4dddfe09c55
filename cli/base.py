"""`cogcore base ...` and `cogcore generate`: import a base model, smoke-test a checkpoint."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from cogcore.paths import default_base_dir

console = Console(stderr=True)
app = typer.Typer(help="Import the base model that pruning starts from.", no_args_is_help=True)


@app.command("import")
def import_base(
    out: Path = typer.Option(None, help="Checkpoint directory to write [default: artifacts/…]"),
    gguf: Path = typer.Option(None, help="Any local Llama-family GGUF instead of the default"),
    from_dir: Path = typer.Option(
        None, "--from", help="Accept an existing HF checkpoint directory (validated, not copied)"
    ),
    force: bool = typer.Option(False, help="Convert again even if the checkpoint is current"),
) -> None:
    """Turn the embedded SmolLM2-135M-Instruct GGUF into a float safetensors checkpoint."""
    from cogcore.checkpoint import default_gguf_path, import_gguf, validate_checkpoint

    if from_dir is not None:
        if gguf is not None:
            raise typer.BadParameter("--from and --gguf exclude each other")
        console.print(f"valid checkpoint: {validate_checkpoint(from_dir).describe()}")
        typer.echo(str(from_dir))
        return
    source = gguf or default_gguf_path()
    target = out or default_base_dir()
    with console.status(f"converting {source.name} (dequantize, save safetensors)…"):
        info, converted = import_gguf(source, target, force=force)
    verb = "imported" if converted else "already imported, nothing to do:"
    console.print(f"{verb} {info.describe()}")
    typer.echo(str(info.path))


def generate(
    prompt: str = typer.Argument(..., help="The user message"),
    model: Path = typer.Option(None, help="Checkpoint directory [default: the imported base]"),
    system: str = typer.Option(None, help="Optional system message"),
    max_tokens: int = typer.Option(64, min=1, help="Most new tokens to generate"),
    temperature: float = typer.Option(0.0, min=0.0, help="0 means greedy"),
    seed: int = typer.Option(0, help="Sampling seed"),
) -> None:
    """One chat turn through the chat template (greedy by default), for smoke checks."""
    from cogcore.checkpoint import load_causal_lm
    from evaluation.generation import chat_once

    with console.status("loading model…"):
        lm, tokenizer = load_causal_lm(model or default_base_dir())
    reply = chat_once(
        lm, tokenizer, prompt, system=system, max_new_tokens=max_tokens,
        temperature=temperature, seed=seed,
    )
    typer.echo(reply)
