"""Loaders of the real traffic data and the benchmark protocols built on them.

The data are never part of the repository: they live in a ``shared/data`` folder
beside it (``<repo root>/../shared/data``) or wherever the environment variable
``STVLM_DATA_DIR`` points (see :func:`data_home`). The files:

* ``pems08/pems08_flow_tail.npz`` -- PEMS08 flow, the last 40 % of the series
  (7,156 five-minute steps, 170 sensors), and ``pems08/distance.csv``, its road graph;
* ``sz_taxi/sz_taxi.npz`` -- SZ-taxi speeds (2,976 fifteen-minute steps, 156 roads),
  and ``sz_taxi/sz_adj.csv``, its dense 0/1 adjacency;
* ``graphs/`` -- road-graph edge lists of PEMS03 (keyed by sensor ids), PEMS04 and
  PEMS07.

The PEMS files are the benchmark files published with STSGCN and ASTGCN
(``PEMS0X.npz`` with key ``data`` of shape ``(T, N, C)`` and ``distance.csv`` edge
lists); SZ-taxi is the dataset of the T-GCN paper.

:func:`load_protocol` builds the two benchmark protocols, ``"pems08-tail"`` and
``"sz-taxi"``, as :class:`Protocol` objects that hold the series a model may fit on,
the test windows and the masks to score them with.
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
