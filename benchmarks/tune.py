"""Choose settings on validation data: fit variants of a model on a protocol's fit
period (or its few-shot part) and record each fit's *validation* MAE, never a test
figure.

Each fit holds out the last ``validation_fraction`` (20 %) of its own windows, after a
gap, exactly as in ``stvlm benchmark``; ``best_score_`` (the negative validation MAE of
the restored epoch) is what is compared. The test windows are not read: this script
never calls ``predict`` on them. Rows go to ``benchmarks/results/tuning.jsonl``; a
(protocol, setting, model, variant, seed) already there is skipped, so runs resume.

    python benchmarks/tune.py --protocol pems08-tail --model stvlm --variants level,change --settings full
"""

from __future__ import annotations

import argparse
import contextlib
import json
import time
from pathlib import Path

import numpy as np

#: The cpu preset since session 8 (MLP head, width 128), spelled out: the base of the
#: variants added in session 9.
_MLP_PRESET = dict(calendar="time-of-day", output="change", max_epochs=30, patience=6,
                   lr_schedule="cosine", learning_rate=4e-3, head="mlp", decoder_hidden=128)

#: Variants by model: constructor overrides on top of the benchmark's ``cpu`` preset.
VARIANTS = {
    "stvlm": {
        "level": dict(calendar=None, output="level"),
        "change": dict(calendar=None, output="change"),
        "level+tod": dict(calendar="time-of-day", output="level"),
        "change+tod": dict(calendar="time-of-day", output="change"),
        "change+tod-tokens": dict(calendar="time-of-day", calendar_form="tokens", output="change"),
        "change+tod+dow": dict(calendar="time-of-day+day-of-week", output="change"),
        "change+tod+dow-tokens": dict(calendar="time-of-day+day-of-week", calendar_form="tokens", output="change"),
        # output="change" without "epoch 0" (the loop's validate_initial off): the few-shot diagnosis
        "change-noguard": dict(calendar=None, output="change", _no_initial=True),
        "change+tod-e30": dict(calendar="time-of-day", output="change", max_epochs=30, patience=6, lr_patience=2),
        "change+tod-e30-lr4": dict(calendar="time-of-day", output="change", max_epochs=30, patience=6, lr_patience=2,
                                   learning_rate=4e-3),
        # the cosine schedule of the shared loop: decays to ~0 at the 30-epoch cap
        "change+tod-e30-cos2": dict(calendar="time-of-day", output="change", max_epochs=30, patience=6,
                                    lr_schedule="cosine", learning_rate=2e-3),
        "change+tod-e30-cos4": dict(calendar="time-of-day", output="change", max_epochs=30, patience=6,
                                    lr_schedule="cosine", learning_rate=4e-3),
        # the cpu preset (cosine, 4e-3) with the library's LSTM widths instead of 32
        "change+tod-e30-cos4-h64": dict(calendar="time-of-day", output="change", max_epochs=30, patience=6,
                                        lr_schedule="cosine", learning_rate=4e-3, encoder_hidden=64,
                                        decoder_hidden=64),
        # the cosine preset with the LSTM decoder (width 32), explicitly: the cpu preset has the
        # MLP head since session 8, so the variants above that name no head ran with the LSTM
        # head before it and would get the MLP head now
        "change+tod-e30-cos4-lstm": dict(calendar="time-of-day", output="change", max_epochs=30, patience=6,
                                         lr_schedule="cosine", learning_rate=4e-3, head="lstm", decoder_hidden=32),
        # the cpu preset with STID's residual-MLP readout (width 128) for the LSTM decoder
        "change+tod-e30-cos4-mlp": dict(calendar="time-of-day", output="change", max_epochs=30, patience=6,
                                        lr_schedule="cosine", learning_rate=4e-3, head="mlp", decoder_hidden=128),
        "change+tod-e30-cos4-mlp-e64": dict(calendar="time-of-day", output="change", max_epochs=30, patience=6,
                                            lr_schedule="cosine", learning_rate=4e-3, head="mlp",
                                            decoder_hidden=128, encoder_hidden=64),
        # "change+tod-e30-cos4-mlp-encmlp64" (encoder="mlp": STID's window embedding, a residual
        # MLP over the raw window, width 64, for the LSTM encoder): measured at commit dd7466f,
        # 15.83 (best epoch 30/30); the option was removed.
        # few-shot diagnosis (scored on the full fit period's validation windows): the MLP-head
        # preset without its calendar, with a 4x lower learning rate
        "change-e30-cos4-mlp": {**_MLP_PRESET, "calendar": None},
        "change+tod-e30-cos1-mlp": {**_MLP_PRESET, "learning_rate": 1e-3},
        # the MLP head at width 32 and 64 (the few-shot diagnosis: a smaller head)
        "change+tod-e30-cos4-mlp32": {**_MLP_PRESET, "decoder_hidden": 32},
        "change+tod-e30-cos4-mlp64": {**_MLP_PRESET, "decoder_hidden": 64},
        # the preset without the loop's "epoch 0" check: what training alone finds at 5 %
        "change+tod-e30-cos4-mlp-noguard": {**_MLP_PRESET, "_no_initial": True},
        # the preset with a linear warm-up of the learning rate over its first 100 / 300 steps
        "change+tod-e30-cos4-mlp-wu100": {**_MLP_PRESET, "_warmup_steps": 100},
        "change+tod-e30-cos4-mlp-wu300": {**_MLP_PRESET, "_warmup_steps": 300},
        # the cpu preset without one part each (the ablations), for the few-shot diagnosis
        "mlp-noimage": {**_MLP_PRESET, "image": None},
        "mlp-noft": {**_MLP_PRESET, "finetune": None},
        "mlp-nosaf": {**_MLP_PRESET, "fusion": None},
        # "change+tod-e30-cos4-mlp-fullft" (every weight of the random backbone trained, no LoRA):
        # measured at commit db7510a, 16.29 (best epoch 14, stopped at 20); the option was removed.
        # "change+tod-e30-cos4-mlpskip" (the MLP head also reading each sensor's window, a skip
        # past the backbone): measured at commit bf78550, 15.84; the option was removed.
    },
    "stid": {
        "level": dict(output="level"),
        "change": dict(output="change"),
        "change+dow": dict(output="change", dow_dim=32),
        "change-cos": dict(output="change", lr_schedule="cosine"),
        "level+dow": dict(output="level", dow_dim=32),
        "change-wu100": dict(output="change", _warmup_steps=100),
    },
    "lstm": {
        "level": dict(output="level"),
        "change": dict(output="change"),
        "change-cos": dict(output="change", lr_schedule="cosine"),
    },
}


@contextlib.contextmanager
def _without_initial_validation(active):
    """The shared loop without its "epoch 0" check (for the diagnosis only)."""
    import stvlm.training as training

    original = training.TrainingLoop
    if active:
        class Loop(original):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, **{**kwargs, "validate_initial": False})

        training.TrainingLoop = Loop
    try:
        yield
    finally:
        training.TrainingLoop = original


@contextlib.contextmanager
def _with_warmup(steps):
    """The shared loop with a linear warm-up of the learning rate over its first ``steps``
    optimiser steps (a trial: counted in steps, it lasts several epochs on a few-shot part
    and about one on the full fit period)."""
    import stvlm.training as training

    original = training.TrainingLoop
    if steps:
        class Loop(original):
            def train_epoch(self, module, optimizer, source, n, rng):
                self._steps_done = getattr(self, "_steps_done", 0)
                step, base = optimizer.step, [g["lr"] for g in optimizer.param_groups]

                def warm_step(*args, **kwargs):
                    self._steps_done += 1
                    for group, lr in zip(optimizer.param_groups, base):
                        group["lr"] = lr * min(1.0, self._steps_done / steps)
                    return step(*args, **kwargs)

                optimizer.step = warm_step
                try:
                    return super().train_epoch(module, optimizer, source, n, rng)
                finally:
                    optimizer.step = step
                    for group, lr in zip(optimizer.param_groups, base):
                        group["lr"] = lr

        training.TrainingLoop = Loop
    try:
        yield
    finally:
        training.TrainingLoop = original


def _last_value_on_validation(est, series):
    """The naive forecast's MAE on the very validation windows the fit held out."""
    from stvlm.data import as_windows, chronological_split
    from stvlm.metrics import masked_mae

    windows = as_windows(series, history=est.history, horizon=est.horizon)
    _, val = chronological_split(windows, est.validation_fraction)
    naive = np.repeat(val.filled()[:, -1:, :], est.horizon, axis=1)
    return float(masked_mae(val.y, naive, null_value=est.null_value, threshold=est.threshold))


def _later_validation_mae(est, protocol):
    """A few-shot fit's MAE on the *full* fit period's validation windows.

    The few-shot part's own validation windows are a few hours right after its training
    windows; a setting that only fits those hours looks better there than it is (session 8:
    the MLP head led on them at 10 % and lost to the last value on test). The full fit
    period's validation windows are days later and still before the test period, so they
    are validation data for every setting; the test windows stay unread.
    """
    from stvlm.benchmark import _start
    from stvlm.data import as_windows, chronological_split
    from stvlm.metrics import masked_mae

    p = protocol
    windows = as_windows(p.fit_series, history=est.history, horizon=est.horizon,
                         steps_per_day=p.steps_per_day, start=_start(p))
    _, val = chronological_split(windows, est.validation_fraction)
    return float(masked_mae(val.y, est.predict(val), null_value=est.null_value, threshold=est.threshold))


def run(protocol, model, variants, settings, seeds, out, overrides=None):
    import torch

    from stvlm.benchmark import _fit_rows, _make_model
    from stvlm.datasets import load_protocol

    p = load_protocol(protocol)
    out = Path(out)
    done = set()
    if out.exists():
        for line in out.read_text().splitlines():
            r = json.loads(line)
            done.add((r["protocol"], r["setting"], r["model"], r["variant"], r["seed"]))
    for setting in settings:
        for variant in variants:
            for seed in seeds:
                key = (p.name, setting, model, variant, seed)
                if key in done:
                    continue
                params = {**VARIANTS[model][variant], **(overrides or {})}
                no_initial = params.pop("_no_initial", False)
                warmup = params.pop("_warmup_steps", 0)
                est = _make_model(model, "cpu", setting, seed, p, {model: params})
                t0 = time.perf_counter()
                with _without_initial_validation(no_initial), _with_warmup(warmup):
                    est.fit(_fit_rows(p, setting))
                hist = est.loss_history_
                row = dict(
                    protocol=p.name, setting=setting, model=model, variant=variant, seed=seed,
                    val_mae=-est.best_score_, best_epoch=est.best_epoch_, epochs=len(hist),
                    fit_seconds=round(time.perf_counter() - t0, 1),
                    seconds_per_epoch=round(float(np.median([r["seconds"] for r in hist])), 2),
                    val_curve=[round(r["val_loss"], 3) for r in hist], threads=torch.get_num_threads(),
                    params={k: v for k, v in params.items()},
                    finished=time.strftime("%Y-%m-%dT%H:%M:%S"),
                )
                row["last_value_val_mae"] = _last_value_on_validation(est, _fit_rows(p, setting))
                if setting.startswith("few-shot-"):
                    row["later_val_mae"] = _later_validation_mae(est, p)
                    row["last_value_later_val_mae"] = _last_value_on_validation(est, p.fit_series)
                out.parent.mkdir(parents=True, exist_ok=True)
                with open(out, "a") as f:
                    f.write(json.dumps(row) + "\n")
                print(f"{p.name} {setting} {model} {variant} seed {seed}: val MAE {row['val_mae']:.3f} "
                      f"(best epoch {row['best_epoch']}/{row['epochs']}, {row['seconds_per_epoch']} s/epoch; "
                      f"last value {row['last_value_val_mae']:.3f})"
                      + (f"; full-period validation {row['later_val_mae']:.3f} (last value "
                         f"{row['last_value_later_val_mae']:.3f})" if "later_val_mae" in row else ""), flush=True)


def summary(path):
    """A markdown table of the rows in ``path``: mean validation MAE per variant (and seeds)."""
    rows = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
    groups = {}
    for r in rows:
        groups.setdefault((r["protocol"], r["setting"], r["model"], r["variant"]), []).append(r)
    later = any("later_val_mae" in r for r in rows)
    lines = ["| protocol | setting | model | variant | validation MAE | last value (same windows) | best epoch / epochs | s/epoch | seeds |"
             + (" full-period validation MAE (last value) |" if later else ""),
             "|---|---|---|---|---|---|---|---|---|" + ("---|" if later else "")]
    for (proto, setting, model, variant), rs in groups.items():
        val = np.mean([r["val_mae"] for r in rs])
        sd = f" ± {np.std([r['val_mae'] for r in rs], ddof=1):.2f}" if len(rs) > 1 else ""
        epochs = ", ".join(f"{r['best_epoch']}/{r['epochs']}" for r in rs)
        lines.append(f"| {proto} | {setting} | {model} | {variant} | {val:.2f}{sd} | {rs[0]['last_value_val_mae']:.2f} "
                     f"| {epochs} | {np.median([r['seconds_per_epoch'] for r in rs]):.1f} | {len(rs)} |"
                     + (_later_cell(rs) if later else ""))
    return "\n".join(lines)


def _later_cell(rs):
    if not all("later_val_mae" in r for r in rs):
        return " |"
    vals = [r["later_val_mae"] for r in rs]
    sd = f" ± {np.std(vals, ddof=1):.2f}" if len(vals) > 1 else ""
    return f" {np.mean(vals):.2f}{sd} ({rs[0]['last_value_later_val_mae']:.2f}) |"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--protocol", default="pems08-tail")
    ap.add_argument("--model", default="stvlm", choices=sorted(VARIANTS))
    ap.add_argument("--variants", help="comma-separated names of VARIANTS[model]")
    ap.add_argument("--summary", action="store_true", help="print the table of --out and stop")
    ap.add_argument("--settings", default="full")
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "tuning.jsonl"))
    args = ap.parse_args(argv)
    if args.summary:
        print(summary(args.out))
        return
    if not args.variants:
        ap.error("--variants is required (or --summary)")
    run(args.protocol, args.model, args.variants.split(","), args.settings.split(","),
        [int(s) for s in args.seeds.split(",")], args.out)


if __name__ == "__main__":
    main()
