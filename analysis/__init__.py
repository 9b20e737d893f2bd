"""Looking at trained models: evaluate, predict, compare runs, run experiment plans.

Analysis sits above training and export: it reads run folders and model files, runs
.tflite files through the edge client's `Classifier` (the code the Pi runs), and starts
training runs for experiment plans. The public names load lazily, so importing the
package does not import TensorFlow.

Example:
    >>> from tledge.analysis import load_model, predict_files
    >>> report = predict_files(load_model("runs/food/export/model_int8.tflite"), ["photos"])
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "LoadedModel": "tledge.analysis.prediction",
    "ImagePrediction": "tledge.analysis.prediction",
    "PredictionReport": "tledge.analysis.prediction",
    "load_model": "tledge.analysis.prediction",
    "predict_files": "tledge.analysis.prediction",
    "write_annotated": "tledge.analysis.annotation",
    "Evaluation": "tledge.analysis.evaluation",
    "evaluate_run": "tledge.analysis.evaluation",
    "evaluate_model": "tledge.analysis.evaluation",
    "write_evaluation": "tledge.analysis.evaluation",
    "RunSummary": "tledge.analysis.comparison",
    "compare_runs": "tledge.analysis.comparison",
    "summarize_run": "tledge.analysis.comparison",
    "format_table": "tledge.analysis.comparison",
    "tensorboard_command": "tledge.analysis.comparison",
    "plot_comparison": "tledge.analysis.comparison",
    "ExperimentPlan": "tledge.analysis.experiments",
    "load_plan": "tledge.analysis.experiments",
    "run_plan": "tledge.analysis.experiments",
    "parse_overrides": "tledge.analysis.plan_files",
    "example_plan_path": "tledge.analysis.experiments",
    "plot_confusion_matrix": "tledge.analysis.plots",
    "plot_most_wrong": "tledge.analysis.plots",
    "plot_learning_curves": "tledge.analysis.plots",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
