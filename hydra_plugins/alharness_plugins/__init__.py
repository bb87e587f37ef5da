"""Hydra plugins that alharness installs (see alharness_plugins.py)."""
