"""Classifying images with a .tflite model on any TFLite runtime, without TensorFlow.

A tledge model carries its `ModelContract` (labels, input size, normalization). A plain
.tflite (e.g. a published ImageNet model) gets one derived from its input and output
tensors (`tledge.edge.plain_models.derive_contract`). Either way the model's own input
scale and zero point quantize the pixels, and buffers are allocated once, so a call costs
little more than `interpreter.invoke()`.

Example:
    >>> classifier = Classifier("model_int8.tflite", num_threads=2)
    >>> result = classifier.classify(cv2.imread("cat.jpg"), top_k=3)
    >>> result.label, result.score, result.timings.invoke_ms
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from tledge.core.errors import TledgeError
from tledge.core.labels import read_labels
from tledge.edge.classification import Classification, Timings, rank
from tledge.edge.contract import ModelContract, Quantization
from tledge.edge.images import center_crop, fit_image, resize_to_input
from tledge.edge.interpreter import open_interpreter
from tledge.edge.model_file import read_model_metadata
from tledge.edge.plain_models import derive_contract, tensor_quantization

# ImageNet classifiers from TF Hub have a "background" class in front of the 1000 labels.
IMAGENET_WITH_BACKGROUND = 1001


class Classifier:
    """A .tflite image classifier: frame in, top-k labels and timings out.

    Not thread-safe: use one Classifier per thread.

    Args:
        model_path: A .tflite file: with an embedded tledge contract, with standard TFLite
            metadata only (its labels and normalization are used), or plain.
        labels: Class names in output order: a list, a labels file (one per line), or None
            to use the file's own labels (plain models then get "0", "1", ...). Given
            labels replace the file's.
        num_threads: Interpreter CPU threads; None lets the runtime choose.
        runtime: "auto", "litert", "tflite-runtime" or "tensorflow".

    Attributes:
        contract: The embedded contract, or the one derived for a plain model.
        has_embedded_contract: True when the file carries a tledge contract.
        golden: The file's embedded self-test images with its answers at export
            (`tledge.edge.golden`); empty for plain models and older tledge files.
        interpreter: The runtime's Interpreter, tensors allocated.
        runtime: The runtime that loaded the model (name, version).
        labels: Class names in output order.

    Raises:
        TledgeError: for a missing, corrupt or non-classifier model file, or labels whose
            count does not match the model output.

    Example:
        >>> classifier = Classifier("mobilenet_v2_1.0_224_quant.tflite",
        ...                         labels="imagenet_labels.txt", num_threads=2)
        >>> classifier.classify(frame, top_k=1).label
        'macaw'
    """

    def __init__(
        self,
        model_path: str | os.PathLike,
        labels: Sequence[str] | str | os.PathLike | None = None,
        num_threads: int | None = None,
        runtime: str = "auto",
    ) -> None:
        self.model_path = Path(model_path)
        self.interpreter, self.runtime = open_interpreter(self.model_path, num_threads, runtime)
        metadata = read_model_metadata(self.model_path)
        embedded = metadata.contract
        self.has_embedded_contract = embedded is not None
        self.golden = metadata.golden
        self._input, self._output = _classifier_tensors(self.interpreter, self.model_path)
        num_classes = int(np.prod(self._output["shape"]))
        given = _load_labels(labels)
        if embedded is None:
            standard = metadata.standard
            normalization = (standard.mean, standard.std) if standard is not None else None
            embedded = derive_contract(
                self.interpreter,
                given if given is not None else metadata.standard_labels,
                normalization,
            )
        elif given is not None:
            embedded = replace(embedded, labels=tuple(given))
        self.contract: ModelContract = embedded
        self.labels: tuple[str, ...] = self.contract.labels
        _check_matches_model(self.contract, self._input, num_classes, self.model_path, given)
        self._prepare_buffers()

    @property
    def input_size(self) -> tuple[int, int]:
        """(height, width) of the model input."""
        return self.contract.input_size

    def classify(
        self,
        bgr_frame: np.ndarray,
        top_k: int = 5,
        threshold: float = 0.0,
        fitted: bool = False,
    ) -> Classification:
        """Classify an OpenCV (BGR, uint8) image of any size.

        Args:
            bgr_frame: HxWx3 BGR image (HxW gray and HxWx4 BGRA are accepted too).
            top_k: How many labels to return.
            threshold: Leave out labels scoring below this.
            fitted: True when `bgr_frame` comes from `fit_to_input`: it is then used as
                the model input as it is (no second center crop). The result is the same,
                bit for bit, as classifying the frame it was fitted from.

        Returns:
            A `Classification`.

        Raises:
            TledgeError: for an image that is not uint8 with 1, 3 or 4 channels, or a
                `fitted` image whose size is not the model input size.
        """
        return self._classify(bgr_frame, top_k, threshold, is_bgr=True, fitted=fitted)

    def classify_rgb(
        self, rgb: np.ndarray, top_k: int = 5, threshold: float = 0.0, fitted: bool = False
    ) -> Classification:
        """Classify an RGB uint8 image (e.g. from `tledge.edge.images.read_rgb`).

        See `classify` for the arguments.
        """
        return self._classify(rgb, top_k, threshold, is_bgr=False, fitted=fitted)

    def fit_to_input(self, image: np.ndarray) -> np.ndarray:
        """Crop and resize `image` to the model input size, as `classify` would.

        Center-crops when the contract says so, then resizes with the contract's
        interpolation; channel order is left as it is. Pass the result to
        `classify(..., fitted=True)` (or `classify_rgb`) to get exactly the answer for the
        whole image while the resize runs elsewhere, e.g. in a camera thread. Uses no
        buffer of the classifier, so any thread may call it while another classifies.

        Args:
            image: HxWx3 uint8 image in either channel order (HxW gray and HxWx4 are
                accepted too and come back with 3 channels).

        Returns:
            A new HxWx3 uint8 array of the model's input (height, width).

        Raises:
            TledgeError: for an image that is not uint8 with 1, 3 or 4 channels.

        Example:
            >>> small = classifier.fit_to_input(frame)  # in the capture thread
            >>> classifier.classify(small, fitted=True).label == classifier.classify(frame).label
            True
        """
        # BGRA -> BGR and RGBA -> RGB both drop the last channel: the order does not matter.
        image = _as_three_channels(image, is_bgr=True)
        fitted = fit_image(image, self._input_contract)
        # A crop that is already the input size is a view of the caller's frame.
        return fitted.copy() if np.shares_memory(fitted, image) else fitted

    def preprocess(
        self, image: np.ndarray, is_bgr: bool = True, fitted: bool = False
    ) -> np.ndarray:
        """Fill and return the model input buffer (1xHxWx3, the model's dtype) for `image`.

        The returned array is reused by the next call; copy it to keep it. `classify`
        does not use it: it writes the same values straight into the interpreter's input.
        `fitted` is as for `classify`.
        """
        self._fill_input(image, is_bgr, self._input_image, fitted)
        return self._input_tensor

    def scores_from_output(self, raw: np.ndarray) -> np.ndarray:
        """Turn the raw output tensor into a float32 probability vector (new array)."""
        if self._dequantize_table is not None:
            scores = self._dequantize_table[raw.reshape(-1)]
        else:
            scores = raw.reshape(-1).astype(np.float32)
        if self.contract.output_kind == "logits":
            scores -= scores.max()
            np.exp(scores, out=scores)
            scores /= scores.sum()
        return scores

    def _classify(
        self, image: np.ndarray, top_k: int, threshold: float, is_bgr: bool, fitted: bool
    ) -> Classification:
        start = time.perf_counter()
        # A view of the interpreter's own input buffer saves the set_tensor copy; it must
        # be gone before invoke(), which refuses to run while numpy still points inside.
        model_input = self._input_view()
        self._fill_input(image, is_bgr, model_input[0], fitted)
        del model_input
        invoke_start = time.perf_counter()
        self.interpreter.invoke()
        invoke_end = time.perf_counter()
        scores = self.scores_from_output(self.interpreter.get_tensor(self._output["index"]))
        top = rank(scores, self.labels, top_k, threshold)
        end = time.perf_counter()
        timings = Timings(
            (invoke_start - start) * 1e3,
            (invoke_end - invoke_start) * 1e3,
            (end - invoke_end) * 1e3,
        )
        return Classification(top, scores, timings)

    def _fill_input(
        self, image: np.ndarray, is_bgr: bool, target: np.ndarray, fitted: bool
    ) -> None:
        """Write the model input for `image` into `target` (HxWx3, the model's dtype)."""
        image = _as_three_channels(image, is_bgr)
        contract = self.contract
        if fitted:
            if image.shape[:2] != contract.input_size:
                height, width = contract.input_size
                raise TledgeError(
                    f"fitted image is {image.shape[1]}x{image.shape[0]} but the model takes "
                    f"{width}x{height}; fit it with fit_to_input or pass fitted=False"
                )
        elif contract.resize == "center_crop":
            image = center_crop(image, contract.crop_fraction)
        swap = is_bgr != (contract.color_order == "BGR")
        # Each step writes where the next one reads; pass-through models end in `target`
        # after at most one resize and one channel swap, with no extra copy.
        ordered = target if self._pass_through else self._ordered
        if image.shape[:2] != contract.input_size:
            into = self._resized if swap else ordered
            image = resize_to_input(image, contract.input_size, contract.interpolation, into)
        if swap:
            cv2.cvtColor(image, cv2.COLOR_BGR2RGB, dst=ordered)
        elif image is not ordered:
            np.copyto(ordered, image)
        if self._flip_sign_bit:
            np.bitwise_xor(self._ordered, 0x80, out=target.view(np.uint8))
        elif not self._pass_through:
            np.multiply(self._ordered, self._gain, out=self._work)
            np.add(self._work, self._offset, out=self._work)
            if self._integer_input:
                np.rint(self._work, out=self._work)
                np.clip(self._work, self._low, self._high, out=self._work)
            np.copyto(target, self._work, casting="unsafe")

    def _prepare_buffers(self) -> None:
        """Allocate the per-frame buffers once and choose the cheapest exact input path."""
        height, width = self.contract.input_size
        dtype = np.dtype(self._input["dtype"])
        self._input_view = self.interpreter.tensor(self._input["index"])
        self._input_tensor = np.zeros((1, height, width, 3), dtype=dtype)
        self._input_image = self._input_tensor[0]
        self._resized = np.empty((height, width, 3), dtype=np.uint8)
        self._ordered = np.empty((height, width, 3), dtype=np.uint8)
        self._work = np.empty((height, width, 3), dtype=np.float32)
        self._input_contract = self.contract.input_contract
        scale, zero_point = tensor_quantization(self._input)
        if scale == 0.0:
            scale, zero_point = 1.0, 0  # an unquantized integer input stores values as-is
        mean = np.asarray(self.contract.mean, dtype=np.float64)
        std = np.asarray(self.contract.std, dtype=np.float64)
        self._integer_input = np.issubdtype(dtype, np.integer)
        if self._integer_input:
            info = np.iinfo(dtype)
            self._low, self._high = float(info.min), float(info.max)
            gain = 1.0 / (std * scale)
            offset = zero_point - mean * gain
        else:
            gain, offset = 1.0 / std, -mean / std
        self._gain = gain.astype(np.float32)
        self._offset = offset.astype(np.float32)
        # When the affine map moves no 0-255 pixel by half a step, rounding makes it the
        # identity (or a shift by -128 for int8), so pixels are copied instead of computed.
        self._pass_through = dtype == np.uint8 and _max_error(gain, offset, 0.0) < 0.5
        self._flip_sign_bit = dtype == np.int8 and _max_error(gain, offset, -128.0) < 0.5
        self._dequantize_table = _dequantize_table(self.contract.output_quantization)


def _classifier_tensors(interpreter: Any, path: Path) -> tuple[dict, dict]:
    inputs = interpreter.get_input_details()
    outputs = interpreter.get_output_details()
    input_shapes = [list(d["shape"]) for d in inputs]
    output_shapes = [list(d["shape"]) for d in outputs]
    problem = (
        len(inputs) != 1
        or len(outputs) != 1
        or len(inputs[0]["shape"]) != 4
        or inputs[0]["shape"][0] != 1
        or inputs[0]["shape"][3] != 3
        or outputs[0]["shape"][0] != 1
        or int(np.prod(outputs[0]["shape"])) < 2
        or int(np.prod(outputs[0]["shape"])) != max(outputs[0]["shape"])
    )
    if problem:
        raise TledgeError(
            f"{path}: not an image classifier (needs one 1xHxWx3 input and one 1xN output; "
            f"it has inputs {input_shapes}, outputs {output_shapes})"
        )
    return inputs[0], outputs[0]


def _check_matches_model(
    contract: ModelContract,
    input_detail: dict,
    num_classes: int,
    path: Path,
    given_labels: Sequence[str] | None,
) -> None:
    model_size = tuple(int(v) for v in input_detail["shape"][1:3])
    if tuple(contract.input_size) != model_size:
        raise TledgeError(
            f"{path}: embedded contract says input {contract.input_size} but the model "
            f"takes {model_size}; re-export the model"
        )
    if len(contract.labels) != num_classes:
        source = "--labels" if given_labels is not None else "embedded contract"
        hint = (
            " (ImageNet models with 1001 outputs need 'background' as label 0)"
            if num_classes == IMAGENET_WITH_BACKGROUND and len(contract.labels) == 1000
            else ""
        )
        raise TledgeError(
            f"{path}: {source} has {len(contract.labels)} labels but the model has "
            f"{num_classes} outputs{hint}"
        )


def _load_labels(labels: Sequence[str] | str | os.PathLike | None) -> list[str] | None:
    if labels is None:
        return None
    if isinstance(labels, (str, os.PathLike)):
        return read_labels(labels)
    return [str(label) for label in labels]


def _max_error(gain: np.ndarray, offset: np.ndarray, shift: float) -> float:
    """Largest |gain * p + offset - (p + shift)| over pixel values p in [0, 255]."""
    at_zero = np.abs(offset - shift)
    at_top = np.abs(gain * 255.0 + offset - (255.0 + shift))
    return float(max(at_zero.max(), at_top.max()))


def _dequantize_table(quantization: Quantization) -> np.ndarray | None:
    """float32 value of every 8-bit output code, indexed by the code's unsigned byte.

    Indexing it is one numpy call per frame and gives exactly the values of
    `(code - zero_point) * scale` computed in float32. None for other outputs.
    """
    if not quantization.is_quantized or quantization.dtype not in ("uint8", "int8"):
        return None
    codes = np.arange(256, dtype=np.uint8).view(np.dtype(quantization.dtype))
    table = codes.astype(np.float32)
    table -= quantization.zero_point
    table *= quantization.scale
    return table


def _as_three_channels(image: np.ndarray, is_bgr: bool) -> np.ndarray:
    if image.dtype != np.uint8:
        raise TledgeError(f"image has dtype {image.dtype}; expected uint8 pixels")
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.ndim == 3 and image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR if is_bgr else cv2.COLOR_RGBA2RGB)
    if image.ndim != 3 or image.shape[2] != 3:
        raise TledgeError(f"image has shape {image.shape}; expected HxWx3")
    if min(image.strides) < 0 or image.strides[2] != 1:
        # OpenCV reads row and column slices in place but not reversed or strided
        # channels (e.g. `bgr[..., ::-1]`); those alone pay for a copy.
        return np.ascontiguousarray(image)
    return image
