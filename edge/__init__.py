"""The edge client: run exported tledge models (or any TFLite classifier) without TensorFlow.

Only numpy, OpenCV and a TFLite runtime are imported here.
"""
