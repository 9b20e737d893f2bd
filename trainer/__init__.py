"""Transfer-learning trainer (needs TensorFlow: `pip install tledge[train]`)."""
