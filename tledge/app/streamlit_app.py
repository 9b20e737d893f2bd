"""The `tledge app` Streamlit app: browse runs, try photos, review collected frames.

Started by `tledge app`, which passes its folders in the environment:
TLEDGE_APP_RUNS (runs root), TLEDGE_APP_COLLECTED (a `--collect` folder) and
TLEDGE_APP_DATA (the dataset reviewed frames are filed into).
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import streamlit as st

from tledge.app.review import ReviewQueue
from tledge.app.runs import list_runs, read_run
from tledge.core.errors import TledgeError

PAGES = ("Runs", "Try photos", "Review")
RUNS = Path(os.environ.get("TLEDGE_APP_RUNS", "runs"))
COLLECTED = Path(os.environ.get("TLEDGE_APP_COLLECTED", "collected"))
DATA = Path(os.environ.get("TLEDGE_APP_DATA", "new_photos"))


@st.cache_resource
def load_classifier(path: str):
    """One Classifier per model file, shared by the app's sessions."""
    from tledge.edge.classifier import Classifier

    return Classifier(path, num_threads=2)


def runs_page() -> None:
    st.header("Runs")
    runs = list_runs(RUNS)
    if not runs:
        st.info(f"No runs in {RUNS} (folders with a config.json).")
        return
    views = [read_run(path) for path in runs]
    st.subheader("Compare")
    st.dataframe(
        [
            {
                "run": view.name,
                "backbone": view.config.get("backbone"),
                "test accuracy": view.accuracy,
                "epochs": len(view.epochs),
                "exported": len(view.exported),
            }
            for view in views
        ],
        hide_index=True,
    )
    view = views[[v.name for v in views].index(st.selectbox("Run", [v.name for v in views]))]
    if view.accuracy is not None:
        st.metric("test accuracy", f"{100 * view.accuracy:.1f} %")
    curves = {
        key: [epoch.get(key) for epoch in view.epochs]
        for key in ("accuracy", "val_accuracy", "loss", "val_loss")
        if any(epoch.get(key) is not None for epoch in view.epochs)
    }
    if curves:
        st.subheader("Learning curves")
        st.line_chart({k: v for k, v in curves.items() if "accuracy" in k})
        st.line_chart({k: v for k, v in curves.items() if "loss" in k})
    for name, path in view.plots.items():
        st.subheader(name.removesuffix(".png").replace("_", " "))
        st.image(str(path))


def try_page() -> None:
    st.header("Try photos")
    models = [path for run in list_runs(RUNS) for path in read_run(run).exported]
    extra = st.text_input("or a .tflite path", key="model-path")
    choices = [str(path) for path in models] + ([extra] if extra else [])
    if not choices:
        st.info(f"No exported models in {RUNS}/*/export/ ; give a .tflite path.")
        return
    model = st.selectbox("Model", choices, index=len(choices) - 1 if extra else 0)
    top_k = st.slider("top-k", 1, 10, 3)
    uploads = st.file_uploader("Photos", accept_multiple_files=True, type=["jpg", "jpeg", "png"])
    try:
        classifier = load_classifier(model)
    except TledgeError as error:
        st.error(str(error))
        return
    for upload in uploads or []:
        image = cv2.imdecode(np.frombuffer(upload.getvalue(), np.uint8), cv2.IMREAD_COLOR)
        if image is None:
            st.warning(f"{upload.name}: not an image")
            continue
        result = classifier.classify(image, top_k=top_k)
        left, right = st.columns(2)
        left.image(image[:, :, ::-1], caption=upload.name)
        # A calibrated model's contract carries the threshold under which it says unknown.
        threshold = getattr(classifier.contract, "unknown_threshold", None)
        if threshold is not None and float(result.scores.max()) < threshold:
            right.warning("unknown: the model does not recognise this")
        right.table({label: f"{100 * score:.1f} %" for label, score in result.top_k})


def review_page() -> None:
    st.header("Review collected frames")
    try:
        queue = ReviewQueue(COLLECTED, DATA)
    except TledgeError as error:
        st.error(str(error))
        return
    skipped = st.session_state.setdefault("skipped", set())
    pending = [frame for frame in queue.pending() if frame.stem not in skipped]
    st.caption(f"{len(pending)} frames to review in {COLLECTED}, filed into {DATA}")
    if not pending:
        st.success("Nothing left to review.")
        return
    frame = pending[0]
    left, right = st.columns([3, 2])
    left.image(str(frame.image), caption=f"{frame.stem}  (doubt {frame.doubt:.2f})")
    reasons = ", ".join(frame.info.get("reasons", []))
    right.markdown(f"**doubt {frame.doubt:.2f}** ({reasons})")
    right.table({label: f"{100 * score:.1f} %" for label, score in frame.top_k})
    labels = list(frame.info.get("scores", {})) or [label for label, _ in frame.top_k]
    classes = sorted(set(queue.classes()) | set(labels))
    message = None
    columns = st.columns(3)
    for index, label in enumerate(classes):
        shortcut = str(index + 1) if index < 9 else None
        text = f"{label}  [{shortcut}]" if shortcut else label
        if columns[index % 3].button(text, key=f"file-{label}", shortcut=shortcut):
            message = f"filed as {label}: {queue.file(frame, label).parent}"
    new_class = st.text_input("new class", key="new-class")
    if st.button("File as new class", key="file-new") and new_class:
        try:
            message = f"filed as {new_class}: {queue.file(frame, new_class).parent}"
        except TledgeError as error:
            st.error(str(error))
    skip, delete = st.columns(2)
    if skip.button("Skip  [S]", key="skip", shortcut="S"):
        skipped.add(frame.stem)
        message = "skipped"
    if delete.button("Delete  [Del]", key="delete", shortcut="Delete"):
        queue.delete(frame)
        message = "deleted"
    if message:
        st.session_state["last"] = message
        st.rerun()
    if "last" in st.session_state:
        st.caption(f"last: {st.session_state['last']}")


page = st.sidebar.radio("Page", PAGES, key="page")
{"Runs": runs_page, "Try photos": try_page, "Review": review_page}[page]()
