"""The copy of the pems08-tail and SZ-taxi data that ships inside the package.

Written by ``tools/embed_data.py`` from the data folder; values are exact (PEMS08 flow is
whole vehicle counts, stored as ``uint16``; SZ-taxi speeds as the original float64), and
each series is checked against the sha256 in ``data/MANIFEST.json`` when it is read.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import lzma
import pathlib

import numpy as np

__all__ = ["EMBEDDED", "embedded_graph_path", "embedded_series", "embedded_info"]

_DIR = pathlib.Path(__file__).resolve().parent / "data"

#: Datasets with an embedded copy.
EMBEDDED = ("pems08-tail", "sz-taxi")


@functools.lru_cache(maxsize=None)
def _manifest() -> dict:
    return json.loads((_DIR / "MANIFEST.json").read_text())


def embedded_info(name) -> dict:
    """Manifest entry of an embedded dataset (shape, sha256, start time, source)."""
    if name not in EMBEDDED:
        raise ValueError(f"no embedded copy of {name!r}; embedded datasets: {', '.join(EMBEDDED)}.")
    return dict(_manifest()[name])


@functools.lru_cache(maxsize=None)
def _read(name) -> np.ndarray:
    info = embedded_info(name)
    path = _DIR / info["file"]
    try:
        raw = lzma.decompress(path.read_bytes())
        arr = np.load(io.BytesIO(raw), allow_pickle=False)
    except (OSError, lzma.LZMAError, ValueError) as exc:
        raise RuntimeError(
            f"the embedded copy of {name!r} ({path}) cannot be read ({exc}); reinstall stvlm, or "
            f"point data_dir / $STVLM_DATA_DIR at a folder holding {info['source']}."
        ) from exc
    series = np.ascontiguousarray(arr, dtype=np.float64)
    if list(series.shape) != info["shape"] or hashlib.sha256(series.tobytes()).hexdigest() != info["sha256"]:
        raise RuntimeError(
            f"the embedded copy of {name!r} ({path}) does not match its checksum in MANIFEST.json: "
            f"the installation is damaged; reinstall stvlm."
        )
    series.setflags(write=False)
    return series


def embedded_series(name) -> np.ndarray:
    """The embedded ``(T, N)`` float64 series, verified; a fresh writable copy each call."""
    return _read(name).copy()


def embedded_graph_path(name) -> pathlib.Path:
    """Path of the embedded road graph of a dataset (a csv :func:`load_adjacency` reads)."""
    return _DIR / embedded_info(name)["graph"]
