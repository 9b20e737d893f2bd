"""TensorFlow Datasets as training, validation or test sources: `tfds:NAME[/SPLIT]`.

A TFDS split is written out once as class-per-folder image files (the encoded bytes as
stored, never re-encoded, one example at a time), so the check, the caches, the feature
cache, the exporter's drift gate and `tledge evaluate` read it like any other folder.
The class folders are the label feature's names, in its order, so the run's labels.txt
(and every exported model's labels) are the dataset's own.

Nothing is downloaded when a data_dir is given (`--tfds-data-dir` or TFDS_DATA_DIR): it
must hold the prepared dataset, else one error line says how to prepare one elsewhere.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tledge.core.atomic import atomic_write_text
from tledge.core.errors import TledgeError
from tledge.core.sources import (
    COMPLETE_MARKER,
    TfdsSource,
    is_tfds,
    parse_source,
    split_folder_name,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
JPEG_MAGIC = b"\xff\xd8\xff"

ProgressCallback = Callable[[str, int, int], None]


@dataclass(frozen=True)
class ImageFolder:
    """A TFDS split written out as `folder/<class>/<index>.<ext>`, classes in label order."""

    folder: Path
    class_names: tuple[str, ...]


def image_folder(
    source: TfdsSource,
    option: str,
    data_dir: str | None,
    files_root: Path,
    on_progress: ProgressCallback | None = None,
) -> ImageFolder:
    """Write (once) and return the class-per-folder copy of a TFDS split.

    Args:
        source: Dataset and split.
        option: The option it came from, for error messages.
        data_dir: Folder of prepared TFDS datasets; None uses TFDS_DATA_DIR, else TFDS'
            default folder (downloading and preparing there if needed).
        files_root: Where the image folders are written.
        on_progress: Called with (stage, done, total) while files are written.

    Raises:
        TledgeError: without tensorflow-datasets, for an unknown dataset or split, an
            unprepared data_dir, or a dataset without an image and a class label.
    """
    builder = _builder(source, option, data_dir)
    info = builder.info
    image_key, label_key = info.supervised_keys or ("image", "label")
    # FeaturesDict supports `in` and `[]` but not `.get`.
    label_feature = info.features[label_key] if label_key in info.features else None  # noqa: SIM401
    names = tuple(getattr(label_feature, "names", ()) or ())
    if not names or image_key not in info.features:
        raise TledgeError(
            f"{option} tfds:{source.name}: needs an image feature and a class label "
            f"(features: {', '.join(info.features)})"
        )
    for name in names:
        if not name or name in (".", "..") or "/" in name or os.sep in name:
            raise TledgeError(
                f"{option} tfds:{source.name}: class name {name!r} is not a folder name"
            )
    try:
        total = info.splits[source.split].num_examples
    except (KeyError, ValueError, TypeError) as error:
        raise TledgeError(
            f"{option} tfds:{source.name}/{source.split}: unknown split "
            f"(the dataset has: {', '.join(info.splits)})"
        ) from error
    folder = files_root / f"{builder.name}_{info.version}" / split_folder_name(source.split)
    if (folder / COMPLETE_MARKER).is_file():
        return ImageFolder(folder, names)
    _write_images(builder, source, image_key, label_key, names, folder, total, on_progress)
    atomic_write_text(
        folder / COMPLETE_MARKER,
        json.dumps({"dataset": builder.name, "version": str(info.version), "split": source.split}),
    )
    return ImageFolder(folder, names)


def _builder(source: TfdsSource, option: str, data_dir: str | None):
    try:
        import tensorflow_datasets as tfds
    except ImportError as error:
        raise TledgeError(
            f"{option} tfds:{source.name} needs tensorflow-datasets: pip install 'tledge[tfds]'"
        ) from error
    explicit = data_dir or os.environ.get("TFDS_DATA_DIR")
    try:
        builder = tfds.builder(source.name, data_dir=explicit)
    except tfds.core.DatasetNotFoundError as error:
        raise TledgeError(f"{option} tfds:{source.name}: no such TFDS dataset") from error
    if builder.is_prepared():
        return builder
    prepare = (
        "prepare it on a machine with internet access (pip install tensorflow-datasets; "
        f"python -c \"import tensorflow_datasets as tfds; tfds.builder('{source.name}', "
        "data_dir='DIR').download_and_prepare()\"), copy DIR here and pass --tfds-data-dir DIR"
    )
    if explicit:
        raise TledgeError(f"{option} tfds:{source.name}: not prepared in {explicit}; {prepare}")
    try:
        builder.download_and_prepare()
    except Exception as error:  # network, disk or manual-download errors alike
        raise TledgeError(
            f"{option} tfds:{source.name}: download failed ({type(error).__name__}); {prepare}"
        ) from error
    return builder


def _write_images(builder, source, image_key, label_key, names, folder, total, on_progress):
    import tensorflow_datasets as tfds

    for name in names:
        (folder / name).mkdir(parents=True, exist_ok=True)
    dataset = builder.as_dataset(
        split=source.split,
        shuffle_files=False,
        decoders={image_key: tfds.decode.SkipDecoding()},
    )
    stage = f"writing tfds:{source.name}/{source.split}"
    for index, example in enumerate(dataset.as_numpy_iterator()):
        data = example[image_key]
        if data.startswith(PNG_MAGIC):
            suffix = ".png"
        elif data.startswith(JPEG_MAGIC):
            suffix = ".jpg"
        else:
            raise TledgeError(
                f"tfds:{source.name}: feature {image_key!r} is not JPEG or PNG encoded"
            )
        target = folder / names[int(example[label_key])] / f"{index:07d}{suffix}"
        if not target.is_file():
            partial = target.with_name(target.name + ".part")
            partial.write_bytes(data)
            os.replace(partial, target)
        if on_progress and (index % 256 == 0 or index + 1 == total):
            on_progress(stage, index + 1, total)


@dataclass(frozen=True)
class Sources:
    """The folders a run reads, with TFDS sources replaced by their image folders.

    Attributes:
        data: Training folder.
        val: Validation folder or None.
        test: Test folder or None.
        class_names: The TFDS label names when a source is TFDS (the class order), else
            None (sorted folder names).
    """

    data: str
    val: str | None
    test: str | None
    class_names: tuple[str, ...] | None


def resolve_sources(
    data: str,
    val: str | None,
    test: str | None,
    data_dir: str | None,
    files_root: Path,
    on_progress: ProgressCallback | None = None,
) -> Sources:
    """Replace each `tfds:` option value by the folder of its written-out split.

    Example:
        >>> resolve_sources(
        ...     "tfds:food101", None, "tfds:food101/validation", None, Path("runs/.tfds")
        ... )
    """
    class_names: tuple[str, ...] | None = None
    resolved: list[str | None] = []
    for option, source in (("--data", data), ("--val", val), ("--test", test)):
        if not is_tfds(source):
            resolved.append(source)
            continue
        written = image_folder(
            parse_source(source, option), option, data_dir, files_root, on_progress
        )
        if class_names is not None and written.class_names != class_names:
            raise TledgeError(f"{option} {source}: its classes differ from the other sources'")
        class_names = written.class_names
        resolved.append(str(written.folder))
    return Sources(resolved[0], resolved[1], resolved[2], class_names)
