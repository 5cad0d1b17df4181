"""The models of a benchmark run: their names, presets per machine, settings and
ablations, and how each is built, fitted on a setting's rows and asked to forecast."""

from __future__ import annotations

#: Models by name. Deterministic ones run once (for the first seed).
MODELS = (
    "stvlm", "stid", "lstm", "last-value", "historical-average", "seasonal-naive", "timevlm", "dlinear", "patchtst",
)
_DETERMINISTIC = {"last-value", "historical-average", "seasonal-naive"}
#: What ``stvlm benchmark`` runs by default: on the traffic protocols, and on ETT.
TRAFFIC_MODELS = ("stvlm", "stid", "lstm", "last-value", "historical-average", "seasonal-naive")
LONG_TERM_MODELS = ("timevlm", "dlinear", "patchtst", "last-value", "seasonal-naive")

#: Settings: the fit period, the paper's few-shot fractions of its training part, the
#: ablations of ST-VLM (``fusion=None``, ``finetune=None``, ``calendar=None``, ``image=None``)
#: and of Time-VLM, and zero-shot: fitted on another long-term protocol (ETTh1 -> ETTh2 is
#: ``zero-shot-etth1`` run on ``etth2``).
SETTINGS = (
    "full", "few-shot-0.05", "few-shot-0.1", "few-shot-0.2", "wo-saf", "wo-ft", "wo-calendar", "wo-image",
    "wo-ral", "wo-val", "wo-tal", "zero-shot-etth1", "zero-shot-etth2",
)
_ABLATIONS = {
    "wo-saf": dict(fusion=None),
    "wo-ft": dict(finetune=None),
    "wo-calendar": dict(calendar=None),
    "wo-image": dict(image=None),
}
#: Time-VLM's ablations (the paper's Table 6): without RAL's memory, VAL's image, TAL's prompt.
_TIMEVLM_ABLATIONS = {"wo-ral": dict(memory=False), "wo-val": dict(image=None), "wo-tal": dict(text=False)}

#: Hyper-parameters of each trained model per benchmark preset. ``cpu`` fits a 2-core
#: machine in minutes per run; ``gpu`` is the paper's setting (pretrained ViLT-B/32, 100
#: epochs). ST-VLM's entries name a model preset of :data:`stvlm.presets.MODEL_PRESETS`.
BENCHMARK_PRESETS = {
    "stvlm": {"cpu": "cpu", "gpu": dict(preset="paper", device="auto")},
    "stid": {"cpu": dict(max_epochs=50, patience=10), "gpu": dict(max_epochs=200, patience=30, device="auto")},
    "lstm": {
        # Epochs of at least 30 steps (a no-op on the full fit periods: 45 batches on pems08-tail,
        # 30 on sz-taxi): chosen on validation for the few-shot parts (docs/results.md, session 25),
        # where ST-VLM and STID-like declined it.
        "cpu": dict(hidden_size=32, batch_size=64, learning_rate=3e-3, max_epochs=20, patience=5, lr_patience=3,
                    min_steps_per_epoch=30),
        "gpu": dict(hidden_size=64, num_layers=2, max_epochs=100, patience=30, device="auto"),
    },
    "timevlm": {"cpu": "cpu", "gpu": dict(preset="paper", device="auto")},
    "dlinear": {"cpu": {}, "gpu": dict(device="auto")},
    "patchtst": {"cpu": {}, "gpu": dict(device="auto")},
}


def _make_model(model, preset, setting, seed, protocol, overrides):
    """Build the estimator for one run."""
    from .baselines import (
        HistoricalAverageForecaster,
        LastValueForecaster,
        LSTMForecaster,
        SeasonalNaiveForecaster,
        STIDForecaster,
    )
    from .forecaster import STVLMForecaster

    p = protocol
    extra = dict(overrides.get(model, {}))
    if model not in _DETERMINISTIC:
        # The protocol's masks in the loss too: models train on what they are scored on.
        extra = {"null_value": p.null_value, "threshold": p.threshold, **extra}
    if model in ("timevlm", "dlinear", "patchtst"):
        return _make_long_term_model(model, preset, setting, seed, p, extra)
    if model == "stvlm":
        cfg = BENCHMARK_PRESETS["stvlm"][preset]
        cfg = dict(preset=cfg) if isinstance(cfg, str) else dict(cfg)
        name = cfg.pop("preset")
        # The fit series is dated, so that a calendar can be read (the paper preset reads none).
        cfg.update(steps_per_day=p.steps_per_day, start=_start(p))
        cfg.update(_ABLATIONS.get(setting, {}), history=p.history, horizon=p.horizon, random_state=seed, **extra)
        cfg.setdefault("verbose", 0)
        return STVLMForecaster.from_preset(name, **cfg)
    if model == "stid":
        cfg = dict(BENCHMARK_PRESETS["stid"][preset], steps_per_day=p.steps_per_day, first_time_index=_start(p))
        return STIDForecaster(history=p.history, horizon=p.horizon, random_state=seed, **{**cfg, **extra})
    if model == "lstm":
        return LSTMForecaster(history=p.history, horizon=p.horizon, random_state=seed, **{**BENCHMARK_PRESETS["lstm"][preset], **extra})
    if model == "last-value":
        return LastValueForecaster(horizon=p.horizon)
    if model == "historical-average":
        return HistoricalAverageForecaster(p.steps_per_day, p.first_time_index, p.history, p.horizon)
    if model == "seasonal-naive":
        return SeasonalNaiveForecaster(season=p.steps_per_day, horizon=p.horizon)
    raise ValueError(f"unknown model {model!r}; known models: {', '.join(MODELS)}.")


def _make_long_term_model(model, preset, setting, seed, p, extra):
    """Time-VLM and the long-term baselines beside it."""
    cfg = dict(history=p.history, horizon=p.horizon, random_state=seed, verbose=0)
    if model == "timevlm":
        from .datasets._ett import describe
        from .timevlm import TimeVLMForecaster

        cfg.update(periodicity=p.steps_per_day, description=describe(p.name), **_TIMEVLM_ABLATIONS.get(setting, {}))
        spec = BENCHMARK_PRESETS["timevlm"][preset]
        spec = dict(preset=spec) if isinstance(spec, str) else dict(spec)
        return TimeVLMForecaster.from_preset(spec.pop("preset"), **{**spec, **cfg, **extra})
    from .baselines import DLinearForecaster, PatchTSTForecaster

    cls = DLinearForecaster if model == "dlinear" else PatchTSTForecaster
    return cls(**{**BENCHMARK_PRESETS[model][preset], **cfg, **extra})


def _predict(model, est, protocol):
    p = protocol
    if model in ("stvlm", "stid", "historical-average"):
        return est.predict(p.test_data())  # the windows carry their time of day
    if model == "seasonal-naive":
        return est.predict(p.test_windows(p.steps_per_day))
    return est.predict(p.test_X)


def _start(protocol):
    """Date and time of the protocol's first row (its slot where no date is known)."""
    # a protocol without a date has start_time "" (make_protocol's default), not None
    return protocol.start_time or protocol.first_time_index


def _fit_rows(protocol, setting):
    """Rows of the fit period a setting may fit on."""
    if setting.startswith("few-shot-"):
        # The first fraction of the training part (the papers' few-shot setting).
        return protocol.few_shot_series(float(setting[len("few-shot-"):]))
    if _own_validation(protocol):
        return protocol.fit_series[: protocol.n_train_rows]
    return protocol.fit_series


def _own_validation(protocol):
    """Whether the protocol fixes its validation period (ETT: Informer's months)."""
    return "MSE" in protocol.metrics and protocol.val_series is not None


def _fit_kwargs(model, protocol):
    """``fit``'s keywords: the protocol's validation period, where it fixes one, dated."""
    if model in _DETERMINISTIC or not _own_validation(protocol):
        return {}
    import pandas as pd

    p = protocol
    step = pd.Timedelta(days=1) / p.steps_per_day
    first = pd.Timestamp(p.start_time) + (p.n_train_rows - p.history) * step
    index = pd.date_range(first, periods=len(p.val_series), freq=step)
    return dict(validation_data=pd.DataFrame(p.val_series, index=index))


def _applies(model, setting):
    if setting.startswith("zero-shot-"):
        return model not in _DETERMINISTIC  # they learn nothing: their full rows serve
    if setting in _ABLATIONS:
        return model == "stvlm"
    return setting not in _TIMEVLM_ABLATIONS or model == "timevlm"
