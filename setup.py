"""Packaging glue that pyproject.toml cannot express (everything else is in pyproject.toml).

The repository keeps the Hydra configs at the top level (``configs/``, beside ``run.py``);
the wheel carries a copy as ``alharness/configs``, so an installed alharness composes its
configs from any directory (`alharness.config_location`). The copy is made at build time
rather than by mapping a package onto ``configs/``: with every package where its name says,
an editable install is a plain path entry for the checkout, which is what lets Hydra
discover ``hydra_plugins/alharness_plugins`` there (it lists that namespace with pkgutil,
which cannot see into setuptools' import hooks).
"""

import shutil
from pathlib import Path

from setuptools import find_namespace_packages, setup
from setuptools.command.build_py import build_py

CONFIGS = Path(__file__).resolve().parent / "configs"


class BuildPyWithConfigs(build_py):
    """build_py, then ``configs/**/*.yaml`` copied to ``<build>/alharness/configs``."""

    def run(self) -> None:
        super().run()
        if self.editable_mode:  # the checkout's configs/ are used in place
            return
        target = Path(self.build_lib, "alharness", "configs")
        for source in sorted(CONFIGS.rglob("*.yaml")):
            destination = target / source.relative_to(CONFIGS)
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, destination)


setup(
    packages=find_namespace_packages(include=["alharness", "alharness.*", "hydra_plugins.*"]),
    package_dir={"": "."},
    cmdclass={"build_py": BuildPyWithConfigs},
)
