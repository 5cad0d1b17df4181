"""Datasets one call away, and the benchmark protocols built on them.

Where the data come from:

* **embedded** -- the ``pems08-tail`` PEMS08 flow (7,156 five-minute steps, 170
  sensors) and the SZ-taxi speeds (2,976 fifteen-minute steps, 156 roads) ship inside
  the package with their road graphs, exact, checked against a sha256 on every read;
  ``load_protocol("pems08-tail")`` needs nothing else;
* **fetched** -- :func:`fetch_pems` (PEMS03, 04, 07, 08, the benchmark files of STSGCN /
  ASTGCN) and :func:`fetch_ett` (ETTh1, ETTh2) download once into
  :func:`get_data_home` (``$STVLM_CACHE_DIR``, default ``~/.cache/stvlm``), atomically
  and verified; ``stvlm fetch PEMS08,ETTh1`` does the same from the shell;
* **a data folder** -- a folder with the same layout (``pems08/``, ``sz_taxi/``,
  ``ett/``, ``graphs/``) found by :func:`data_home`: ``data_dir=``, ``$STVLM_DATA_DIR``
  or a ``shared/data`` folder beside the repository. Fetchers look there before
  downloading, and an explicit folder overrides the embedded copy.

:func:`load_protocol` builds every benchmark protocol (:data:`PROTOCOLS`): the traffic
protocols ``pems08-tail``, ``sz-taxi`` and ``pems03`` ... ``pems08`` (12 in, 12 out,
masked MAE / RMSE / MAPE) and the long-term protocols ``etth1`` / ``etth2`` (MSE / MAE on
z-scored values at horizons 96 ... 720), as :class:`Protocol` objects that hold the
series a model may fit on, the test windows and the scoring.
"""

from ._ett import ETT_HORIZONS, fetch_ett, load_ett
from ._fetch import CACHE_ENV_VAR, FetchError, get_data_home  # noqa: F401 (CACHE_ENV_VAR: the variable's name)
from ._files import ENV_VAR, data_home, load_adjacency, load_pems  # noqa: F401 (ENV_VAR: the variable's name)
from ._pems_full import PEMS_DATASETS, fetch_pems
from ._protocol import Protocol
from ._protocols import LONG_TERM, PROTOCOLS, load_protocol, make_protocol

__all__ = [
    "ETT_HORIZONS",
    "FetchError",
    "LONG_TERM",
    "PEMS_DATASETS",
    "PROTOCOLS",
    "Protocol",
    "data_home",
    "fetch_ett",
    "fetch_pems",
    "get_data_home",
    "load_adjacency",
    "load_ett",
    "load_pems",
    "load_protocol",
    "make_protocol",
]
