import cv2
import numpy as np
import pytest

from tledge.core.errors import TledgeError
from tledge.edge.classification import rank
from tledge.edge.classifier import Classifier, _check_matches_model
from tledge.edge.contract import ModelContract, Quantization

LABELS = ["red", "green", "blue"]


def softmax(logits):
    exp = np.exp(np.asarray(logits, dtype=np.float64) - np.max(logits))
    return exp / exp.sum()


def bgr(red, green, blue, shape=(8, 8)):
    image = np.empty((*shape, 3), dtype=np.uint8)
    image[:] = (blue, green, red)
    return image


def test_plain_float_model_gets_minus_one_to_one_pixels_rgb_order_and_softmax(color_model):
    classifier = Classifier(color_model, labels=LABELS)
    assert not classifier.has_embedded_contract
    assert classifier.contract.output_kind == "logits"
    result = classifier.classify(bgr(255, 0, 51, shape=(30, 40)), top_k=3)
    expected = softmax([1.0, -1.0, (51 - 127.5) / 127.5])
    np.testing.assert_allclose(result.scores, expected, rtol=1e-5)
    assert [label for label, _ in result.top_k] == ["red", "blue", "green"]
    assert result.label == "red" and result.score == pytest.approx(expected[0], rel=1e-5)
    rgb_result = classifier.classify_rgb(bgr(255, 0, 51)[..., ::-1])  # a reversed view
    np.testing.assert_allclose(rgb_result.scores, expected, rtol=1e-5)
    assert min(result.timings.preprocess_ms, result.timings.invoke_ms) >= 0


def test_float_model_with_softmax_inside_is_not_softmaxed_twice(make_model):
    classifier = Classifier(make_model("softmax"), labels=LABELS)
    assert classifier.contract.output_kind == "probabilities"
    result = classifier.classify(bgr(255, 0, 51))
    np.testing.assert_allclose(result.scores, softmax([1.0, -1.0, (51 - 127.5) / 127.5]), rtol=1e-5)


@pytest.mark.parametrize(
    ("dtype", "scale", "zero_point", "logits"),
    [
        # uint8 models are fed raw pixels, which the model dequantizes itself:
        # 0.02 * (200 - 10), 0.02 * (7 - 10), 0.02 * (128 - 10).
        ("uint8", 0.02, 10, [3.8, -0.06, 2.36]),
        # int8 models are fed pixel - 128 (72, -121, 0): 72 / 128, -121 / 128, 0.
        ("int8", 1 / 128, 0, [0.5625, -0.9453125, 0.0]),
        # 0.03 * (72 + 20), 0.03 * (-121 + 20), 0.03 * (0 + 20).
        ("int8", 0.03, -20, [2.76, -3.03, 0.6]),
    ],
)
def test_plain_integer_models_are_quantized_with_their_own_parameters(
    make_model, dtype, scale, zero_point, logits
):
    """Checked that it fails: with the input scale read 1% off. (A zero point one step off
    shifts all three logits alike, which the softmax cannot show.)"""
    classifier = Classifier(make_model(dtype=dtype, scale=scale, zero_point=zero_point))
    assert classifier.labels == ("0", "1", "2")
    result = classifier.classify(bgr(200, 7, 128))
    np.testing.assert_allclose(result.scores, softmax(logits), rtol=1e-4)


def test_plain_integer_input_without_quantization_takes_raw_pixels(make_model):
    classifier = Classifier(make_model(dtype="uint8"))
    result = classifier.classify(bgr(3, 1, 2, shape=(20, 20)))
    np.testing.assert_allclose(result.scores, softmax([3.0, 1.0, 2.0]), rtol=1e-5)


def test_embedded_contract_normalization_is_applied_and_rounded_into_the_input_type(make_model):
    contract = ModelContract(
        labels=tuple(LABELS),
        input_size=(8, 8),
        mean=(0.3,) * 3,
        std=(50.0,) * 3,
        output_kind="logits",
    )
    path = make_model(dtype="uint8", scale=1 / 50, zero_point=10, contract=contract)
    classifier = Classifier(path)
    assert classifier.has_embedded_contract and classifier.labels == tuple(LABELS)
    # real = (p - 0.3) / 50 is stored as q = rint(real * 50 + 10) = p + 10, clipped to 255.
    result = classifier.classify(bgr(50, 250, 0))
    stored = np.array([60, 255, 10])
    np.testing.assert_allclose(result.scores, softmax((stored - 10) / 50), rtol=1e-4)


def test_center_crop_and_stretch_follow_the_contract(make_model):
    # Green sides, red middle square: the crop sees only red, the stretch mostly green.
    frame = bgr(0, 255, 0, shape=(8, 32))
    frame[:, 12:20] = (0, 0, 255)
    labels = tuple(LABELS)
    crop = ModelContract(labels, (8, 8), resize="center_crop", crop_fraction=1.0)
    stretch = ModelContract(labels, (8, 8), resize="stretch")
    cropped = Classifier(make_model(contract=crop, name="crop.tflite")).classify(frame)
    stretched = Classifier(make_model(contract=stretch, name="stretch.tflite")).classify(frame)
    assert cropped.label == "red"
    assert stretched.label == "green"


def test_gray_and_bgra_frames_are_accepted(color_model):
    classifier = Classifier(color_model, labels=LABELS)
    gray = classifier.classify(np.full((10, 10), 255, np.uint8))
    np.testing.assert_allclose(gray.scores, [1 / 3] * 3, rtol=1e-5)
    bgra = cv2.cvtColor(bgr(0, 0, 255), cv2.COLOR_BGR2BGRA)
    assert classifier.classify(bgra).label == "blue"
    with pytest.raises(TledgeError, match="dtype float32"):
        classifier.classify(np.zeros((8, 8, 3), np.float32))


def test_input_buffer_is_reused_between_frames(color_model):
    classifier = Classifier(color_model, labels=LABELS)
    first = classifier.preprocess(bgr(255, 0, 0, shape=(64, 48)))
    second = classifier.preprocess(bgr(0, 255, 0, shape=(20, 30)))
    assert first is second
    assert second.dtype == np.float32 and second.shape == (1, 8, 8, 3)


@pytest.mark.parametrize(
    ("dtype", "scale", "zero_point", "color_order"),
    [("float32", None, None, "RGB"), ("uint8", None, None, "BGR"), ("int8", 1 / 128, 0, "RGB")],
)
def test_classify_writes_the_interpreter_input_exactly_like_preprocess(
    make_model, dtype, scale, zero_point, color_order
):
    contract = ModelContract(
        tuple(LABELS), (8, 8), color_order=color_order, resize="center_crop", crop_fraction=0.9
    )
    path = make_model(dtype=dtype, scale=scale, zero_point=zero_point, contract=contract)
    classifier = Classifier(path)
    interpreter, details = classifier.interpreter, classifier.interpreter.get_input_details()[0]
    rng = np.random.default_rng(0)
    for shape in ((30, 40), (8, 8), (9, 9)):
        frame = rng.integers(0, 256, size=(*shape, 3), dtype=np.uint8)
        scores = classifier.classify(frame).scores
        fed = interpreter.get_tensor(details["index"])
        np.testing.assert_array_equal(fed, classifier.preprocess(frame))
        interpreter.set_tensor(details["index"], classifier.preprocess(frame))
        interpreter.invoke()
        output = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
        np.testing.assert_array_equal(scores, classifier.scores_from_output(output))


@pytest.mark.parametrize("resize", ["stretch", "center_crop"])
@pytest.mark.parametrize("interpolation", ["bilinear_no_half_pixel", "bilinear", "area"])
@pytest.mark.parametrize("color_order", ["RGB", "BGR"])
@pytest.mark.parametrize(
    ("dtype", "scale", "zero_point"), [("float32", None, None), ("uint8", None, None)]
)
def test_classifying_a_fitted_image_is_bit_identical_to_classifying_the_frame(
    make_model, resize, interpolation, color_order, dtype, scale, zero_point
):
    contract = ModelContract(
        tuple(LABELS),
        (8, 8),
        color_order=color_order,
        resize=resize,
        crop_fraction=0.9,
        interpolation=interpolation,
    )
    path = make_model(dtype=dtype, scale=scale, zero_point=zero_point, contract=contract)
    classifier = Classifier(path)
    index = classifier.interpreter.get_input_details()[0]["index"]
    rng = np.random.default_rng(1)
    # 9x9 crops to exactly 8x8 (no resize); 8x8 is only cropped under center_crop.
    for shape in ((30, 40), (41, 23), (9, 9), (8, 8)):
        frame = rng.integers(0, 256, size=(*shape, 3), dtype=np.uint8)
        fitted = classifier.fit_to_input(frame)
        assert fitted.shape == (8, 8, 3) and fitted.dtype == np.uint8
        assert not np.shares_memory(fitted, frame)
        for classify in (classifier.classify, classifier.classify_rgb):
            whole = classify(frame)
            whole_input = classifier.interpreter.get_tensor(index)
            small = classify(fitted, fitted=True)
            np.testing.assert_array_equal(classifier.interpreter.get_tensor(index), whole_input)
            np.testing.assert_array_equal(small.scores, whole.scores)


def test_fit_to_input_crops_and_resizes_like_the_contract_and_keeps_channel_order(make_model):
    contract = ModelContract(tuple(LABELS), (8, 8), resize="center_crop", crop_fraction=0.5)
    classifier = Classifier(make_model(contract=contract))
    # Blue outside, red centre: the half-size crop keeps only red, in BGR order still.
    frame = bgr(0, 0, 255, shape=(16, 32))
    frame[4:12, 12:20] = bgr(255, 0, 0)
    np.testing.assert_array_equal(classifier.fit_to_input(frame), bgr(255, 0, 0))
    gray = classifier.fit_to_input(np.full((16, 16), 7, np.uint8))
    assert gray.shape == (8, 8, 3) and (gray == 7).all()


def test_a_fitted_image_is_not_cropped_again_and_must_have_the_input_size(make_model):
    contract = ModelContract(tuple(LABELS), (8, 8), resize="center_crop", crop_fraction=0.5)
    classifier = Classifier(make_model(contract=contract))
    # Green with a red centre: cropping this 8x8 image again would see only red.
    image = bgr(0, 255, 0)
    image[2:6, 2:6] = (0, 0, 255)
    assert classifier.classify(image).label == "red"
    assert classifier.classify(image, fitted=True).label == "green"
    with pytest.raises(TledgeError, match="fitted image is 16x8 but the model takes 8x8"):
        classifier.classify(bgr(0, 255, 0, shape=(8, 16)), fitted=True)


@pytest.mark.parametrize(
    ("dtype", "scale", "zero_point", "codes", "values"),
    [
        # (code - zero_point) * scale, worked by hand.
        ("uint8", 0.07, 3, [0, 3, 103, 255], [-0.21, 0.0, 7.0, 17.64]),
        # int8 codes are signed: both ends of the range, the zero point and 0.
        ("int8", 0.02, -5, [-128, -5, 0, 127], [-2.46, 0.0, 0.1, 2.64]),
    ],
)
def test_quantized_outputs_dequantize_to_known_float32_values(
    make_model, dtype, scale, zero_point, codes, values
):
    """Checked that it fails: with the zero point added instead of subtracted, and with
    the int8 table built from unsigned codes (-128 read as 128)."""
    quantization = Quantization(dtype, scale, zero_point)
    contract = ModelContract(("a", "b", "c"), (8, 8), output_quantization=quantization)
    classifier = Classifier(make_model(contract=contract))
    scores = classifier.scores_from_output(np.array([codes], dtype=dtype))
    assert scores.dtype == np.float32
    np.testing.assert_allclose(scores, values, rtol=1e-6, atol=1e-6)


def test_labels_file_and_count_mismatch(color_model, tmp_path):
    labels_file = tmp_path / "labels.txt"
    labels_file.write_text("cat\ndog\nbird\n")
    assert Classifier(color_model, labels=labels_file).labels == ("cat", "dog", "bird")
    with pytest.raises(TledgeError, match="--labels has 2 labels but the model has 3 outputs"):
        Classifier(color_model, labels=["cat", "dog"])
    # The ImageNet hint only where it applies (it used to follow any off-by-one count).
    imagenet = ModelContract(tuple(f"class {i}" for i in range(1000)), input_size=(8, 8))
    with pytest.raises(TledgeError, match="need 'background' as label 0") as info:
        _check_matches_model(imagenet, {"shape": [1, 8, 8, 3]}, 1001, tmp_path, None)
    assert "\n" not in str(info.value)
    two = ModelContract(("cat", "dog"), input_size=(8, 8))
    with pytest.raises(TledgeError, match="has 2 labels") as info:
        _check_matches_model(two, {"shape": [1, 8, 8, 3]}, 3, tmp_path, ["cat", "dog"])
    assert "background" not in str(info.value)


def test_contract_that_disagrees_with_the_model_is_an_error(make_model):
    wrong_size = ModelContract(tuple(LABELS), input_size=(16, 16))
    with pytest.raises(TledgeError, match=r"input \(16, 16\).*re-export"):
        Classifier(make_model(contract=wrong_size))
    wrong_labels = ModelContract(("a", "b"), input_size=(8, 8))
    with pytest.raises(TledgeError, match="embedded contract has 2 labels"):
        Classifier(make_model(contract=wrong_labels, name="two.tflite"))


def test_bad_model_files_are_one_line_errors(make_model, tmp_path):
    corrupt = tmp_path / "corrupt.tflite"
    corrupt.write_bytes(b"\x00garbage" * 50)
    cases = [
        (tmp_path / "missing.tflite", "model file not found"),
        (corrupt, "not a TFLite model"),
        (make_model("image", name="image.tflite"), "not an image classifier"),
    ]
    for path, message in cases:
        with pytest.raises(TledgeError, match=message) as info:
            Classifier(path)
        assert "\n" not in str(info.value) and str(path) in str(info.value)


def test_rank_orders_by_score_breaks_ties_by_label_order_and_applies_threshold():
    scores = np.array([0.1, 0.3, 0.0, 0.3, 0.25], dtype=np.float32)
    labels = ["a", "b", "c", "d", "e"]
    assert [label for label, _ in rank(scores, labels, 3)] == ["b", "d", "e"]
    assert [label for label, _ in rank(scores, labels, 10, threshold=0.2)] == ["b", "d", "e"]
    assert rank(scores, labels, 0) == ()


@pytest.mark.parametrize("size", [10, 1001])
def test_rank_gives_the_same_answer_for_few_and_many_classes(size):
    # Quantized scores: many exact ties, which must keep label order on both sort paths.
    scores = (np.random.default_rng(size).integers(0, 6, size) / 8).astype(np.float32)
    labels = [f"c{i}" for i in range(size)]
    expected = [(labels[i], float(scores[i])) for i in np.argsort(-scores, kind="stable")[:7]]
    assert rank(scores, labels, 7) == tuple(expected)
    assert rank(scores, labels, 7, threshold=0.5) == tuple(p for p in expected if p[1] >= 0.5)
    assert all(type(score) is float for _, score in rank(scores, labels, 3))


@pytest.mark.integration
@pytest.mark.parametrize(("image", "expected"), [("parrot", "macaw"), ("hot_dog", "hotdog")])
def test_published_imagenet_model_recognizes_sanity_images(shared_data, image, expected):
    tflite = shared_data / "tflite"
    classifier = Classifier(
        tflite / "mobilenet_v2_1.0_224_quant.tflite",
        labels=tflite / "imagenet_labels.txt",
        num_threads=2,
    )
    assert classifier.contract.output_kind == "probabilities"
    result = classifier.classify(cv2.imread(str(tflite / "sanity_images" / f"{image}.jpg")))
    assert result.label.split(",")[0] == expected
    assert result.score > 0.9


@pytest.mark.integration
def test_client_overhead_over_raw_invoke_is_small(shared_data):
    tflite = shared_data / "tflite"
    classifier = Classifier(
        tflite / "mobilenet_v2_1.0_224_quant.tflite",
        labels=tflite / "imagenet_labels.txt",
        num_threads=2,
    )
    frame = cv2.imread(str(tflite / "sanity_images" / "cat_720p.jpg"))
    overheads = []
    for _ in range(15):
        timings = classifier.classify(frame).timings
        overheads.append(timings.preprocess_ms + timings.postprocess_ms)
    # Crop + resize of a 720p frame, quantization and top-k: well under a millisecond,
    # against ~4-10 ms for invoke() of this model.
    assert float(np.median(overheads)) < 1.0
