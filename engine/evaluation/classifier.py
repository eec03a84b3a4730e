"""A small deterministic classifier for clip features: standardised inputs, multinomial logistic regression.

`fit_classifier` minimises the mean cross-entropy plus an L2 penalty on the weights with full-batch
L-BFGS in float64, starting from zero. The loss is strictly convex, so the fit has one optimum and no
random start: the same features and labels always give the same classifier. Features whose spread in
the training set is zero (a band that is always silent) are left at scale 1 instead of dividing by 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True, eq=False)
class Classifier:
    names: tuple[str, ...]  # class i is names[i]
    n_inputs: int  # F: the width of the feature rows it is given
    columns: slice  # the features it reads (F' of them)
    mean: np.ndarray  # (F',) training mean of each feature read
    scale: np.ndarray  # (F',) training standard deviation (1 where it was 0)
    weights: np.ndarray  # (F', C)
    bias: np.ndarray  # (C,)

    def logits(self, features: np.ndarray) -> np.ndarray:
        """(N, F) -> (N, C) class scores."""
        features = np.asarray(features, dtype=np.float64)
        if features.ndim != 2 or features.shape[1] != self.n_inputs:
            raise ValueError(f"expected (N, {self.n_inputs}) features, got shape {features.shape}")
        return ((features[:, self.columns] - self.mean) / self.scale) @ self.weights + self.bias

    def predict(self, features: np.ndarray) -> np.ndarray:
        """(N, F) -> (N,) class indices (ties go to the lower index)."""
        return np.argmax(self.logits(features), axis=1)

    def share_named(self, features: np.ndarray, truth: Sequence[str]) -> float:
        """Share of the (N, F) rows whose predicted class is the name in `truth` (N names)."""
        predicted = self.predict(features)
        return float(np.mean([self.names[p] == t for p, t in zip(predicted, truth, strict=True)]))

    def index(self, name: str) -> int:
        try:
            return self.names.index(name)
        except ValueError:
            raise ValueError(
                f"{name!r} is not one of the classifier's classes: {', '.join(self.names)}"
            ) from None


def fit_classifier(
    features: np.ndarray,
    labels: Sequence[str],
    columns: slice = slice(None),
    l2: float = 1e-2,
    max_iter: int = 500,
) -> Classifier:
    """Fit on the `columns` of (N, F) features with one name per row; the classes are the distinct
    names, sorted."""
    rows = np.asarray(features, dtype=np.float64)
    if rows.ndim != 2 or len(rows) != len(labels) or len(rows) == 0:
        raise ValueError(
            f"need (N, F) features with one label per row, got {rows.shape} and {len(labels)} labels"
        )
    x = rows[:, columns]
    if x.shape[1] == 0:
        raise ValueError(f"columns {columns} select none of the {rows.shape[1]} features")
    if not np.isfinite(x).all():
        raise ValueError("features must be finite")
    labels = [str(label) for label in labels]
    names = tuple(sorted(set(labels)))
    if len(names) < 2:
        raise ValueError(f"a classifier needs at least two classes, got {list(names)}")
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale = np.where(scale > 1e-12, scale, 1.0)
    z = torch.from_numpy((x - mean) / scale)
    y = torch.tensor([names.index(label) for label in labels])
    w = torch.zeros(x.shape[1], len(names), dtype=torch.float64, requires_grad=True)
    b = torch.zeros(len(names), dtype=torch.float64, requires_grad=True)
    optimiser = torch.optim.LBFGS(
        [w, b], lr=1.0, max_iter=max_iter, tolerance_grad=1e-9, tolerance_change=1e-12,
        history_size=20, line_search_fn="strong_wolfe",
    )  # fmt: skip

    def closure() -> torch.Tensor:
        optimiser.zero_grad()
        loss = torch.nn.functional.cross_entropy(z @ w + b, y) + 0.5 * l2 * w.pow(2).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        optimiser.step(closure)
    weights, bias = w.detach().numpy().copy(), b.detach().numpy().copy()
    return Classifier(names, rows.shape[1], columns, mean, scale, weights, bias)


def confusion_matrix(truth: Sequence[int], predicted: Sequence[int], n_classes: int) -> np.ndarray:
    """(C, C) int64 counts: row = true class, column = predicted class; sums to the number of items."""
    matrix = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(matrix, (np.asarray(truth, dtype=np.int64), np.asarray(predicted, dtype=np.int64)), 1)
    return matrix


def accuracy(matrix: np.ndarray) -> float:
    """Share of items on the diagonal of a confusion matrix (nan for an empty one)."""
    total = int(matrix.sum())
    return float(np.trace(matrix)) / total if total else float("nan")
