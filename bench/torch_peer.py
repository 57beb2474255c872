#!/usr/bin/python3
"""PyTorch CPU peer for `deno task bench`: the same networks as qgt's bench,
Adam lr 1e-3, cross-entropy, random inputs:

- `--net mobilenet`: MobileNetV1 alpha=0.25, 96x96x1, 2 classes, batch 32;
- `--net small-cnn`: the Fashion-MNIST small CNN (conv 32, 32, pool, 64, 64,
  pool, each with BatchNorm and ReLU, global average pooling, dense 10;
  65,834 parameters), 28x28x1, batch 64.

Prints one JSON object: torch version, parameter count, and per thread count
the median fp32 training samples/s, the training samples/s with 2-bit
straight-through fake quantization of every conv/linear weight (per output
channel, symmetric, s = max|w|, as the shared PyTorch reference script), and
inference ms per batch. Adapted from the project's shared PyTorch reference
script. Run with MALLOC_MMAP_THRESHOLD_=33554432
MALLOC_TRIM_THRESHOLD_=4294967296 (the bench sets them): without them glibc
returns activation buffers to the OS every step and timings vary 2-10x.
"""
import argparse
import json
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

NETS = {"mobilenet": (32, 96, 96, 2), "small-cnn": (64, 28, 28, 10)}
BATCH, H, W, CLASSES = NETS["mobilenet"]
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


class SmallCnn(nn.Module):
    def __init__(self):
        super().__init__()

        def block(i, o):
            return [nn.Conv2d(i, o, 3, padding=1, bias=False), nn.BatchNorm2d(o), nn.ReLU()]

        self.features = nn.Sequential(*block(1, 32), *block(32, 32), nn.MaxPool2d(2),
                                      *block(32, 64), *block(64, 64), nn.MaxPool2d(2))
        self.fc = nn.Linear(64, CLASSES)

    def forward(self, x):
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(self.features(x), 1), 1))


MODEL = MobileNetV1


def fake_quant_2bit(w):
    """Per-output-channel symmetric 2-bit levels {-s, 0, s}, s = max|w|; straight-through gradient."""
    s = w.detach().abs().flatten(1).amax(1).clamp_min(1e-8).view(-1, *([1] * (w.dim() - 1)))
    return w + ((w / s).round().clamp(-1, 1) * s - w).detach()


class Fq2(nn.Module):
    """Wraps a conv or linear layer, fake-quantizing its weight in every forward pass."""

    def __init__(self, layer):
        super().__init__()
        self.layer = layer

    def forward(self, x):
        w = fake_quant_2bit(self.layer.weight)
        if isinstance(self.layer, nn.Conv2d):
            return F.conv2d(x, w, self.layer.bias, self.layer.stride, self.layer.padding,
                            self.layer.dilation, self.layer.groups)
        return F.linear(x, w, self.layer.bias)


def make_2bit():
    m = MODEL()
    for parent in list(m.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, (nn.Conv2d, nn.Linear)):
                setattr(parent, name, Fq2(child))
    return m


def data():
    g = torch.Generator().manual_seed(0)
    return torch.randn(BATCH, 1, H, W, generator=g), torch.randint(0, CLASSES, (BATCH,), generator=g)


def train_sps(warm, steps, make=None):
    torch.manual_seed(0)
    model = (make or MODEL)().train()
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
    model = MODEL().eval()
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
    ap.add_argument("--net", choices=sorted(NETS), default="mobilenet")
    a = ap.parse_args()
    global BATCH, H, W, CLASSES, MODEL
    BATCH, H, W, CLASSES = NETS[a.net]
    MODEL = MobileNetV1 if a.net == "mobilenet" else SmallCnn
    out = {"torch": torch.__version__, "net": a.net,
           "params": sum(p.numel() for p in MODEL().parameters()), "threads": {}}
    for nt in a.threads:
        torch.set_num_threads(nt)
        out["threads"][str(nt)] = {"train_samples_per_s": train_sps(a.warmup, a.steps),
                                   "train_2bit_samples_per_s": train_sps(a.warmup, a.steps, make_2bit),
                                   "infer_ms_per_batch": infer_ms(a.warmup, a.steps)}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
