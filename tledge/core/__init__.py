"""The TF-free core every layer uses: errors, atomic writes, text and label files, dataset
folder listing, and the run folder with its typed config.

It imports neither TensorFlow nor OpenCV, so the trainer, the exporter and the edge client
can all depend on it without depending on each other.
"""
