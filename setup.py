"""Packaging glue that pyproject.toml cannot express (everything else is in pyproject.toml).

The repository keeps the Hydra configs at the top level (``configs/``, beside ``run.py``);
the wheel carries them as the package ``alharness.configs`` so an installed alharness
composes its configs from any directory (`alharness.config_location`). setuptools maps a
package onto another folder only for packages it is given by name, so the list is built
here: alharness's packages, its Hydra plugin, and one package per config folder.
"""

from setuptools import find_namespace_packages, setup

CONFIG_PACKAGES = ["alharness.configs",
                   *(f"alharness.configs.{name}" for name in find_namespace_packages(where="configs"))]

setup(
    packages=[*find_namespace_packages(include=["alharness", "alharness.*", "hydra_plugins.*"]),
              *CONFIG_PACKAGES],
    package_dir={"alharness.configs": "configs"},
    package_data={package: ["*.yaml"] for package in CONFIG_PACKAGES},
)
