"""TFLite exporter with an accuracy-drift gate (needs TensorFlow: `pip install tledge[train]`)."""
