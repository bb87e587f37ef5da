"""GitHub-flavoured Markdown tables, written without extra dependencies (no tabulate)."""

from __future__ import annotations

import pandas as pd


def _cell(value: object) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def markdown_table(table: pd.DataFrame) -> str:
    """A pipe table of ``table``'s columns (its index is not written)."""
    lines = ["| " + " | ".join(_cell(c) for c in table.columns) + " |",
             "|" + "|".join("---" for _ in table.columns) + "|"]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |"
              for row in table.itertuples(index=False, name=None)]
    return "\n".join(lines)


def markdown_sections(title: str, sections: dict[str, pd.DataFrame], note: str = "") -> str:
    """``# title``, an optional note, then ``## <setting>`` and its table per section."""
    parts = [f"# {title}", *([note] if note else [])]
    for heading, table in sections.items():
        parts += [f"## {heading}", markdown_table(table)]
    return "\n\n".join(parts) + "\n"
