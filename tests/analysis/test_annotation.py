"""`write_annotated`: the edge overlay drawn on still photos, enlarged when small."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from tledge.analysis.annotation import write_annotated
from tledge.analysis.prediction import ImagePrediction, PredictionReport
from tledge.edge.images import read_rgb


def _report(paths: list[Path]) -> PredictionReport:
    predictions = tuple(
        ImagePrediction(path, np.array([0.9, 0.1]), (("cat", 0.9), ("dog", 0.1))) for path in paths
    )
    return PredictionReport(model=None, predictions=predictions, unreadable=())


def test_small_photos_are_enlarged_and_get_the_edge_overlay_panel(tmp_path: Path):
    # Checked to fail: with the draw_overlay call removed, the corner keeps its grey.
    photo = tmp_path / "in" / "grey.png"
    photo.parent.mkdir()
    cv2.imwrite(str(photo), np.full((100, 150, 3), 200, np.uint8))
    (written,) = write_annotated(_report([photo]), tmp_path / "out")
    annotated = read_rgb(written)
    assert annotated.shape[:2] == (213, 320)  # longest side enlarged to 320
    corner = annotated[2:8, 2:8].astype(float).mean()
    far_corner = annotated[-8:-2, -8:-2].astype(float).mean()
    assert corner < 120 < far_corner  # the panel darkens the top left only


def test_photos_with_the_same_name_get_numbered_files(tmp_path: Path):
    first, second = tmp_path / "a" / "x.png", tmp_path / "b" / "x.png"
    for path in (first, second):
        path.parent.mkdir()
        cv2.imwrite(str(path), np.zeros((400, 400, 3), np.uint8))
    written = write_annotated(_report([first, second]), tmp_path / "out")
    assert [path.name for path in written] == ["x.jpg", "x_2.jpg"]
