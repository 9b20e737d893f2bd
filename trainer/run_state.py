"""state.json: what an unfinished run has done, so running the same command again resumes it.

It records the phases finished, the epochs finished, the seconds each phase took and the
test accuracies measured on the way (after phase 1, before the refit).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tledge.core.atomic import atomic_write_text
from tledge.core.run_folder import RunFolder


def state_path(run: RunFolder) -> Path:
    """state.json: the phases a run has finished (for resuming)."""
    return run.root / "state.json"


class RunState:
    """The contents of a run's state.json, written back after every change.

    Args:
        run: The run folder.
        values: The state.json contents.

    Example:
        >>> state = RunState.load(run)
        >>> state.is_done("feature_extraction")
        False
    """

    def __init__(self, run: RunFolder, values: dict[str, Any]):
        self.run = run
        self.values = values

    @classmethod
    def load(cls, run: RunFolder) -> RunState:
        """Read state.json, or start the state of a run that has not finished a phase."""
        path = state_path(run)
        if not path.is_file():
            return cls(run, {"phases_done": [], "phase_seconds": {}})
        return cls(run, json.loads(path.read_text(encoding="utf-8")))

    def is_done(self, phase: str) -> bool:
        """True when `phase` finished in this run (maybe before a crash)."""
        return phase in self.values["phases_done"]

    @property
    def epochs_finished(self) -> int:
        """Epochs finished by the phases done so far (0 before the first)."""
        return self.values.get("epochs_finished", 0)

    @property
    def phase_seconds(self) -> dict[str, float]:
        """Seconds each finished phase took, summed over resumes."""
        return self.values["phase_seconds"]

    def get(self, key: str) -> Any:
        """A recorded value (e.g. "before_refit_test_accuracy"), or None."""
        return self.values.get(key)

    def has(self, key: str) -> bool:
        """True when `key` has been recorded."""
        return key in self.values

    def record(self, key: str, value: Any) -> None:
        """Record `value` under `key` and write state.json."""
        self.values[key] = value
        self.save()

    def phase_done(self, phase: str, epochs: int, seconds: float, **measured: Any) -> float:
        """Mark `phase` finished and write state.json; return the phase's total seconds.

        Args:
            phase: The phase that finished.
            epochs: Epochs finished so far, counted from the start of the run.
            seconds: Time this attempt spent in the phase (added to earlier attempts').
            measured: Values the phase measured (e.g. feature_extraction_test_accuracy),
                written in the same state.json update.
        """
        times = self.values["phase_seconds"]
        times[phase] = round(times.get(phase, 0.0) + seconds, 3)
        self.values["phases_done"].append(phase)
        self.values["epochs_finished"] = epochs
        self.values.update(measured)
        self.save()
        return times[phase]

    def save(self) -> None:
        """Write state.json atomically."""
        atomic_write_text(state_path(self.run), json.dumps(self.values, indent=2))
