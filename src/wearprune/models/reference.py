"""MLPerf Tiny reference models (Banbury et al. 2021), rebuilt in PyTorch for validating the cost
model against published measurements. Untrained: only their shapes matter here.

- ``kws_dscnn``: keyword spotting DS-CNN, 49x10 MFCC input, 12 classes (about 2.66 M MACs);
- ``ic_resnet8``: CIFAR-10 ResNet-8 (about 12.5 M MACs);
- ``ad_fc_autoencoder``: ToyADMOS dense autoencoder, 640 inputs (about 0.26 M MACs);
- ``vww_mobilenet_v1_025``: visual wake words MobileNetV1 (alpha 0.25), 96x96x3 (about 7.5 M MACs).
"""

from __future__ import annotations

import torch
from torch import nn


def _cbr(c_in, c_out, k, stride=1, groups=1, padding=None):
    pad = k // 2 if padding is None else padding
    return nn.Sequential(nn.Conv2d(c_in, c_out, k, stride, pad, groups=groups, bias=False),
                         nn.BatchNorm2d(c_out), nn.ReLU())


class KwsDsCnn(nn.Module):
    def __init__(self, n_classes: int = 12, ch: int = 64):
        super().__init__()
        layers = [_cbr(1, ch, (10, 4), stride=2, padding=(5, 1))]
        for _ in range(4):
            layers += [_cbr(ch, ch, 3, groups=ch), _cbr(ch, ch, 1)]
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(ch, n_classes)

    def forward(self, x):
        return self.classifier(self.pool(self.features(x)).flatten(1))


class _ResBlock(nn.Module):
    def __init__(self, c_in, c_out, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut = nn.Identity() if stride == 1 and c_in == c_out else nn.Conv2d(c_in, c_out, 1, stride)
        self.relu2 = nn.ReLU()

    def forward(self, x):
        return self.relu2(self.bn2(self.conv2(self.relu1(self.bn1(self.conv1(x))))) + self.shortcut(x))


class IcResNet8(nn.Module):
    def __init__(self, n_classes: int = 10):
        super().__init__()
        self.stem = _cbr(3, 16, 3)
        self.blocks = nn.Sequential(_ResBlock(16, 16, 1), _ResBlock(16, 32, 2), _ResBlock(32, 64, 2))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(64, n_classes)

    def forward(self, x):
        return self.classifier(self.pool(self.blocks(self.stem(x))).flatten(1))


class AdFcAutoencoder(nn.Module):
    def __init__(self, n_in: int = 640, hidden: int = 128, code: int = 8):
        super().__init__()
        widths = [n_in, hidden, hidden, hidden, hidden, code, hidden, hidden, hidden, hidden]
        layers = []
        for a, b in zip(widths[:-1], widths[1:]):
            layers += [nn.Linear(a, b), nn.BatchNorm1d(b), nn.ReLU()]
        self.body = nn.Sequential(*layers)
        self.classifier = nn.Linear(hidden, n_in)

    def forward(self, x):
        return self.classifier(self.body(x))


class VwwMobileNetV1(nn.Module):
    def __init__(self, alpha: float = 0.25, n_classes: int = 2):
        super().__init__()
        plan = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2)] + [(512, 1)] * 5 + [(1024, 2), (1024, 1)]
        ch = int(32 * alpha)
        layers = [_cbr(3, ch, 3, stride=2)]
        for width, stride in plan:
            out = int(width * alpha)
            layers += [_cbr(ch, ch, 3, stride=stride, groups=ch), _cbr(ch, out, 1)]
            ch = out
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(ch, n_classes)

    def forward(self, x):
        return self.classifier(self.pool(self.features(x)).flatten(1))


def mlperf_tiny_models() -> dict[str, tuple[nn.Module, torch.Tensor]]:
    """Benchmark name -> (model in eval mode, an example input of batch 1)."""
    torch.manual_seed(0)
    return {
        "kws": (KwsDsCnn().eval(), torch.randn(1, 1, 49, 10)),
        "vww": (VwwMobileNetV1().eval(), torch.randn(1, 3, 96, 96)),
        "ic": (IcResNet8().eval(), torch.randn(1, 3, 32, 32)),
        "ad": (AdFcAutoencoder().eval(), torch.randn(1, 640)),
    }
