#!/usr/bin/env bash
# Create a separate virtual environment with aeon for benchmarks/bench_s2i.py.
# aeon pins numpy/numba versions that differ from (and would downgrade) the main
# environment's, so it lives in its own venv; bench_s2i.py runs it in a subprocess.
#
#   bash benchmarks/setup_aeon_env.sh [VENV_DIR]     # default /opt/aeon-venv
#
# Then: python benchmarks/bench_s2i.py  (or --aeon-python VENV_DIR/bin/python,
# or AEON_PYTHON=VENV_DIR/bin/python).
set -euo pipefail
VENV="${1:-/opt/aeon-venv}"
PY="${PYTHON:-python3}"
if [ ! -x "$VENV/bin/python" ]; then
    "$PY" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet aeon
"$VENV/bin/python" -c "import aeon, numpy, numba; print('aeon', aeon.__version__, 'numpy', numpy.__version__, 'numba', numba.__version__)"
echo "aeon venv ready: $VENV/bin/python"
