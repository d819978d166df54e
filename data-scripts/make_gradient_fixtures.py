#!/usr/bin/env python3
"""Write the gradient parity fixture tests/fixtures/parity/resnet50_w16th_grads.npz.

Derived fixture: one ResNet-50 training step (width 1/16, batch 2, batch norm on batch
statistics) in PyTorch, from the committed weights resnet50_w16th.safetensors (written by
make_parity_fixtures.py) and the same two real photos (scikit-image's astronaut and chelsea).
The loss is sum(pool5 * r) for a seeded r, so that every output has its own gradient. Saved:
the input, r, pool5, the input's gradient ("grad.input") and every trunk parameter's
gradient ("grad.<torchvision name>").

The step runs in float64 (the f32 weights and photos upcast exactly) and is stored rounded to
float32: an f32 step differs from any other f32 step by its ReLU masks wherever a
pre-activation lies within rounding of zero (a few of the million here), and each flip moves
the gradients upstream of it by more than 1e-3. The f64 reference has no such flips against
sslbench's f64 step, and is the more exact target for its f32 one.

Needs data-scripts/bench-requirements.txt. Run from the repository root:
    python3 data-scripts/make_gradient_fixtures.py
"""
import os
import sys

import numpy as np
import torch
from safetensors.torch import load_file

sys.path.insert(0, os.path.dirname(__file__))
from make_parity_fixtures import OUT, WidthResNet50, photos  # noqa: E402


def main():
    torch.manual_seed(1)
    net = WidthResNet50(1 / 16)
    missing, unexpected = net.load_state_dict(
        load_file(os.path.join(OUT, "resnet50_w16th.safetensors")), strict=False)
    assert not unexpected and all(k.startswith("fc.") for k in missing), (missing, unexpected)
    net.train().double()
    x = photos(224).double().requires_grad_(True)
    pool5 = net.taps(x)["pool5"]
    r = torch.randn(pool5.shape).double()  # exact in float32 too
    (pool5 * r).sum().backward()
    arrays = {"input": x.detach(), "r": r, "pool5": pool5.detach(), "grad.input": x.grad}
    for name, p in net.named_parameters():
        if not name.startswith("fc."):
            arrays[f"grad.{name}"] = p.grad
    arrays = {k: v.float().numpy() for k, v in arrays.items()}
    np.savez(os.path.join(OUT, "resnet50_w16th_grads.npz"), **arrays)
    print("wrote resnet50_w16th_grads.npz,", len(arrays) - 4, "parameter gradients")


if __name__ == "__main__":
    main()
