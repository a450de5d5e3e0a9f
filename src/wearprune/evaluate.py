"""Task metrics: accuracy, macro precision/recall/F1, per-class table, confusion matrix, Cohen's kappa;
MAE/RMSE for regression. Computed here (numpy only) and checked against scikit-learn in the tests."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .data.dataset import WearableDataset


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    cm = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(cm, (np.asarray(y_true, int), np.asarray(y_pred, int)), 1)
    return cm


def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray, class_names: list[str]) -> dict:
    """Macro averages are over the classes present in ``y_true`` (a class with no test windows has
    no recall to average); every class still appears in the per-class table."""
    k = len(class_names)
    cm = confusion_matrix(y_true, y_pred, k)
    tp = np.diag(cm).astype(float)
    support = cm.sum(axis=1)
    predicted = cm.sum(axis=0)
    precision = np.divide(tp, predicted, out=np.zeros(k), where=predicted > 0)
    recall = np.divide(tp, support, out=np.zeros(k), where=support > 0)
    f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros(k), where=(precision + recall) > 0)
    present = support > 0
    n = cm.sum()
    observed = tp.sum() / n
    expected = float((support * predicted).sum()) / n**2
    kappa = (observed - expected) / (1 - expected) if expected < 1 else 0.0
    return {
        "accuracy": float(observed),
        "macro_precision": float(precision[present].mean()),
        "macro_recall": float(recall[present].mean()),
        "macro_f1": float(f1[present].mean()),
        "kappa": float(kappa),
        "n": int(n),
        "per_class": [
            {"class": name, "precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
            for name, p, r, f, s in zip(class_names, precision, recall, f1, support, strict=True)
        ],
        "confusion_matrix": cm.tolist(),
        "macro_over": "classes present in the test set",
    }


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict:
    err = np.asarray(y_pred, float) - np.asarray(y_true, float)
    return {"mae": float(np.abs(err).mean()), "rmse": float(np.sqrt((err**2).mean())), "n": int(len(err))}


def predict(model: nn.Module, X: np.ndarray, batch_size: int = 512, device: str = "cpu") -> np.ndarray:
    """Raw model outputs [N, n_outputs] for normalised inputs."""
    model.eval()
    outs = []
    with torch.inference_mode():
        for i in range(0, len(X), batch_size):
            outs.append(model(torch.from_numpy(X[i:i + batch_size]).to(device)).float().cpu().numpy())
    return np.concatenate(outs) if outs else np.zeros((0, 1), np.float32)


def task_metrics(ds: WearableDataset, outputs: np.ndarray, target_scale: dict | None = None) -> dict:
    """Metrics of raw outputs against ``ds.y``; ``target_scale`` undoes regression target scaling."""
    if ds.task == "classification":
        return classification_metrics(ds.y, outputs.argmax(1), ds.class_names or
                                      [str(i) for i in range(outputs.shape[1])])
    pred = outputs[:, 0]
    if target_scale:
        pred = pred * target_scale["std"] + target_scale["mean"]
    return regression_metrics(ds.y, pred)


def headline(metrics: dict) -> tuple[str, float]:
    """The one number a table leads with: macro-F1 for classification, MAE for regression."""
    return ("macro_f1", metrics["macro_f1"]) if "macro_f1" in metrics else ("mae", metrics["mae"])


def confusion_png(cm: list[list[int]], class_names: list[str], title: str = "") -> bytes:
    """The confusion matrix as PNG bytes (row-normalised colours, counts written in the cells)."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cm = np.asarray(cm)
    rownorm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    size = 2.5 + 0.45 * len(class_names)
    fig, ax = plt.subplots(figsize=(size, size * 0.9))
    ax.imshow(rownorm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(class_names)), class_names, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(len(class_names)), class_names, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            if cm[i, j]:
                ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=7,
                        color="white" if rownorm[i, j] > 0.5 else "black")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return buf.getvalue()
