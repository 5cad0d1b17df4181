"""ST-VLM's encoder LSTM on a CPU: oneDNN's ``nn.LSTM`` against the unrolled recurrence
that ``TemporalEncoder`` runs there (the same weights), one forward and backward pass.

    OMP_NUM_THREADS=2 python benchmarks/lstm_encoder.py
    OMP_NUM_THREADS=1 python benchmarks/lstm_encoder.py

Shapes of the ``cpu`` preset on pems08-tail: 12 steps, hidden 32, one input feature, a
batch of 32 windows x 170 sensors (with 1 thread: 16 windows, a process's share under two
processes). Prints the medians of 15 passes after 3 warm-up passes, and the ratio. One
thread count per process: oneDNN keeps the threads it started with when torch's count
is lowered later, so a second count in the same process would not be measured.
"""

from __future__ import annotations

import time

import torch

from stvlm.network import TemporalEncoder


def passes(fn, grad, repeats=15):
    for _ in range(3):
        fn().backward(grad)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        t1 = time.perf_counter()
        out.backward(grad)
        times.append((t1 - t0, time.perf_counter() - t1))
    times.sort(key=sum)
    return times[len(times) // 2]


def main():
    torch.manual_seed(0)
    threads = torch.get_num_threads()
    sequences = (32 if threads > 1 else 16) * 170
    enc = TemporalEncoder(hidden_size=64, encoder_hidden=32)
    seq = torch.randn(sequences, 12, 1)
    grad = torch.randn(sequences, 32)

    def onednn():
        return enc.lstm(seq)[1][0][-1]

    rows = {"nn.LSTM (oneDNN)": passes(onednn, grad), "unrolled": passes(lambda: enc._unrolled(seq), grad)}
    for name, (fwd, bwd) in rows.items():
        print(f"{threads} thread(s), {sequences} sequences, {name}: forward {1e3 * fwd:.1f} ms, "
              f"backward {1e3 * bwd:.1f} ms")
    (f0, b0), (f1, b1) = rows.values()
    print(f"  unrolled / nn.LSTM: forward {f1 / f0:.2f}x, backward {b1 / b0:.2f}x, both {(f1 + b1) / (f0 + b0):.2f}x")

if __name__ == "__main__":
    main()
