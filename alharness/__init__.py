"""alharness: a config-driven benchmark harness for deep batch active learning."""

__version__ = "0.1.0"
