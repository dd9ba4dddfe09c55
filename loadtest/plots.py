"""PNG plots of a load test: latency percentiles and throughput against the load level."""

from __future__ import annotations

from pathlib import Path

from loadtest.metrics import Distribution, LevelMetrics

PANELS = (("TTFT", "ttft_ms"), ("TPOT", "tpot_ms"), ("Inter-token latency", "itl_ms"))


def plot_levels(levels: list[tuple[str, LevelMetrics]], path: Path) -> None:
    """Four panels over the levels: TTFT, TPOT and ITL (median/p90/p99), and throughput."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display on servers or in CI
    import matplotlib.pyplot as plt

    labels = [label for label, _ in levels]
    x = list(range(len(levels)))
    fig, axes = plt.subplots(2, 2, figsize=(11, 7.5))
    for ax, (title, attr) in zip(axes.flat, PANELS, strict=False):
        dists: list[Distribution | None] = [getattr(m, attr) for _, m in levels]
        for stat, style in (("median", "o-"), ("p90", "s--"), ("p99", "^:")):
            ys = [getattr(d, stat) if d else float("nan") for d in dists]
            ax.plot(x, ys, style, label=stat)
        ax.set_title(f"{title} (ms)")
        ax.legend()
    ax = axes.flat[3]
    ax.bar(x, [m.output_throughput for _, m in levels], color="tab:green", label="output tok/s")
    ax.set_title("Throughput")
    ax.set_ylabel("output tokens/s")
    twin = ax.twinx()
    twin.plot(x, [m.request_throughput for _, m in levels], "ko-", label="requests/s")
    if any(m.goodput is not None for _, m in levels):
        twin.plot(x, [m.goodput or 0.0 for _, m in levels], "r^--", label="goodput req/s")
    twin.set_ylabel("requests/s")
    twin.legend(loc="upper left")
    for ax in axes.flat:
        ax.set_xticks(x, labels)
        ax.grid(alpha=0.3)
    fig.suptitle("cogcore loadtest")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
