"""`tledge experiments` and `tledge.analysis.experiments`: plans, skipping, the example."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

from tledge.analysis.experiments import (
    example_plan_path,
    load_plan,
    run_plan,
)
from tledge.analysis.plan_files import parse_overrides
from tledge.cli import cli
from tledge.core.errors import TledgeError
from tledge.core.run_folder import RunFolder

PLAN = """
sort = "best_val_accuracy"

[defaults]
data = "photos/train"
test = "photos/test"
weights = "none"
epochs = 4
fine_tune_epochs = 0

[[run]]
name = "small"
train_fraction = 0.1

[[run]]
name = "tuned"
epochs = 2
fine_tune_epochs = 3
augment = false

[[run]]
name = "continued"
from_run = "tuned"
fine_tune_epochs = 2
"""


def write_plan(folder: Path, text: str = PLAN) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "plan.toml"
    path.write_text(text)
    return path


def test_plan_merges_defaults_runs_and_overrides(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    plan = load_plan(write_plan(tmp_path / "plans"), overrides={"weights": "w.h5", "seed": 7})
    assert [run.name for run in plan.runs] == ["small", "tuned", "continued"]
    assert plan.sort == "best_val_accuracy"
    assert plan.output == tmp_path / "runs" / "plan"
    small, tuned, continued = plan.runs
    # Paths in the plan are relative to the plan file; overrides to the current folder.
    assert small.settings["data"] == str(tmp_path / "plans" / "photos" / "train")
    assert small.settings["weights"] == str(tmp_path / "w.h5")
    assert small.settings["train_fraction"] == 0.1 and small.settings["epochs"] == 4
    assert tuned.settings["fine_tune_epochs"] == 3 and tuned.settings["augment"] is False
    assert "train_fraction" not in tuned.settings
    assert all(run.settings["seed"] == 7 for run in plan.runs)
    assert continued.settings["from_run"] == str(plan.output / "tuned")
    config = plan.config(tuned)
    assert (config.name, config.output, config.epochs) == ("tuned", str(plan.output), 2)


def test_max_epochs_caps_phases_and_renames_runs(tmp_path: Path):
    plan = load_plan(write_plan(tmp_path), output=tmp_path / "out", max_epochs=1)
    assert [run.name for run in plan.runs] == ["small_max1", "tuned_max1", "continued_max1"]
    epochs = [(r.settings["epochs"], r.settings["fine_tune_epochs"]) for r in plan.runs]
    assert epochs == [(1, 0), (1, 1), (1, 1)]
    assert plan.runs[2].settings["from_run"] == str(tmp_path / "out" / "tuned_max1")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[[run]]\nname = 'a'\nepochz = 3\n", "unknown keys \\['epochz'\\]"),
        ("[[run]]\nname = 'a'\noutput = 'x'\n", "sets \\['output'\\]"),
        ("[[run]]\nname = 'a'\n[[run]]\nname = 'a'\n", "two runs are named 'a'"),
        ("[[run]]\ntrain_fraction = 0.5\n", "run #1 has no name"),
        ("", "no runs"),
        ("[[run]]\nname = '../a'\n", "run name '../a'"),
        ("[[run]]\nname = 'a'\nepochs = '10'\n", "run a: epochs = '10' is not of type int"),
        ("[[run]]\nname = 'a'\nimage_size = [96, 'x']\n", "image_size = \\[96, 'x'\\]"),
        ("[[run]]\nname = 'a'\ntrain_fraction = 2.0\n", "run a: --train-fraction"),
        ("[[run]]\nname = 'a'\nfrom_run = 'b'\n", "from_run 'b' is neither"),
        ("sort = 'speed'\n[[run]]\nname = 'a'\n", "sort = 'speed'"),
        ("runs = 1\n", "unknown top-level keys \\['runs'\\]"),
        ("[[run]\n", "invalid TOML"),
    ],
)
def test_bad_plans_name_the_problem(tmp_path: Path, text: str, message: str):
    path = write_plan(tmp_path, text + "\n[defaults]\ndata = 'd'\n")
    with pytest.raises(TledgeError, match=message) as caught:
        load_plan(path)
    assert str(path) in str(caught.value)


def test_a_plan_without_data_says_so(tmp_path: Path):
    with pytest.raises(TledgeError, match="run a: no `data` folder"):
        load_plan(write_plan(tmp_path, "[[run]]\nname = 'a'\n"))


def test_overrides_are_toml_values_or_strings():
    parsed = parse_overrides(["epochs=1", "augment=false", "image_size=[96, 96]", "weights=a/b.h5"])
    assert parsed == {"epochs": 1, "augment": False, "image_size": [96, 96], "weights": "a/b.h5"}
    with pytest.raises(TledgeError, match="KEY=VALUE"):
        parse_overrides(["epochs"])


def fake_train(calls: list[str]):
    """Stands in for `tledge.trainer.training.train`: writes a finished run folder."""

    def train(config, log=None, verbose=0):
        calls.append(config.name)
        run = RunFolder(Path(config.output) / config.name)
        run.root.mkdir(parents=True, exist_ok=True)
        run.config.write_text(json.dumps(config.to_dict()))
        run.model.write_bytes(b"model")
        run.metrics.write_text(json.dumps({"test_accuracy": 0.5, "best_val_accuracy": 0.5}))
        return SimpleNamespace(run=run, metrics={}, resumed=False)

    return train


@pytest.mark.slow  # imports TensorFlow through tledge.trainer.training
def test_finished_runs_are_skipped_and_changed_settings_reported(tmp_path: Path, monkeypatch):
    import tledge.trainer.training as train_module

    calls: list[str] = []
    monkeypatch.setattr(train_module, "train", fake_train(calls))
    monkeypatch.chdir(tmp_path)
    path = write_plan(tmp_path)
    plan = load_plan(path)
    first = run_plan(plan, only=["small", "tuned"])
    assert calls == ["small", "tuned"]
    assert [o.status for o in first] == ["trained", "trained"]

    lines: list[str] = []
    second = run_plan(load_plan(path, overrides={"epochs": 9}), log=lines.append)
    assert calls == ["small", "tuned", "continued"]
    assert [o.status for o in second] == ["skipped", "skipped", "trained"]
    assert "epochs=4 (plan: 9)" in second[0].note
    assert "epochs=2 (plan: 9)" in second[1].note
    assert second[2].note == ""
    assert any("small: already finished" in line for line in lines)
    with pytest.raises(TledgeError, match="--only nope"):
        run_plan(plan, only=["nope"])


def test_example_plan_is_the_seed_series(tmp_path: Path):
    text = example_plan_path().read_text()
    plan = load_plan(example_plan_path(), output=tmp_path)
    assert len(plan.runs) == 5
    fractions = {run.settings.get("train_fraction", 1.0) for run in plan.runs}
    augment = {run.settings["augment"] for run in plan.runs}
    phases = {(run.settings["epochs"], run.settings["fine_tune_epochs"]) for run in plan.runs}
    assert fractions == {0.1, 1.0} and augment == {True, False}
    assert phases == {(10, 0), (5, 5)}
    assert plan.runs[0].settings["data"].endswith("shared/data/food_mnist10/train")
    result = CliRunner().invoke(cli, ["experiments", "--example"])
    assert result.exit_code == 0 and result.output == text


def test_cli_dry_run_lists_runs(tmp_path: Path):
    path = write_plan(tmp_path)
    result = CliRunner().invoke(
        cli, ["experiments", str(path), "--dry-run", "--set", "seed=3", "--max-epochs", "2"]
    )
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0].startswith("small_max2: data=")
    assert "seed=3" in result.output
    result = CliRunner().invoke(cli, ["experiments", str(tmp_path / "none.toml")])
    assert result.exit_code == 1 and "plan file not found" in result.stderr


@pytest.mark.slow
def test_plan_trains_with_the_real_trainer_then_skips(tiny_dataset: Path, tmp_path: Path):
    plan_text = f"""
[defaults]
data = "{tiny_dataset / "train"}"
test = "{tiny_dataset / "test"}"
backbone = "mobilenetv2"
alpha = 0.35
weights = "none"
image_size = [32, 32]
epochs = 1
fine_tune_epochs = 0
augment = false
batch_size = 32

[[run]]
name = "only"
"""
    path = write_plan(tmp_path, plan_text)
    runner = CliRunner()
    result = runner.invoke(cli, ["experiments", str(path), "--output", str(tmp_path / "runs")])
    assert result.exit_code == 0, result.output
    assert "only: training" in result.stderr
    assert (tmp_path / "runs" / "only" / "metrics.json").is_file()
    assert "only" in result.stdout and "comparison.png" in result.stdout
    assert (tmp_path / "runs" / "comparison.png").is_file()
    result = runner.invoke(cli, ["experiments", str(path), "--output", str(tmp_path / "runs")])
    assert result.exit_code == 0 and "only: already finished, skipped" in result.stderr
