"""tledge: small image dataset to a fast, verified TFLite classifier on a Raspberry Pi.

This package must stay light: `import tledge.edge` runs on a Pi without TensorFlow.
"""

__version__ = "0.1.0"
