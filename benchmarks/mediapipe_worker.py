"""Score images with MediaPipe Tasks' ImageClassifier; run by the Python of a MediaPipe venv.

MediaPipe pulls opencv-contrib-python, which would replace tledge's cv2, so it lives in
its own environment and this file imports nothing of tledge. `mediapipe_agreement.py`
runs it as `PYTHON mediapipe_worker.py MODEL LIST_FILE` (one image path per line) and
reads one JSON object from stdout: {"mediapipe": version, "results": [[[index, name,
score], ...], ...]} with every category of each image, or {"error": "..."} when
MediaPipe refuses the model.
"""

import json
import sys


def main(model: str, list_file: str) -> dict:
    """Every category's score for each image listed in `list_file`."""
    import mediapipe as mp
    from mediapipe.tasks import python as tasks
    from mediapipe.tasks.python import vision

    options = vision.ImageClassifierOptions(
        base_options=tasks.BaseOptions(model_asset_path=model), max_results=-1
    )
    try:
        classifier = vision.ImageClassifier.create_from_options(options)
    except Exception as error:  # MediaPipe raises several types for a refused model
        return {"error": str(error).strip().splitlines()[0]}
    with open(list_file, encoding="utf-8") as stream:
        paths = [line.rstrip("\n") for line in stream if line.strip()]
    results = []
    with classifier:
        for path in paths:
            classification = classifier.classify(mp.Image.create_from_file(path))
            categories = classification.classifications[0].categories
            results.append([[c.index, c.category_name, float(c.score)] for c in categories])
    return {"mediapipe": mp.__version__, "results": results}


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], sys.argv[2])))
