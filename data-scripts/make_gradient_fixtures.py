#!/usr/bin/env python3
"""Write the gradient parity fixture tests/fixtures/parity/resnet50_w16th_grads.npz.

Derived fixture: one ResNet-50 training step (width 1/16, batch 2, batch norm on batch
statistics) in PyTorch, from the committed weights resnet50_w16th.safetensors (written by
make_parity_fixtures.py) and the same two real photos (scikit-image's astronaut and chelsea).
The loss is sum(pool5 * r) for a seeded r, so that every output has its own gradient. Saved:
the input, r, pool5, the input's gradient ("grad.input") and every trunk parameter's
gradient ("grad.<torchvision name>").

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
    net.train()
    x = photos(224).requires_grad_(True)
    pool5 = net.taps(x)["pool5"]
    r = torch.randn(pool5.shape)
    (pool5 * r).sum().backward()
    arrays = {"input": x.detach().numpy(), "r": r.numpy(), "pool5": pool5.detach().numpy(),
              "grad.input": x.grad.numpy()}
    for name, p in net.named_parameters():
        if not name.startswith("fc."):
            arrays[f"grad.{name}"] = p.grad.numpy()
    np.savez(os.path.join(OUT, "resnet50_w16th_grads.npz"), **arrays)
    print("wrote resnet50_w16th_grads.npz,", len(arrays) - 4, "parameter gradients")


if __name__ == "__main__":
    main()
