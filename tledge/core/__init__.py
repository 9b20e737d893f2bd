"""The TF-free core every layer uses: errors, atomic writes, text and label files, dataset
folder listing, the run folder with its typed config (`RunConfig`), and the
classification metrics.

It imports neither TensorFlow nor OpenCV (numpy at most), so the trainer, the exporter
and the edge client can all depend on it without depending on each other.
"""
