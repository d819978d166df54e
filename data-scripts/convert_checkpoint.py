#!/usr/bin/env python3
"""Convert a checkpoint that sslbench cannot read directly into a safetensors state dict.

For legacy (non-zip, torch < 1.6) .pth files, pickled modules, and any wrapper layout. The
state dict is found like sslbench does it (a VISSL trunk, `state_dict`, `model`, or the top
level; `--key a.b.c` picks a nested dict), `module.` and `_feature_blocks.` prefixes are
stripped, and only tensors are kept.

Needs: torch, safetensors (pip).
    python3 data-scripts/convert_checkpoint.py IN.pth OUT.safetensors [--key model.trunk]
"""
import argparse

import torch
from safetensors.torch import save_file

VISSL_TRUNK = ["classy_state_dict", "base_model", "model", "trunk"]


def walk(obj, path):
    for part in path:
        if not isinstance(obj, dict) or part not in obj:
            raise SystemExit(f"no `{part}` in the checkpoint (path {'.'.join(path)})")
        obj = obj[part]
    return obj


def find_state_dict(ckpt, key):
    if isinstance(ckpt, torch.nn.Module):
        return ckpt.state_dict()
    if key:
        return walk(ckpt, key.split("."))
    try:
        return walk(ckpt, VISSL_TRUNK)
    except SystemExit:
        pass
    for wrapper in ("state_dict", "model", "model_state", "net"):
        if isinstance(ckpt.get(wrapper), dict):
            return ckpt[wrapper]
    return ckpt


def clean(name):
    for prefix in ("module.", "_feature_blocks."):
        while name.startswith(prefix):
            name = name[len(prefix):]
    return name


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("src")
    ap.add_argument("dst")
    ap.add_argument("--key", help="dotted path of the state dict inside the checkpoint")
    args = ap.parse_args()
    ckpt = torch.load(args.src, map_location="cpu", weights_only=False)
    sd = find_state_dict(ckpt, args.key)
    tensors = {clean(k): v.contiguous() for k, v in sd.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise SystemExit("no tensors found: pass --key with the path of the state dict")
    save_file(tensors, args.dst)
    print(f"wrote {len(tensors)} tensors to {args.dst}")


if __name__ == "__main__":
    main()
