"""Times the official PyTorch release's ENorm step() on bench/cycle.ts's cases, in this process.

Not part of the package. The official release (facebookresearch/enorm) is not vendored: point
ENORM_OFFICIAL at its enorm/enorm/enorm.py. Needs python3 with torch (Debian: python3-torch).

    ENORM_OFFICIAL=/path/to/enorm.py python3 bench/official/step.py [--seconds S] [--threads N]

Prints one JSON object per case: msPerStep (median step()), memcpyMs (one copy of all weights,
the same-run baseline) and ratio = msPerStep / memcpyMs.
"""
import argparse
import importlib.util
import json
import os
import statistics
import sys
import time

import torch
import torch.nn as nn


def load_official():
    path = os.environ.get("ENORM_OFFICIAL")
    if not path or not os.path.isfile(path):
        sys.exit("bench/official/step.py: set ENORM_OFFICIAL to the official release's enorm/enorm/enorm.py")
    spec = importlib.util.spec_from_file_location("enorm_official", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.ENorm


RESNET_CONV_WIDTHS = [3, 64, 64, 64, 64, 128, 128, 128, 128, 256, 256, 256, 256, 512, 512, 512, 512]


def mlp(width):
    sizes = [3072] + [width] * 14 + [10]
    layers = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1], bias=False))
        if i + 2 < len(sizes):
            layers.append(nn.ReLU())
    return nn.Sequential(*layers), "linear", 0.0


def conv_stack():
    layers = []
    for i in range(len(RESNET_CONV_WIDTHS) - 1):
        layers.append(nn.Conv2d(RESNET_CONV_WIDTHS[i], RESNET_CONV_WIDTHS[i + 1], 3, padding=1, bias=False))
        layers.append(nn.ReLU())
    return nn.Sequential(*layers), "conv", 0.9


CASES = {
    "mlp-3072-500x14-10": lambda: mlp(500),
    "resnet18-conv-stack": conv_stack,
    "mlp-3072-250x14-10": lambda: mlp(250),
    "mlp-3072-1000x14-10": lambda: mlp(1000),
}


def median_ms(fn, budget):
    fn()
    fn()
    samples = []
    start = time.perf_counter()
    while len(samples) < 5 or time.perf_counter() - start < budget:
        t = time.perf_counter()
        fn()
        samples.append(1000 * (time.perf_counter() - t))
        if len(samples) >= 2000:
            break
    return statistics.median(samples)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=1.5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--case", action="append")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    ENorm = load_official()
    torch.manual_seed(1)
    for name, build in CASES.items():
        if args.case and name not in args.case:
            continue
        model, kind, momentum = build()
        params = list(model.parameters())
        optimizer = torch.optim.SGD(params, lr=0.01, momentum=momentum)
        if momentum:
            # One update, so that every parameter has the momentum buffer step() rescales.
            for q in params:
                q.grad = torch.zeros_like(q)
            optimizer.step()
        enorm = ENorm(model.named_parameters(), optimizer, kind, c=1)
        copies = [torch.empty_like(q) for q in params]

        def copy_all():
            with torch.no_grad():
                for dst, src in zip(copies, params):
                    dst.copy_(src)

        def step():
            with torch.no_grad():
                enorm.step()

        memcpy = median_ms(copy_all, args.seconds)
        ms = median_ms(step, args.seconds)
        weights = sum(q.numel() for q in params)
        print(json.dumps({"case": name, "implementation": "official-pytorch", "threads": args.threads, "torch": torch.__version__,
                          "weights": weights, "msPerStep": round(ms, 4), "memcpyMs": round(memcpy, 4), "ratio": round(ms / memcpy, 3)}), flush=True)


if __name__ == "__main__":
    main()
