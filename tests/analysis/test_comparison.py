"""`tledge compare` and `tledge.analysis.comparison` on fake run folders."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from tledge.analysis.comparison import (
    compare_runs,
    find_runs,
    format_table,
    summarize_run,
    tensorboard_command,
)
from tledge.cli import cli
from tledge.core.errors import TledgeError
from tledge.edge.images import read_rgb


def write_fake_run(
    root: Path,
    val_accuracies: list[float],
    test_accuracy: float | None,
    fine_tune_epochs: int = 0,
    drift_pp: float | None = None,
    seconds: float = 60.0,
    finished: bool = True,
) -> Path:
    """A run folder in the agreed formats (config, history, metrics, drift)."""
    root.mkdir(parents=True)
    (root / "logs").mkdir()
    epochs = len(val_accuracies) - fine_tune_epochs
    config = {
        "backbone": "mobilenetv2",
        "train_fraction": 0.1,
        "augment": True,
        "precision": "float32",
        "epochs": epochs,
        "fine_tune_epochs": fine_tune_epochs,
    }
    (root / "config.json").write_text(json.dumps(config))
    history = {
        "epochs": [
            {
                "epoch": i + 1,
                "phase": "feature_extraction" if i < epochs else "fine_tuning",
                "loss": 1.0,
                "accuracy": 0.5,
                "val_loss": 1.0 - accuracy,
                "val_accuracy": accuracy,
                "learning_rate": 1e-3,
                "seconds": 1.0,
            }
            for i, accuracy in enumerate(val_accuracies)
        ],
        "phase_boundaries": [epochs] if fine_tune_epochs else [],
    }
    (root / "history.json").write_text(json.dumps(history))
    if finished:
        metrics = {
            "test_accuracy": test_accuracy,
            "best_val_accuracy": max(val_accuracies),
            "train_seconds": seconds,
        }
        (root / "metrics.json").write_text(json.dumps(metrics))
    if drift_pp is not None:
        (root / "export").mkdir()
        drift = {"variants": {"int8": {"top1_drift_pp": drift_pp}}, "max_drift_pp": 1.0}
        (root / "export" / "drift.json").write_text(json.dumps(drift))
    return root


@pytest.fixture
def runs(tmp_path: Path) -> Path:
    folder = tmp_path / "runs"
    write_fake_run(folder / "a", [0.5, 0.6], 0.55, drift_pp=-0.8, seconds=30)
    write_fake_run(folder / "b", [0.5, 0.7, 0.8, 0.75], 0.78, fine_tune_epochs=2, drift_pp=0.2)
    write_fake_run(folder / "c", [0.4], None, seconds=10)
    write_fake_run(folder / "d", [0.3, 0.9], None, finished=False)
    (folder / "not_a_run").mkdir()
    return folder


def names(summaries) -> list[str]:
    return [s.name for s in summaries]


def test_runs_are_ranked_by_the_chosen_metric(runs: Path):
    assert names(compare_runs([runs])) == ["b", "a", "c", "d"]
    assert names(compare_runs([runs], sort="best_val_accuracy")) == ["d", "b", "a", "c"]
    assert names(compare_runs([runs], sort="int8_drift")) == ["b", "a", "c", "d"]
    assert names(compare_runs([runs], sort="train_seconds")) == ["c", "a", "b", "d"]
    with pytest.raises(TledgeError, match="--sort"):
        compare_runs([runs], sort="speed")


def test_summary_reads_the_run_files(runs: Path):
    summary = summarize_run(runs / "b")
    assert summary.phases == "FE 2 + FT 2"
    assert summary.epochs_run == 4
    assert summary.best_val_accuracy == 0.8
    assert summary.int8_drift_pp == 0.2
    unfinished = summarize_run(runs / "d")
    assert not unfinished.finished and unfinished.test_accuracy is None
    assert unfinished.best_val_accuracy == 0.9  # from history.json
    table = format_table(compare_runs([runs]))
    lines = table.splitlines()
    assert lines[0].split()[:3] == ["run", "backbone", "data"]
    assert lines[2].startswith("b ") and "78.0%" in lines[2] and "+0.20 pp" in lines[2]
    assert "d (unfinished)" in lines[5]


def test_find_runs_takes_runs_and_folders_of_runs(runs: Path, tmp_path: Path):
    assert [p.name for p in find_runs([runs / "c", runs])] == ["c", "a", "b", "c", "d"]
    with pytest.raises(TledgeError, match="no run folders"):
        find_runs([runs / "not_a_run"])
    with pytest.raises(TledgeError, match="missing"):
        find_runs([tmp_path / "missing"])


def test_tensorboard_command_names_every_run(runs: Path, tmp_path: Path):
    command = tensorboard_command(compare_runs([runs / "a", runs / "b"]))
    assert command.startswith("tensorboard --logdir_spec ")
    assert f"a:{(runs / 'a' / 'logs').resolve()}" in command
    assert f"b:{(runs / 'b' / 'logs').resolve()}" in command
    # A name tensorboard cannot parse in --logdir_spec falls back to the common parent.
    odd = write_fake_run(tmp_path / "more" / "x:y", [0.5], 0.5)
    command = tensorboard_command(compare_runs([runs / "a", odd]))
    assert command == f"tensorboard --logdir {tmp_path.resolve()}"


def test_cli_prints_json_and_writes_the_curves(runs: Path):
    result = CliRunner().invoke(cli, ["compare", str(runs), "--json", "--sort", "name"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert [r["name"] for r in document["runs"]] == ["a", "b", "c", "d"]
    assert document["curves"] == str((runs / "comparison.png").resolve())
    image = read_rgb(document["curves"])
    assert image.shape[1] > image.shape[0] > 300
    assert "--logdir_spec" in document["tensorboard"]

    result = CliRunner().invoke(cli, ["compare", str(runs / "not_a_run")])
    assert result.exit_code == 1 and "no run folders" in result.stderr
