"""How much a sensor token of the cpu preset's random backbone reads the other sensors.

ViLT initialises every linear layer and embedding with N(0, ``initializer_range``),
0.02 by default: a scale meant for a network whose weights all train. The ``cpu``
preset freezes the random backbone (only LoRA on query and key trains), so that
scale stays. For the untrained ``cpu``-preset network (170 sensors, windows of the
pems08-tail fit period z-scored as the estimator does, their S2I images) this script
prints, per ``initializer_range``:

- per layer, the norm of what attention and the feed-forward block add to a sensor
  token, over the norm of the token they add it to (means over tokens and windows);
- the **cross-sensor share**: how much the backbone's output at a sensor token moves
  when every *other* sensor's window is replaced by another window's (same sensor
  positions, same image, same time of day), over how much it moves when the sensor's
  own window is replaced too. Near 0: each sensor token is a function of its own
  window alone; the attention does not mix sensors.

No test window is read (the first windows of the fit period). docs/results.md,
"Session 22: the random backbone's scale".

    python benchmarks/backbone_scale.py
"""

from __future__ import annotations

import numpy as np
import torch
from transformers import ViltConfig

from stvlm import SpatialToImageTransformer
from stvlm.data import as_windows
from stvlm.datasets import load_protocol
from stvlm.network import STVLMNetwork
from stvlm.presets import preset_params

SCALES = (0.02, 0.0625, 0.125)
N_WINDOWS = 32


def _network(scale, n_nodes, history, horizon, steps_per_day):
    p = preset_params("cpu")
    torch.manual_seed(0)
    return STVLMNetwork.from_backbone(
        ViltConfig(**{**p["backbone"], "initializer_range": scale}), n_nodes=n_nodes, history=history, horizon=horizon,
        encoder_hidden=p["encoder_hidden"], decoder_hidden=p["decoder_hidden"], head=p["head"],
        calendar="time-of-day", steps_per_day=steps_per_day,
    ).eval()


def _sensor_tokens(net, x, images, tod):
    """The backbone's last hidden state at the sensor tokens, (B, N, hidden)."""
    out = {}
    handle = net.head.register_forward_hook(lambda m, args, res: out.setdefault("s", args[0]))
    with torch.no_grad():
        net(x, images, tod)
    handle.remove()
    return out["s"]


def main():
    p = load_protocol("pems08-tail")
    windows = as_windows(p.fit_series, history=p.history, horizon=p.horizon)
    idx = np.arange(N_WINDOWS) * 97  # spread over the first days of the fit period
    x = windows.filled()[idx]
    mean, std = np.nanmean(x), np.nanstd(x)
    images = SpatialToImageTransformer(dtype="float32").fit_transform(x)
    x = torch.as_tensor((x - mean) / std, dtype=torch.float32)
    images = torch.as_tensor(np.asarray(images.channels), dtype=torch.float32)
    tod = torch.as_tensor((p.first_time_index + idx + p.history - 1) % p.steps_per_day, dtype=torch.long)
    other = torch.roll(x, 1, dims=0)  # each window's sensors replaced by the previous window's
    n = x.shape[-1]
    print("| initializer_range | layer | attention adds / token | feed-forward adds / token | cross-sensor share |")
    print("|---|---|---|---|---|")
    for scale in SCALES:
        net = _network(scale, n, p.history, p.horizon, p.steps_per_day)
        ratios = {}

        residual = {}

        def layer_hook(i):
            def hook(module, args):
                residual[i] = args[0][:, net.sensor_offset : net.n_text_tokens]
            return hook

        def attn_hook(i):  # ViLT's attention reads the normalised token; it adds to the token itself
            def hook(module, args, res):
                added = (res[0] if isinstance(res, tuple) else res)[:, net.sensor_offset : net.n_text_tokens]
                ratios.setdefault(i, {})["attn"] = (added.norm(dim=-1) / residual[i].norm(dim=-1)).mean().item()
            return hook

        def ffn_hook(i):
            def hook(module, args, res):
                sl = slice(net.sensor_offset, net.n_text_tokens)
                before, after = args[1][:, sl], res[:, sl]
                ratios.setdefault(i, {})["ffn"] = ((after - before).norm(dim=-1) / before.norm(dim=-1)).mean().item()
            return hook

        handles = []
        for i, layer in enumerate(net.backbone.encoder.layer):
            handles.append(layer.register_forward_pre_hook(layer_hook(i)))
            handles.append(layer.attention.register_forward_hook(attn_hook(i)))
            handles.append(layer.output.register_forward_hook(ffn_hook(i)))
        base = _sensor_tokens(net, x, images, tod)
        for h in handles:
            h.remove()
        # sensor k's own window kept, every other sensor's replaced; then all replaced
        replaced = _sensor_tokens(net, other, images, tod)
        moved_others, moved_all = [], []
        for k in range(0, n, 17):
            mixed = other.clone()
            mixed[:, :, k] = x[:, :, k]
            moved_others.append((_sensor_tokens(net, mixed, images, tod)[:, k] - base[:, k]).norm(dim=-1))
            moved_all.append((replaced[:, k] - base[:, k]).norm(dim=-1))
        share = (torch.stack(moved_others).mean() / torch.stack(moved_all).mean()).item()
        for i in sorted(ratios):
            print(f"| {scale} | {i} | {ratios[i]['attn']:.3f} | {ratios[i]['ffn']:.3f} | {share:.3f} |")


if __name__ == "__main__":
    main()
