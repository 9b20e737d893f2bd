"""Scale benchmark: how check time, training speed, memory and cache disk grow with images.

For each size (synthetic photo-like JPEGs from `scale_data`, 10 classes up to 5k images,
101 at 50k):

- image check (`check_images`, the trainer's own): first run on new files, then the
  re-run that finds every verdict remembered; at the first size also one core vs all;
- one `tledge train` process (one short epoch per phase, small input, streaming cache
  by default): images/s per phase from its metrics.json, its peak RSS (/usr/bin/time),
  and the disk its caches use (converted images, verdicts, feature cache).

    nice -n 10 python -m tledge.benchmarks.scale --root /tmp/scale_bench \
        --sizes 1000 5000 20000 50000 --output benchmarks/results/scale
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tledge.benchmarks.machine_info import machine_info
from tledge.benchmarks.scale_data import classes_for, generate_pool, link_size
from tledge.core.atomic import atomic_write_text
from tledge.core.folders import list_class_folders


def folder_bytes(folder: Path) -> int:
    """Bytes of the files under `folder` (0 when it does not exist)."""
    if not folder.exists():
        return 0
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def time_check(files: list[Path], convert_dir: Path, workers: int | None) -> float:
    """Seconds `check_images` takes on `files` with `convert_dir`'s remembered verdicts."""
    from tledge.trainer.validation import check_images

    started = time.perf_counter()
    check_images(files, convert_dir, workers=workers)
    return time.perf_counter() - started


def train_size(folder: Path, output: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Run `tledge train` once on `folder`; return its metrics, peak RSS and cache disk."""
    name = folder.name
    command = [
        sys.executable, "-m", "tledge.cli", "train", "--data", str(folder),
        "--weights", "none", "--alpha", "0.35", "--image-size", str(args.image_size),
        str(args.image_size), "--epochs", "1", "--fine-tune-epochs", "1", "--no-refit",
        "--no-augment", "--patience", "0", "--val-split", str(args.val_split),
        "--batch-size", "32", "--cache", args.cache, "--output", str(output),
        "--name", name, "--overwrite", "--quiet",
    ]  # fmt: skip
    rss_file = output / f"{name}.rss"
    output.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    subprocess.run(["/usr/bin/time", "-f", "%M", "-o", str(rss_file), *command], check=True)
    seconds = time.perf_counter() - started
    run = output / name
    metrics = json.loads((run / "metrics.json").read_text())
    images = len(list_class_folders(folder).paths)
    phases = metrics["phase_seconds"]
    return {
        "wall_seconds": round(seconds, 1),
        "peak_rss_mib": round(int(rss_file.read_text().split()[-1]) / 1024, 1),
        "images_per_second": {phase: round(images / s, 1) for phase, s in phases.items()},
        "phase_seconds": phases,
        "cache_disk_mib": round(
            (folder_bytes(run / "converted") + folder_bytes(output / ".feature_cache")) / 2**20, 1
        ),
    }


def main(argv: list[str] | None = None) -> None:
    """Generate the images, run every size, write scale.json, scale.md and scale.png."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, required=True, help="Scratch folder for images.")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000, 20000, 50000])
    parser.add_argument("--output", type=Path, default=Path("benchmarks/results/scale"))
    parser.add_argument("--image-size", type=int, default=96)
    parser.add_argument("--val-split", type=float, default=0.02)
    parser.add_argument("--cache", default="none", help="--cache of the training runs.")
    parser.add_argument("--side", type=int, default=320, help="Short side of the JPEGs.")
    parser.add_argument(
        "--append", action="store_true", help="Add these sizes to the existing scale.json."
    )
    parser.add_argument(
        "--train-sizes", type=int, nargs="*", help="Sizes that also train (default: all)."
    )
    args = parser.parse_args(argv)
    per_class = max(size // classes_for(size) for size in args.sizes)
    classes = max(classes_for(size) for size in args.sizes)
    started = time.perf_counter()
    generate_pool(args.root / "pool", per_class, args.side, classes=classes)
    print(f"pool of {classes} x {per_class} JPEGs: {time.perf_counter() - started:.0f} s")
    arguments = {key: str(value) for key, value in vars(args).items()}
    results: dict[str, Any] = {"machine": machine_info(), "args": [arguments], "sizes": []}
    if args.append and (args.output / "scale.json").is_file():
        earlier = json.loads((args.output / "scale.json").read_text())
        results["args"] = earlier["args"] + results["args"]
        results["sizes"] = earlier["sizes"]
    for index, size in enumerate(args.sizes):
        folder = link_size(args.root / "pool", args.root / f"n{size}", size)
        files = list(list_class_folders(folder).paths)
        row: dict[str, Any] = {"images": len(files), "classes": classes_for(size)}
        checks = args.root / "checks" / folder.name
        if index == 0:
            sample = files[: min(len(files), 2000)]
            row["check_one_core_seconds"] = round(time_check(sample, checks / "one", 1), 2)
            row["check_all_cores_seconds"] = round(time_check(sample, checks / "all", None), 2)
            row["check_parallel_files"] = len(sample)
        row["check_first_seconds"] = round(time_check(files, checks / "main", None), 2)
        row["check_rerun_seconds"] = round(time_check(files, checks / "main", None), 3)
        row["load_average"] = os.getloadavg()
        print(json.dumps(row), flush=True)
        if args.train_sizes is None or size in args.train_sizes:
            row["train"] = train_size(folder, args.root / "runs", args)
            print(json.dumps(row["train"]), flush=True)
        results["sizes"] = [r for r in results["sizes"] if r["images"] != row["images"]] + [row]
        results["sizes"].sort(key=lambda r: r["images"])
        write_results(results, args.output)


def write_results(results: dict[str, Any], output: Path) -> None:
    """scale.json, a markdown table and a plot of how each number grows."""
    output.mkdir(parents=True, exist_ok=True)
    atomic_write_text(output / "scale.json", json.dumps(results, indent=2))
    lines = [
        "| images | classes | check first s | check re-run s | speed-up | phase 1 img/s "
        "| phase 2 img/s | peak RSS MiB | cache disk MiB |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in results["sizes"]:
        train = row.get("train", {})
        rates = train.get("images_per_second", {})
        speedup = row["check_first_seconds"] / max(row["check_rerun_seconds"], 1e-6)
        lines.append(
            f"| {row['images']} | {row['classes']} | {row['check_first_seconds']} "
            f"| {row['check_rerun_seconds']} | {speedup:.0f}x "
            f"| {rates.get('feature_extraction', '-')} | {rates.get('fine_tuning', '-')} "
            f"| {train.get('peak_rss_mib', '-')} | {train.get('cache_disk_mib', '-')} |"
        )
    for row in results["sizes"]:
        if "check_one_core_seconds" in row:
            ratio = row["check_one_core_seconds"] / row["check_all_cores_seconds"]
            lines.append(
                f"\nParallel check of {row['check_parallel_files']} files ({row['images']} set): "
                f"one core {row['check_one_core_seconds']} s, all cores "
                f"{row['check_all_cores_seconds']} s ({ratio:.2f}x)."
            )
    loads = [round(row["load_average"][0], 1) for row in results["sizes"]]
    lines.append(f"\n1-minute load average on the 2 cores at each size's check: {loads}.")
    atomic_write_text(output / "scale.md", "\n".join(lines) + "\n")
    plot(results, output / "scale.png")


def plot(results: dict[str, Any], path: Path) -> None:
    """Four panels against the number of images: check time, images/s, peak RSS, disk."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = results["sizes"]
    images = [row["images"] for row in rows]
    trained = [row for row in rows if "train" in row]
    figure, axes = plt.subplots(1, 4, figsize=(16, 3.6))
    axes[0].plot(images, [r["check_first_seconds"] for r in rows], "o-", label="first run")
    axes[0].plot(images, [r["check_rerun_seconds"] for r in rows], "o-", label="re-run")
    axes[0].set(title="image check (s)", xscale="log", yscale="log")
    axes[0].legend()
    for phase in ("feature_extraction", "fine_tuning"):
        axes[1].plot(
            [r["images"] for r in trained],
            [r["train"]["images_per_second"].get(phase, 0) for r in trained],
            "o-",
            label=phase,
        )
    axes[1].set(title="training images/s per phase", xscale="log")
    axes[1].legend()
    axes[2].plot(
        [r["images"] for r in trained], [r["train"]["peak_rss_mib"] for r in trained], "o-"
    )
    axes[2].set(title="peak RSS of tledge train (MiB)", xscale="log")
    axes[3].plot(
        [r["images"] for r in trained], [r["train"]["cache_disk_mib"] for r in trained], "o-"
    )
    axes[3].set(title="cache disk (MiB)", xscale="log")
    for axis in axes:
        axis.set_xlabel("images")
        axis.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


if __name__ == "__main__":
    main()
