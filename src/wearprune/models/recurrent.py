"""Recurrent models: conv front end + GRU/LSTM, and the epoch-sequence model for sleep."""

from __future__ import annotations

import torch
from torch import nn

from .layers import conv_bn_relu, scaled


class _ConvRNN(nn.Module):
    rnn_type: type[nn.Module] = nn.GRU

    def __init__(self, input_shape: tuple[int, ...], n_outputs: int, width: float = 1.0, norm: str = "batch",
                 act: str = "relu"):
        super().__init__()
        c, _ = input_shape
        ch, hidden = scaled(32, width), scaled(32, width)
        block = {"norm": norm, "act": act}
        self.features = nn.Sequential(conv_bn_relu(c, ch, 5, **block), conv_bn_relu(ch, ch, 5, **block),
                                      nn.MaxPool1d(2))
        self.rnn = self.rnn_type(ch, hidden, num_layers=2, batch_first=True)
        self.dropout = nn.Dropout(0.2)
        self.classifier = nn.Linear(hidden, n_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x).transpose(1, 2)  # [B, T, C] for the RNN
        out, _ = self.rnn(x)
        return self.classifier(self.dropout(out[:, -1]))


class CNNGRU(_ConvRNN):
    rnn_type = nn.GRU


class CNNLSTM(_ConvRNN):
    rnn_type = nn.LSTM


class EpochSequenceNet(nn.Module):
    """[B, S, F] epochs -> per-epoch encoder -> bidirectional GRU -> the centre epoch's stage."""

    def __init__(self, input_shape: tuple[int, ...], n_outputs: int, width: float = 1.0):
        super().__init__()
        s, f = input_shape
        enc, hidden = scaled(32, width), scaled(32, width)
        self.centre = s // 2
        self.encoder = nn.Sequential(nn.Linear(f, enc), nn.ReLU())
        self.rnn = nn.GRU(enc, hidden, batch_first=True, bidirectional=True)
        self.dropout = nn.Dropout(0.2)
        self.classifier = nn.Linear(2 * hidden, n_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(self.encoder(x))
        return self.classifier(self.dropout(out[:, self.centre]))
