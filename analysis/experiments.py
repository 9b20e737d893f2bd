"""Experiment plans: a series of training runs described in one TOML (or YAML) file.

A plan has a `[defaults]` table of `TrainConfig` fields shared by every run and one
`[[run]]` table per run, with a `name` and the fields it changes:

    output = "runs/food_series"      # optional; relative to the plan file
    sort = "test_accuracy"           # optional; how `tledge compare` ranks the runs

    [defaults]
    data = "photos/train"            # relative paths are relative to the plan file
    test = "photos/test"
    epochs = 10
    fine_tune_epochs = 0

    [[run]]
    name = "small_data"
    train_fraction = 0.1

`run_plan` trains the runs in order. A run whose folder is finished (model.keras and
metrics.json) is skipped, an interrupted one resumes, so re-running a plan only does
what is missing. `from_run` may name an earlier run of the plan.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tledge.analysis.comparison import SORT_KEYS
from tledge.analysis.plan_files import cap_epochs, check_fields, read_plan_file, resolve_paths
from tledge.core.errors import TledgeError
from tledge.core.run_folder import RunFolder
from tledge.trainer.config import TrainConfig

PLAN_KEYS = ("output", "sort", "defaults", "run")
EXAMPLE_PLAN = "seed_series.toml"
# Run names become folder names (and TensorBoard run names).
RUN_NAME = re.compile(r"[A-Za-z0-9_.-]+")

Log = Callable[[str], None]


@dataclass(frozen=True)
class PlannedRun:
    """One run of a plan.

    Attributes:
        name: Run folder name, unique in the plan.
        settings: `TrainConfig` fields: the plan's defaults, the run's own values, then
            command-line overrides; paths are absolute.
    """

    name: str
    settings: Mapping[str, Any]


@dataclass(frozen=True)
class ExperimentPlan:
    """A parsed plan.

    Attributes:
        source: The plan file.
        output: Folder that holds the run folders.
        sort: Metric the comparison sorts by (see `tledge.analysis.comparison.SORT_KEYS`).
        runs: The runs, in the order they are trained.
    """

    source: Path
    output: Path
    sort: str
    runs: tuple[PlannedRun, ...]

    def config(self, run: PlannedRun) -> TrainConfig:
        """The `TrainConfig` of `run`, writing into this plan's output folder.

        Raises:
            TledgeError: when the settings are invalid (the message names the run).
        """
        try:
            return TrainConfig(**run.settings, name=run.name, output=str(self.output))
        except TledgeError as error:
            raise TledgeError(f"{self.source}: run {run.name}: {error}") from None
        except TypeError as error:
            raise TledgeError(f"{self.source}: run {run.name}: {error}") from None


@dataclass(frozen=True)
class RunOutcome:
    """What `run_plan` did with one run.

    Attributes:
        name: The run name.
        path: The run folder.
        status: "trained", "resumed" or "skipped" (already finished).
        note: Why a skipped run may not match the plan, or "".
    """

    name: str
    path: Path
    status: str
    note: str = ""


def example_plan_path() -> Path:
    """The example plan shipped with tledge (the seed's Model 0-4 series)."""
    from importlib import resources

    return Path(str(resources.files("tledge").joinpath("examples", EXAMPLE_PLAN)))


def example_plan_text() -> str:
    """The text of the shipped example plan, to copy and edit."""
    return example_plan_path().read_text(encoding="utf-8")


def load_plan(
    path: str | os.PathLike,
    overrides: Mapping[str, Any] | None = None,
    output: str | os.PathLike | None = None,
    max_epochs: int | None = None,
) -> ExperimentPlan:
    """Read and check a plan file.

    Relative paths in the file are relative to the file's folder; relative paths in
    `overrides` and `output` are relative to the current folder.

    Args:
        path: A .toml (or .yaml / .yml, with PyYAML installed) plan.
        overrides: `TrainConfig` fields set for every run, after the plan's values.
        output: Folder for the run folders; default: the plan's `output`, else
            runs/<plan name> in the current folder.
        max_epochs: Caps each phase's epochs (0 stays 0), for a quick trial of a plan.
            Capped runs get names ending in "_max<N>" so they never pass for full runs.

    Returns:
        The plan.

    Raises:
        TledgeError: when the file is missing or malformed, a run has no or a duplicate
            name, a key is not a `TrainConfig` field, or a setting is invalid.

    Example:
        >>> plan = load_plan("plan.toml", overrides={"weights": "none"}, max_epochs=1)
        >>> [run.name for run in plan.runs]
    """
    source = Path(path)
    raw = read_plan_file(source)
    base = source.resolve().parent
    unknown = sorted(set(raw) - set(PLAN_KEYS))
    if unknown:
        raise TledgeError(f"{source}: unknown top-level keys {unknown}; expected {PLAN_KEYS}")
    entries = raw.get("run")
    if not isinstance(entries, list) or not entries:
        raise TledgeError(f"{source}: no runs; add [[run]] tables with a name each")
    sort = str(raw.get("sort", "test_accuracy"))
    if sort not in SORT_KEYS:
        raise TledgeError(f"{source}: sort = {sort!r}; choose one of {', '.join(SORT_KEYS)}")
    if output is not None:
        output_dir = Path(output).resolve()
    elif "output" in raw:
        output_dir = (base / str(raw["output"])).resolve()
    else:
        output_dir = Path("runs", source.stem).resolve()
    defaults = check_fields(source, "[defaults]", raw.get("defaults", {}))
    extra = check_fields(source, "--set", dict(overrides or {}))
    suffix = f"_max{max_epochs}" if max_epochs is not None else ""
    names = [str(entry.get("name", "")) for entry in entries if isinstance(entry, dict)]
    runs: list[PlannedRun] = []
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict) or not entry.get("name"):
            raise TledgeError(f"{source}: run #{index + 1} has no name")
        name = str(entry["name"])
        if not RUN_NAME.fullmatch(name):
            raise TledgeError(
                f"{source}: run name {name!r}: use letters, digits, '.', '_' and '-' only"
            )
        if any(name == run.name.removesuffix(suffix) for run in runs):
            raise TledgeError(f"{source}: two runs are named {name!r}")
        own = check_fields(source, f"run {name}", {k: v for k, v in entry.items() if k != "name"})
        if "data" not in {**defaults, **own, **extra}:
            raise TledgeError(
                f"{source}: run {name}: no `data` folder; set it in [defaults] or the run"
            )
        settings = {
            **resolve_paths(defaults, base),
            **resolve_paths(own, base),
            **resolve_paths(extra, Path.cwd()),
        }
        # `from_run = "<name>"` of an earlier run of the plan means that run's folder.
        from_run = {**defaults, **own, **extra}.get("from_run")
        if from_run in names[:index]:
            settings["from_run"] = str(output_dir / f"{from_run}{suffix}")
        elif from_run and not Path(settings["from_run"]).is_dir():
            raise TledgeError(
                f"{source}: run {name}: from_run {from_run!r} is neither an earlier run "
                "of the plan nor a run folder"
            )
        if max_epochs is not None:
            settings = cap_epochs(settings, max_epochs)
        runs.append(PlannedRun(name + suffix, settings))
    plan = ExperimentPlan(source, output_dir, sort, tuple(runs))
    for run in plan.runs:
        plan.config(run)
    return plan


def is_finished(run_dir: str | os.PathLike) -> bool:
    """True when a run folder holds model.keras and metrics.json."""
    run = RunFolder(Path(run_dir))
    return run.trained_model.exists() and run.metrics.is_file()


def run_plan(
    plan: ExperimentPlan,
    log: Log | None = None,
    verbose: int | str = 0,
    only: Sequence[str] | None = None,
) -> list[RunOutcome]:
    """Train every run of `plan` that is not finished, in order.

    Args:
        plan: From `load_plan`.
        log: Called with progress lines (which run, skipped files, ...).
        verbose: Keras `fit` verbosity for each run.
        only: Names of the runs to consider (default: all).

    Returns:
        One `RunOutcome` per run considered, in plan order.

    Raises:
        TledgeError: from the trainer (bad data, options, weights), naming the run.

    Example:
        >>> outcomes = run_plan(load_plan("plan.toml"), log=print)
        >>> print(format_table(compare_runs([o.path for o in outcomes])))
    """
    from tledge.trainer.training import train

    log = log or (lambda message: None)
    selected = _select(plan, only)
    outcomes: list[RunOutcome] = []
    for number, run in enumerate(selected, start=1):
        config = plan.config(run)
        folder = plan.output / run.name
        if is_finished(folder):
            note = settings_difference(run, folder)
            log(f"[{number}/{len(selected)}] {run.name}: already finished, skipped")
            outcomes.append(RunOutcome(run.name, folder, "skipped", note))
            continue
        log(f"[{number}/{len(selected)}] {run.name}: training")
        try:
            result = train(config, log=lambda line: log(f"  {line}"), verbose=verbose)
        except TledgeError as error:
            raise TledgeError(f"run {run.name}: {error}") from None
        status = "resumed" if result.resumed else "trained"
        outcomes.append(RunOutcome(run.name, result.run.root, status))
    return outcomes


def settings_difference(run: PlannedRun, run_dir: str | os.PathLike) -> str:
    """Describe how a finished run's config.json differs from the plan's settings for it.

    Returns:
        "" when every setting the plan gives matches, else a one-line note.
    """
    folder = RunFolder(Path(run_dir))
    stored = folder.read_config()
    differences = [
        f"{key}={stored.setting(key)!r} (plan: {value!r})"
        for key, value in sorted(run.settings.items())
        # "auto" precision is stored resolved (e.g. "float32"), so it matches any.
        if not (key == "precision" and value == "auto")
        and _normalize(stored.setting(key)) != _normalize(value)
    ]
    if not differences:
        return ""
    return (
        f"finished with other settings: {', '.join(differences)}; "
        f"delete {folder.root} to train it again"
    )


def _select(plan: ExperimentPlan, only: Sequence[str] | None) -> list[PlannedRun]:
    if not only:
        return list(plan.runs)
    names = {run.name for run in plan.runs}
    missing = sorted(set(only) - names)
    if missing:
        raise TledgeError(f"--only {', '.join(missing)}: not in {plan.source} ({sorted(names)})")
    return [run for run in plan.runs if run.name in only]


def _normalize(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [_normalize(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value
