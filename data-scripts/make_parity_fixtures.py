#!/usr/bin/env python3
"""Write the torchvision parity fixtures committed under tests/fixtures/parity/.

Derived fixtures: random-initialised ResNet-50 and AlexNet weights (torch.manual_seed), two
real photos from scikit-image's data folder, and PyTorch's outputs at every tap. Widths are
reduced so that the committed files stay small (ResNet-50 x1/16, AlexNets x1/4); the layer
structure, strides, paddings and parameter names are those of the published models.

Needs: torch, torchvision, numpy, scikit-image, safetensors (pip). Run from the repository root:
    python3 data-scripts/make_parity_fixtures.py
"""
import os
from collections import OrderedDict

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision
from torchvision.models.resnet import Bottleneck
from PIL import Image
from safetensors.torch import save_file
import skimage.data

OUT = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "parity")
torch.manual_seed(0)

# Pooling of protocols.md section 1 (kernel, stride, pad), applied to the tap maps.
RESNET_POOL = {"conv1": (10, 10, 4), "res2": (16, 8, 0), "res3": (13, 5, 0),
               "res4": (8, 3, 0), "res5": (6, 1, 0)}
ALEXNET_POOL = {"conv1": (19, 4, 0), "conv2": (12, 3, 0), "conv3": (9, 1, 0),
                "conv4": (9, 1, 0), "conv5": (8, 1, 0)}
JIGSAW_POOL = {"conv1": (28, 9, 0), "conv2": (24, 6, 0), "conv3": (14, 3, 0),
               "conv4": (14, 3, 0), "conv5": (16, 2, 0)}


class WidthResNet50(torchvision.models.ResNet):
    """torchvision's ResNet-50 with every width scaled (the SwAV/VISSL `resnet50wN` rule)."""

    def __init__(self, width, replace_stride_with_dilation=None):
        super().__init__(Bottleneck, [3, 4, 6, 3])
        w = int(64 * width)
        rswd = replace_stride_with_dilation or [False, False, False]
        self.inplanes, self.dilation = w, 1
        self.conv1 = nn.Conv2d(3, w, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(w)
        self.layer1 = self._make_layer(Bottleneck, w, 3)
        self.layer2 = self._make_layer(Bottleneck, w * 2, 4, stride=2, dilate=rswd[0])
        self.layer3 = self._make_layer(Bottleneck, w * 4, 6, stride=2, dilate=rswd[1])
        self.layer4 = self._make_layer(Bottleneck, w * 8, 3, stride=2, dilate=rswd[2])
        self.fc = nn.Linear(w * 32, 1000)

    def taps(self, x):
        out = OrderedDict()
        x = self.relu(self.bn1(self.conv1(x)))
        out["conv1"] = x
        x = self.maxpool(x)
        for name, layer in zip(["res2", "res3", "res4", "res5"],
                               [self.layer1, self.layer2, self.layer3, self.layer4]):
            x = layer(x)
            out[name] = x
        out["pool5"] = torch.flatten(self.avgpool(x), 1)
        return out


def randomise_bn(model):
    """Give every BN non-trivial statistics, so that folding them is actually tested."""
    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(n, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(n, generator=g) * 0.1)


def torchvision_alexnet(c):
    """torchvision's AlexNet `features` layout (indices 0..12) with channels `c`."""
    return nn.Sequential(
        nn.Conv2d(3, c[0], 11, 4, 2), nn.ReLU(), nn.MaxPool2d(3, 2),
        nn.Conv2d(c[0], c[1], 5, padding=2), nn.ReLU(), nn.MaxPool2d(3, 2),
        nn.Conv2d(c[1], c[2], 3, padding=1), nn.ReLU(),
        nn.Conv2d(c[2], c[3], 3, padding=1), nn.ReLU(),
        nn.Conv2d(c[3], c[4], 3, padding=1), nn.ReLU(), nn.MaxPool2d(3, 2))


def alexnet_taps(features, x, relu_idx):
    out = OrderedDict()
    for i, m in enumerate(features):
        x = m(x)
        if i in relu_idx:
            out[f"conv{relu_idx.index(i) + 1}"] = x
    out["pool5"] = torch.flatten(x, 1)
    return out


def jigsaw_alexnet(c):
    """FAIR's Jigsaw AlexNet as VISSL's `alexnet_jigsaw` trunk lays it out (`_feature_blocks`)."""
    lrn = lambda: nn.LocalResponseNorm(size=5, alpha=0.0001, beta=0.75)
    return nn.ModuleList([
        nn.Sequential(nn.Conv2d(3, c[0], 11, stride=2, padding=0), nn.ReLU()),
        nn.Sequential(nn.MaxPool2d(3, 2), lrn()),
        nn.Sequential(nn.Conv2d(c[0], c[1], 5, padding=2, groups=2), nn.ReLU()),
        nn.Sequential(nn.MaxPool2d(3, 2), lrn()),
        nn.Sequential(nn.Conv2d(c[1], c[2], 3, padding=1), nn.BatchNorm2d(c[2]), nn.ReLU()),
        nn.Sequential(nn.Conv2d(c[2], c[3], 3, padding=1, groups=2), nn.BatchNorm2d(c[3]), nn.ReLU()),
        nn.Sequential(nn.Conv2d(c[3], c[4], 3, padding=1, groups=2), nn.BatchNorm2d(c[4]), nn.ReLU()),
        nn.MaxPool2d(3, 2)])


def jigsaw_taps(blocks, x):
    names = ["conv1", None, "conv2", None, "conv3", "conv4", "conv5", "pool5"]
    out = OrderedDict()
    for name, b in zip(names, blocks):
        x = b(x)
        if name:
            out[name] = x
    out["pool5"] = torch.flatten(out["pool5"], 1)
    return out


def photos(size):
    """Two real photos, resized (torchvision Resize + CenterCrop) and ImageNet-normalised."""
    tf = torchvision.transforms.Compose([
        torchvision.transforms.Resize(256),
        torchvision.transforms.CenterCrop(size),
        torchvision.transforms.ToTensor(),
        torchvision.transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])
    return torch.stack([tf(Image.fromarray(skimage.data.astronaut())),
                        tf(Image.fromarray(skimage.data.chelsea()))])


def pooled(taps, table):
    out = {}
    for tap, x in taps.items():
        if tap in table:
            k, s, p = table[tap]
            out[f"pooled.{tap}"] = F.avg_pool2d(x, k, s, p, count_include_pad=True).flatten(1)
        else:
            out[f"pooled.{tap}"] = x.flatten(1)
    return out


def save_outputs(name, x, taps, table):
    arrays = {"input": x.numpy()}
    arrays.update({f"tap.{k}": v.detach().numpy() for k, v in taps.items()})
    arrays.update({k: v.detach().numpy() for k, v in pooled(taps, table).items()})
    np.savez(os.path.join(OUT, f"{name}_outputs.npz"), **arrays)


def state(model):
    return OrderedDict((k, v.detach().clone().contiguous()) for k, v in model.state_dict().items())


@torch.no_grad()
def main():
    os.makedirs(OUT, exist_ok=True)
    x224 = photos(224)

    # ResNet-50 x1/16: every import format of the same weights.
    net = WidthResNet50(1 / 16).eval()
    randomise_bn(net)
    sd = state(net)
    trunk = OrderedDict((k, v) for k, v in sd.items() if not k.startswith("fc."))
    torch.save(sd, os.path.join(OUT, "resnet50_w16th.pth"))
    save_file(dict(trunk), os.path.join(OUT, "resnet50_w16th.safetensors"))
    torch.save({"epoch": 3, "state_dict": OrderedDict(("module." + k, v) for k, v in sd.items())},
               os.path.join(OUT, "resnet50_w16th_module.pth"))
    vissl_trunk = OrderedDict(("_feature_blocks." + k, v) for k, v in trunk.items())
    torch.save({"phase_idx": 1, "classy_state_dict": {"base_model": {"model": {
        "trunk": vissl_trunk, "heads": {"0.clf.0.weight": sd["fc.weight"]}}}}},
               os.path.join(OUT, "resnet50_w16th_vissl.torch"))
    save_outputs("resnet50_w16th", x224, net.taps(x224), RESNET_POOL)

    # The same weights, dilated to output stride 8 (res4 and res5 dilated).
    dil = WidthResNet50(1 / 16, replace_stride_with_dilation=[False, True, True]).eval()
    dil.load_state_dict(sd)
    x = x224[:1]
    np.savez(os.path.join(OUT, "resnet50_w16th_os8_outputs.npz"), input=x.numpy(),
             **{f"tap.{k}": v.numpy() for k, v in dil.taps(x).items() if k in ("res4", "res5")})

    # A ResNet-50 of another width: the wrong-shape checkpoint for the failure test.
    save_file(dict((k, v) for k, v in state(WidthResNet50(1 / 8)).items() if not k.startswith("fc.")),
              os.path.join(OUT, "resnet50_w8th.safetensors"))

    # torchvision AlexNet layout, channels x1/4.
    feats = torchvision_alexnet([16, 48, 96, 64, 64]).eval()
    torch.save(OrderedDict(("features." + k, v) for k, v in state(feats).items()),
               os.path.join(OUT, "alexnet_w4th.pth"))
    save_outputs("alexnet_w4th", x224, alexnet_taps(feats, x224, [1, 4, 7, 9, 11]), ALEXNET_POOL)

    # FAIR Jigsaw AlexNet (VISSL layout), channels x1/4, 227 input.
    jig = jigsaw_alexnet([24, 64, 96, 96, 64]).eval()
    randomise_bn(jig)
    x227 = photos(227)[:1]
    torch.save({"classy_state_dict": {"base_model": {"model": {"trunk": OrderedDict(
        ("_feature_blocks." + k, v) for k, v in state(jig).items())}}}},
               os.path.join(OUT, "alexnet_jigsaw_w4th_vissl.torch"))
    save_outputs("alexnet_jigsaw_w4th", x227, jigsaw_taps(jig, x227), JIGSAW_POOL)
    print("wrote", sorted(os.listdir(OUT)))


if __name__ == "__main__":
    main()
