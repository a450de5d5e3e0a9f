"""Convolutional models for [B, C, T] windows, and the MLP for feature vectors."""

from __future__ import annotations

import torch
from torch import nn

from .layers import NORMS, conv_bn_relu, scaled


class CNN1D(nn.Module):
    def __init__(self, input_shape: tuple[int, ...], n_outputs: int, width: float = 1.0, norm: str = "batch",
                 act: str = "relu"):
        super().__init__()
        c, _ = input_shape
        c1, c2, c3 = scaled(16, width), scaled(32, width), scaled(64, width)
        block = {"norm": norm, "act": act}
        self.features = nn.Sequential(
            conv_bn_relu(c, c1, 5, **block), nn.MaxPool1d(2),
            conv_bn_relu(c1, c2, 5, **block), nn.MaxPool1d(2),
            conv_bn_relu(c2, c3, 3, **block),
        )
        self.pool = nn.AdaptiveAvgPool1d(1)
        self.dropout = nn.Dropout(0.2)
        self.classifier = nn.Linear(c3, n_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.features(x)).flatten(1)
        return self.classifier(self.dropout(x))


class BasicBlock1D(nn.Module):
    """Two convolutions with a residual add; a 1x1 projection when the shape changes."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1, k: int = 5, norm: str = "batch"):
        super().__init__()
        self.conv1 = nn.Conv1d(c_in, c_out, k, stride=stride, padding=k // 2, bias=False)
        self.bn1 = NORMS[norm](c_out)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv1d(c_out, c_out, k, padding=k // 2, bias=False)
        self.bn2 = NORMS[norm](c_out)
        self.shortcut = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv1d(c_in, c_out, 1, stride=stride, bias=False),
                                          NORMS[norm](c_out))
        self.relu2 = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn2(self.conv2(self.relu1(self.bn1(self.conv1(x)))))
        return self.relu2(out + self.shortcut(x))


class ResNet1D(nn.Module):
    def __init__(self, input_shape: tuple[int, ...], n_outputs: int, width: float = 1.0, norm: str = "batch"):
        super().__init__()
        c, _ = input_shape
        widths = [scaled(w, width) for w in (16, 32, 64)]
        self.stem = conv_bn_relu(c, widths[0], 7, norm=norm)
        self.layer1 = BasicBlock1D(widths[0], widths[0], norm=norm)
        self.layer2 = BasicBlock1D(widths[0], widths[1], stride=2, norm=norm)
        self.layer3 = BasicBlock1D(widths[1], widths[2], stride=2, norm=norm)
        self.pool = nn.AdaptiveAvgPool1d(1)
        self.classifier = nn.Linear(widths[2], n_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layer3(self.layer2(self.layer1(self.stem(x))))
        return self.classifier(self.pool(x).flatten(1))


class CausalBlock(nn.Module):
    """Dilated causal convolutions (left padding only) with a residual connection."""

    def __init__(self, c_in: int, c_out: int, dilation: int, k: int = 3, dropout: float = 0.1):
        super().__init__()
        pad = (k - 1) * dilation
        self.pad1 = nn.ConstantPad1d((pad, 0), 0.0)
        self.conv1 = nn.Conv1d(c_in, c_out, k, dilation=dilation)
        self.bn1 = nn.BatchNorm1d(c_out)
        self.relu1 = nn.ReLU()
        self.drop1 = nn.Dropout(dropout)
        self.pad2 = nn.ConstantPad1d((pad, 0), 0.0)
        self.conv2 = nn.Conv1d(c_out, c_out, k, dilation=dilation)
        self.bn2 = nn.BatchNorm1d(c_out)
        self.relu2 = nn.ReLU()
        self.drop2 = nn.Dropout(dropout)
        self.downsample = nn.Conv1d(c_in, c_out, 1) if c_in != c_out else nn.Identity()
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.drop1(self.relu1(self.bn1(self.conv1(self.pad1(x)))))
        out = self.drop2(self.relu2(self.bn2(self.conv2(self.pad2(out)))))
        return self.relu(out + self.downsample(x))


class TCN(nn.Module):
    """Causal TCN: the prediction reads the last time step, so it can run as a stream."""

    def __init__(self, input_shape: tuple[int, ...], n_outputs: int, width: float = 1.0):
        super().__init__()
        c, _ = input_shape
        ch = scaled(32, width)
        blocks, c_in = [], c
        for d in (1, 2, 4, 8):
            blocks.append(CausalBlock(c_in, ch, d))
            c_in = ch
        self.blocks = nn.Sequential(*blocks)
        self.classifier = nn.Linear(ch, n_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.blocks(x)[:, :, -1])


class DSCNN(nn.Module):
    """Depthwise-separable CNN (as in keyword spotting on microcontrollers)."""

    def __init__(self, input_shape: tuple[int, ...], n_outputs: int, width: float = 1.0, norm: str = "batch",
                 act: str = "relu"):
        super().__init__()
        c, _ = input_shape
        ch = scaled(32, width)
        block = {"norm": norm, "act": act}
        layers = [conv_bn_relu(c, ch, 5, stride=2, **block)]
        for _ in range(3):
            layers += [conv_bn_relu(ch, ch, 5, groups=ch, **block), conv_bn_relu(ch, ch, 1, **block)]
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool1d(1)
        self.classifier = nn.Linear(ch, n_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.pool(self.features(x)).flatten(1))


class MLP(nn.Module):
    """For feature vectors [B, F]; other layouts are flattened first."""

    def __init__(self, input_shape: tuple[int, ...], n_outputs: int, width: float = 1.0):
        super().__init__()
        n_in = 1
        for s in input_shape:
            n_in *= s
        h1, h2 = scaled(128, width), scaled(64, width)
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(n_in, h1)
        self.bn1 = nn.BatchNorm1d(h1)
        self.relu1 = nn.ReLU()
        self.drop = nn.Dropout(0.2)
        self.fc2 = nn.Linear(h1, h2)
        self.bn2 = nn.BatchNorm1d(h2)
        self.relu2 = nn.ReLU()
        self.classifier = nn.Linear(h2, n_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.drop(self.relu1(self.bn1(self.fc1(self.flatten(x)))))
        return self.classifier(self.relu2(self.bn2(self.fc2(x))))
