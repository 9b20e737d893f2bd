"""`tledge demo`: generate a dataset, train, export and classify, end to end."""

from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.option(
    "--output",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("tledge-demo"),
    show_default=True,
    help="Folder for the generated data, the run and the models (the demo run is replaced).",
)
@click.option("--images-per-class", type=click.IntRange(8), default=60, show_default=True)
@click.option("--epochs", type=click.IntRange(1), default=5, show_default=True)
@click.option("--fine-tune-epochs", type=click.IntRange(0), default=10, show_default=True)
def demo(output: Path, images_per_class: int, epochs: int, fine_tune_epochs: int) -> None:
    """Run the whole pipeline on a small generated dataset (a few minutes on 2 CPU cores).

    Draws 4 classes of shapes, trains MobileNetV2 (ImageNet weights when they can be
    downloaded, else random init), exports fp32 and int8 TFLite with the accuracy-drift
    check, then classifies the test images with the edge client.

    \b
    Example:
        tledge demo --output /tmp/tledge-demo
    """
    from tledge.demo import run_demo

    result = run_demo(
        output,
        images_per_class=images_per_class,
        epochs=epochs,
        fine_tune_epochs=fine_tune_epochs,
        log=lambda message: click.echo(f"  {message}", err=True),
    )
    metrics = result.training.metrics
    click.echo(f"run folder:       {result.training.run.root}")
    click.echo(f"weights:          {result.weights}")
    phase1 = metrics.get("feature_extraction_test_accuracy")
    if phase1 is not None:
        click.echo(f"test accuracy:    {phase1:.1%} after feature extraction")
    click.echo(f"test accuracy:    {metrics['test_accuracy']:.1%} final Keras model")
    for variant in result.export.variants:
        status = "ok" if variant.accepted else "REJECTED: " + "; ".join(variant.problems)
        click.echo(
            f"{variant.variant:>5} tflite:     {variant.drift.accuracy:.1%} vs Keras "
            f"{result.export.keras_accuracy:.1%} on the same images (drift "
            f"{variant.drift.top1_drift_pp:+.1f} pp, {variant.size_bytes / 1e6:.2f} MB) "
            f"{variant.path.name} {status}"
        )
    click.echo(
        f"edge client:      {result.edge_accuracy:.1%} on the test images with the int8 model, "
        f"{result.edge_invoke_ms:.1f} ms per image"
    )
    click.echo(f"total time:       {result.seconds:.0f} s")
    click.echo(
        f"next: tledge edge {result.edge_model} "
        f"--source {result.data / 'test' / 'circle'} --no-display --jsonl -"
    )
