"""Writing benchmark results: one JSON document and a Markdown rendering of it.

Every benchmark script produces a dict section ("latency", "client_overhead", "pipeline",
"training"); `build_report` wraps sections with the machine description and the command
that made them, `to_markdown` renders whichever sections are present.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tledge import __version__
from tledge.benchmarks.machine_info import machine_info
from tledge.core.atomic import atomic_write_text

Log = Callable[[str], None]
# A report section's title and its Markdown renderer.
Section = tuple[str, Callable[[dict[str, Any]], str]]


@dataclass(frozen=True)
class BenchmarkOutput:
    """What a benchmark wrote.

    Attributes:
        report: The report (as in `<stem>.json`).
        files: The files written: the JSON and Markdown reports, then any plots.
    """

    report: dict[str, Any]
    files: list[Path]


def build_report(command: str, notes: Sequence[str] = (), **sections: Any) -> dict[str, Any]:
    """Return a report dict: sections plus machine info, command, time and notes.

    Dataclasses inside sections (e.g. `LatencyResult`) are turned into dicts.

    Example:
        >>> report = build_report("tledge bench runs/food", latency=results)
    """
    report: dict[str, Any] = {
        "tledge_version": __version__,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": command,
        "machine": machine_info(),
        "notes": list(notes),
    }
    for name, section in sections.items():
        if section is not None:
            report[name] = _plain(section)
    return report


def write_report(
    report: dict[str, Any],
    output_dir: str | os.PathLike,
    stem: str,
    sections: Mapping[str, Section] | None = None,
) -> list[Path]:
    """Write `<stem>.json` and `<stem>.md` into `output_dir` atomically; return their paths.

    `sections` renders sections `SECTIONS` does not know (see `to_markdown`).
    """
    directory = Path(output_dir)
    json_path = atomic_write_text(directory / f"{stem}.json", json.dumps(report, indent=2) + "\n")
    md_path = atomic_write_text(directory / f"{stem}.md", to_markdown(report, sections))
    return [json_path, md_path]


def to_markdown(report: dict[str, Any], sections: Mapping[str, Section] | None = None) -> str:
    """Render a report as Markdown: machine line, then a table per section present.

    Args:
        report: A `build_report` dict.
        sections: (title, render) of sections beyond `SECTIONS`, by name: a benchmark
            whose table lives in its own module passes it here.
    """
    machine = report["machine"]
    versions = ", ".join(f"{k} {v}" for k, v in machine["versions"].items() if v)
    load = machine.get("load_average_1_5_15")
    lines = [
        f"Machine: {machine['cpu_model']}, {machine['cpu_cores']} cores, {machine['os']}, "
        f"Python {machine['python']}; {versions}.",
        "",
    ]
    if load:
        # Other processes slow a benchmark down; the load says how busy the machine was.
        lines += [
            f"Load average when written (1/5/15 min): {', '.join(f'{v:.2f}' for v in load)}.",
            "",
        ]
    lines += [
        f"Command: `{report['command']}` ({report['created']}, tledge {report['tledge_version']})",
        "",
    ]
    for name, (title, render) in {**SECTIONS, **(sections or {})}.items():
        if name in report:
            lines += [f"### {title}", "", render(report[name]), ""]
    lines += [f"- {note}" for note in report.get("notes", [])]
    return "\n".join(lines).rstrip() + "\n"


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub Markdown table; numbers right-aligned."""
    numeric = [any(isinstance(row[i], int | float) for row in rows) for i in range(len(headers))]
    align = ["---:" if is_number else "---" for is_number in numeric]
    text_rows = [[_cell(value) for value in row] for row in rows]
    out = ["| " + " | ".join(headers) + " |", "|" + "|".join(align) + "|"]
    out += ["| " + " | ".join(row) + " |" for row in text_rows]
    return "\n".join(out)


def latency_table(rows: Sequence[dict[str, Any]]) -> str:
    """Markdown table of latency results (one row per variant and thread count)."""
    headers = [
        "model",
        "variant",
        "threads",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "img/s",
        "size MB",
        "peak RSS MB",
        "top-1 %",
        "drift pp",
    ]
    body = [
        [
            row["model"],
            row["variant"],
            row["threads"],
            round(row["p50_ms"], 2),
            round(row["p90_ms"], 2),
            round(row["p99_ms"], 2),
            round(row["images_per_s"], 1),
            round(row["size_bytes"] / 1e6, 2),
            round(row["peak_rss_mb"], 1),
            _percent(row["accuracy"]),
            _maybe_round(row["drift_pp"], 2),
        ]
        for row in rows
    ]
    return markdown_table(headers, body)


def client_overhead_table(section: dict[str, Any]) -> str:
    """Markdown table of the edge client's classify time against raw invoke()."""
    headers = [
        "model",
        "threads",
        "input",
        "raw invoke ms",
        "client ms",
        "ratio",
        "ratio p10",
        "target",
        "capture fit ms",
    ]
    body = [
        [
            row["model"],
            row["threads"],
            row["input"],
            round(row["raw_ms"], 3),
            round(row["client_ms"], 3),
            round(row["ratio"], 3),
            round(row["ratio_p10"], 3),
            f"<= {row['target']}",
            _maybe_round(row.get("fit_ms"), 3),
        ]
        for row in section["rows"]
    ]
    return markdown_table(headers, body)


def pipeline_table(section: dict[str, Any]) -> str:
    """Markdown table of the pipeline: sequential loop per stage, then the `tledge edge` loop.

    Stage, FPS and fraction columns are the sequential loop's; "edge loop" columns are
    the real `tledge edge` loop's on the same kind of source ("-" where not run).
    """
    stages = section["stages"]
    headers = ["source", "frames", *[f"{s} ms" for s in stages], "FPS", "1/invoke", "fraction"]
    headers += ["edge loop FPS", "edge loop fraction", "with --collect FPS", "collect overhead"]
    headers += ["collect CPU overhead"]
    body = [
        [
            row["source"],
            row["frames"],
            *[round(row["stage_ms"][s], 2) for s in stages],
            round(row["fps"], 1),
            round(row["invoke_fps"], 1),
            round(row["fps_fraction"], 3),
            _maybe_round(row.get("edge_loop_fps"), 1),
            _maybe_round(row.get("edge_loop_fraction"), 3),
            _maybe_round(row.get("edge_loop_collect_fps"), 1),
            _collect_overhead(row),
            _collect_cpu_overhead(row),
        ]
        for row in section["rows"]
    ]
    return markdown_table(headers, body)


def _collect_overhead(row: dict[str, Any]) -> str:
    with_collect, without = row.get("edge_loop_collect_fps"), row.get("edge_loop_fps")
    if with_collect is None or not without:
        return "-"
    return f"{100 * (1 - with_collect / without):+.1f} %"


def _collect_cpu_overhead(row: dict[str, Any]) -> str:
    with_collect, without = row.get("edge_loop_collect_cpu_ms"), row.get("edge_loop_cpu_ms")
    if with_collect is None or not without:
        return "-"
    return f"{100 * (with_collect / without - 1):+.1f} %"


def training_table(section: dict[str, Any]) -> str:
    """Markdown table of naive vs cached-feature frozen-phase training."""
    headers = ["method", "epochs", "seconds", "held-out top-1 %", "speed-up"]
    body = [
        [
            row["method"],
            row["epochs"],
            round(row["seconds"], 1),
            _percent(row["accuracy"]),
            round(row["speedup"], 1),
        ]
        for row in section["rows"]
    ]
    return markdown_table(headers, body)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    return str(value)


def _percent(value: float | None) -> float | None:
    return None if value is None else round(100 * value, 1)


def _maybe_round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, Path):
        return str(value)
    return value


def cross_validation_table(section: dict[str, Any]) -> str:
    """Markdown table of pooled held-out accuracy per variant, paired with the reference."""
    headers = ["variant", "accuracy %", "log loss", "per fold %", "vs reference pp", "95 % CI pp"]
    body = []
    for row in section["rows"]:
        ci = row.get("ci95_pp")
        body.append(
            [
                row["variant"],
                _percent(row["accuracy"]),
                round(row["log_loss"], 4),
                " ".join(f"{100 * a:.1f}" for a in row["per_fold_accuracy"]),
                _maybe_round(row.get("diff_pp"), 2),
                f"{ci[0]:+.2f} .. {ci[1]:+.2f}" if ci else "reference",
            ]
        )
    return markdown_table(headers, body) + (
        f"\n\n{section['num_images']} photos of {section['data']}, each held out once "
        f"({section['folds']} folds); settings: {json.dumps(section['settings'])}."
    )


def mixed_precision_table(section: dict[str, Any]) -> str:
    """Markdown table of float32 vs mixed_float16: steady images/s per phase, accuracy."""
    headers = ["precision", "phase 1 img/s", "phase 2 img/s", "test top-1 %", "phase seconds"]
    body = [
        [
            row["precision"],
            row["images_per_second"].get("feature_extraction"),
            row["images_per_second"].get("fine_tuning"),
            _percent(row["test_accuracy"]),
            ", ".join(f"{k} {v:.0f}" for k, v in row["phase_seconds"].items()),
        ]
        for row in section["rows"]
    ]
    return markdown_table(headers, body)


SECTIONS = {
    "latency": ("Model latency", latency_table),
    "client_overhead": ("Edge client overhead", client_overhead_table),
    "pipeline": ("Camera pipeline", pipeline_table),
    "training": ("Training: frozen phase", training_table),
    "cross_validation": ("Training settings: k-fold cross-validation", cross_validation_table),
    "mixed_precision": ("Training precision: float32 vs mixed_float16", mixed_precision_table),
}
