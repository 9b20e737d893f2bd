"""Export choices and defaults, shared by `ExportOptions` and `tledge export`.

Plain constants with no imports, so the command line can show them without loading
TensorFlow or numpy.
"""

VARIANTS = ("fp32", "fp16", "dynamic", "int8")
IO_TYPES = ("uint8", "int8", "float32")
IO_TYPE = "uint8"
CALIBRATION_SIZE = 200
MAX_DRIFT_PP = 1.0
MIN_AGREEMENT = 0.0
SEED = 0
INT8_ROUNDING = "gptq"
INT8_ROUNDINGS = ("gptq", "nearest-corrected", "nearest")
# Self-test images embedded in each file (about 0.1 MB each at 256x256).
SELF_TEST_IMAGES = 4
