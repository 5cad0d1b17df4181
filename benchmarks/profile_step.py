"""One training step of ST-VLM's ``cpu`` preset at pems08-tail's size (32 windows, 170
sensors), operator by operator: torch's profiler over a few forward + backward passes,
the operators with the most self time grouped by input shape, and the step's median
seconds. Finer than ``profile_epoch.py`` (no data path, no validation), for finding the
operators to remove.

    python benchmarks/profile_step.py --threads 1
    PYTHONPATH=/path/to/old/checkout python benchmarks/profile_step.py --threads 1

The network comes from a one-epoch fit on 400 rows; its output layer (zero at
initialisation, so that an untrained model repeats the last value) is drawn at random so
that every layer gets a gradient, as in the middle of training.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import warnings


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    ap.add_argument("--steps", type=int, default=10, help="timed steps (median)")
    ap.add_argument("--top", type=int, default=15)
    args = ap.parse_args(argv)

    import torch
    from torch.profiler import ProfilerActivity, profile

    import stvlm
    from stvlm import STVLMForecaster
    from stvlm.datasets import load_protocol

    if args.threads:
        torch.set_num_threads(args.threads)
    series = load_protocol("pems08-tail").fit_series[:400]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # one epoch on 400 rows keeps its initial weights
        net = STVLMForecaster.from_preset("cpu", max_epochs=1, random_state=0, verbose=0).fit(series).network_
    net.train()
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in net.head.out.parameters():
            p.copy_(0.05 * torch.randn(p.shape, generator=gen))
    n = net.n_nodes
    x = torch.randn(32, net.history, n, generator=gen)
    images = torch.rand(32, 3, n, n, generator=gen)
    slots = torch.randint(0, 288, (32,), generator=gen)
    calendar = (slots,) if net.calendar_embedding is not None else ()

    def step():
        net.zero_grad(set_to_none=True)
        net(x, images, *calendar).abs().mean().backward()

    for _ in range(2):
        step()
    seconds = []
    for _ in range(args.steps):
        t0 = time.perf_counter()
        step()
        seconds.append(time.perf_counter() - t0)
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        for _ in range(3):
            step()
    events = sorted(prof.key_averages(group_by_input_shape=True), key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in events)
    top = [dict(op=e.key, shapes=str(e.input_shapes)[:100], ms_per_step=round(e.self_cpu_time_total / 3e3, 1),
                share=round(e.self_cpu_time_total / total, 3)) for e in events[: args.top]]
    print(json.dumps(dict(stvlm=stvlm.__file__, threads=torch.get_num_threads(),
                          step_seconds=round(statistics.median(seconds), 4))))
    for row in top:
        print(f"{100 * row['share']:5.1f}% {row['ms_per_step']:7.1f} ms  {row['op']:<45} {row['shapes']}")


if __name__ == "__main__":
    main()
