"""Why does ST-VLM (cpu preset) lose to the STID-like MLP on pems08-tail?

Three probes, written to benchmarks/results/investigation.json and printed:

1. **Does the forecast use the images?** The seed-0 ST-VLM model saved by
   ``benchmarks/run_experiments.sh`` (benchmarks/out/models/stvlm_cpu_full_seed0)
   forecasts the test windows again with their images altered: every window given the
   mean test image, images shuffled between windows, a constant 0.5 image, and one
   channel at a time replaced by its mean. If MAE barely moves, the image carries
   little the model uses.
2. **What carries STID?** STIDForecaster (cpu preset of the runner, seed 0) without the
   time-of-day embedding, without the sensor embedding, and without both: ST-VLM has
   neither input (docs/method.md: window tokens, image, prompt).
3. **Learning curves**: validation MAE per epoch of every saved curve of the full
   setting (benchmarks/results/before-12/pems08-tail-curves/).

    python benchmarks/investigate_stvlm.py [--models-dir benchmarks/out/models] [--skip-stid] [--skip-images]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from stvlm import STVLMForecaster
from stvlm.baselines import STIDForecaster
from stvlm.benchmark import BENCHMARK_PRESETS
from stvlm.datasets import load_protocol
from stvlm.images import CorrelationImages, correlation_channels

ROOT = Path(__file__).resolve().parents[1]


def image_probe(p, model_dir):
    model = STVLMForecaster.load(model_dir)
    ch = correlation_channels(p.test_X, dtw_scale=model.dtw_scale_, dtype=np.float32)
    mean = ch.mean(axis=0, keepdims=True)
    rng = np.random.default_rng(0)
    variants = {
        "images as computed": ch,
        "mean test image for every window": np.broadcast_to(mean, ch.shape),
        "images shuffled between windows": ch[rng.permutation(len(ch))],
        "constant 0.5 image": np.full_like(ch, 0.5),
    }
    for c, name in enumerate(("DTW", "cross-correlation", "spectral")):
        v = ch.copy()
        v[:, c] = mean[:, c]
        variants[f"{name} channel -> its mean"] = v
    out = {}
    for name, channels in variants.items():
        t0 = time.perf_counter()
        imgs = CorrelationImages(p.test_X, np.ascontiguousarray(channels), model.image_size_)
        r = p.evaluate(model.predict(imgs))
        out[name] = dict(MAE=r["MAE"], RMSE=r["RMSE"], MAPE=r["MAPE"], seconds=time.perf_counter() - t0)
        print(f"  {name:<36} MAE {r['MAE']:.3f}  RMSE {r['RMSE']:.3f}  MAPE {r['MAPE']:.2f}%", flush=True)
    return out


def stid_probe(p):
    out = {}
    for name, kw in {
        "STID": {},
        "STID w/o time of day": dict(tod_dim=0),
        "STID w/o sensor embedding": dict(node_dim=0),
        "STID w/o both (an MLP on the window)": dict(tod_dim=0, node_dim=0),
    }.items():
        t0 = time.perf_counter()
        m = STIDForecaster(steps_per_day=p.steps_per_day, first_time_index=p.first_time_index, random_state=0,
                           **{**BENCHMARK_PRESETS["stid"]["cpu"], **kw}).fit(p.fit_series)
        r = p.evaluate(m.predict(p.test_data()))
        out[name] = dict(MAE=r["MAE"], RMSE=r["RMSE"], MAPE=r["MAPE"], epochs=len(m.loss_history_),
                         best_epoch=m.best_epoch_, fit_seconds=time.perf_counter() - t0)
        print(f"  {name:<36} MAE {r['MAE']:.3f}  RMSE {r['RMSE']:.3f}  MAPE {r['MAPE']:.2f}%", flush=True)
    return out


def curves(curves_dir):
    out = {}
    for f in sorted(Path(curves_dir).glob("*_full_seed*.json")):
        h = json.loads(f.read_text())
        out[f.stem] = [round(e["val_loss"], 3) for e in h]
    for k, v in out.items():
        print(f"  {k:<32} best {min(v):.2f} at epoch {int(np.argmin(v)) + 1}/{len(v)}; last 3: {v[-3:]}")
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models-dir", default=str(ROOT / "benchmarks" / "out" / "models"))
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "investigation.json"))
    ap.add_argument("--skip-stid", action="store_true")
    ap.add_argument("--skip-images", action="store_true")
    args = ap.parse_args(argv)
    p = load_protocol("pems08-tail")
    results = {}
    out = Path(args.out)
    if out.exists():
        results = json.loads(out.read_text())
    if not args.skip_images:
        print("1. images altered at predict time (ST-VLM cpu, seed 0):")
        results["images"] = image_probe(p, Path(args.models_dir) / "stvlm_cpu_full_seed0")
    if not args.skip_stid:
        print("2. STID without its embeddings (seed 0):")
        results["stid"] = stid_probe(p)
    print("3. validation MAE per epoch (full fit period):")
    results["curves"] = curves(ROOT / "benchmarks" / "results" / "before-12" / "pems08-tail-curves")
    out.write_text(json.dumps(results, indent=1))
    return results


if __name__ == "__main__":
    main()
