"""Classify images with MediaPipe Tasks' ImageClassifier; run by a venv that has mediapipe.

Usage: python mediapipe_classify.py MODEL IMAGE... ; prints one JSON object:
{"results": [[category_name, score], ...]} with the top category of each image, or
{"error": "..."} when MediaPipe refuses the model.
"""

import json
import sys

import mediapipe as mp
from mediapipe.tasks import python as tasks
from mediapipe.tasks.python import vision


def main(model: str, images: list[str]) -> dict:
    options = vision.ImageClassifierOptions(
        base_options=tasks.BaseOptions(model_asset_path=model), max_results=1
    )
    try:
        classifier = vision.ImageClassifier.create_from_options(options)
    except Exception as error:  # MediaPipe raises several types for a refused model
        return {"error": str(error).strip().splitlines()[0]}
    results = []
    with classifier:
        for path in images:
            top = classifier.classify(mp.Image.create_from_file(path)).classifications[0]
            category = top.categories[0]
            results.append([category.category_name, float(category.score)])
    return {"results": results}


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], sys.argv[2:])))
