"""The scale benchmark's table, notes and plot."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tledge.analysis.plots import new_figure, save_figure
from tledge.benchmarks.report import markdown_table

TARGET_TEXT = {
    "rss_growth": "peak RSS growth, top size vs reference (target <= +15 %)",
    "feature_extraction_rate_ratio": "phase 1 images/s, top size / reference (target >= 0.85)",
    "fine_tuning_rate_ratio": "phase 2 images/s, top size / reference (target >= 0.85)",
    "feature_extraction_cpu_rate_ratio": "phase 1 images per CPU-second, top size / reference "
    "(the same target, load-independent)",
    "fine_tuning_cpu_rate_ratio": "phase 2 images per CPU-second, top size / reference "
    "(the same target, load-independent)",
    "parallel_check_speedup": "image check, all cores vs one core (target >= 1.7x)",
    "rerun_speedup_min": "image check re-run vs first run, lowest over sizes (target >= 20x)",
}


def scale_table(section: dict[str, Any]) -> str:
    """Markdown table of the scale benchmark: one row per dataset size."""
    headers = ["images", "classes", "check first s", "check re-run s", "re-run speed-up"]
    headers += ["phase 1 img/s", "phase 2 img/s", "phase 1 img/CPU-s", "phase 2 img/CPU-s"]
    headers += ["peak RSS MiB", "cache disk MiB"]
    body = []
    for row in section["sizes"]:
        train = row.get("train", {})
        rates = train.get("images_per_second", {})
        cpu_rates = train.get("images_per_cpu_second", {})
        speedup = row["check_first_seconds"] / max(row["check_rerun_seconds"], 1e-6)
        body.append(
            [
                row["images"],
                row["classes"],
                row["check_first_seconds"],
                row["check_rerun_seconds"],
                f"{speedup:.0f}x",
                rates.get("feature_extraction"),
                rates.get("fine_tuning"),
                cpu_rates.get("feature_extraction"),
                cpu_rates.get("fine_tuning"),
                train.get("peak_rss_mib"),
                train.get("cache_disk_mib"),
            ]
        )
    table = markdown_table(headers, body)
    for row in section["sizes"]:
        if "check_one_core_seconds" in row:
            one, every = row["check_one_core_seconds"], row["check_all_cores_seconds"]
            table += (
                f"\n\nImage check of the {row['images']} files (fastest of "
                f"{len(row.get('check_one_core_all_seconds', [one]))}): one core {one} s, all "
                f"cores {every} s ({one / every:.2f}x)"
            )
            if "check_one_core_cpu_seconds" in row:
                table += (
                    f"; CPU seconds {row['check_one_core_cpu_seconds']} and "
                    f"{row['check_all_cores_cpu_seconds']}"
                )
            if "check_independent_seconds" in row:
                alone = row["check_independent_seconds"]
                table += (
                    f"; {row['check_independent_processes']} independent one-core processes "
                    f"side by side, each on its share, started before timing: {alone} s "
                    f"({one / alone:.2f}x, for reference)"
                )
            table += "."
    return table


SCALE_SECTION = {
    "scale": ("Scale: check, training speed, memory and disk against dataset size", scale_table)
}


def scale_notes(section: dict[str, Any]) -> list[str]:
    """What each number means, the targets as measured, and the load while measuring."""
    notes = [
        "Images/s are steady state: phase 1 is the backbone feature pass over the training "
        "images (the head epoch on cached features is negligible), phase 2 the fine-tuning "
        "epoch; the first and last step of each pass (tracing, pipeline start, a short "
        "last batch) are left out. Phase seconds (in scale.json) are wall time and include "
        "the run's own image check, model building and tracing. Images per CPU-second "
        "count the training process's CPU time (all threads) over the same steps: what "
        "the work costs whatever share of the 2 cores other jobs leave.",
        "Peak RSS is the training process's maximum resident set (/usr/bin/time %M); cache "
        "disk is the run's converted-image/verdict folder plus the feature cache.",
    ]
    for key, found in section["targets"].items():
        if key in TARGET_TEXT:
            verdict = "met" if found["ok"] else "NOT met"
            if "machine_ceiling" in found:
                verdict += (
                    f"; independent one-core processes side by side, for reference: "
                    f"{found['machine_ceiling']}x"
                )
            notes.append(f"{TARGET_TEXT[key]}: {found['value']} ({verdict}).")
    loads = [
        f"{row['images']}: check {row['check_load']['mean']}"
        + (f", training {row['train']['load']['mean']} (max {row['train']['load']['max']})"
           if "train" in row else "")
        for row in section["sizes"]
        if "check_load" in row
    ]  # fmt: skip
    if loads:
        loads_text = "; ".join(loads)
        notes.append(f"Mean 1-minute load average on the 2 cores while measuring: {loads_text}.")
    return notes


def scale_plot(section: dict[str, Any], path: Path) -> Path:
    """Four panels against the number of images: check time, images/s, peak RSS, disk."""
    rows = section["sizes"]
    images = [row["images"] for row in rows]
    trained = [row for row in rows if "train" in row]
    trained_images = [row["images"] for row in trained]
    figure = new_figure(figsize=(16, 3.6))
    axes = figure.subplots(1, 4)
    axes[0].plot(images, [r["check_first_seconds"] for r in rows], "o-", label="first run")
    axes[0].plot(images, [r["check_rerun_seconds"] for r in rows], "o-", label="re-run")
    axes[0].set(title="image check (s)", xscale="log", yscale="log")
    axes[0].legend()
    for phase, label in (("feature_extraction", "phase 1"), ("fine_tuning", "phase 2")):
        rates = [r["train"]["images_per_second"].get(phase) for r in trained]
        axes[1].plot(trained_images, [r or 0 for r in rates], "o-", label=label)
    axes[1].set(title="training images/s (steady)", xscale="log", ylim=(0, None))
    axes[1].legend()
    axes[2].plot(trained_images, [r["train"]["peak_rss_mib"] for r in trained], "o-")
    axes[2].set(title="peak RSS of tledge train (MiB)", xscale="log", ylim=(0, None))
    axes[3].plot(trained_images, [r["train"]["cache_disk_mib"] for r in trained], "o-")
    axes[3].set(title="cache disk (MiB)", xscale="log")
    for axis in axes:
        axis.set_xlabel("images")
        axis.grid(alpha=0.3)
    figure.tight_layout()
    return save_figure(figure, path, dpi=110)
