#!/usr/bin/python3
"""PyTorch CPU peer for `deno task bench`: the same MobileNetV1 alpha=0.25,
96x96x1, 2 classes, batch 32, Adam lr 1e-3, cross-entropy, as qgt's bench.

Prints one JSON object: torch version, parameter count, and per thread count
the median fp32 training samples/s and inference ms per batch of 32.
Adapted from the project's shared PyTorch reference script (fp32 figures only).
Run with MALLOC_MMAP_THRESHOLD_=33554432 MALLOC_TRIM_THRESHOLD_=4294967296
(the bench sets them): without them glibc returns activation buffers to the OS
every step and timings vary 2-10x.
"""
import argparse
import json
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

BATCH, H, W, CLASSES = 32, 96, 96, 2
BLOCKS = [(16, 1), (32, 2), (32, 1), (64, 2), (64, 1), (128, 2)] + [(128, 1)] * 5 + [(256, 2), (256, 1)]


class MobileNetV1(nn.Module):
    def __init__(self):
        super().__init__()
        layers = [nn.Conv2d(1, 8, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU6()]
        c = 8
        for out_c, s in BLOCKS:
            layers += [nn.Conv2d(c, c, 3, stride=s, padding=1, groups=c, bias=False), nn.BatchNorm2d(c), nn.ReLU6(),
                       nn.Conv2d(c, out_c, 1, bias=False), nn.BatchNorm2d(out_c), nn.ReLU6()]
            c = out_c
        self.features = nn.Sequential(*layers)
        self.fc = nn.Linear(c, CLASSES)

    def forward(self, x):
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(self.features(x), 1), 1))


def data():
    g = torch.Generator().manual_seed(0)
    return torch.randn(BATCH, 1, H, W, generator=g), torch.randint(0, CLASSES, (BATCH,), generator=g)


def train_sps(warm, steps):
    torch.manual_seed(0)
    model = MobileNetV1().train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x, y = data()
    times = []
    for i in range(warm + steps):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        opt.step()
        if i >= warm:
            times.append(time.perf_counter() - t0)
    return BATCH / statistics.median(times)


def infer_ms(warm, iters):
    torch.manual_seed(0)
    model = MobileNetV1().eval()
    x, _ = data()
    times = []
    with torch.no_grad():
        for i in range(warm + iters):
            t0 = time.perf_counter()
            model(x)
            if i >= warm:
                times.append(time.perf_counter() - t0)
    return 1000 * statistics.median(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, nargs="+", default=[2, 1])
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--warmup", type=int, default=3)
    a = ap.parse_args()
    out = {"torch": torch.__version__,
           "params": sum(p.numel() for p in MobileNetV1().parameters()), "threads": {}}
    for nt in a.threads:
        torch.set_num_threads(nt)
        out["threads"][str(nt)] = {"train_samples_per_s": train_sps(a.warmup, a.steps),
                                   "infer_ms_per_batch": infer_ms(a.warmup, a.steps)}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
