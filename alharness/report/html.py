"""``index.html``: every figure, table and validation finding of a report on one page.

Self-contained except for the images beside it (relative links), so the output folder
can be copied or served as it is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from html import escape

import pandas as pd

from alharness.report.errors import Finding

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: .2em; }
table { border-collapse: collapse; margin: .5em 0 1.2em; font-size: .9em; }
th, td { border: 1px solid #ddd; padding: .25em .6em; text-align: right; }
th { background: #f3f3f3; } td:first-child, th:first-child { text-align: left; }
img { max-width: 100%; border: 1px solid #eee; }
.ok { color: #1a7f37; } .findings li { margin: .2em 0; } .kind { font-weight: 600; }
.note { color: #555; font-size: .9em; } .grid { display: flex; flex-wrap: wrap; gap: 2em; }
"""


@dataclass
class Section:
    """A titled block: an optional image, notes, and tables (title → table)."""

    title: str
    image: str | None = None
    notes: list[str] = field(default_factory=list)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)


def _anchor(title: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in title).strip("-").lower()


def _table(title: str, table: pd.DataFrame) -> str:
    return (f"<div><h3>{escape(title)}</h3>"
            f"{table.to_html(index=False, escape=True, border=0, na_rep='—')}</div>")


def _section(section: Section) -> str:
    parts = [f'<h2 id="{_anchor(section.title)}">{escape(section.title)}</h2>']
    if section.image:
        parts.append(f'<a href="{escape(section.image)}"><img src="{escape(section.image)}" '
                     f'alt="{escape(section.title)}"></a>')
    parts += [f'<p class="note">{escape(note)}</p>' for note in section.notes]
    parts.append('<div class="grid">' + "".join(_table(t, tab) for t, tab in
                                                section.tables.items()) + "</div>")
    return "\n".join(parts)


def _findings(findings: list[Finding]) -> str:
    if not findings:
        return ('<h2 id="validation">Validation</h2><p class="ok">No problems found: every run '
                'finished, every variant has the same seeds, no cell mixes configs.</p>')
    items = "".join(f'<li><span class="kind">{escape(f.kind)}</span>: {escape(f.message)}</li>'
                    for f in findings)
    return (f'<h2 id="validation">Validation: {len(findings)} finding(s)</h2>'
            f'<ul class="findings">{items}</ul>')


def render_index(title: str, summary: list[str], findings: list[Finding],
                 sections: list[Section]) -> str:
    """The whole page: summary lines, validation findings, then one block per section."""
    toc = "".join(f'<li><a href="#{_anchor(s.title)}">{escape(s.title)}</a></li>'
                  for s in sections)
    body = "\n".join([f"<h1>{escape(title)}</h1>",
                      *(f'<p class="note">{escape(line)}</p>' for line in summary),
                      f'<ul><li><a href="#validation">Validation</a></li>{toc}</ul>',
                      _findings(findings), *(_section(s) for s in sections)])
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>{escape(title)}</title><style>{_STYLE}</style></head>\n"
            f"<body>\n{body}\n</body></html>\n")
