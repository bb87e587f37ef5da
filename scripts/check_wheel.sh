#!/usr/bin/env bash
# Build the wheel and check that it runs anywhere: installed into a fresh virtual
# environment, from an empty directory, with no checkout on the path,
#   python -m alharness [overrides]     composes the packaged configs and runs,
#   alharness-report                    reads what it wrote,
#   alharness --help                    shows the project's page (the console script),
# and a plugin package installed with pip (examples/plugin) adds its strategy, dataset and
# backbone. The venv sees the current environment's packages (--system-site-packages) so
# torch is not installed again; alharness itself comes only from the wheel.
#   bash scripts/check_wheel.sh          (CI runs it; KEEP=1 keeps the temporary folder)
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
[[ "${KEEP:-0}" == 1 ]] || trap 'rm -rf "$work"' EXIT
unset PYTHONPATH
export OMP_NUM_THREADS=1 WANDB_MODE=offline
step() { printf '[check_wheel %3ds] %s\n' "$SECONDS" "$*"; }
fail() { echo "check_wheel: FAILED: $*" >&2; exit 1; }

step "building the sdist, and the wheel from it (as a release would)"
python -m build --outdir "$work/dist" "$repo" > "$work/build.log" 2>&1 \
    || { tail -20 "$work/build.log"; fail "python -m build"; }
wheel="$(ls "$work"/dist/alharness-*.whl)"
python - "$wheel" <<'EOF' || fail "the wheel does not carry the configs and the Hydra plugin"
import sys, zipfile
names = set(zipfile.ZipFile(sys.argv[1]).namelist())
need = {"alharness/configs/config.yaml", "alharness/configs/hydra/help/alharness.yaml",
        "alharness/configs/experiment/alfa_mix/cifar10.yaml",
        "hydra_plugins/alharness_plugins/alharness_plugins.py", "alharness/__main__.py"}
missing = need - names
assert not missing, f"missing from the wheel: {sorted(missing)}"
assert not any(n.startswith(("tests/", "examples/", "configs/")) for n in names), "stray files"
EOF

step "installing it into a fresh venv"
python -m venv --system-site-packages "$work/venv"
py="$work/venv/bin/python"
"$py" -m pip install --quiet --disable-pip-version-check "$wheel" > "$work/pip.log" 2>&1 \
    || { tail -20 "$work/pip.log"; fail "pip install $wheel"; }
mkdir "$work/empty" && cd "$work/empty"
installed="$("$py" -c 'import alharness, os; print(os.path.dirname(alharness.__file__))')"
[[ "$installed" == "$work/venv/"* ]] || fail "alharness imported from $installed, not the wheel"

step "alharness --help (the console script)"
"$work/venv/bin/alharness" --help > help.txt 2>&1 || { cat help.txt; fail "alharness --help"; }
grep -q "strategy: .*cluster_margin" help.txt || { cat help.txt; fail "--help lists no strategies"; }

step "python -m alharness (one seed, two cycles) from an empty directory"
"$py" -m alharness --info searchpath > searchpath.txt 2>&1
grep -q "main .*file://$installed/configs" searchpath.txt \
    || { cat searchpath.txt; fail "the primary config path is not the wheel's alharness/configs"; }
"$py" -m alharness 'seeds=[0]' budget.cycles=2 trainer.epochs=2 progress=false \
    results_dir="$work/results" > run.log 2>&1 || { tail -30 run.log; fail "python -m alharness"; }
rows="$(ls "$work"/results/digits-small_cnn/*/rows.csv)"
[[ "$(wc -l < "$rows")" == 4 ]] || fail "expected 3 cycles in $rows"

step "alharness-report"
"$work/venv/bin/alharness-report" "$work/results" --out "$work/report" > report.log 2>&1 \
    || { cat report.log; fail "alharness-report"; }
[[ -s "$work/report/index.html" ]] || fail "no index.html"

step "a plugin package installed with pip adds a strategy, a dataset and a backbone"
cp -r "$repo/examples/plugin" "$work/plugin"  # a build writes into its source folder
"$py" -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation \
    "$work/plugin" > "$work/pip-plugin.log" 2>&1 \
    || { tail -20 "$work/pip-plugin.log"; fail "pip install examples/plugin"; }
"$py" -m alharness dataset=moons backbone=tiny_mlp strategy=confidence_ratio 'seeds=[0]' \
    budget.cycles=1 trainer.epochs=2 progress=false results_dir="$work/results" > plugin.log 2>&1 \
    || { tail -30 plugin.log; fail "the plugin's strategy through python -m alharness"; }
ls "$work"/results/moons-tiny_mlp/confidence_ratio-s0-*/rows.csv > /dev/null \
    || fail "no confidence_ratio run under $work/results/moons-tiny_mlp"

step "ok: the wheel runs from an empty directory"
