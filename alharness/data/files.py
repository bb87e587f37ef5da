"""Where each torchvision-format dataset lives under ``dataset.root`` and how to fetch it.

The loaders read the files themselves (pickle, .mat, idx), so they do not depend on
torchvision's MD5 checks, which small test files written in the same formats cannot
pass. Downloading goes through torchvision, which does verify the official MD5s.
Missing files give one line naming them and the command that fetches them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from alharness.errors import DataError


@dataclass(frozen=True)
class DatasetFiles:
    """The files a loader reads (relative to root; each entry lists accepted names, the
    first is the one named in messages) and how to fetch them."""

    name: str
    files: tuple[tuple[str, ...], ...]
    source: str  # where the files come from, for users fetching them by hand
    fetch: Callable[[Path], None]  # downloads into root with torchvision (MD5-verified)

    def locate(self, root: Path) -> list[Path | None]:
        """The first existing accepted path of every file, ``None`` where none exists."""
        found = []
        for names in self.files:
            paths = [root / name for name in names]
            found.append(next((p for p in paths if p.is_file()), None))
        return found

    def missing(self, root: Path) -> list[str]:
        return [names[0] for names, path in zip(self.files, self.locate(root), strict=True)
                if path is None]


#: Every torchvision-format dataset by name; `scripts/prepare_data.py` reads it.
DOWNLOADS: dict[str, DatasetFiles] = {}


def register_files(spec: DatasetFiles) -> DatasetFiles:
    DOWNLOADS[spec.name] = spec
    return spec


def _one_line(exc: BaseException, limit: int = 160) -> str:
    text = " ".join(f"{type(exc).__name__}: {exc}".split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def ensure_files(spec: DatasetFiles, root: str | Path, download: bool) -> list[Path]:
    """Paths of ``spec``'s files under ``root``, downloading them first if some are missing
    and ``download`` is true; otherwise (or if that fails) a one-line `DataError`."""
    root = Path(root).expanduser()
    missing = spec.missing(root)
    reason = "dataset.download=false"
    if missing and download:
        try:
            spec.fetch(root)
        except Exception as exc:  # network, HTTP, MD5 mismatch, disk: all end the same way
            reason = f"download failed: {_one_line(exc)}"
        missing = spec.missing(root)
    if missing:
        raise DataError(
            f"dataset {spec.name!r} not found: expected {', '.join(missing)} under {root}/ "
            f"({reason}); fetch it with `python scripts/prepare_data.py {spec.name} "
            f"--root {root}` on a machine with internet (source: {spec.source}), or set "
            f"dataset.root to where the files are")
    return [p for p in spec.locate(root) if p is not None]
