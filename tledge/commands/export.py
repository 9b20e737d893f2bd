"""`tledge export`: TFLite fp32 / fp16 / dynamic / int8 files with an accuracy-drift gate."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from tledge.commands.progress import ProgressBars
from tledge.core.errors import TledgeError
from tledge.edge.contract import MAX_GOLDEN_EXAMPLES
from tledge.exporter import defaults


@click.command()
@click.argument("source", type=click.Path(exists=True, path_type=Path))
@click.option("--fp32", is_flag=True, help="Float32 model (reference, largest).")
@click.option("--fp16", is_flag=True, help="Float16 weights (half size, float compute).")
@click.option("--dynamic", is_flag=True, help="Int8 weights, float activations.")
@click.option("--int8", is_flag=True, help="Full integer model (default when no variant given).")
@click.option("--all", "all_variants", is_flag=True, help="Every variant.")
@click.option(
    "--io-type",
    type=click.Choice(defaults.IO_TYPES),
    default=defaults.IO_TYPE,
    show_default=True,
    help="Input/output dtype of the int8 model.",
)
@click.option(
    "--labels",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="labels.txt for a bare .keras file (a run folder has its own).",
)
@click.option(
    "--calibration-data",
    type=click.Path(file_okay=False, path_type=Path),
    help="Class-per-folder images for int8 calibration [default: the run's training data].",
)
@click.option(
    "--calibration-size",
    default=defaults.CALIBRATION_SIZE,
    show_default=True,
    type=int,
    help="Calibration images, class-balanced (fewer when the data has fewer).",
)
@click.option(
    "--eval-data",
    type=click.Path(file_okay=False, path_type=Path),
    help="Class-per-folder held-out images for the drift check [default: the run's test set].",
)
@click.option(
    "--max-drift",
    default=defaults.MAX_DRIFT_PP,
    show_default=True,
    type=float,
    help="Largest top-1 accuracy drop against Keras, in percentage points; a variant "
    "above it is written as model_<variant>.rejected.tflite and the command fails.",
)
@click.option(
    "--min-agreement",
    default=100 * defaults.MIN_AGREEMENT,
    show_default=True,
    type=float,
    help="Smallest share of held-out images, in percent, on which a variant must pick the "
    "same class as Keras; 0 turns the check off.",
)
@click.option(
    "--allow-float-ops", is_flag=True, help="Accept an int8 model in which some ops stay float."
)
@click.option(
    "--int8-rounding",
    default=defaults.INT8_ROUNDING,
    show_default=True,
    type=click.Choice(defaults.INT8_ROUNDINGS),
    help="int8 weights: gptq rounds with error feedback and cancels the mean shift; "
    "nearest-corrected only cancels the shift; nearest is the converter's own rounding.",
)
@click.option(
    "--output",
    type=click.Path(file_okay=False, path_type=Path),
    help="Output folder [default: RUN/export, or export/ beside a .keras file].",
)
@click.option(
    "--seed", default=defaults.SEED, show_default=True, help="Seed of the calibration draw."
)
@click.option("--threads", type=int, help="Interpreter threads while evaluating.")
@click.option(
    "--self-test-images",
    default=defaults.SELF_TEST_IMAGES,
    show_default=True,
    type=click.IntRange(0, MAX_GOLDEN_EXAMPLES),
    help="Held-out images embedded in each file with its answers, which `tledge edge "
    "--model-dir` re-runs before swapping the file in (about 0.1 MB each at 256 px); 0: none.",
)
@click.option(
    "--check-python",
    "check_pythons",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Python of another environment (e.g. a venv with tflite-runtime and numpy<2, "
    "like the Pi's) that must also load and run every file; repeatable.",
)
def export(
    source: Path,
    fp32: bool,
    fp16: bool,
    dynamic: bool,
    int8: bool,
    all_variants: bool,
    io_type: str,
    labels: Path | None,
    calibration_data: Path | None,
    calibration_size: int,
    eval_data: Path | None,
    max_drift: float,
    min_agreement: float,
    allow_float_ops: bool,
    int8_rounding: str,
    output: Path | None,
    seed: int,
    threads: int | None,
    self_test_images: int,
    check_pythons: tuple[Path, ...],
) -> None:
    """Convert a trained run (or a .keras file) to TFLite and check the accuracy cost.

    SOURCE is a run folder (runs/<name>) or a .keras file with --labels. Each written
    .tflite carries its labels and preprocessing; export/drift.json reports accuracy,
    agreement with Keras and per-class change for every variant.

    Example: tledge export runs/food --all
    """
    from tledge.exporter.export import ExportOptions, export_model

    chosen = dict(zip(defaults.VARIANTS, (fp32, fp16, dynamic, int8), strict=True))
    variants = (
        defaults.VARIANTS if all_variants else tuple(v for v in defaults.VARIANTS if chosen[v])
    )
    options = ExportOptions(
        variants=variants or ("int8",),
        io_type=io_type,
        calibration_size=calibration_size,
        max_drift_pp=max_drift,
        min_agreement=min_agreement / 100,
        allow_float_ops=allow_float_ops,
        int8_rounding=int8_rounding,
        seed=seed,
        num_threads=threads,
        check_pythons=tuple(str(python) for python in check_pythons),
        self_test_images=self_test_images,
    )
    bars = ProgressBars()
    try:
        result = export_model(
            source,
            options,
            labels_file=labels,
            calibration_data=calibration_data,
            eval_data=eval_data,
            output_dir=output,
            on_progress=bars,
        )
    finally:
        bars.close()
    click.echo(format_table(result))
    for warning in result.warnings:
        click.echo(f"Warning: {warning}", err=True)
    if result.rejected:
        reasons = "; ".join(
            f"{v.variant}: {', '.join(v.problems)} -> {v.path.name}" for v in result.rejected
        )
        raise TledgeError(f"rejected {reasons}")


def format_table(result: Any) -> str:
    """The drift table and the int8 graph summary of an `ExportResult`."""
    lines = [
        f"{'model':<8} {'size':>9} {'top-1':>7} {'drift pp':>9} {'agree':>7} "
        f"{'mean|dp|':>9}  {'runtimes':<22} file",
        f"{'keras':<8} {'':>9} {100 * result.keras_accuracy:>6.1f}% {'':>9} {'':>7} {'':>9}",
    ]
    for variant in result.variants:
        drift = variant.drift
        runtimes = ",".join(name for name, ok in variant.runtimes.items() if ok) or "none"
        lines.append(
            f"{variant.variant:<8} {_size(variant.size_bytes):>9} {100 * drift.accuracy:>6.1f}% "
            f"{drift.top1_drift_pp:>+9.2f} {100 * drift.agreement:>6.1f}% "
            f"{drift.mean_abs_prob_diff:>9.4f}  {runtimes:<22} {variant.path}"
        )
    lines.append(f"held-out images: {result.num_images}")
    if result.calibration_images:
        lines.append(f"int8 calibration images: {result.calibration_images}")
    if result.float32_twin:
        lines.append("mixed-precision model: converted from its float32 twin")
    for variant in result.variants:
        if variant.variant == "int8":
            kind = "full integer" if variant.graph.is_full_integer else "NOT full integer"
            ops = ", ".join(f"{name} {count}" for name, count in variant.graph.op_counts.items())
            lines.append(f"int8 graph: {kind}; ops: {ops}")
    lines.append(f"report: {result.drift_file}")
    return "\n".join(lines)


def _size(size_bytes: int) -> str:
    # Decimal units, as `tledge bench` and the README report sizes.
    if size_bytes >= 1_000_000:
        return f"{size_bytes / 1e6:.2f} MB"
    return f"{size_bytes / 1e3:.1f} kB"
