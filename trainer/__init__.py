"""Transfer-learning trainer (needs TensorFlow: `pip install tledge[train]`).

The public names load lazily, so `import tledge.trainer.synthetic` stays TF-free.
Evaluating, predicting, comparing and experiment plans are `tledge.analysis`; the
end-to-end demo is `tledge.demo`.

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
    "Trainer": "tledge.trainer.trainer",
    "run_name": "tledge.trainer.runs",
    "BACKBONES": "tledge.trainer.backbones",
    "get_backbone": "tledge.trainer.backbones",
    "generate_dataset": "tledge.trainer.synthetic",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
