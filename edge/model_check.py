"""The checks a new model file passes before it may replace the running one.

`check_candidate` refuses (raises `TledgeError` with the reason) a model that:

- carries no tledge contract, so its preprocessing would be guessed;
- fits frames differently from the running model (input size, resize, crop,
  interpolation): frames already prepared for the running model would be wrong for it,
  and the camera is not reopened for a swap;
- gives scores that are not probabilities (NaN, outside 0-1, not summing to 1);
- fails its embedded self-test: the examples `tledge export` stored in the file must get
  the top-1 label the file gave them at export, with a score within the tolerance of
  `tledge.edge.golden` (files from before tledge embedded examples have none);
- fails the golden-folder self-test (an extra, for images of the user's choosing): each
  golden image (the images in `<model dir>/golden/`)
  must get the top-1 label written in `<model>.golden.json` beside the model file, or,
  when there is no such file and the labels are unchanged, the running model's top-1
  on at least `MIN_GOLDEN_AGREEMENT` of them.

Changed labels are allowed and announced in the returned note.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from tledge.core.errors import TledgeError
from tledge.edge.classifier import Classifier
from tledge.edge.golden import check_golden

GOLDEN_FOLDER = "golden"
GOLDEN_SUFFIX = ".golden.json"
MIN_GOLDEN_AGREEMENT = 0.8
# Quantized outputs of many classes round each score, so their sum drifts a few percent.
SCORE_SUM_TOLERANCE = 0.1
# Probes for the score sanity check when there are no golden images.
PROBE_IMAGES = {
    "black": np.zeros((32, 32, 3), np.uint8),
    "gray": np.full((32, 32, 3), 128, np.uint8),
    "noise": np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8),
}


def check_candidate(
    candidate: Classifier,
    golden: Mapping[str, np.ndarray],
    running: Classifier | None = None,
    running_answers: Mapping[str, str] | None = None,
) -> tuple[dict[str, str], str]:
    """Self-test `candidate`; return its golden answers and a note for people.

    Args:
        candidate: The new model, loaded; used on this thread only.
        golden: The model folder's golden images (file name -> BGR pixels); may be
            empty. The candidate's embedded examples are run as well.
        running: The model it would replace (only its contract is read), None at start.
        running_answers: The running model's top-1 per golden image.

    Returns:
        (top-1 label per golden image, a note such as "labels unchanged, golden 5/5").

    Raises:
        TledgeError: naming the reason when the candidate must not run.
    """
    if not candidate.has_embedded_contract:
        raise TledgeError("no tledge contract in the file; export it with `tledge export`")
    if running is not None:
        _check_same_fit(candidate, running)
    answers = {}
    for name, image in (golden or PROBE_IMAGES).items():
        scores = candidate.classify(image, top_k=0).scores
        _check_probabilities(scores, name)
        if golden:
            answers[name] = candidate.labels[int(np.argmax(scores))]
    notes = [_labels_note(candidate, running)]
    if candidate.golden:
        notes.append(check_golden(candidate, candidate.golden))
    expected = _expected_answers(candidate.model_path, golden)
    if expected is not None:
        wrong = [name for name, label in expected.items() if answers[name] != label]
        if wrong:
            raise TledgeError(
                f"golden self-test failed on {len(wrong)}/{len(expected)} images "
                f"({', '.join(wrong[:3])}: expected {expected[wrong[0]]}, got {answers[wrong[0]]})"
            )
        notes.append(f"golden {len(expected)}/{len(expected)} as expected")
    elif running is not None and running_answers and running.labels == candidate.labels:
        agree = sum(answers[name] == label for name, label in running_answers.items())
        share = agree / len(running_answers)
        if share < MIN_GOLDEN_AGREEMENT:
            raise TledgeError(
                f"golden self-test: agrees with the running model on {agree}/"
                f"{len(running_answers)} images (needs {MIN_GOLDEN_AGREEMENT:.0%}); "
                f"write {candidate.model_path.stem}{GOLDEN_SUFFIX} if the change is intended"
            )
        notes.append(f"golden {agree}/{len(running_answers)} agree with the previous model")
    return answers, ", ".join(notes)


def golden_answers_path(model_path: Path) -> Path:
    """Where the expected golden answers of `model_path` live."""
    return model_path.with_name(model_path.stem + GOLDEN_SUFFIX)


def _check_same_fit(candidate: Classifier, running: Classifier) -> None:
    def fit(classifier: Classifier) -> tuple:
        contract = classifier.contract
        return (
            tuple(contract.input_size),
            contract.resize,
            contract.crop_fraction,
            contract.interpolation,
        )

    def described(classifier: Classifier) -> str:
        contract = classifier.contract
        height, width = contract.input_size
        crop = f" {contract.crop_fraction:g}" if contract.resize == "center_crop" else ""
        return f"{width}x{height} {contract.resize}{crop} {contract.interpolation}"

    if fit(candidate) != fit(running):
        raise TledgeError(
            f"input {described(candidate)} differs from the running model's "
            f"{described(running)}; restart tledge edge to change the input"
        )


def _check_probabilities(scores: np.ndarray, image_name: str) -> None:
    total = float(np.sum(scores, dtype=np.float64))
    finite = bool(np.all(np.isfinite(scores)))
    in_range = finite and float(scores.min()) >= 0.0 and float(scores.max()) <= 1.0
    if not (in_range and math.isclose(total, 1.0, abs_tol=SCORE_SUM_TOLERANCE)):
        raise TledgeError(f"scores on {image_name} are not probabilities (sum {total:.3g})")


def _labels_note(candidate: Classifier, running: Classifier | None) -> str:
    if running is None:
        return f"{len(candidate.labels)} labels"
    if running.labels == candidate.labels:
        return "labels unchanged"
    added = [label for label in candidate.labels if label not in running.labels]
    removed = [label for label in running.labels if label not in candidate.labels]
    changes = [f"added {', '.join(added)}"] if added else []
    changes += [f"removed {', '.join(removed)}"] if removed else []
    return "LABELS CHANGED: " + ("; ".join(changes) or "same labels in a new order")


def _expected_answers(model_path: Path, golden: Mapping[str, np.ndarray]) -> dict | None:
    path = golden_answers_path(model_path)
    if not path.is_file():
        return None
    try:
        expected = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise TledgeError(f"{path.name}: unreadable golden answers ({error})") from None
    if not isinstance(expected, dict) or not expected:
        raise TledgeError(f"{path.name}: expected a JSON object image name -> label")
    missing = [name for name in expected if name not in golden]
    if missing:
        raise TledgeError(f"{path.name}: {missing[0]} is not in the {GOLDEN_FOLDER}/ folder")
    return {str(name): str(label) for name, label in expected.items()}
