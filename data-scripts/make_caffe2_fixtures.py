#!/usr/bin/env python3
"""Write the Caffe2 `.pkl` parity fixtures committed under tests/fixtures/parity/.

FAIR released the models of Goyal et al. 2019 as Python 2 pickles of a `blobs` dict of numpy
arrays with Caffe2 blob names (fair_self_supervision_benchmark: resnet_model_helper.py,
siamese_model_helper.py, alexnet_jigsaw_finetune_linear.py; utils/checkpoints.py saves
`{'blobs': ...}` with `model_iter`, `lr` and an `X_momentum` blob per parameter). This script
writes the weights of the existing torchvision parity fixtures (make_parity_fixtures.py) in
that exact layout, as Python 2's cPickle wrote it at protocol 2: text as BINSTRING /
SHORT_BINSTRING byte strings, arrays through `numpy.core.multiarray._reconstruct`. conv1 is
stored in BGR channel order, as Caffe2's cv2-fed models expect.

Files:
  resnet50_w16th_caffe2.pkl          supervised names (`res2_0_branch2a_w`, `res_conv1_bn_s`),
                                     momentum blobs, the `pred_w`/`pred_b` head, `model_iter`,
                                     `lr`, and a top-level `cfg` beside `blobs`
  resnet50_w16th_caffe2_jigsaw.pkl   Jigsaw siamese names (`res2_0_branch2a_s0_w`,
                                     `res2_0_branch2a_bn_s0_s`), tower s1's own batch-norm blobs
                                     and the `fc6_s0`/`fc7` heads
  alexnet_jigsaw_w4th_caffe2.pkl     the Jigsaw AlexNet (`conv1_s0_w`, `conv3_s0_bn_rm`), tower
                                     s1 and heads likewise
  resnet50_w16th_s1x1_outputs.npz    torchvision's taps for the same ResNet weights with the
                                     stride on the first 1x1 of each downsampling bottleneck
                                     (MSRA's layout), first photo of resnet50_w16th_outputs.npz

The stride-in-3x3 ResNet and the AlexNet reuse resnet50_w16th_outputs.npz and
alexnet_jigsaw_w4th_outputs.npz: the weights are the same.

Needs: torch, torchvision, numpy, scikit-image (pip). Run from the repository root after
make_parity_fixtures.py:
    python3 data-scripts/make_caffe2_fixtures.py
"""
import os
import pickle
import sys
from collections import OrderedDict

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(__file__))
from make_parity_fixtures import OUT, RESNET_POOL, WidthResNet50, pooled  # noqa: E402

BN = {"weight": "s", "bias": "b", "running_mean": "rm", "running_var": "riv"}
# Parameters (which carry a momentum blob) as opposed to computed batch-norm statistics.
PARAMS = ("w", "b", "s")


class Python2Pickler(pickle._Pickler):
    """Protocol 2 as Python 2's cPickle wrote it: every str and bytes a byte string
    (SHORT_BINSTRING / BINSTRING), numpy's globals under `numpy.core`."""

    dispatch = pickle._Pickler.dispatch.copy()

    def save_binstring(self, obj):
        if isinstance(obj, str):
            obj = obj.encode("latin-1")
        n = len(obj)
        if n < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([n]) + obj)
        else:
            self.write(pickle.BINSTRING + n.to_bytes(4, "little") + obj)
        self.memoize(obj)

    dispatch[str] = save_binstring
    dispatch[bytes] = save_binstring

    def save_global(self, obj, name=None):
        module = obj.__module__.replace("numpy._core", "numpy.core")
        name = name or obj.__qualname__
        self.write(pickle.GLOBAL + f"{module}\n{name}\n".encode("ascii"))
        self.memoize(obj)


def write_pkl(name, obj):
    with open(os.path.join(OUT, name), "wb") as f:
        Python2Pickler(f, protocol=2).dump(obj)


def arr(t):
    return np.ascontiguousarray(t.detach().numpy().astype(np.float32))


def bgr(w):
    """conv1 of a Caffe2 model reads BGR: reverse the input-channel axis."""
    return np.ascontiguousarray(w[:, ::-1])


def resnet_blobs(sd, tower=""):
    """torchvision ResNet names -> Caffe2 blob names; `tower` = "_s0" gives Jigsaw's."""
    blobs = OrderedDict()
    for k, v in sd.items():
        if k.startswith("fc.") or k.endswith("num_batches_tracked"):
            continue
        parts = k.split(".")
        if parts[0] == "conv1":
            blobs[f"conv1{tower}_w"] = bgr(arr(v))
            continue
        if parts[0] == "bn1":
            blobs[f"res_conv1_bn{tower}_{BN[parts[1]]}"] = arr(v)
            continue
        stage, block, layer = int(parts[0][5:]) + 1, parts[1], parts[2]
        prefix = f"res{stage}_{block}"
        if layer == "downsample":
            branch, is_bn = "branch1", parts[3] == "1"
        else:
            branch, is_bn = "branch2" + "abc"[int(layer[-1]) - 1], layer.startswith("bn")
        if is_bn:
            blobs[f"{prefix}_{branch}_bn{tower}_{BN[parts[-1]]}"] = arr(v)
        else:
            blobs[f"{prefix}_{branch}{tower}_w"] = arr(v)
    return blobs


def with_momentum(blobs):
    out = OrderedDict(blobs)
    for k, v in blobs.items():
        if k.rsplit("_", 1)[1] in PARAMS:
            out[k + "_momentum"] = (0.01 * v).astype(np.float32)
    return out


def other_tower(blobs, rng):
    """Tower s1 of a siamese net shares the convolutions but has batch norms of its own."""
    return OrderedDict((k.replace("_s0_", "_s1_"), (v + rng.standard_normal(v.shape)).astype(np.float32))
                       for k, v in blobs.items() if "_s0_" in k and "_bn" in k)


def alexnet_jigsaw_blobs(trunk):
    """VISSL `alexnet_jigsaw` trunk names -> FAIR's Caffe2 Jigsaw AlexNet blobs."""
    conv = {"0": 1, "2": 2, "4": 3, "5": 4, "6": 5}
    blobs = OrderedDict()
    for k, v in trunk.items():
        block, layer, param = k.removeprefix("_feature_blocks.").split(".")
        n = conv[block]
        if layer == "0":
            w = arr(v)
            blobs[f"conv{n}_s0_{'w' if param == 'weight' else 'b'}"] = bgr(w) if n == 1 and param == "weight" else w
        elif param in BN:
            blobs[f"conv{n}_s0_bn_{BN[param]}"] = arr(v)
    return blobs


def stride_in_1x1(net):
    """MSRA's layout: the stride of a downsampling bottleneck on its first 1x1 conv."""
    for layer in [net.layer2, net.layer3, net.layer4]:
        block = layer[0]
        block.conv1.stride, block.conv2.stride = block.conv2.stride, (1, 1)
    return net


@torch.no_grad()
def main():
    rng = np.random.default_rng(0)
    sd = torch.load(os.path.join(OUT, "resnet50_w16th.pth"))
    sup = with_momentum(resnet_blobs(sd))
    # The classifier head, cut to 16 classes to keep the fixture small (it is dropped).
    sup["pred_w"], sup["pred_b"] = arr(sd["fc.weight"][:16]), arr(sd["fc.bias"][:16])
    sup["pred_w_momentum"] = np.zeros_like(sup["pred_w"])
    sup["model_iter"] = 450360
    sup["lr"] = np.array([1e-4], dtype=np.float32)
    write_pkl("resnet50_w16th_caffe2.pkl", {"blobs": dict(sup), "cfg": "MODEL:\n  DEPTH: 50\n"})

    jig = resnet_blobs(sd, tower="_s0")
    jig.update(other_tower(jig, rng))
    jig["fc6_s0_w"] = rng.standard_normal((16, 128)).astype(np.float32)
    jig["fc7_w"] = rng.standard_normal((100, 144)).astype(np.float32)
    write_pkl("resnet50_w16th_caffe2_jigsaw.pkl", {"blobs": dict(jig)})

    vissl = torch.load(os.path.join(OUT, "alexnet_jigsaw_w4th_vissl.torch"))
    trunk = vissl["classy_state_dict"]["base_model"]["model"]["trunk"]
    alex = alexnet_jigsaw_blobs(OrderedDict((k, v) for k, v in trunk.items()
                                            if not k.endswith("num_batches_tracked")))
    alex.update(other_tower(alex, rng))
    alex["fc6_s0_w"] = rng.standard_normal((16, 64)).astype(np.float32)
    alex["fc8_w"] = rng.standard_normal((100, 144)).astype(np.float32)
    alex["model_iter"] = 1
    write_pkl("alexnet_jigsaw_w4th_caffe2.pkl", {"blobs": dict(alex)})

    net = stride_in_1x1(WidthResNet50(1 / 16)).eval()
    net.load_state_dict(sd)
    x = torch.from_numpy(np.load(os.path.join(OUT, "resnet50_w16th_outputs.npz"))["input"][:1])
    taps = net.taps(x)
    arrays = {f"tap.{k}": v.numpy() for k, v in taps.items()}
    arrays.update({k: v.numpy() for k, v in pooled(taps, RESNET_POOL).items()})
    np.savez(os.path.join(OUT, "resnet50_w16th_s1x1_outputs.npz"), **arrays)
    print("wrote", [f for f in sorted(os.listdir(OUT)) if "caffe2" in f or "s1x1" in f])


if __name__ == "__main__":
    main()
