"""Import a script that lives outside the package (benchmarks/, docs/, tests/) for its tests.

The scripts are run as files, not installed, so the tests load them by path.
"""

import importlib.util
from pathlib import Path


def load_script(path):
    """Return the module of the Python file at ``path``, named after its stem."""
    path = Path(path)
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
