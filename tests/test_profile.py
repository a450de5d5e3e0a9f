import torch
from torch import nn

from wearprune.models import build_model
from wearprune.profile import count_macs, count_params, model_bytes


def test_conv_and_linear_macs_by_hand():
    model = nn.Sequential(nn.Conv1d(3, 8, 5, padding=2), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 20, 4))
    assert count_macs(model, torch.randn(2, 3, 20)) == 20 * 8 * 3 * 5 + 160 * 4


def test_depthwise_conv_macs():
    model = nn.Conv1d(8, 8, 3, padding=1, groups=8)
    assert count_macs(model, torch.randn(1, 8, 10)) == 10 * 8 * 3


def test_gru_and_lstm_macs_count_every_step_and_gate():
    t, i, h = 25, 6, 10
    gru = nn.GRU(i, h, num_layers=2, batch_first=True)
    assert count_macs(gru, torch.randn(1, t, i)) == t * 3 * h * (i + h) + t * 3 * h * (h + h)
    lstm = nn.LSTM(i, h, batch_first=True, bidirectional=True)
    assert count_macs(lstm, torch.randn(1, t, i)) == 2 * t * 4 * h * (i + h)


def test_zoo_cnn_gru_macs_by_hand():
    model = build_model("cnn_gru", {"layout": "window", "input_shape": [6, 100], "n_outputs": 4})
    conv = 100 * 32 * 6 * 5 + 100 * 32 * 32 * 5
    gru = 2 * 50 * 3 * 32 * (32 + 32)
    assert count_macs(model, torch.randn(1, 6, 100)) == conv + gru + 32 * 4


def test_params_and_bytes():
    model = nn.Sequential(nn.Linear(10, 5), nn.BatchNorm1d(5))
    assert count_params(model) == 55 + 10
    # parameters + running mean/var (fp32) + num_batches_tracked (int64)
    assert model_bytes(model) == (65 + 10) * 4 + 8
