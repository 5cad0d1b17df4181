"""A ready GPU check: one script, at most ~8 minutes on one GPU, that records as JSON

1. correlation images per window at N = 170, 307, 883 sensors with the torch kernels
   (on the device), beside the CPU numba kernels and tslearn's DTW on a sample, and how
   far the torch images are from the numba ones;
2. one training step of ST-VLM with a ViLT-B/32-sized random backbone (hidden 768,
   12 layers, 12 heads, patch 32) at N = 170 and batch 32: seconds per step and peak
   GPU memory, in fp32 and bf16;
3. one epoch of the ``gpu`` benchmark preset's model on the ``pems08-tail`` fit period
   (a random ViLT-B/32-sized backbone: no weights can be downloaded on the machine).

    python benchmarks/gpu_check.py --out gpu_check.json            # on the GPU machine
    python benchmarks/gpu_check.py --tiny --device cpu --out x.json  # tiny sizes, any machine

Every section records its own error instead of stopping the script, and sections that
would start after ``--budget`` seconds are skipped (and say so), so a run always leaves a
JSON. ``tests/test_gpu_check.py`` runs ``--tiny`` on the CPU.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
import traceback

import numpy as np

VILT_B32 = dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072,
                patch_size=32, image_size=384, max_position_embeddings=40, vocab_size=30522)
TINY = dict(hidden_size=32, num_hidden_layers=1, num_attention_heads=4, intermediate_size=64, patch_size=8,
            image_size=16, max_position_embeddings=40, vocab_size=500)


def _sync(device):
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(fn, device, repeat):
    fn()  # warm-up: compilation, cuDNN / numba caches
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(repeat):
        fn()
    _sync(device)
    return (time.perf_counter() - t0) / repeat


def images_section(device, sizes, n_windows, sample, rng):
    """Seconds per window of the three-channel images: torch on the device, numba, tslearn DTW."""
    from tslearn.metrics import cdist_dtw

    from stvlm.kernels import correlation_channels, correlation_channels_torch, fit_dtw_scale

    rows = []
    for N in sizes:
        X = rng.gamma(2.0, 50.0, size=(n_windows, 12, N))
        scale = fit_dtw_scale(X[:sample])
        row = dict(n_sensors=N, windows=n_windows)
        row["torch_s_per_window"] = _timed(lambda: correlation_channels_torch(X, scale, device), device, 2) / n_windows
        row["numba_s_per_window"] = _timed(lambda: correlation_channels(X[:sample], scale), device, 1) / sample
        row["tslearn_dtw_s_per_window"] = _timed(lambda: cdist_dtw(X[0].T[:, :, None]), device, 1)
        ours = np.asarray(correlation_channels_torch(X[:sample], scale, device).float().cpu())
        row["max_abs_diff_torch_vs_numba"] = float(np.abs(ours - correlation_channels(X[:sample], scale)).max())
        rows.append(row)
    return rows


def train_step_section(device, backbone, n_sensors, batch, rng):
    """Seconds per optimiser step and peak device memory, fp32 and bf16."""
    import torch

    from stvlm import STVLMForecaster
    from stvlm._device import autocast

    def measure(precision):  # its own scope: one precision's model is freed before the next
        est = STVLMForecaster(backbone=backbone, device=str(device), precision=precision, random_state=0)
        torch.manual_seed(0)
        module = est._build_module(n_sensors).to(device)
        opt = torch.optim.Adam([p for p in module.parameters() if p.requires_grad], lr=1e-4)
        x = torch.as_tensor(rng.normal(size=(batch, 12, n_sensors)), dtype=torch.float32, device=device)
        images = torch.rand(batch, 3, n_sensors, n_sensors, device=device)
        y = torch.as_tensor(rng.normal(size=(batch, 12, n_sensors)), dtype=torch.float32, device=device)

        def step():
            with autocast(device, precision):
                pred = module(x, images)
            loss = (pred.float() - y).abs().mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        if device.type == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(device)
        seconds = _timed(step, device, 3)
        peak = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None
        return dict(precision=precision, n_sensors=n_sensors, batch=batch, seconds_per_step=seconds,
                    peak_device_memory_mb=peak,
                    trainable_parameters=sum(p.numel() for p in module.parameters() if p.requires_grad))

    rows = [measure(precision) for precision in ("fp32", "bf16")]
    return rows


def epoch_section(device, backbone, rows):
    """One epoch of the ``gpu`` preset's model on the pems08-tail fit period."""
    from stvlm import STVLMForecaster
    from stvlm.benchmark import BENCHMARK_PRESETS
    from stvlm.datasets import load_protocol

    p = load_protocol("pems08-tail")
    series = p.fit_series if rows is None else p.fit_series[-rows:]
    cfg = dict(BENCHMARK_PRESETS["stvlm"]["gpu"])
    name = cfg.pop("preset")
    cfg.update(device=str(device), backbone=backbone, max_epochs=1, random_state=0, verbose=0)
    est = STVLMForecaster.from_preset(name, **cfg)
    t0 = time.perf_counter()
    est.fit(series)
    fit_s = time.perf_counter() - t0
    record = est.loss_history_[0]
    return dict(preset=f"gpu (model preset {name!r}, random backbone)", fit_rows=int(series.shape[0]),
                fit_seconds=fit_s, epoch_seconds=record["seconds"], train_loss=record["train_loss"],
                val_loss=record["val_loss"], precision=est.precision)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto", help="auto (CUDA when available), cuda, cuda:1, cpu")
    parser.add_argument("--out", default="gpu_check.json")
    parser.add_argument("--tiny", action="store_true", help="tiny sizes: the test suite's CPU run")
    parser.add_argument("--budget", type=float, default=420.0, help="seconds after which no section starts")
    args = parser.parse_args(argv)

    import torch

    from stvlm._device import resolve_device

    device = torch.device(str(resolve_device(args.device)))
    t_start = time.perf_counter()
    rng = np.random.default_rng(0)
    if args.tiny:
        plan = dict(sizes=(5, 7), n_windows=4, sample=2, backbone=TINY, n_sensors=6, batch=4, rows=300)
    else:
        plan = dict(sizes=(170, 307, 883), n_windows=64, sample=4, backbone=VILT_B32, n_sensors=170, batch=32,
                    rows=None)
    report = dict(
        device=str(device), gpu=torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        torch=torch.__version__, python=platform.python_version(), tiny=args.tiny, started=time.strftime("%FT%T"),
        sections={}, errors={}, skipped=[],
    )
    sections = [
        ("images", lambda: images_section(device, plan["sizes"], plan["n_windows"], plan["sample"], rng)),
        ("train_step", lambda: train_step_section(device, plan["backbone"], plan["n_sensors"], plan["batch"], rng)),
        ("epoch", lambda: epoch_section(device, plan["backbone"], plan["rows"])),
    ]
    for name, run in sections:
        if time.perf_counter() - t_start > args.budget:
            report["skipped"].append(name)
            continue
        t0 = time.perf_counter()
        try:
            report["sections"][name] = run()
        except Exception:  # noqa: BLE001 - a check records what failed and goes on
            report["errors"][name] = traceback.format_exc(limit=8)
        report.setdefault("section_seconds", {})[name] = time.perf_counter() - t0
        with open(args.out, "w") as f:  # after every section: a killed run still leaves its figures
            json.dump(report, f, indent=1, default=float)
    report["total_seconds"] = time.perf_counter() - t_start
    with open(args.out, "w") as f:
        json.dump(report, f, indent=1, default=float)
    print(json.dumps({k: report[k] for k in ("device", "total_seconds", "skipped")} | {"errors": list(report["errors"])}))
    return 1 if report["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
