"""Folders a command will write to (or read from) must be usable before it starts."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from alharness.config.messages import contract
from alharness.errors import ConfigError


def can_create_in(folder: Path) -> bool:
    """Whether a folder can be made in ``folder``: tried (and removed at once), since
    permission bits do not tell for the superuser, read-only mounts or ``/proc``."""
    if not os.access(folder, os.W_OK | os.X_OK):
        return False
    try:
        probe = tempfile.mkdtemp(prefix=".alharness-probe-", dir=folder)
    except OSError:
        return False
    os.rmdir(probe)
    return True


def check_directory(key: str, path: str, writable: bool) -> None:
    """``path`` is a directory or can be created as one (its nearest existing ancestor is a
    directory, writable if ``writable``). Nothing is left behind."""
    target = Path(path).expanduser().absolute()
    existing = next(p for p in (target, *target.parents) if p.exists())
    expected = "a writable directory" if writable else "a directory"
    if not existing.is_dir():
        where = "" if existing == target else f" ({existing} is a file)"
        raise ConfigError(contract(key, f"not a directory{where}", path, expected))
    if writable and not can_create_in(existing):
        where = "" if existing == target else f" ({existing} is read-only)"
        raise ConfigError(contract(key, f"not writable{where}", path, expected))
