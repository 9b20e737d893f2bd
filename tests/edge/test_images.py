import json

import cv2
import numpy as np
import pytest
from PIL import Image

from tledge.core.errors import TledgeError
from tledge.core.folders import list_class_folders
from tledge.core.input_contract import InputContract
from tledge.edge.contract import ModelContract
from tledge.edge.images import fit_image, read_rgb, resize_to_input


def test_odd_images_come_back_as_rgb(tmp_path):
    rgb = np.zeros((20, 30, 3), np.uint8)
    rgb[..., 0] = 200  # red
    Image.fromarray(rgb).convert("L").save(tmp_path / "gray.jpg")
    Image.fromarray(rgb).convert("RGBA").save(tmp_path / "alpha.png")
    Image.fromarray(rgb).convert("CMYK").save(tmp_path / "cmyk.jpg")
    for name in ("gray.jpg", "alpha.png", "cmyk.jpg"):
        image = read_rgb(tmp_path / name)
        assert image.shape == (20, 30, 3) and image.dtype == np.uint8, name
    assert read_rgb(tmp_path / "alpha.png")[0, 0].tolist() == [200, 0, 0]
    red, green, blue = read_rgb(tmp_path / "cmyk.jpg")[10, 15].astype(int)
    assert red > 150 and green < 60 and blue < 60


def test_unreadable_files_name_the_file(tmp_path):
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "text.jpg").write_text("not an image")
    with pytest.raises(TledgeError, match="empty.jpg: empty file"):
        read_rgb(tmp_path / "empty.jpg")
    with pytest.raises(TledgeError, match="text.jpg: not a readable image"):
        read_rgb(tmp_path / "text.jpg")
    with pytest.raises(TledgeError, match="missing.jpg"):
        read_rgb(tmp_path / "missing.jpg")


def test_class_folders_are_sorted_and_checked_against_labels(tmp_path):
    for name, count in (("b", 2), ("a", 3)):
        (tmp_path / name).mkdir()
        for index in range(count):
            cv2.imwrite(str(tmp_path / name / f"{index}.jpg"), np.zeros((4, 4, 3), np.uint8))
    (tmp_path / "a" / "notes.txt").write_text("ignored")
    listing = list_class_folders(tmp_path)
    assert listing.class_names == ("a", "b")
    assert listing.labels == (0, 0, 0, 1, 1)
    assert [p.parent.name for p in listing.paths] == ["a", "a", "a", "b", "b"]
    assert list_class_folders(tmp_path, ["b", "a", "c"]).labels == (0, 0, 1, 1, 1)
    with pytest.raises(TledgeError, match="not in the model's labels"):
        list_class_folders(tmp_path, ["a"])


def test_center_crop_keeps_the_middle():
    image = np.zeros((100, 200, 3), np.uint8)
    image[:, 50:150] = 255  # the centred square is white, the sides black
    stretch = InputContract.raw_rgb_stretch((10, 10))
    crop = InputContract((10, 10), "center_crop", "area", 1.0, "RGB", (0.0,) * 3, (1.0,) * 3)
    cropped = fit_image(image, crop)
    assert cropped.shape == (10, 10, 3) and cropped.min() == 255
    stretched = fit_image(image, stretch.with_size((10, 20)))
    assert stretched.shape == (10, 20, 3) and stretched.min() == 0


def test_an_image_at_the_input_size_is_not_touched():
    image = np.arange(4 * 6 * 3, dtype=np.uint8).reshape(4, 6, 3)
    assert fit_image(image, InputContract.raw_rgb_stretch((4, 6))) is image


RAMP = np.repeat(np.array([0, 40, 80, 120], np.uint8)[None, :, None], 3, axis=2).repeat(4, 0)


def test_tledge_models_resize_as_mediapipe_does():
    """4 -> 2 columns: corner to corner reads source x = 0 and 2 (no averaging), as
    MediaPipe's cv2.warpPerspective does; half-pixel centres average 0-1 and 2-3."""
    halved = fit_image(RAMP, InputContract.raw_rgb_stretch((2, 2)))
    np.testing.assert_array_equal(halved[..., 0], [[0, 80], [0, 80]])
    half_pixel = fit_image(RAMP, InputContract.raw_rgb_stretch_half_pixel((2, 2)))
    np.testing.assert_array_equal(half_pixel[..., 0], [[20, 100], [20, 100]])


def test_an_old_bilinear_contract_still_resizes_with_half_pixel_centres(tmp_path):
    """input_contract.json of a run (and the contract of a .tflite) from before
    "bilinear_no_half_pixel" says "bilinear": it keeps meaning what it meant."""
    old = {
        "input_size": [2, 2],
        "resize": "stretch",
        "interpolation": "bilinear",
        "crop_fraction": 1.0,
        "color_order": "RGB",
        "mean": [0.0, 0.0, 0.0],
        "std": [1.0, 1.0, 1.0],
    }
    contract = InputContract.from_dict(old)
    assert contract == InputContract.raw_rgb_stretch_half_pixel((2, 2))
    np.testing.assert_array_equal(fit_image(RAMP, contract)[..., 0], [[20, 100], [20, 100]])
    no_field = ModelContract.from_json(json.dumps({"labels": ["a"], "input_size": [2, 2]}))
    assert no_field.input_contract == contract


def test_the_resize_writes_into_the_buffer_it_is_given():
    frame = np.random.default_rng(0).integers(0, 256, (48, 64, 3), np.uint8)
    for interpolation in ("bilinear_no_half_pixel", "bilinear", "area"):
        buffer = np.zeros((1, 16, 16, 3), np.uint8)
        written = resize_to_input(frame, (16, 16), interpolation, dst=buffer[0])
        assert np.shares_memory(written, buffer), interpolation
        np.testing.assert_array_equal(buffer[0], resize_to_input(frame, (16, 16), interpolation))


@pytest.mark.parametrize(
    "sizes", [((53, 37), (48, 48)), ((480, 640), (256, 256)), ((9, 7), (24, 20))]
)
def test_no_half_pixel_resize_is_opencvs_remap_at_x_times_scale(sizes) -> None:
    """The exactly computed fixed-point maps are OpenCV's own (`cv2.convertMaps`) of the
    sample points x * W / w, downscaling and upscaling (borders replicated). (Remapping
    with the float maps directly gave other values, 58 % of them one or two levels off.)"""
    (source_height, source_width), (height, width) = sizes
    rng = np.random.default_rng(3)
    image = rng.integers(0, 256, size=(source_height, source_width, 3), dtype=np.uint8)
    columns = np.arange(width) * (source_width / width)
    rows = np.arange(height) * (source_height / height)
    map_x = np.tile(columns.astype(np.float32), (height, 1))
    map_y = np.tile(rows.astype(np.float32)[:, np.newaxis], (1, width))
    points, fractions = cv2.convertMaps(map_x, map_y, cv2.CV_16SC2)
    expected = cv2.remap(
        image, points, fractions, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    resized = resize_to_input(image, (height, width), "bilinear_no_half_pixel")
    np.testing.assert_array_equal(resized, expected)
