"""alharness: a config-driven benchmark harness for deep batch active learning."""

import logging

__version__ = "0.1.0"

# faiss logs which SIMD build it tries at INFO, including a ModuleNotFoundError traceback
# line for the AVX-2 build it falls back from; under Hydra's INFO logging that reads like a
# failure at the start of every run.
logging.getLogger("faiss.loader").setLevel(logging.WARNING)
