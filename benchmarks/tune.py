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

from stvlm.presets import MODEL_PRESETS

#: The cpu preset since session 8 (MLP head, width 128), spelled out: the base of the
#: variants added in session 9.
_MLP_PRESET = dict(calendar="time-of-day", output="change", max_epochs=30, patience=6,
                   lr_schedule="cosine", learning_rate=4e-3, head="mlp", decoder_hidden=128, ema_decay=None)

#: Variants by model: constructor overrides on top of the benchmark's ``cpu`` preset.
#: Since session 17 that preset (and the defaults) of ST-VLM, STID-like and LSTM average
#: the weights (``ema_decay=0.99``); rows before it ran without, and a variant that names no
#: ``ema_decay`` would now run with it (``_MLP_PRESET`` names ``None``).
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
        # session 10 (on the GPU, 3 seeds): STID's readout, piece by piece, in place of the
        # MLP head's: dropout 0.15 in its blocks, three blocks, its own time-of-day (and
        # sensor) embedding of width 32 concatenated to each sensor's backbone output, and
        # STID's weight decay 1e-4 (trial hooks: _with_head, _weight_decay)
        "mlp-drop15": {**_MLP_PRESET, "_head": dict(dropout=0.15)},
        "mlp-l3": {**_MLP_PRESET, "_head": dict(layers=3)},
        "mlp-hcal": {**_MLP_PRESET, "_head": dict(calendar_dim=32)},
        "mlp-hcal-drop15": {**_MLP_PRESET, "_head": dict(calendar_dim=32, dropout=0.15)},
        "mlp-hcal-node": {**_MLP_PRESET, "_head": dict(calendar_dim=32, node_dim=32)},
        "mlp-stidhead": {**_MLP_PRESET, "_head": dict(calendar_dim=32, node_dim=32, dropout=0.15, layers=3)},
        "mlp-wd": {**_MLP_PRESET, "_weight_decay": 1e-4},
        # session 16: the day of week on top of the cpu preset (issue #12's second calendar
        # form, whose 12-epoch run never finished). Rule written before the runs: adopt it
        # in the cpu preset and the defaults at a 3-seed validation mean of 15.68 or lower
        # (the preset's 15.78 less two of its seed sd); STID likewise takes dow_dim=32 when
        # its 3-seed mean beats "change"'s by 0.10 or more.
        "mlp-dow": {**_MLP_PRESET, "calendar": "time-of-day+day-of-week"},
        # session 16: an exponential moving average of the weights (decay 0.99 a step), chosen
        # on both validation sets (full, and few-shot 10 % on the full period's windows).
        # Rule written after the 10 % rows and before the full ones: adopt it in the shared
        # loop when ST-VLM's 3-seed full validation mean is at most the preset's 15.78 plus
        # one of its seed sd (0.05), i.e. when the gain at 10 % costs the full setting nothing.
        # Its rows ran as a loop trial (``_ema``); since session 17 the loop's ``ema_decay``
        # (the same average) and the default of ST-VLM, STID-like and LSTM.
        "mlp-ema99": {**_MLP_PRESET, "ema_decay": 0.99},
        # session 17: early stopping counts no epoch while the initial weights still hold more
        # than half of the average (0.99 ** steps > 0.5, the first 69 steps): with the average,
        # every few-shot fit of the benchmark stopped at the patience with epoch 0 kept (LSTM at
        # 5/10/20 %, ST-VLM and STID at 5 %, ST-VLM 10 % seed 1), its averaged curve still flat.
        # Rule written before the rows: adopt it as the default when, on the full period's
        # validation windows, ST-VLM's 3-seed mean is no worse than mlp-ema99's at 5 % and at
        # 10 % and lower by 0.1 or more at one of them. Full fits (88 steps an epoch) settle
        # in the first epoch, before any patience could count: unchanged by construction.
        "mlp-ema99-settle": {**_MLP_PRESET, "ema_decay": 0.99, "_settle": 0.5},
        # session 18: regularisation. On the full fit period ST-VLM ends with a lower training
        # loss than STID-like (14.5 against 14.8, seed 1 of the benchmark) and a higher
        # validation one (15.96 against 15.42): it generalises worse, and unlike STID (dropout
        # 0.15, weight decay 1e-4) it has no regulariser. Candidates on top of the preset
        # (mlp-ema99: 15.75, 15.86, 15.71; mean 15.78, sd 0.08): dropout 0.1 in the backbone
        # (ViLT's hidden and attention dropout: the embedded tokens, each attention and MLP
        # output), and STID's weight decay. Rule written before the rows: adopt one in the cpu
        # preset when its 3-seed full validation mean is 15.68 or lower (the rule of the day
        # of week), the lower of the two if both are.
        # Result: bdrop10 15.92, 15.87, 15.84 (15.87 ± 0.04, +0.10 paired); wd 15.76 on seed 0
        # (its other seeds stopped). Neither adopted (docs/results.md, "Session 18").
        "mlp-ema99-bdrop10": {**_MLP_PRESET, "ema_decay": 0.99, "backbone": {
            **MODEL_PRESETS["cpu"]["backbone"], "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1}},
        "mlp-ema99-wd": {**_MLP_PRESET, "ema_decay": 0.99, "_weight_decay": 1e-4},
        # session 19: the frozen random backbone. Only LoRA on query/key trains inside it, so
        # every value, output and feed-forward weight stays random; training every weight
        # (fullft, session 9, below) learnt faster (16.57 against 17.96 at epoch 9) and was
        # stopped by the patience at epoch 20 while the cosine rate was still 1e-3, before the
        # epochs where the preset gains most (16.2 -> 15.77 from epoch 20 to 25). Candidates
        # on top of the preset (mlp-ema99): LoRA (r=8) on every linear layer of the backbone
        # (query, key, value, the attention output, both feed-forward layers: trial hook
        # _lora_targets), and every backbone weight trained with the average (no LoRA; hook
        # _train_backbone). Rule written before the rows: adopt one at a 3-seed full
        # validation mean of 15.68 or lower (the rule of the day of week), the lower of the two
        # if both are, and only if its fit stays in the 15-minute budget.
        "mlp-ema99-loraall": {**_MLP_PRESET, "ema_decay": 0.99, "_lora_targets": ["query", "key", "value", "dense"]},
        "mlp-ema99-fullft": {**_MLP_PRESET, "ema_decay": 0.99, "finetune": None, "_train_backbone": True},
        # Result: fullft 15.99 on seed 0 (best epoch 15, stopped at 21), loraall 16.05 (best epoch
        # 20, stopped at 26), both worse than the preset's 15.75; their seeds 1-2 not run.
        # A diagnosis, not a candidate (45 epochs are past the 15-minute budget): does the
        # preset's schedule stretched to 45 epochs (the cosine over 45, patience 6) reach a lower
        # validation MAE? STID, on its plateau schedule, still gains 0.16 from epoch 30 to 50.
        "mlp-ema99-e45": {**_MLP_PRESET, "ema_decay": 0.99, "max_epochs": 45},
        # e45 reached 15.57 on seed 0 (best epoch 33, stopped at 39). The longest schedule that
        # fits the budget at the host's faster state (24.4 s an epoch, 741 s for 30): 36 epochs.
        "mlp-ema99-e36": {**_MLP_PRESET, "ema_decay": 0.99, "max_epochs": 36},
        # Results: e45 15.57, 15.67, 15.75 (15.67 ± 0.09; early stops at 38-41 epochs, over the
        # budget: not adopted); e36 15.73 on seed 0 (stopped at 32). docs/results.md, session 19.
        # Both session-19 candidates peak early and then rise (fullft: 15.99 at epoch 15; loraall:
        # 16.05 at epoch 20 of 26) where the preset's curve is flat from epoch 22: trainable
        # capacity in the backbone overfits the fit period. The regulariser left untried by
        # session 18: a decoupled (AdamW) weight decay, which shrinks every trained weight by
        # lr * wd a step whatever the loss's units (Adam's coupled 1e-4 was idle). 0.05, fixed
        # before the row (about a quarter of the weights' size over the cosine schedule); the
        # same rule (3-seed mean <= 15.68).
        "mlp-ema99-adamw05": {**_MLP_PRESET, "ema_decay": 0.99, "_adamw": 0.05},
        # Result: 15.96 on seed 0 (best epoch 26 of 30; alone, 2 threads), 0.20 worse than the
        # preset: not adopted, seeds 1-2 not run.
        # session 21: a smoother time of day. The fit period's training part holds about ten
        # days, so each of the 288 slot vectors learns from about ten windows (one a day),
        # each free of its neighbours; five minutes apart, traffic differs little. Candidate:
        # the time-of-day vectors as K learned knots interpolated linearly to every slot round
        # the clock (trial hook _tod_knots, both models). K chosen on STID-like's validation
        # (cheap: 24, 48, 96 on seed 0), then ST-VLM run with it. Rule written before the rows:
        # adopt for ST-VLM at a 3-seed full validation mean of 15.68 or lower (the standing
        # rule); for STID-like when its 3-seed mean beats "change" (the library default with
        # the average: 15.39, 15.42, 15.58) by 0.10 or more (the rule of its day of week).
        **{f"mlp-ema99-tod{k}": {**_MLP_PRESET, "ema_decay": 0.99, "_tod_knots": k} for k in (24, 48, 96)},
        # session 21: output="ar". On the 5 % part a linear autoregression shared by every sensor
        # (least squares on its training windows: the change from the last value from the
        # window's differences to it) scores 25.17 on the full period's validation windows
        # against the last value's 27.01, where every trained model keeps its untrained weights
        # (the last value): the part holds a signal that transfers, which the networks do not
        # find. output="ar" starts every network from that linear forecast (fitted in closed
        # form, its output layer at zero) and trains what it misses. Rule written before the
        # rows: make it the default of ST-VLM, STID-like and LSTM (the shared base: one rule for
        # the table) when ST-VLM's 3-seed mean on the full period's validation windows is lower
        # than with "change" at 5 % (27.01) and at 10 % (mlp-ema99-settle: 25.68), below the last
        # value at 5 % on every seed, and its full validation mean is at most the preset's 15.78
        # plus one seed sd (15.83): the gain with little data may cost the full setting nothing.
        # (_settle names the library's default: a variant without it runs with settle_share None.)
        "mlp-ema99-ar": {**_MLP_PRESET, "ema_decay": 0.99, "_settle": 0.5, "output": "ar"},
        # Result (fixed coefficients): 5 % 25.18 on every seed (epoch 0 kept), 10 % 23.52 ± 0.09, both
        # far below "change"; but full 16.10, 15.98 on seeds 0-1 against the preset's 15.75, 15.86 and 20 % 19.96 on
        # seed 0: the rule's full condition cannot be met. A diagnosis, not a candidate: do the
        # coefficients, trained with the network from the least-squares start (trial hook
        # _trainable_ar), keep the few-shot gain without the cost where data are more?
        "mlp-ema99-artrain": {**_MLP_PRESET, "ema_decay": 0.99, "_settle": 0.5, "output": "ar", "_trainable_ar": True},
        # session 22: the random backbone's scale. ViLT initialises every linear layer with
        # N(0, initializer_range = 0.02); at hidden 64 a frozen value and output projection then
        # shrink what attention adds to a token to about 2 % of the token (0.15 against 7.6 in
        # norm, untrained cpu preset), and the frozen feed-forward layers likewise: the two
        # layers pass each sensor token through almost unchanged, so no sensor reads another,
        # whatever LoRA and SAF do to the attention scores (the ablations: SAF, the image and
        # LoRA without measurable effect). N(0, 1/sqrt(hidden) = 0.125) keeps the variance of
        # a token through each frozen linear map (attention adds about as much as the token
        # holds), 0.0625 half of that. Rule written before the rows: adopt the better of the two
        # in the cpu preset when its 3-seed full validation mean is 15.68 or lower (the rule of
        # sessions 16-19) and its 3-seed mean on the full period's validation windows at 10 %
        # is not above the preset's 25.68.
        "mlp-ema99-init125": {**_MLP_PRESET, "ema_decay": 0.99, "_settle": 0.5,
                              "backbone": {**MODEL_PRESETS["cpu"]["backbone"], "initializer_range": 0.125}},
        "mlp-ema99-init0625": {**_MLP_PRESET, "ema_decay": 0.99, "_settle": 0.5,
                               "backbone": {**MODEL_PRESETS["cpu"]["backbone"], "initializer_range": 0.0625}},
        # Result: 0.0625 15.86 (best epoch 22, stopped at 28), 0.125 16.09 (21, stopped at 27) on
        # seed 0, against the preset's 15.75: the more the frozen layers mix the sensors, the
        # earlier the fit overfits. Neither can reach the rule (seeds 1-2 would need 15.59 on
        # average); not run further.
        # Session 22: one mean and std per sensor (trial hook _sensor_scale), the scaling issue
        # #12 names beside the output's parameterisation. Rule written before the rows: adopt it
        # in the shared base (ST-VLM, STID-like and LSTM: one rule for the table) when ST-VLM's
        # 3-seed full validation mean is 15.68 or lower and its 3-seed mean on the full period's
        # validation windows at 10 % is not above 25.68.
        "mlp-ema99-sscale": {**_MLP_PRESET, "ema_decay": 0.99, "_settle": 0.5, "_sensor_scale": True},
        # Result: full 16.20 (best epoch 21, stopped at 27) against the preset's 15.75, 10 % 25.66
        # against 25.69 (seed 0); STID-like 15.58 against 15.39 full, 24.25 against 24.18 at 10 %.
        # Worse for both on the full fit period; not adopted, seeds 1-2 not run.
        # Session 22: the peak learning rate, never searched with the MLP head (4e-3 was chosen
        # with the LSTM decoder). Same rule (15.68 over 3 seeds, not worse at 10 %).
        "mlp-ema99-lr6": {**_MLP_PRESET, "ema_decay": 0.99, "_settle": 0.5, "learning_rate": 6e-3},
        # Session 22: batches of 16 windows. At 1 thread a training step costs 8.5 ms a window at
        # batch 16 against 9.4 at 32 (11.6 at 64; pems08-tail's 170 sensors):
        # twice the optimiser steps for about 10 % less time an epoch, where session 19 found
        # ST-VLM's next 0.1 in a longer schedule (45 epochs) that the budget did not allow.
        # Same rule (15.68 over 3 seeds, not worse at 10 %; and within the fit budget).
        "mlp-ema99-b16": {**_MLP_PRESET, "ema_decay": 0.99, "_settle": 0.5, "batch_size": 16},
        # Results (seed 0, full): lr 6e-3 15.92 (best epoch 26), batches of 16 15.93 (best epoch 23,
        # stopped at 29), against the preset's 15.75: neither adopted. The other side of the
        # learning rate, same rule:
        "mlp-ema99-lr3": {**_MLP_PRESET, "ema_decay": 0.99, "_settle": 0.5, "learning_rate": 3e-3},
        # Result: 15.89 and 15.74 on seeds 0 and 1 against the preset's 15.75 and 15.86: level; not
        # adopted (seed 2 would need 15.41 for the rule).
        # Session 22, a question of the paper, not a candidate: with a backbone that does mix
        # the sensors (initial scale 0.0625: 15.86 on seed 0), do SAF and the image matter?
        "mlp-ema99-init0625-nosaf": {**_MLP_PRESET, "ema_decay": 0.99, "_settle": 0.5, "fusion": None,
                                     "backbone": {**MODEL_PRESETS["cpu"]["backbone"], "initializer_range": 0.0625}},
        "mlp-ema99-init0625-noimage": {**_MLP_PRESET, "ema_decay": 0.99, "_settle": 0.5, "image": None,
                                       "backbone": {**MODEL_PRESETS["cpu"]["backbone"], "initializer_range": 0.0625}},
        # Result: without SAF 15.92 (+0.06, within a seed's spread), without the image 16.42 (+0.56):
        # once the backbone mixes, the image carries what the sensors read of each other.
        # Session 22: the frozen layers made to mix the sensors without scrambling them: value and
        # attention-output projections at the identity (trial hook _identity_values), so that
        # attention adds the tokens it attends to, steered by LoRA's query/key and SAF. Same
        # rule as the initial scale above (15.68 over 3 seeds, not worse at 10 %).
        "mlp-ema99-idvo": {**_MLP_PRESET, "ema_decay": 0.99, "_settle": 0.5, "_identity_values": True},
        # Result: 16.54 (best epoch 29 of 30, a slow curve, seed 0): not adopted.
        # Session 23: the 45-epoch decay again. Its full rows (15.67 +- 0.09, session 19) met the
        # standing rule (3-seed full validation mean 15.68 or lower) and lost only on the fit
        # budget; session 23's unrolled encoder LSTM (same weights and recurrence) makes an epoch
        # about 1.12x cheaper. The rule's other half, never run for it: its 3-seed mean on the
        # full period's validation windows at 10 % must not be above the preset's 25.68, with
        # the library's settle share (the e45 full rows ran without it; it only delays the
        # patience's count in the first epochs). Adopt max_epochs=45 in the cpu preset when that
        # holds and the whole fit (images, epochs, best weights) measured alone with 2 threads
        # stays under 15 minutes.
        "mlp-ema99-e45-settle": {**_MLP_PRESET, "ema_decay": 0.99, "_settle": 0.5, "max_epochs": 45},
        # Result (10 %, the full period's validation windows): 25.73, 25.67, 25.71 (25.70 against
        # the preset's 25.69, 25.58, 25.78 = 25.68; paired +0.02), best epochs 23/29, 25/31, 23/29:
        # level, but above 25.68, so the rule fails and the preset keeps 30 epochs.
        # Session 23: the linear autoregression as the fallback of output="change". The
        # shared base keeps the untrained model (the last value) when no trained epoch beats
        # it on the fit's validation windows; the autoregression of output="ar" (closed form,
        # no training) beats the last value there at 5 % (21.17 against 22.78) and at 10 %
        # (36.88 against 38.68). Candidate: after training, the base also scores that
        # autoregression on the validation windows and keeps it (the network's output layer at
        # zero, ar_coef_ set) when it beats the kept model. One rule for ST-VLM, STID-like and
        # LSTM. Rule, written before the rows: make it the library's behaviour when, on the
        # full period's validation windows, 3 seeds each, no model's mean at 5 % or 10 % is
        # above its "change" rows (ST-VLM mlp-ema99-settle 27.01 / 25.68; STID-like and LSTM
        # change-ema99-settle 27.01 / 24.10, 27.01 / 27.00) and at least one is lower. Where a
        # trained epoch beats the autoregression on the fit's own validation windows nothing
        # changes (the full setting: the networks' 15.4-15.8 against its 24.72). The library
        # code carries it (commits after 1676f87); these variants name the rows made with it.
        "mlp-ema99-arfb": {**_MLP_PRESET, "ema_decay": 0.99, "_settle": 0.5},
        # Result (the full period's validation windows, 3 seeds; row field ar_fallback): at 5 %
        # every fit of the three models kept the autoregression, 25.18 against 27.01; at 10 % LSTM
        # kept it (24.90 against 27.00), ST-VLM and STID-like their networks (25.70, 25.58, 25.78
        # = 25.687 against 25.684, the 0.003 the unrolled encoder's rounding, the fallback idle;
        # STID-like 24.18, 24.05, 24.06 as before). Adopted: the library's behaviour.
        # Session 24: the autoregression weighted, in place of session 23's either/or. After
        # training, output="change" fits one weight w in [0, 1] of the autoregression's change
        # from the last value on the fit's validation windows (a weighted median: the loss is
        # the MAE), added to the network's forecast or to the last value (output layer zeroed),
        # whichever scores lower, and keeps it when the validation loss drops by at least 1 %
        # (MIN_GAIN: w is fitted on the windows it is scored on). Session 23's diagnosis
        # (benchmarks/ar_blend_check.py) measured the sum on the full period's windows: 5 %
        # 24.74 against 25.18, 10 % ST-VLM ~24.1 against 25.69, STID-like ~23.36 against 24.10;
        # on the fits' own windows 20 % gains 0.0-0.1 % and STID-like's full fit 0.0 %, below
        # the 1 % line, so those keep their networks. Rule, written before these rows: make it
        # the library's behaviour when, on the full period's validation windows, 3 seeds each,
        # every model's mean at 5 % and at 10 % is below its -arfb rows (5 %: 25.18 each; 10 %:
        # ST-VLM 25.687, STID-like 24.10, LSTM 24.90) and no model's mean at 20 % is above the
        # library of session 23 by more than 0.01 (ST-VLM 19.165 and STID-like 18.923, the
        # diagnosis's network rows; LSTM its -arfb rows, run beside these). Row field ar_weight
        # (None: the network alone).
        "mlp-ema99-arbl": {**_MLP_PRESET, "ema_decay": 0.99, "_settle": 0.5},
        # Result (rows made at commit 0f43948; full period's validation windows, 3 seeds): 5 %
        # every fit 24.745 (weight 0.72 on the last value) against 25.18; 10 % ST-VLM 24.06,
        # 24.11, 24.14 = 24.106 against 25.687, STID-like 23.39, 23.32, 23.38 = 23.363 against
        # 24.10, LSTM 24.89, 24.90, 24.92 = 24.903 against 24.904; 20 % STID-like 18.923 (its
        # networks kept), LSTM 24.821 against 24.729 (every fit: weight 0.81 on the last value,
        # its network untrained). The 20 % half fails by 0.09: not adopted as it stands.
        # Session 24, second candidate ("-arbl2"), shaped by those rows: the weight is fitted
        # only over a trained network (best epoch > 0), where it gained at 10 % (ST-VLM,
        # STID-like); an untrained one (the last value) gets the whole autoregression or
        # nothing, as in session 23, since a weight fitted on the last value gained at 5 % and
        # lost at 20 %. Both kept at a 1 % gain. Rule, written before its rows: make it the
        # library's behaviour when, on the full period's validation windows, 3 seeds each, no
        # model's mean at 5 %, 10 % or 20 % is above session 23's library by more than 0.01
        # (5 %: 25.18; 10 %: 25.687, 24.10, 24.90; 20 %: 19.165, 18.923, 24.729) and at least
        # one is lower by 0.10 or more.
        "mlp-ema99-arbl2": {**_MLP_PRESET, "ema_decay": 0.99, "_settle": 0.5},
        # Result (rows made at commit 9f02506; full period's validation windows): 5 % every fit
        # 25.18 (the whole autoregression, as in session 23); 10 % ST-VLM 24.06, 24.11, 24.14 =
        # 24.106 against 25.687 (weights 0.69, 0.63, 0.64), STID-like 23.363 against 24.10
        # (0.44, 0.40, 0.45), LSTM 24.89, 24.90, 24.90 = 24.900 against 24.904 (two trained
        # networks with 0.75, one untrained with all of it); 20 % STID-like 18.923 and LSTM
        # 24.729 as before, ST-VLM seed 0 19.240 with its network alone (seeds 1 and 2 not
        # rerun: their own-validation gains, 0.05 % and 0.07 % in ar-blend-check.jsonl, are
        # under the 1 % line, so they keep their networks, 19.215 and 19.040: mean 19.165).
        # Adopted: the library's behaviour.
        # Session 25: epochs of at least 30 optimiser steps (the shared loop's
        # min_steps_per_epoch, Time-VLM's default since #14; the rows, made before it was a parameter
        # of these models, record it as the trial hook _min_steps that set the same attribute). Every
        # few-shot fit of the three models ran to its epoch cap or stopped at epoch 0: at 20 %
        # ST-VLM's best epoch is 30 of 30 and STID-like's 47-50 of 50, both curves still
        # falling, on 17 batches an epoch (the full fit period has 89, sz-taxi 59: 30 is a no-op
        # there, so no full row can change). Rule, written before its rows: make 30 the default
        # of ST-VLM, STID-like and LSTM (cpu preset and defaults; the paper preset keeps one
        # pass) when, on the full period's validation windows, 3 seeds each, no model's mean at
        # 5 %, 10 % or 20 % is above the library's (the -arbl2 rows: 5 % 25.18 each; 10 %
        # ST-VLM 24.106, STID-like 23.363, LSTM 24.900; 20 % 19.165, 18.923, 24.729) by more than
        # 0.05 (about a seed's sd at 10 %) and at least one is lower by 0.10 or more.
        "mlp-ema99-ms30": {**_MLP_PRESET, "ema_decay": 0.99, "_settle": 0.5, "min_steps_per_epoch": 30},
        # Session 25: the 45-epoch decay once more. Its full rows (session 19: 15.67 +- 0.09
        # against the preset's 15.78, the standing rule's 15.68 met) stand; it failed in session
        # 23 on its 10 % half by 0.02 (25.70 against 25.68), a level result, and the budget
        # (session 23's unrolled encoder: 16.1 s an epoch, so its 38-41 epochs are about 11
        # minutes). The library has changed since (session 24's weighted autoregression moves
        # every 10 % fit), so the half is asked again, of the library as it is, knowing that it
        # is a second look at a candidate that failed by a hair. Rule, written before its rows:
        # adopt max_epochs=45 in the cpu preset when, on the full period's validation windows,
        # 3 seeds, its mean at 10 % is not above the library's 24.106 and at 20 % not above
        # 19.165 (the -arbl2 rows), and the seed-0 full fit, alone with 2 threads, stays under 15
        # minutes (images, epochs, the autoregression's check).
        "mlp-ema99-e45-s25": {**_MLP_PRESET, "ema_decay": 0.99, "_settle": 0.5, "max_epochs": 45},
        # Result (full period's validation windows): 10 % 24.125, 24.218, 24.164 = 24.169 against
        # 24.106 (best epochs 23/29, 25/31, 23/29); 20 % seed 0 19.007 (best epoch 45/45; the
        # others stopped once the 10 % half had failed). Not adopted: the preset keeps 30 epochs.
        # Result of -ms30 (full period's validation windows, 3 seeds): 20 % ST-VLM 19.074, 18.837,
        # 18.792 = 18.901 against 19.165 (every seed lower; best epochs 30/30), STID-like 19.303,
        # 19.165, 19.277 = 19.248 against 18.923 (higher on every seed, its own windows 1.1
        # lower: it fits the part's days closer and transfers less), LSTM 23.895, 23.751 (seeds
        # 0-1) against 24.729; 10 % ST-VLM 24.114 against 24.106, STID-like 23.411 against 23.363;
        # 5 % STID-like 25.18 (epoch 0). The joint rule fails on STID-like at 20 % (+0.33).
        # Second candidate, shaped by those rows: min_steps_per_epoch as a per-model default,
        # each model's own validation deciding (as STID-like kept its plateau schedule where
        # ST-VLM took the cosine): STID-like declines it (its rows above). Rule, written before
        # its rows: adopt 30 for ST-VLM (and, separately, for the LSTM) when its -ms30 rows at 5 %
        # and 10 % are not above the library's by more than 0.05 and, on three fresh seeds (3, 4,
        # 5) fitted both ways (-arbl2 and -ms30), its 20 % mean on the full period's validation
        # windows is lower with -ms30 by 0.10 or more.
        # Result for ST-VLM (fresh seeds 3-5, 20 %, full period's validation windows): -ms30
        # 19.448, 19.100, 19.221 = 19.256 against -arbl2's 19.259, 19.082, 19.170 = 19.170:
        # 0.09 worse, where seeds 0-2 had been 0.26 better. Over six seeds 19.079 against
        # 19.168 (-0.09, the sign flipping with the seeds). Not adopted for ST-VLM.
        # Result for the LSTM (its "change-ema99-ms30" rows): 5 % 25.18 (epoch 0, the whole
        # autoregression, as the library); 10 % 24.185, 24.120, 24.182 = 24.162 against 24.900;
        # 20 % seeds 0-2 23.895, 23.751, 23.927, fresh seeds 3-5 24.729 (epoch 0), 23.784, 23.820
        # = 24.111 against -arbl2's 24.729 on each (its networks never beat the last value in one
        # pass). Adopted for the LSTM: its cpu benchmark preset takes min_steps_per_epoch=30.
        # Session 25, a screening on the full fit period (seed 0): the encoder LSTM at width 64.
        # Session 8 measured 15.70 against the preset's 15.77 (seed 0, before the average) and
        # turned it down on the budget alone (32.7 s an epoch against 23.0); session 23's
        # unrolled encoder made the encoder's share of a step cheaper. Rule, written before its
        # row: go on to seeds 1-2 (and then to the standing rule: a 3-seed mean of 15.68 or
        # lower, not worse at 10 %, the fit within 15 minutes) only if seed 0 reaches 15.70 or
        # lower at no more than 1.25x the preset's seconds an epoch beside the same kind of job.
        "mlp-ema99-enc64": {**_MLP_PRESET, "ema_decay": 0.99, "_settle": 0.5, "encoder_hidden": 64},
        # Result: 15.767 (best epoch 27/30) at 43.5 s an epoch, against the preset's 15.75 on
        # seed 0 at 29-32 s beside the same kind of job: neither half of the screen holds; not
        # carried on.
        # Session 26: STID-like's schedule (its plateau at 2e-3, halved after 5 epochs without
        # gain, 50 epochs, patience 10) in place of the preset's cosine from 4e-3 over 30: the
        # STID-like morphs (stid "morph-*") found ST-VLM's schedule costs STID-like 0.23 of the
        # 0.35 validation gap. Rule, written before its rows (the standing one): adopt in the
        # cpu preset at a 3-seed full validation mean of 15.68 or lower, its 10 % mean on the
        # full period's windows not above the preset's 24.106, and the seed-0 fit alone with 2
        # threads within 15 minutes (the 20 % part is recorded, not judged).
        "mlp-ema99-stidsched": {**_MLP_PRESET, "ema_decay": 0.99, "_settle": 0.5, "lr_schedule": "plateau",
                                "learning_rate": 2e-3, "max_epochs": 50, "patience": 10, "lr_patience": 5},
        # Seeds 0-1 (1 thread each, side by side): 15.406 (best epoch 49/50) and 15.461 (48/50),
        # against the preset's 15.75 and 15.86 (session 16) and STID-like's 15.389 and 15.420;
        # 27 s an epoch. Seed 2 ran as a benchmark fit of the candidate preset (its validation
        # read from the curve), 10 % and 20 % here.
        # 10 %, full period's windows: 24.257, 24.080, 24.166 = 24.168 against the preset's
        # 24.106 (24.062, 24.113, 24.144; mlp-ema99-arbl2): +0.06 (+0.20, -0.03, +0.02). The rule's
        # 10 % half fails as written. Second look, written before its rows: the miss is below
        # the candidate's own 10 % seed sd (0.09), against a full-period gain of about 0.4, so
        # the same criterion is applied once more to three fresh seeds (3-5) fitted both ways
        # (the preset as mlp-ema99-arbl2): the candidate is adopted only if its 10 % mean on
        # them is not above the preset's. Failing that, it is not adopted.
        # Fresh seeds 3-5: 23.998, 23.841, 23.998 = 23.946 against the preset's 24.054, 24.019,
        # 23.981 = 24.018: -0.07, the second look passes (six seeds: 24.057 against 24.062).
        # Adopted in the cpu preset (seed 2's full row from its benchmark curve; fit time alone
        # with 2 threads from the seed-0 benchmark fit: docs/results.md, session 26).
        # Session 27: the few-shot morphs of STID-like (stid "morph-*", few-shot rows) found
        # ST-VLM's LSTM encoder costs STID-like the whole 10 % gap (+0.94 on the full
        # period's windows, 3 seeds). The reverse in ST-VLM: its sensor tokens a linear map of
        # each sensor's window (STID-like's projection) in place of the LSTM, on the session-26
        # preset. Rule, written before its rows: adopt it in the cpu preset (a library option)
        # if (a) the 10 % 3-seed mean on the full period's windows is 23.97 or lower (the
        # preset's 24.168 less 0.20), (b) the 20 % 3-seed mean on the part's own windows is not
        # above the preset's 20.02 (its benchmark fits' curves: 19.872, 20.182, 20.001), and
        # (c) the full 3-seed validation mean is 15.47 or lower (the preset's 15.434 and its
        # seed noise); the 5 % part and the fit time are recorded.
        "mlp-ema99-linenc": {**_MLP_PRESET, "ema_decay": 0.99, "_settle": 0.5, "lr_schedule": "plateau",
                             "learning_rate": 2e-3, "max_epochs": 50, "patience": 10, "lr_patience": 5,
                             "_linear_encoder": True},
        # Rows (1 thread, beside another fit): 10 %, full period's windows: 23.469, 23.509,
        # 23.396 = 23.458 (the preset 24.168: -0.71; (a) holds; STID-like 23.363); 20 %, own
        # windows: 19.957, 20.250, 20.030 = 20.079 against the preset's 20.018 (+0.09, +0.07,
        # +0.03): (b) fails as written, by 0.06 (on the full period's windows the 20 % fits score
        # 18.21, 18.22, 18.15, against about 19.2 for the cosine preset's). Second look, written
        # before its rows (as session 26's): the miss is under the seed sd of either (0.15),
        # against a 10 % gain of 0.71, so (b) is applied once more to fresh seeds 3-5 fitted both
        # ways (the preset as mlp-ema99-stidsched); failing there, the candidate is not adopted.
        # Full, seed 0 (this hook, 1 thread beside another fit): 15.461 (best epoch 49/50, 22.7 s
        # an epoch; the preset 15.406 at 27 s). Seeds 1-2 are read from the validation curves of
        # benchmark fits of the library's implementation (temporal_encoder="linear" in the cpu
        # preset, on a branch), the test figures they print left unread until the rule is settled
        # (as session 26's seed 2), to save two fits.
        # Second look, fresh seeds 3-5 at 20 % (own windows): the candidate 19.999, 19.837, 20.086
        # = 19.974 against the preset's 19.856, 19.685, 19.646 = 19.729: +0.25, (b) fails again
        # (on the full period's windows the candidate is ahead once more: 18.14 against 18.64).
        # Not adopted; the two benchmark fits (seeds 1-2) were stopped unread and deleted. The
        # option stays in the library (temporal_encoder="linear", not a default).
        # Next candidate, "mlp-ema99-lstmlin": both paths, each sensor's token the LSTM's plus a
        # linear map of its window, to keep what the LSTM gives at 20 % and on the full period
        # and what the linear path gives at 10 %. Rule, written before its rows: (a) 10 %,
        # 3-seed mean on the full period's windows 23.97 or lower; (b) 20 %, 6-seed mean (0-5) on
        # the part's own windows not above the preset's 19.874 (19.872, 20.182, 20.001, 19.856,
        # 19.685, 19.646); (c) full, 3-seed validation mean 15.47 or lower. (a) and (b) first;
        # the full fits only if both hold.
        "mlp-ema99-lstmlin": {**_MLP_PRESET, "ema_decay": 0.99, "_settle": 0.5, "lr_schedule": "plateau",
                              "learning_rate": 2e-3, "max_epochs": 50, "patience": 10, "lr_patience": 5,
                              "_linear_encoder": "sum"},
        # Rows (1 thread, beside another fit): (a) 10 %: 23.808, 23.521, 23.560 = 23.630, holds
        # (the preset 24.168, the linear encoder alone 23.458); (b) 20 %: 19.994, 20.190, 19.998,
        # 20.355 on seeds 0-3 (the preset 19.872, 20.182, 20.001, 19.856): a 6-seed mean of
        # 19.874 would need seeds 4-5 at 19.35 on average, below every seed of either, so (b)
        # fails and the last two fits were stopped. Not adopted; no full fits. At 20 % the linear
        # path costs on the part's own windows whether or not the LSTM is kept beside it, and
        # gains on the full period's (18.06-18.52 against 18.55-18.79).
        # "change+tod-e30-cos4-mlp-fullft" (every weight of the random backbone trained, no LoRA):
        # measured at commit db7510a, 16.29 (best epoch 14, stopped at 20); the option was removed.
        # "change+tod-e30-cos4-mlpskip" (the MLP head also reading each sensor's window, a skip
        # past the backbone): measured at commit bf78550, 15.84; the option was removed.
    },
    # #14, Time-VLM and DLinear on ETT: epochs of at least N steps (the shared loop's
    # min_steps_per_epoch; a no-op on the full fit period, 231+ batches), for few-shot fits.
    # Session 12 chose 30 for Time-VLM (lowest geometric mean of the validation MSE's ratio to
    # one pass over the 10 few-shot cells of ETTh1 and ETTh2) and one pass for DLinear.
    # (and "patience-10": the cosine decay run to its end, the best epoch kept; session 12's
    # check of the early stops at H 96, full data)
    "timevlm": {"steps-1pass": dict(min_steps_per_epoch=None), **{
        f"steps-{n}": dict(min_steps_per_epoch=n) for n in (20, 30, 50)}, "patience-3": dict(patience=3),
        "patience-10": dict(patience=10),
        # regularisation against the few-shot overfit (ETTh1 5 %: validation MSE rises from epoch 1)
        "dropout-0.2": dict(dropout=0.2), "dropout-0.3": dict(dropout=0.3),
        "dropout-0.5": dict(dropout=0.5), "lr-3e-4": dict(learning_rate=3e-4), "wd-0.01": dict(weight_decay=0.01)},
    "dlinear": {"steps-1pass": dict(min_steps_per_epoch=None), **{
        f"steps-{n}": dict(min_steps_per_epoch=n) for n in (20, 30, 50)}, "patience-10": dict(patience=10)},
    "stid": {
        "level": dict(output="level"),
        "change": dict(output="change"),
        "change+dow": dict(output="change", dow_dim=32),
        "change-cos": dict(output="change", lr_schedule="cosine"),
        "level+dow": dict(output="level", dow_dim=32),
        "change-wu100": dict(output="change", _warmup_steps=100),
        "change-ema99": dict(output="change", ema_decay=0.99),
        "change-ema99-settle": dict(output="change", ema_decay=0.99, _settle=0.5),
        "change-ema99-arfb": dict(output="change", ema_decay=0.99, _settle=0.5),  # session 23: stvlm mlp-ema99-arfb
        "change-ema99-arbl": dict(output="change", ema_decay=0.99, _settle=0.5),  # session 24: stvlm mlp-ema99-arbl
        "change-ema99-arbl2": dict(output="change", ema_decay=0.99, _settle=0.5),  # session 24: stvlm mlp-ema99-arbl2
        "change-ema99-ms30": dict(output="change", ema_decay=0.99, _settle=0.5, min_steps_per_epoch=30),  # session 25: stvlm mlp-ema99-ms30
        # session 21: time-of-day knots (see stvlm's "mlp-ema99-tod48"); the library default
        # (output="change", the average and its settling) with K knots
        **{f"change-tod{k}": dict(output="change", _tod_knots=k) for k in (24, 48, 96)},
        "ar": dict(output="ar", _settle=0.5),  # session 21, see stvlm's "mlp-ema99-ar"
        "sscale": dict(output="change", _settle=0.5, _sensor_scale=True),  # session 22, see stvlm's "mlp-ema99-sscale"
        # Session 26, a diagnosis (not a candidate): STID-like morphed toward ST-VLM one trait at
        # a time, to find which of ST-VLM's traits costs it the validation gap (STID-like 15.39 /
        # 15.42 / 15.58 on seeds 0-2, ST-VLM about 0.35 higher; session 25 placed the gap in
        # calm windows, growing with the horizon). Each is the library STID-like
        # (change-ema99 with its settling) with one trait of ST-VLM's cpu preset:
        #   morph-recipe: ST-VLM's schedule (cosine from 4e-3 over 30 epochs, patience 6);
        #   morph-nodrop: no dropout in the blocks (ST-VLM's head has none);
        #   morph-lstm:   the window read by ST-VLM's temporal encoder (an LSTM of width 32,
        #                 its last state projected) in place of STID's linear projection;
        #   morph-sumln:  the three parts summed into one 96-wide token and layer-normalised
        #                 (ST-VLM adds its calendar and sensor position to the LSTM's token, and
        #                 ViLT normalises it) in place of three 32-wide parts concatenated.
        # Rule, written before the rows: a trait "explains" the gap if seed 0 moves STID-like
        # up by 0.20 or more (about half of the gap, over twice STID's seed-0 rerun noise); such
        # a trait then gets seeds 1-2, and its reverse in ST-VLM becomes the next candidate
        # (judged by the standing rule: a 3-seed full validation mean of 15.68 or lower, not
        # worse at 10 %, the fit within 15 minutes).
        "morph-recipe": dict(output="change", _settle=0.5, lr_schedule="cosine", learning_rate=4e-3,
                             max_epochs=30, patience=6),
        "morph-nodrop": dict(output="change", _settle=0.5, dropout=0.0),
        "morph-lstm": dict(output="change", _settle=0.5, _stid_morph="lstm"),
        "morph-sumln": dict(output="change", _settle=0.5, _stid_morph="sumln"),
        # Seed 0 (current code, 1 thread each, two side by side): the library 15.389 (rerun, as
        # stored), morph-recipe 15.758 (+0.37, best epoch 28/30), morph-nodrop 15.450 (+0.06),
        # morph-sumln 15.566 (+0.18). Only the schedule passes the rule: seeds 1-2 of
        # morph-recipe, and two halves of it on seed 0 to tell which part costs (not a rule of
        # their own, they choose the ST-VLM candidate's form): ST-VLM's 30 epochs on STID's
        # plateau at 2e-3 (morph-e30), and ST-VLM's cosine from 4e-3 over STID's 50 epochs
        # (morph-cos4-e50).
        "morph-e30": dict(output="change", _settle=0.5, max_epochs=30, patience=6),
        "morph-cos4-e50": dict(output="change", _settle=0.5, lr_schedule="cosine", learning_rate=4e-3),
        # Rows: morph-recipe seeds 1-2 15.645, 15.683: 3 seeds 15.695 against the library's
        # 15.463 (15.389, 15.420, 15.579), +0.23 paired, every seed +0.10 or more: ST-VLM's
        # schedule costs STID-like two thirds of the gap between the two. Halves, seed 0:
        # morph-e30 15.591 (+0.20; its curve still falling at the cap), morph-cos4-e50 15.622
        # (+0.23, flat from epoch 40): the short schedule and the cosine from 4e-3 each cost.
        # The reverse in ST-VLM is stvlm's "mlp-ema99-stidsched".
        # Session 27, the same diagnosis on the few-shot parts, where ST-VLM still trails on
        # the session-26 preset (validation: 10 %, full period's windows, 24.168 against
        # STID-like's 23.363, a gap of 0.80; 20 %, the part's own windows, 20.02 from the
        # benchmark fits' curves against 19.18, a gap of 0.84). The schedule is now shared, so
        # the architecture's traits are what is left: morph-lstm, morph-sumln, morph-nodrop at
        # few-shot-0.1 and few-shot-0.2, seeds 0-2. Rule, written before the rows: a trait
        # explains a part's gap if it moves STID-like's 3-seed mean up by half that gap or more
        # (10 %: 0.40 on the full period's windows; 20 %: 0.42 on the part's own windows);
        # its reverse in ST-VLM then becomes the next candidate.
        # Rows (1 thread each, two side by side), 3-seed means against the library's:
        #   10 % (full period's windows; library 23.363): morph-lstm 24.307 (24.140, 24.263,
        #   24.517; +0.94, passes), morph-sumln 23.593 (+0.23), morph-nodrop 23.429 (+0.07);
        #   20 % (own windows; library 19.180): morph-lstm 19.577 (+0.40, under the line by
        #   0.02), morph-sumln 19.661 (+0.48, passes; on the full period's windows it is 0.6
        #   *better*, 18.31 against 18.92), morph-nodrop 19.157 (-0.02).
        # The LSTM encoder explains the 10 % gap whole: its reverse is stvlm's "mlp-ema99-linenc".
    },
    "lstm": {
        "level": dict(output="level"),
        "change": dict(output="change"),
        "change-cos": dict(output="change", lr_schedule="cosine"),
        "change-ema99": dict(output="change", ema_decay=0.99),
        "change-ema99-settle": dict(output="change", ema_decay=0.99, _settle=0.5),
        "change-ema99-arfb": dict(output="change", ema_decay=0.99, _settle=0.5),  # session 23: stvlm mlp-ema99-arfb
        "change-ema99-arbl": dict(output="change", ema_decay=0.99, _settle=0.5),  # session 24: stvlm mlp-ema99-arbl
        "change-ema99-arbl2": dict(output="change", ema_decay=0.99, _settle=0.5),  # session 24: stvlm mlp-ema99-arbl2
        "change-ema99-ms30": dict(output="change", ema_decay=0.99, _settle=0.5, min_steps_per_epoch=30),  # session 25: stvlm mlp-ema99-ms30
        "ar": dict(output="ar", _settle=0.5),  # session 21, see stvlm's "mlp-ema99-ar"
    },
}


@contextlib.contextmanager
def _loop_subclassed(make):
    """The shared loop replaced by ``make(loop)`` (a subclass of it; ``None``: unchanged)
    while the context lasts; built on entry, so trial contexts nest and compose."""
    import stvlm.training as training

    original = training.TrainingLoop
    loop = make(original)
    if loop is not None:
        training.TrainingLoop = loop
    try:
        yield
    finally:
        training.TrainingLoop = original


def _without_initial_validation(active):
    """The shared loop without its "epoch 0" check (for the diagnosis only)."""

    def make(original):
        class Loop(original):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, **{**kwargs, "validate_initial": False})

        return Loop if active else None

    return _loop_subclassed(make)


@contextlib.contextmanager
def _with_settling(share):
    """Early stopping that counts no epoch until the initial weights hold at most ``share``
    of the moving average (``WeightAverage.settle_share``; ``None``: every epoch counts, as
    before session 17 — the library's default is 0.5 since, variant ``_settle``)."""
    from stvlm._weight_average import WeightAverage

    before = WeightAverage.settle_share
    WeightAverage.settle_share = share
    try:
        yield
    finally:
        WeightAverage.settle_share = before


def _with_warmup(steps):
    """The shared loop with a linear warm-up of the learning rate over its first ``steps``
    optimiser steps (a trial: counted in steps, it lasts several epochs on a few-shot part
    and about one on the full fit period)."""

    def make(original):
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

        return Loop if steps else None

    return _loop_subclassed(make)


@contextlib.contextmanager
def _with_head(spec):
    """ST-VLM with a trial readout in place of its MLP head (``spec``: ``dropout``,
    ``layers``, ``calendar_dim``, ``node_dim``): STID's readout, whose own time-of-day and
    sensor embeddings are concatenated to each sensor's backbone output."""
    if not spec:
        yield
        return
    import torch
    from torch import nn

    from stvlm.baselines._modules import _ResidualBlock  # STID's block: fc2(dropout(relu(fc1 h))) + h
    from stvlm.network import model as m

    dropout, layers = spec.get("dropout", 0.0), spec.get("layers", 2)
    calendar_dim, node_dim = spec.get("calendar_dim", 0), spec.get("node_dim", 0)

    class Head(nn.Module):
        def __init__(self, hidden, horizon, width, steps_per_day, n_nodes):
            super().__init__()
            self.tod = nn.Embedding(steps_per_day, calendar_dim) if calendar_dim else None
            self.node = nn.Parameter(torch.empty(n_nodes, node_dim)) if node_dim else None
            for w in (self.tod.weight if self.tod is not None else None, self.node):
                if w is not None:
                    nn.init.xavier_uniform_(w)
            self.inp = nn.Linear(hidden + calendar_dim + node_dim, width)
            self.blocks = nn.ModuleList(_ResidualBlock(width, dropout) for _ in range(layers))
            self.out = nn.Linear(width, horizon)
            self.time_of_day = None

        def forward(self, h):
            b, n, _ = h.shape
            parts = [h]
            if self.tod is not None:
                parts.append(self.tod(self.time_of_day).to(h.dtype)[:, None, :].expand(b, n, -1))
            if self.node is not None:
                parts.append(self.node.to(h.dtype)[None].expand(b, -1, -1))
            z = self.inp(torch.cat(parts, dim=-1))
            for block in self.blocks:
                z = block(z)
            return self.out(z).transpose(1, 2)

    init, forward = m.STVLMNetwork.__init__, m.STVLMNetwork.forward

    def trial_init(self, backbone, prompt_ids, n_nodes, history, horizon, **kwargs):
        init(self, backbone, prompt_ids, n_nodes, history, horizon, **kwargs)
        if calendar_dim and kwargs.get("calendar") is None:
            raise ValueError("a head calendar needs the model's calendar (its windows' time of day)")
        self.head = Head(backbone.config.hidden_size, self.horizon, self.head.inp.out_features,
                         int(kwargs.get("steps_per_day") or 1), self.n_nodes)

    def trial_forward(self, x, images, time_of_day=None, day_of_week=None):
        self.head.time_of_day = time_of_day
        return forward(self, x, images, time_of_day, day_of_week)

    m.STVLMNetwork.__init__, m.STVLMNetwork.forward = trial_init, trial_forward
    try:
        yield
    finally:
        m.STVLMNetwork.__init__, m.STVLMNetwork.forward = init, forward


@contextlib.contextmanager
def _with_lora_targets(targets):
    """ST-VLM with LoRA on ``targets`` (module names, as peft matches them) instead of the
    library's ``["query", "key"]``: ``"dense"`` adds the attention output and both
    feed-forward layers of every ViLT layer (the backbone is built without a pooler)."""
    if not targets:
        yield
        return
    import peft

    original = peft.LoraConfig

    def config(**kwargs):
        return original(**{**kwargs, "target_modules": list(targets)})

    peft.LoraConfig = config  # the network imports it from peft when it is built
    try:
        yield
    finally:
        peft.LoraConfig = original


@contextlib.contextmanager
def _after_network_init(step):
    """``STVLMNetwork.__init__`` followed by ``step(network)``, until the block ends."""
    from stvlm.network import model as m

    init = m.STVLMNetwork.__init__

    def trial_init(self, *args, **kwargs):
        init(self, *args, **kwargs)
        step(self)

    m.STVLMNetwork.__init__ = trial_init
    try:
        yield
    finally:
        m.STVLMNetwork.__init__ = init


@contextlib.contextmanager
def _with_trained_backbone(active):
    """ST-VLM whose backbone weights all train (with ``finetune=None``: no LoRA)."""
    if not active:
        yield
        return
    with _after_network_init(lambda net: net.backbone.requires_grad_(True)):
        yield


@contextlib.contextmanager
def _with_linear_encoder(active):
    """ST-VLM whose sensor tokens are a linear map of each sensor's window (STID-like's
    window projection, ``Linear(history, hidden)``) in place of the LSTM encoder; with
    ``active="sum"``, the LSTM's token plus that linear map."""
    if not active:
        yield
        return
    from torch import nn

    class LinearEncoder(nn.Module):
        def __init__(self, history, hidden):
            super().__init__()
            self.proj = nn.Linear(history, hidden)

        def forward(self, x):  # (B, history, N) -> (B, N, hidden)
            return self.proj(x.transpose(1, 2))

    class Both(nn.Module):
        def __init__(self, lstm, linear):
            super().__init__()
            self.lstm, self.linear = lstm, linear

        def forward(self, x):
            return self.lstm(x) + self.linear(x)

    def swap(net):
        linear = LinearEncoder(net.history, net.backbone.config.hidden_size)
        net.temporal_encoder = Both(net.temporal_encoder, linear) if active == "sum" else linear

    with _after_network_init(swap):
        yield


@contextlib.contextmanager
def _with_identity_values(active):
    """ST-VLM whose frozen backbone's value and attention-output projections are the
    identity (biases zero): attention adds the attended tokens themselves, unscrambled, in
    place of ViLT's N(0, 0.02) projections, under which it adds about 2 % of a token."""
    if not active:
        yield
        return
    import torch

    def identity_values(net):
        with torch.no_grad():
            for layer in net.backbone.encoder.layer:
                for linear in (layer.attention.attention.value, layer.attention.output.dense):
                    linear.weight.copy_(torch.eye(*linear.weight.shape))
                    linear.bias.zero_()

    with _after_network_init(identity_values):
        yield


@contextlib.contextmanager
def _with_adamw(active):
    """The shared loop's optimiser as AdamW (decoupled weight decay, ``est.weight_decay``)."""
    if not active:
        yield
        return
    import torch

    original = torch.optim.Adam
    torch.optim.Adam = torch.optim.AdamW  # the loop builds torch.optim.Adam(params, lr, weight_decay)
    try:
        yield
    finally:
        torch.optim.Adam = original


def _knot_table(steps_per_day, knots, width):
    """A time-of-day table of ``steps_per_day`` rows spanned by ``knots`` learned vectors: a
    slot's vector is the linear interpolation (round the clock) between the two knots around
    it, so neighbouring slots share what they learn. The knots start with the Xavier-uniform
    bound of the ``(steps_per_day, width)`` table they replace."""
    import math

    import torch
    from torch import nn

    class KnotTable(nn.Module):
        def __init__(self):
            super().__init__()
            u = torch.arange(steps_per_day, dtype=torch.float64) * knots / steps_per_day
            k0 = torch.floor(u).long()
            frac = u - k0
            interp = torch.zeros(steps_per_day, knots, dtype=torch.float64)
            interp[torch.arange(steps_per_day), k0 % knots] += 1 - frac
            interp[torch.arange(steps_per_day), (k0 + 1) % knots] += frac
            self.register_buffer("interp", interp.float())
            bound = math.sqrt(6.0 / (steps_per_day + width))
            self.knots = nn.Parameter(torch.empty(knots, width).uniform_(-bound, bound))

        def table(self):
            return self.interp.to(self.knots.dtype) @ self.knots

        def forward(self, slots):
            return self.table()[slots]

    return KnotTable()


@contextlib.contextmanager
def _with_tod_knots(knots):
    """Both models' time-of-day embedding as ``knots`` learned vectors interpolated to every
    slot (:func:`_knot_table`) instead of one free vector per slot: ST-VLM's
    ``CalendarEmbedding.time_of_day`` and STID-like's ``tod_emb``."""
    if not knots:
        yield
        return
    from stvlm.baselines import _modules
    from stvlm.network import layers

    cal_init, stid_init = layers.CalendarEmbedding.__init__, _modules.STIDModule.__init__

    def cal_trial(self, steps_per_day, hidden_size, day_of_week=False):
        cal_init(self, steps_per_day, hidden_size, day_of_week)
        self.time_of_day = _knot_table(int(steps_per_day), knots, int(hidden_size))

    class KnotSTID(_modules.STIDModule):
        @property
        def tod_emb(self):
            return self.tod_table.table()

    def stid_trial(self, history, horizon, n_sensors, steps_per_day, embed_dim, node_dim, tod_dim, *args, **kwargs):
        stid_init(self, history, horizon, n_sensors, steps_per_day, embed_dim, node_dim, tod_dim, *args, **kwargs)
        if tod_dim:
            del self.tod_emb
            self.tod_table = _knot_table(int(steps_per_day), knots, int(tod_dim))
            self.__class__ = KnotSTID

    layers.CalendarEmbedding.__init__, _modules.STIDModule.__init__ = cal_trial, stid_trial
    try:
        yield
    finally:
        layers.CalendarEmbedding.__init__, _modules.STIDModule.__init__ = cal_init, stid_init


@contextlib.contextmanager
def _with_sensor_scale(active):
    """z-score each sensor with its own mean and std over the training windows (the shared
    base's one mean and std over all sensors otherwise): the networks read windows, and
    forecast, in each sensor's units; the loss stays in the units of the data. Done around
    the base's global scaling: its z-scored inputs are moved to the sensor's scale, and the
    forecast moved back before the base undoes its own."""
    if not active:
        yield
        return
    import torch

    from stvlm._base import BaseWindowForecaster

    fit_seeded = BaseWindowForecaster._fit_seeded
    inputs_of = BaseWindowForecaster._inputs
    scaled_forecast = BaseWindowForecaster._scaled_forecast

    def trial_fit_seeded(self, seed, train, val, device):
        x = np.asarray(train.X, dtype=np.float64)  # (windows, history, sensors)
        x = np.where(np.isfinite(x), x, np.nan)
        mean, std = np.nanmean(x, axis=(0, 1)), np.nanstd(x, axis=(0, 1))
        self._sensor_mean = np.where(np.isfinite(mean), mean, self.mean_).astype(np.float32)
        self._sensor_std = np.where(np.isfinite(std) & (std > 0), std, self.std_).astype(np.float32)
        return fit_seeded(self, seed, train, val, device)

    def _affine(self, device):
        """Sensor units from the base's: x_s = a x_g + b."""
        a = torch.as_tensor(self.std_ / self._sensor_std, device=device)
        b = torch.as_tensor((self.mean_ - self._sensor_mean) / self._sensor_std, device=device)
        return a, b

    def trial_inputs(self, windows, idx, device):
        (x,) = inputs_of(self, windows, idx, device)
        a, b = _affine(self, device)
        return (x * a + b,)

    def trial_scaled_forecast(self, module, inputs, device):
        out = scaled_forecast(self, module, inputs, device)
        a, b = _affine(self, out.device)
        return (out - b) / a

    BaseWindowForecaster._fit_seeded = trial_fit_seeded
    BaseWindowForecaster._inputs = trial_inputs
    BaseWindowForecaster._scaled_forecast = trial_scaled_forecast
    try:
        yield
    finally:
        BaseWindowForecaster._fit_seeded = fit_seeded
        BaseWindowForecaster._inputs = inputs_of
        BaseWindowForecaster._scaled_forecast = scaled_forecast


@contextlib.contextmanager
def _with_stid_morph(mode):
    """STID-like's module with one trait of ST-VLM's network (session 26's diagnosis):
    ``"lstm"``, its window read by ST-VLM's temporal encoder (LSTM width 32) in place of the
    linear projection; ``"sumln"``, its window, sensor and time-of-day parts each as wide as
    the three together, summed and layer-normalised, in place of concatenated."""
    if mode is None:
        yield
        return
    import torch
    from torch import nn

    from stvlm.baselines import _modules
    from stvlm.network import TemporalEncoder

    original = _modules.STIDModule

    class Morphed(original):
        def __init__(self, history, horizon, n_sensors, steps_per_day, embed_dim, node_dim, tod_dim,
                     num_layers, dropout, dow_dim=0):
            if dow_dim or not (node_dim and tod_dim):
                raise ValueError("the STID-like morphs read the sensor and the time of day, not the weekday")
            width = embed_dim + node_dim + tod_dim
            if mode == "sumln":
                embed_dim = node_dim = tod_dim = width
            super().__init__(history, horizon, n_sensors, steps_per_day, embed_dim, node_dim, tod_dim,
                             num_layers, dropout, dow_dim)
            if mode == "lstm":
                self.series_proj = TemporalEncoder(embed_dim, encoder_hidden=32)
            else:
                self.blocks = nn.Sequential(*[_modules._ResidualBlock(width, dropout) for _ in range(num_layers)])
                self.head = nn.Linear(width, horizon)
                self.norm = nn.LayerNorm(width)

        def forward(self, x, tod, dow=None):
            if mode == "lstm":
                B, _, N = x.shape
                h = torch.cat([self.series_proj(x), self.node_emb.unsqueeze(0).expand(B, N, -1),
                               self.tod_emb[tod].unsqueeze(1).expand(B, N, -1)], dim=-1)
            else:
                h = self.series_proj(x.transpose(1, 2)) + self.node_emb.unsqueeze(0) + self.tod_emb[tod].unsqueeze(1)
                h = self.norm(h)
            return self.head(self.blocks(h)).transpose(1, 2)

    _modules.STIDModule = Morphed
    try:
        yield
    finally:
        _modules.STIDModule = original


@contextlib.contextmanager
def _with_trainable_ar(active):
    """output="ar" whose coefficients train with the network: they start at the least-squares
    fit (``ar_coef_``) as a parameter of the module (``ar_weight``), which the optimiser, the
    moving average and the kept epoch all see."""
    if not active:
        yield
        return
    import torch

    from stvlm._autoregression import ar_forecast
    from stvlm._base import BaseWindowForecaster
    from stvlm.baselines import LSTMForecaster, STIDForecaster
    from stvlm.forecaster import STVLMForecaster

    originals = {cls: cls.__dict__["_build_module"] for cls in (STVLMForecaster, STIDForecaster, LSTMForecaster)}
    scaled = BaseWindowForecaster._scaled_forecast

    def wrap(original):
        def build(self, n_sensors):
            module = original(self, n_sensors)
            module.ar_weight = torch.nn.Parameter(torch.tensor(self.ar_coef_, dtype=torch.float32))
            return module
        return build

    def trial_scaled(self, module, inputs, device):
        out = self._forward(module, inputs, device).float()
        return out + ar_forecast(inputs[0].float(), module.ar_weight)

    for cls, original in originals.items():
        cls._build_module = wrap(original)
    BaseWindowForecaster._scaled_forecast = trial_scaled
    try:
        yield
    finally:
        for cls, original in originals.items():
            cls._build_module = original
        BaseWindowForecaster._scaled_forecast = scaled


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


def run(protocol, model, variants, settings, seeds, out, overrides=None, history=None, horizon=None):
    import torch

    from stvlm._benchmark_models import _fit_kwargs, _own_validation
    from stvlm.benchmark import _fit_rows, _make_model
    from stvlm.datasets import load_protocol

    p = load_protocol(protocol, history=history, horizon=horizon)
    out = Path(out)
    done = set()
    if out.exists():
        for line in out.read_text().splitlines():
            r = json.loads(line)
            done.add((r["protocol"], r["setting"], r["model"], r["variant"], r["seed"], r.get("horizon")))
    for setting in settings:
        for variant in variants:
            for seed in seeds:
                key = (p.name, setting, model, variant, seed, p.horizon if _own_validation(p) else None)
                if key in done:
                    continue
                if _own_validation(p) and len(_fit_rows(p, setting)) < p.history + p.horizon:
                    print(f"{p.name} H {p.horizon} {setting}: no training window, skipped", flush=True)
                    continue
                params = {**VARIANTS[model][variant], **(overrides or {})}
                spec = dict(params)  # recorded with the trial hooks' keys
                no_initial = params.pop("_no_initial", False)
                warmup = params.pop("_warmup_steps", 0)
                head = params.pop("_head", None)
                weight_decay = params.pop("_weight_decay", None)
                settle = params.pop("_settle", None)
                lora_targets = params.pop("_lora_targets", None)
                train_backbone = params.pop("_train_backbone", False)
                adamw = params.pop("_adamw", None)
                tod_knots = params.pop("_tod_knots", None)
                trainable_ar = params.pop("_trainable_ar", False)
                sensor_scale = params.pop("_sensor_scale", False)
                identity_values = params.pop("_identity_values", False)
                stid_morph = params.pop("_stid_morph", None)
                linear_encoder = params.pop("_linear_encoder", False)
                if adamw is not None:
                    weight_decay = adamw
                est = _make_model(model, "cpu", setting, seed, p, {model: params})
                if weight_decay is not None:  # read by the shared loop through getattr
                    est.weight_decay = weight_decay
                t0 = time.perf_counter()
                with _without_initial_validation(no_initial), _with_warmup(warmup), _with_settling(settle):
                    with _with_head(head), _with_lora_targets(lora_targets), _with_trained_backbone(train_backbone), \
                            _with_adamw(adamw is not None), _with_tod_knots(tod_knots), \
                            _with_trainable_ar(trainable_ar), _with_sensor_scale(sensor_scale), \
                            _with_identity_values(identity_values), _with_stid_morph(stid_morph), \
                            _with_linear_encoder(linear_encoder):
                        est.fit(_fit_rows(p, setting), **_fit_kwargs(model, p))
                hist = est.loss_history_
                if _own_validation(p):  # ETT: the protocol's validation months, MSE
                    _write(out, _long_term_row(p, setting, model, variant, seed, est, hist, t0, spec))
                    continue
                row = dict(
                    protocol=p.name, setting=setting, model=model, variant=variant, seed=seed,
                    val_mae=-est.best_score_, best_epoch=est.best_epoch_, epochs=len(hist),
                    fit_seconds=round(time.perf_counter() - t0, 1),
                    seconds_per_epoch=round(float(np.median([r["seconds"] for r in hist])), 2),
                    val_curve=[round(r["val_loss"], 3) for r in hist], threads=torch.get_num_threads(),
                    device=str(params.get("device", "cpu")),
                    params=spec,
                    finished=time.strftime("%Y-%m-%dT%H:%M:%S"),
                )
                row["last_value_val_mae"] = _last_value_on_validation(est, _fit_rows(p, setting))
                # session 23: the fit kept the linear autoregression (output="change"'s fallback)
                row["ar_fallback"] = getattr(est, "output", None) == "change" and getattr(est, "ar_coef_", None) is not None
                # session 24: the weight of the autoregression it added (None: the network alone)
                row["ar_weight"] = getattr(est, "ar_weight_", None) if getattr(est, "output", None) == "change" else None
                if setting.startswith("few-shot-"):
                    with _with_head(head), _with_trainable_ar(trainable_ar), _with_sensor_scale(sensor_scale), \
                            _with_stid_morph(stid_morph):  # the trial network's forecast too
                        row["later_val_mae"] = _later_validation_mae(est, p)
                    row["last_value_later_val_mae"] = _last_value_on_validation(est, p.fit_series)
                _write(out, row)
                print(f"{p.name} {setting} {model} {variant} seed {seed}: val MAE {row['val_mae']:.3f} "
                      f"(best epoch {row['best_epoch']}/{row['epochs']}, {row['seconds_per_epoch']} s/epoch; "
                      f"last value {row['last_value_val_mae']:.3f})"
                      + (f"; full-period validation {row['later_val_mae']:.3f} (last value "
                         f"{row['last_value_later_val_mae']:.3f})" if "later_val_mae" in row else ""), flush=True)


def _long_term_row(p, setting, model, variant, seed, est, hist, t0, spec):
    """A row for a protocol with its own validation period (ETT): the fit's validation MSE
    on those months (every setting, few-shot too, validates there, as in the papers) and
    the last value's on the same windows."""
    import torch

    from stvlm.data import as_windows

    val = as_windows(p.val_series, history=est.history, horizon=est.horizon)
    naive = np.repeat(val.filled()[:, -1:, :], est.horizon, axis=1)
    row = dict(
        protocol=p.name, setting=setting, model=model, variant=variant, seed=seed,
        val_mse=-est.best_score_, last_value_val_mse=float(np.mean((val.y - naive) ** 2)),
        best_epoch=est.best_epoch_, epochs=len(hist), horizon=est.horizon,
        fit_seconds=round(time.perf_counter() - t0, 1), val_curve=[round(r["val_loss"], 4) for r in hist],
        threads=torch.get_num_threads(), params=spec, finished=time.strftime("%Y-%m-%dT%H:%M:%S"),
    )
    print(f"{p.name} H {est.horizon} {setting} {model} {variant} seed {seed}: val MSE {row['val_mse']:.4f} "
          f"(best epoch {row['best_epoch']}/{row['epochs']}; last value {row['last_value_val_mse']:.3f})", flush=True)
    return row


def _write(out, row):
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "a") as f:
        f.write(json.dumps(row) + "\n")


def summary(path):
    """A markdown table of the rows in ``path``: mean validation MAE per variant (and seeds)."""
    rows = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
    if rows and "val_mse" in rows[0]:
        return _long_term_summary(rows)
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


def _long_term_summary(rows):
    """Validation MSE per (protocol, setting, horizon) and variant; mean over seeds."""
    groups = {}
    for r in rows:
        groups.setdefault((r["protocol"], r["setting"], r["horizon"], r["model"], r["variant"]), []).append(r)
    lines = ["| protocol | setting | H | model | variant | validation MSE | last value | best epoch / epochs | seeds |",
             "|---|---|---|---|---|---|---|---|---|"]
    for (proto, setting, h, model, variant), rs in sorted(groups.items()):
        epochs = ", ".join(f"{r['best_epoch']}/{r['epochs']}" for r in rs)
        lines.append(f"| {proto} | {setting} | {h} | {model} | {variant} | {np.mean([r['val_mse'] for r in rs]):.4f} "
                     f"| {rs[0]['last_value_val_mse']:.3f} | {epochs} | {len(rs)} |")
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
    ap.add_argument("--history", type=int, default=None, help="the protocol's window (ETT: e.g. 512)")
    ap.add_argument("--horizons", default=None, help="comma-separated (ETT: e.g. 96,336,720)")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "tuning.jsonl"))
    ap.add_argument("--device", default=None, help="e.g. cuda (the GPU search of session 10); default: the preset's")
    args = ap.parse_args(argv)
    if args.summary:
        print(summary(args.out))
        return
    if not args.variants:
        ap.error("--variants is required (or --summary)")
    # float32 on the GPU too, so that a GPU search ranks what the CPU preset would train
    overrides = None if args.device is None else dict(
        device=args.device, **({"precision": "fp32"} if args.model == "stvlm" else {}))
    for horizon in [None] if args.horizons is None else [int(h) for h in args.horizons.split(",")]:
        run(args.protocol, args.model, args.variants.split(","), args.settings.split(","),
            [int(s) for s in args.seeds.split(",")], args.out, overrides, args.history, horizon)


if __name__ == "__main__":
    main()
