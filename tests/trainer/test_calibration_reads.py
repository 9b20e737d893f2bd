"""BatchNorm calibration of a random backbone reads its images without TF's cache warning.

Checked to fail before the fix: `next(iter(...))` on the cached dataset printed "The
calling iterator did not fully read the dataset being cached" in every such run.
"""

import os
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    import numpy as np
    from PIL import Image
    from tledge.trainer.config import TrainConfig
    from tledge.trainer.data import DatasetSplits, Split
    from tledge.trainer.trainer import build_model

    folder = Path(sys.argv[1])
    paths = []
    for index in range(80):
        path = folder / f"{index}.png"
        Image.fromarray(np.full((8, 8, 3), index, np.uint8)).save(path)
        paths.append(path)
    train = Split(tuple(paths), tuple(i % 2 for i in range(80)))
    splits = DatasetSplits(("a", "b"), train, train, None, 0)
    config = TrainConfig(data=str(folder), weights="none", image_size=(32, 32), alpha=0.35)
    build_model(config, splits, print)
    """
)


@pytest.mark.slow
def test_random_backbone_calibration_leaves_no_partial_cache_read(tmp_path):
    pytest.importorskip("tensorflow")
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "BatchNorm statistics calibrated" in result.stdout
    assert "did not fully read the dataset being cached" not in result.stderr
