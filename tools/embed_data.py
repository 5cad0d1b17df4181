"""Write the package's embedded copy of the pems08-tail and SZ-taxi data.

    python tools/embed_data.py ../shared/data

Reads ``pems08/pems08_flow_tail.npz``, ``pems08/distance.csv``, ``sz_taxi/sz_taxi.npz``
and ``sz_taxi/sz_adj.csv`` of the given data folder and writes, into
``stvlm/datasets/data/``, each series as an xz-compressed ``.npy`` (sensor-major, so
that each sensor's run compresses well; PEMS08 flow, whole vehicle counts up to 1,147,
as exact ``uint16``; SZ-taxi speeds as the original ``float64``), the two graphs as they
are, and ``MANIFEST.json`` with the sha256 of each series' float64 values, which the
reader checks on every load. Run it only to refresh the copy; the result is committed.
"""

from __future__ import annotations

import hashlib
import io
import json
import lzma
import pathlib
import shutil
import sys

import numpy as np

OUT = pathlib.Path(__file__).resolve().parents[1] / "stvlm" / "datasets" / "data"


def _xz_npy(arr, path):
    buf = io.BytesIO()
    np.save(buf, np.asfortranarray(arr), allow_pickle=False)
    path.write_bytes(lzma.compress(buf.getvalue(), preset=9 | lzma.PRESET_EXTREME))


def _digest(series):
    return hashlib.sha256(np.ascontiguousarray(series, dtype=np.float64).tobytes()).hexdigest()


def main(src):
    src = pathlib.Path(src)
    OUT.mkdir(parents=True, exist_ok=True)
    manifest = {}
    with np.load(src / "pems08" / "pems08_flow_tail.npz", allow_pickle=False) as z:
        flow = z["data"][:, :, 0]
        meta = {k: z[k].item() for k in ("start_index", "total_len", "start_time")}
    assert np.array_equal(flow, np.round(flow)) and flow.min() >= 0 and flow.max() < 2**16
    _xz_npy(flow.astype(np.uint16), OUT / "pems08_flow_tail.npy.xz")
    manifest["pems08-tail"] = dict(
        file="pems08_flow_tail.npy.xz", graph="pems08_distance.csv", shape=list(flow.shape),
        sha256=_digest(flow), source="pems08/pems08_flow_tail.npz",
        start_index=int(meta["start_index"]), total_len=int(meta["total_len"]), start_time=str(meta["start_time"]),
    )
    shutil.copyfile(src / "pems08" / "distance.csv", OUT / "pems08_distance.csv")
    with np.load(src / "sz_taxi" / "sz_taxi.npz", allow_pickle=False) as z:
        speed = z["data"][:, :, 0]
    _xz_npy(speed, OUT / "sz_taxi.npy.xz")
    manifest["sz-taxi"] = dict(
        file="sz_taxi.npy.xz", graph="sz_adj.csv", shape=list(speed.shape), sha256=_digest(speed),
        source="sz_taxi/sz_taxi.npz", start_time="2015-01-01T00:00",
    )
    shutil.copyfile(src / "sz_taxi" / "sz_adj.csv", OUT / "sz_adj.csv")
    (OUT / "MANIFEST.json").write_text(json.dumps(manifest, indent=1) + "\n")
    for f in sorted(OUT.iterdir()):
        print(f"{f.stat().st_size:>10,}  {f.name}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "../shared/data")
