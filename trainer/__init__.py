"""Transfer-learning trainer (needs TensorFlow: `pip install tledge[train]`).

The public names load lazily, so `import tledge.trainer.synthetic` stays TF-free.

Example:
    >>> from tledge.trainer import TrainConfig, train
    >>> result = train(TrainConfig(data="photos/train", test="photos/test"))
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "TrainConfig": "tledge.trainer.config",
    "TrainResult": "tledge.trainer.training",
    "train": "tledge.trainer.training",
    "resolve_config": "tledge.trainer.training",
    "run_name": "tledge.trainer.runs",
    "BACKBONES": "tledge.trainer.backbones",
    "get_backbone": "tledge.trainer.backbones",
    "run_demo": "tledge.trainer.demo",
    "generate_dataset": "tledge.trainer.synthetic",
    "LoadedModel": "tledge.trainer.prediction",
    "ImagePrediction": "tledge.trainer.prediction",
    "PredictionReport": "tledge.trainer.prediction",
    "load_model": "tledge.trainer.prediction",
    "predict_files": "tledge.trainer.prediction",
    "write_annotated": "tledge.trainer.prediction",
    "Evaluation": "tledge.trainer.evaluation",
    "evaluate_run": "tledge.trainer.evaluation",
    "evaluate_model": "tledge.trainer.evaluation",
    "write_evaluation": "tledge.trainer.evaluation",
    "RunSummary": "tledge.trainer.comparison",
    "compare_runs": "tledge.trainer.comparison",
    "summarize_run": "tledge.trainer.comparison",
    "format_table": "tledge.trainer.comparison",
    "tensorboard_command": "tledge.trainer.comparison",
    "plot_comparison": "tledge.trainer.comparison",
    "ExperimentPlan": "tledge.trainer.experiments",
    "load_plan": "tledge.trainer.experiments",
    "run_plan": "tledge.trainer.experiments",
    "parse_overrides": "tledge.trainer.plan_files",
    "example_plan_path": "tledge.trainer.experiments",
    "plot_confusion_matrix": "tledge.trainer.plots",
    "plot_most_wrong": "tledge.trainer.plots",
    "plot_learning_curves": "tledge.trainer.plots",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
