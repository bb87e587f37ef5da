"""Reports over results folders: learning curves, pairwise win matrices, summary tables
and ``index.html``. Reads only the files runs leave behind; never imports torch.

    python -m alharness.report results/ --out figures/

or, from Python::

    rows = load_results(["results/"], methods="alfamix")   # a paper's methods only
    win_matrix(rows, "alfamix")
    labels_to_target(rows, target=0.9, baseline="random")
    write_learning_curves("results/digits-small_cnn")     # → [PNG paths], e.g. for wandb
"""

from alharness.report.build import Report, write_learning_curves, write_report
from alharness.report.curves import curve_stats, plot_learning_curves
from alharness.report.errors import Finding, ReportError
from alharness.report.load import load, load_results
from alharness.report.presets import PRESETS, MethodPreset, resolve_methods
from alharness.report.style import variant_styles
from alharness.report.tables import (
    auc_table,
    first_crossing,
    labels_to_target,
    normalised_auc,
    selection_time_table,
)
from alharness.report.validate import validate
from alharness.report.win_matrix import (
    CONVENTIONS,
    plot_win_matrix,
    t_critical,
    win_matrix,
    write_win_matrix,
)

__all__ = [
    "CONVENTIONS", "PRESETS", "Finding", "MethodPreset", "Report", "ReportError", "auc_table",
    "curve_stats", "first_crossing", "labels_to_target", "load", "load_results",
    "normalised_auc", "plot_learning_curves", "plot_win_matrix", "resolve_methods",
    "selection_time_table", "t_critical", "validate", "variant_styles", "win_matrix",
    "write_learning_curves", "write_report", "write_win_matrix",
]
