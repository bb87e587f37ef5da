"""Where alharness's own Hydra configs are, in a source checkout and in an installed wheel.

The repository keeps them at the top level (``configs/``, beside ``run.py``); the wheel
carries the same files as ``alharness/configs`` (``setup.py`` maps one onto the other).
``CONFIG_PATH`` is what a ``@hydra.main(config_path=...)`` anywhere in the package
passes, so ``python -m alharness`` composes the same configs as ``run.py``, from any
working directory.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent
_INSTALLED = _PACKAGE / "configs"           # a wheel install
_CHECKOUT = _PACKAGE.parent / "configs"     # a source checkout or an editable install

CONFIG_DIR: Path = _INSTALLED if _INSTALLED.is_dir() else _CHECKOUT
CONFIG_PATH: str = str(CONFIG_DIR)


def is_alharness_config_source(path: str) -> bool:
    """Whether a Hydra search-path entry (``file://...``, a plain path or
    ``pkg://alharness.configs``) is alharness's own config directory."""
    if path == "pkg://alharness.configs":
        return True
    if "://" in path and not path.startswith("file://"):
        return False
    local = Path(path.removeprefix("file://"))
    return local.is_dir() and local.resolve() == CONFIG_DIR
