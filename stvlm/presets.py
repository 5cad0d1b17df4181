"""Named model configurations: ``STVLMForecaster.from_preset(name)``.

Model presets (this module) are distinct from the benchmark presets of
:data:`stvlm.benchmark.BENCHMARK_PRESETS`, which choose a model preset per machine.
"""

from __future__ import annotations

import copy

__all__ = ["MODEL_PRESETS", "preset_params"]

# Same as stvlm.network.DEFAULT_BACKBONE, without importing torch with stvlm.
DEFAULT_BACKBONE = "dandelin/vilt-b32-mlm"

#: ST-VLM configurations by name. ``"cpu"`` is a tiny randomly-initialised ViLT that
#: trains on the ``pems08-tail`` fit period in about 15 minutes on 2 cores, with the
#: measured defaults beyond the paper (calendar, ``output="change"``); its schedule was
#: chosen on validation windows (docs/results.md): since session 26 STID-like's own (a
#: plateau schedule at 2e-3, halved after 5 epochs without gain, 50 epochs, patience 10),
#: which took the full validation MAE from about 15.8 (a cosine decay from 4e-3 over 30
#: epochs) to 15.43, level with STID-like, at no cost on the few-shot parts; the residual-MLP
#: head (width 128) in place of the LSTM decoder took validation MAE from 16.05 to 15.77
#: and an epoch from 27.7 s to 23.0 s; a moving average of the weights (``ema_decay=0.99``,
#: the estimators' default) took the few-shot 10 % validation MAE from 27.26 to 26.16 at no
#: cost on the full setting (15.78 either way). ``"paper"`` is the paper's setting (pretrained
#: ViLT-B/32, up to 100 epochs, no calendar, values forecast directly, LSTM decoder, raw weights).
MODEL_PRESETS = {
    "cpu": dict(
        backbone=dict(
            hidden_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            intermediate_size=128,
            patch_size=32,
            image_size=192,
            max_position_embeddings=40,
            vocab_size=1000,
        ),
        encoder_hidden=32,
        head="mlp",
        decoder_hidden=128,
        max_epochs=50,
        patience=10,
        lr_schedule="plateau",
        learning_rate=2e-3,
        lr_patience=5,
    ),
    # The paper's network and training: no calendar, values forecast directly, an LSTM
    # decoder, the raw weights kept (no moving average).
    "paper": dict(
        backbone=DEFAULT_BACKBONE, calendar=None, output="level", head="lstm", decoder_hidden=64, ema_decay=None,
        temporal_encoder="lstm",
    ),
}


def preset_params(name, **overrides):
    """Constructor parameters of a model preset, with ``overrides`` applied.

    Parameters
    ----------
    name : {"cpu", "paper"}
        A key of :data:`MODEL_PRESETS`.
    **overrides
        Parameters that replace or add to the preset's.

    Returns
    -------
    dict
        A deep copy: editing it never changes the preset.

    Raises
    ------
    ValueError
        For an unknown name (the message lists the known ones).

    Examples
    --------
    >>> from stvlm.presets import preset_params
    >>> preset_params("cpu", max_epochs=3)["max_epochs"]
    3
    """
    if name not in MODEL_PRESETS:
        raise ValueError(f"unknown preset {name!r}; known presets: {sorted(MODEL_PRESETS)}.")
    params = copy.deepcopy(MODEL_PRESETS[name])
    params.update(overrides)
    return params
