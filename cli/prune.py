"""`cogcore prune ...` and `cogcore prune sweep`: build a cognitive core, or compare methods."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from cogcore.errors import CogcoreError
from cogcore.paths import artifacts_dir, default_base_dir, default_core_dir
from pruning.methods import describe_methods, parse_method, sweep_methods

console = Console(stderr=True)
app = typer.Typer(help="Prune fact-memorizing MLP neurons into a compact cognitive core.")
EVAL_CHOICES = ("full", "medium", "quick", "none")


class PruneCliError(CogcoreError):
    """Bad command-line arguments for pruning."""


def _width(base: Path, width: int | None, sparsity: float | None) -> int | None:
    from transformers import AutoConfig

    from cogcore.checkpoint import validate_checkpoint

    validate_checkpoint(base)
    full = int(AutoConfig.from_pretrained(base, local_files_only=True).intermediate_size)
    if width is not None and sparsity is not None:
        raise PruneCliError("give --width or --sparsity, not both")
    if sparsity is not None:
        if not 0.0 <= sparsity < 1.0:
            raise PruneCliError(f"--sparsity {sparsity} is outside [0, 1)")
        return max(1, round(full * (1.0 - sparsity)))
    return width


def _check_vocab(base: Path, vocab_size: int | None, selection: str) -> None:
    """Refuse a vocabulary size the base's tokenizer cannot be trimmed to, before any work."""
    if vocab_size is None:
        return
    from transformers import AutoTokenizer

    from pruning.vocab import check_size

    check_size(AutoTokenizer.from_pretrained(base, local_files_only=True), vocab_size, selection)


def _settings(base: Path, device: str, count: int, evaluation: str):  # noqa: ANN202
    from evaluation.suites import FULL, QUICK, Sizes
    from pruning.runs import RunSettings, pick_device

    if evaluation not in EVAL_CHOICES:
        raise PruneCliError(f"--eval must be one of {EVAL_CHOICES}")
    # medium: enough items to separate methods, small enough for a sweep of many runs.
    medium = Sizes(calibration=100, heldout=200, reading=120, reasoning=40, perplexity_windows=4)
    sizes = {"full": FULL, "medium": medium, "quick": QUICK, "none": None}[evaluation]
    return RunSettings(base, pick_device(device), count, sizes)


def _config(method: str, width: int | None, **options: object):  # noqa: ANN202
    from pruning.kfac import KfacConfig
    from pruning.pipeline import PruneConfig
    from pruning.scoring import ContrastiveConfig

    contrastive = ContrastiveConfig(
        attribution=options["attribution"], combine=options["combine"],
        retain_reduce=options["retain_reduce"],
    )
    return PruneConfig(
        method=method, width=width, seed=options["seed"], refit=options["refit"],
        refit_prose_chars=options["refit_prose_chars"], refit_target=options["refit_target"],
        heal_steps=options["heal_steps"],
        heal_lr=options["heal_lr"],
        adapt_embeddings_steps=options["adapt_embeddings_steps"],
        heal_reading_steps=options["heal_reading_steps"],
        heal_reading_lr=options["heal_reading_lr"],
        heal_reading_share=options["heal_reading_share"],
        heal_reading_batch=options["heal_reading_batch"],
        heal_reading_everyday=options["heal_reading_everyday"],
        everyday_prose=options["everyday_prose"],
        vocab_size=options["vocab_size"], vocab_selection=options["vocab_selection"],
        contrastive=contrastive,
        kfac=KfacConfig(kept_mass=options["kfac_mass"], layers=options["kfac_layers"],
                        projections=options["kfac_projections"]),
    )


def _layers(text: str) -> tuple[int, ...] | None:
    """'all', or layer indices and ranges: '26-29' or '0,2,24-29'."""
    if text.strip() == "all":
        return None
    layers: list[int] = []
    try:
        for part in (p.strip() for p in text.split(",") if p.strip()):
            first, _, last = part.partition("-")
            layers.extend(range(int(first), int(last or first) + 1))
    except ValueError as exc:
        raise PruneCliError(f"--kfac-layers takes 'all' or indices and ranges like 24-29, "
                            f"not {text!r}") from exc
    if not layers:
        raise PruneCliError("--kfac-layers names no layer")
    return tuple(sorted(set(layers)))


def _projections(text: str) -> tuple[str, ...]:
    """Projection names, with or without the `_proj` suffix: 'gate,up,down'."""
    names = [p.strip() for p in text.split(",") if p.strip()]
    return tuple(n if n.endswith("_proj") else f"{n}_proj" for n in names)


@app.callback(invoke_without_command=True)
def prune_command(
    ctx: typer.Context,
    base: Path = typer.Option(None, help="Base checkpoint [default: the imported base]"),
    method: str = typer.Option("contrastive", help=f"The method: {describe_methods()}"),
    width: int = typer.Option(None, help="Neurons kept in every MLP"),
    sparsity: float = typer.Option(None, help="Fraction of every MLP's neurons removed"),
    heal_steps: int = typer.Option(0, min=0, help="Distillation steps after the refit"),
    heal_lr: float = typer.Option(5e-5, min=0.0, help="Distillation learning rate (AdamW)"),
    adapt_embeddings_steps: int = typer.Option(
        0, min=0, help="After the vocabulary trim: distillation steps of the embedding matrix "
        "alone, the base reading its own tokens (docs/core-report.md)"),
    heal_reading_steps: int = typer.Option(
        0, min=0, help="Last: distillation steps of every parameter from the base reading its "
        "own tokens, on prose and the retain sets' answers (pruning/reading_heal.py)"),
    heal_reading_lr: float = typer.Option(5e-5, min=0.0, help="Its learning rate (AdamW)"),
    heal_reading_share: float = typer.Option(
        0.5, min=0.0, max=1.0, help="Its share of steps on the retain sets' answers (0: prose "
        "only)"),
    heal_reading_batch: int = typer.Option(
        4, min=1, help="Its prose windows or retain examples per step (retain batches mix "
        "every set)"),
    everyday_prose: bool = typer.Option(
        False, help="The base's everyday samples (pruning/everyday.py) join the cut as a retain "
        "set and half the refit's prose"),
    heal_reading_everyday: float = typer.Option(
        0.0, min=0.0, max=1.0, help="Its share of prose windows from everyday prose sampled "
        "from the base (pruning/everyday.py) rather than the docstring corpus"),
    vocab_size: int = typer.Option(None, help="Keep only the most frequent tokens (trim)"),
    vocab_selection: str = typer.Option("use", help="How the trim picks its tokens: use (the "
                                        "committed keep-set, knowledge-base names kept), prose "
                                        "(names rare in prose re-split) or rank (BPE merge "
                                        "rank)"),
    refit: bool = typer.Option(True, help="Least-squares refit of the kept down_proj"),
    refit_prose_chars: int = typer.Option(0, min=0, help="Characters of general prose the "
                                          "refit also reproduces the base on"),
    refit_target: str = typer.Option("mlp", help="What each refitted MLP reproduces: mlp (the "
                                     "base MLP on the core's inputs) or residual (the base's "
                                     "stream after the layer: drift corrected)"),
    attribution: str = typer.Option("grad_x_act", help="grad_x_act or activation"),
    combine: str = typer.Option("ratio", help="ratio or difference (fact vs retain)"),
    retain_reduce: str = typer.Option("mean", help="mean or max over the retain sets"),
    kfac_mass: float = typer.Option(0.8, help="Curvature mass the K-FAC edit keeps"),
    kfac_layers: str = typer.Option("all", help="Layers the K-FAC edit touches: all, or 24-29"),
    kfac_projections: str = typer.Option("gate,up,down", help="MLP projections K-FAC edits"),
    calibration: int = typer.Option(64, min=1, help="Examples per calibration set"),
    evaluation: str = typer.Option("full", "--eval", help="full, medium, quick or none"),
    device: str = typer.Option("auto", help="auto, cpu or cuda"),
    seed: int = typer.Option(0, help="Seed of the random control"),
    out: Path = typer.Option(None, help="Core checkpoint directory [default: artifacts/core/…]"),
) -> None:
    """Prune the base into a core checkpoint with core_report.json/md beside it."""
    if ctx.invoked_subcommand is not None:
        return
    from pruning.runs import prune_job

    parse_method(method)  # an unknown name fails before the checkpoint is read
    base = base or default_base_dir()
    _check_vocab(base, vocab_size, vocab_selection)
    cfg = _config(method, _width(base, width, sparsity), seed=seed, refit=refit,
                  refit_prose_chars=refit_prose_chars, refit_target=refit_target,
                  heal_steps=heal_steps, heal_lr=heal_lr,
                  adapt_embeddings_steps=adapt_embeddings_steps,
                  heal_reading_steps=heal_reading_steps, heal_reading_lr=heal_reading_lr,
                  heal_reading_share=heal_reading_share,
                  heal_reading_batch=heal_reading_batch,
                  heal_reading_everyday=heal_reading_everyday,
                  everyday_prose=everyday_prose, vocab_size=vocab_size,
                  vocab_selection=vocab_selection,
                  attribution=attribution, combine=combine,
                  retain_reduce=retain_reduce, kfac_mass=kfac_mass,
                  kfac_layers=_layers(kfac_layers), kfac_projections=_projections(kfac_projections))
    target = out or default_core_dir()
    report = prune_job(_settings(base, device, calibration, evaluation), cfg, target)
    params = report["params"]
    console.print(f"core: {params['core'] / 1e6:.1f}M parameters ({params['ratio']:.0%} of base)")
    typer.echo(str(target))


def _floats(text: str) -> list[float]:
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError as exc:
        raise PruneCliError(f"not a comma-separated list of numbers: {text!r}") from exc


def _cutting(methods: str) -> list[str]:
    """The `--methods` of a sweep, each checked to name a method that cuts neurons."""
    names = [m.strip() for m in methods.split(",") if m.strip()]
    for name in names:
        if parse_method(name).scorer is None:
            # Edit-only runs have no width to sweep; --kfac-masses makes them.
            raise PruneCliError(f"--methods takes methods that cut; {name} only edits")
    return names


@app.command("sweep")
def sweep_command(
    base: Path = typer.Option(None, help="Base checkpoint [default: the imported base]"),
    methods: str = typer.Option(",".join(sweep_methods()), help="Comma-separated methods "
                                f"that cut neurons: {describe_methods(cutting_only=True)}"),
    sparsities: str = typer.Option("0.35,0.5", help="Comma-separated fractions removed"),
    kfac_masses: str = typer.Option("0.9,0.7", help="Kept masses of edit-only kfac runs"),
    kfac_layers: str = typer.Option("all", help="Layers every K-FAC run edits: all, or e.g. 24-29"),
    kfac_projections: str = typer.Option("gate,up,down", help="MLP projections K-FAC edits"),
    heal_steps: str = typer.Option("0", help="Distillation steps after each refit; a "
                                   "comma-separated list makes each value a run"),
    heal_lr: float = typer.Option(5e-5, min=0.0, help="Distillation learning rate (AdamW)"),
    vocab_size: int = typer.Option(None, help="Keep only the most frequent tokens (trim)"),
    vocab_selection: str = typer.Option("use", help="use, prose (committed keep-sets) or rank"),
    refit_prose_chars: int = typer.Option(0, min=0, help="Characters of general prose every "
                                          "refit also reproduces the base on"),
    retain_reduce: str = typer.Option("mean", help="mean or max over the retain sets"),
    calibration: int = typer.Option(64, min=1, help="Examples per calibration set"),
    evaluation: str = typer.Option("full", "--eval", help="full, medium or quick"),
    device: str = typer.Option("auto", help="auto, cpu or cuda"),
    out: Path = typer.Option(None, help="Output directory [default: artifacts/sweep]"),
) -> None:
    """Methods x sizes (controls included): sweep.json/md and a recall-vs-reading plot."""
    from pruning.runs import sweep_job

    cutting = _cutting(methods)
    base = base or default_base_dir()
    _check_vocab(base, vocab_size, vocab_selection)
    steps = _floats(heal_steps)
    if any(h < 0 or h != int(h) for h in steps):
        raise PruneCliError(f"--heal-steps takes whole numbers of steps, not {heal_steps!r}")
    heals = [int(h) for h in steps] or [0]
    defaults = {"seed": 0, "refit": True, "refit_prose_chars": refit_prose_chars,
                "refit_target": "mlp",
                "heal_steps": 0, "heal_lr": heal_lr, "adapt_embeddings_steps": 0,
                "heal_reading_steps": 0, "heal_reading_lr": 5e-5, "heal_reading_share": 0.5,
                "heal_reading_batch": 4, "heal_reading_everyday": 0.0,
                "everyday_prose": False,
                "vocab_size": vocab_size,
                "vocab_selection": vocab_selection,
                "attribution": "grad_x_act",
                "combine": "ratio", "retain_reduce": retain_reduce, "kfac_mass": 0.8,
                "kfac_layers": _layers(kfac_layers),
                "kfac_projections": _projections(kfac_projections)}
    runs = []
    for sparsity in _floats(sparsities):
        width = _width(base, None, sparsity)
        for heal in heals:
            for method in cutting:
                label = f"s={sparsity:g}" + (f" heal={heal}" if heal else "")
                runs.append((label, _config(method, width, **{**defaults, "heal_steps": heal})))
    where = "" if kfac_layers.strip() == "all" else f" layers={kfac_layers.strip()}"
    for mass in _floats(kfac_masses):
        runs.append((f"mass={mass:g}{where}",
                     _config("kfac", None, **{**defaults, "kfac_mass": mass})))
    settings = _settings(base, device, calibration, evaluation)
    target = out or artifacts_dir() / "sweep"
    sweep_job(settings, runs, target)
    typer.echo(str(target))


@app.command("default")
def default_command(
    base: Path = typer.Option(None, help="Base checkpoint [default: the imported base]"),
    out: Path = typer.Option(None, help="Core directory [default: artifacts/core/default]"),
    evaluation: str = typer.Option("none", "--eval", help="none, quick, medium or full"),
    device: str = typer.Option("auto", help="auto, cpu or cuda"),
    force: bool = typer.Option(False, help="Build again even if the core is current"),
) -> None:
    """Build the default core (what `make serve` serves) unless it is already current."""
    from pruning.default_core import DEFAULT_CALIBRATION, build_default_core

    base = base or default_base_dir()
    target = out or default_core_dir()
    settings = _settings(base, device, DEFAULT_CALIBRATION, evaluation)
    if not build_default_core(settings, target, force=force):
        console.print(f"{target} is current (same base and recipe): nothing to do")
    typer.echo(str(target))
