"""InterFaceGAN boundaries: supervised editing directions in W from any classifier's scores.

Shen, Gu, Tang & Zhou, "Interpreting the Latent Space of GANs for Semantic Face Editing" (CVPR 2020).
Sample w, score the generator's images of them with a classifier, take the samples with the highest
and the lowest scores (2% each by default) as the two classes, hold out a part of them (30%) to
measure the fit, and fit a linear SVM between the rest: the unit normal of its separating hyperplane,
pointing towards high scores, is the direction. An edit is ``w + strength * normal``
(:func:`sg2_core.apply_direction`), so ``strength`` is the signed distance moved across the boundary.

Conditional manipulation (:func:`project_boundary`) takes out of one normal its components along
other boundaries, so moving along the result leaves those attributes' scores unchanged to first order.

The SVM is scikit-learn's (``pip install 'sg2-core[directions]'``). The results are
:class:`~sg2_core.methods.directions.Directions` (method ``'interfacegan'``, one row per boundary,
``values`` the held-out accuracy), saved and read like SeFa's and GANSpace's.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch

from sg2_core.methods.directions import Directions

SKLEARN_HINT = "InterFaceGAN boundaries need scikit-learn: pip install 'sg2-core[directions]'"


def _linear_svm(c: float):
    try:
        from sklearn.svm import SVC
    except ImportError:
        raise ImportError(SKLEARN_HINT) from None
    return SVC(kernel="linear", C=c)  # the paper's classifier (libsvm, hinge loss, unregularised bias)


@torch.no_grad()
def score_latents(
    generator,
    classifier: Callable[[torch.Tensor], torch.Tensor],
    w: torch.Tensor,
    batch_size: int = 256,
    noise_mode: str = "const",
) -> torch.Tensor:
    """``[N]`` float64 scores: ``classifier`` on the generator's images of ``w`` ``[N, w_dim]``.

    ``classifier`` takes images ``[B, C, R, R]`` in [-1, 1] (as the generator renders them) and returns one
    score per image (``[B]`` or ``[B, 1]``); higher means more of the attribute. NaN scores are allowed
    (images the classifier cannot judge) and left out by :func:`fit_boundary`.
    """
    if not isinstance(w, torch.Tensor) or w.ndim != 2 or w.shape[1] != generator.w_dim:
        raise ValueError(f"w must be a tensor [N, {generator.w_dim}], got {list(getattr(w, 'shape', [])) or w}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    device = generator.mapping.w_avg.device
    scores = []
    for start in range(0, len(w), batch_size):
        chunk = w[start : start + batch_size].to(device)
        images = generator.synthesis(chunk[:, None].repeat(1, generator.num_ws, 1), noise_mode=noise_mode)
        score = torch.as_tensor(classifier(images))
        if score.shape not in ((len(chunk),), (len(chunk), 1)):
            raise ValueError(
                f"the classifier must return one score per image ([{len(chunk)}] or [{len(chunk)}, 1]), "
                f"got shape {list(score.shape)}"
            )
        scores.append(score.reshape(-1).to("cpu", torch.float64))
    return torch.cat(scores)


def fit_boundary(
    w,
    scores,
    ratio: float = 0.02,
    validation: float = 0.3,
    seed: int = 0,
    c: float = 1.0,
    name: str = "",
) -> Directions:
    """The InterFaceGAN boundary of ``scores`` over latents ``w`` ``[N, w_dim]`` (tensors or arrays).

    The ``ratio`` of samples with the highest scores are the positives, as many with the lowest the
    negatives (``0 < ratio <= 0.5``); a ``validation`` share of each (drawn with ``seed``) is held out and
    the linear SVM (``C = c``) fitted on the rest. NaN scores are left out. Returns one unit row pointing
    towards higher scores, ``values`` ``[accuracy on the held-out samples]`` (NaN when none are held out).
    """
    w = torch.as_tensor(w).detach().to("cpu", torch.float64)
    scores = torch.as_tensor(scores).detach().to("cpu", torch.float64)
    if w.ndim != 2:
        raise ValueError(f"w must be [N, w_dim] latents, got shape {list(w.shape)}")
    if scores.ndim == 2 and scores.shape[1] == 1:
        scores = scores[:, 0]
    if scores.shape != (len(w),):
        raise ValueError(
            f"scores must hold one score per latent ([{len(w)}] or [{len(w)}, 1]), got {list(scores.shape)}"
        )
    if not 0 < ratio <= 0.5:
        raise ValueError(f"ratio must be in (0, 0.5] (the share of samples taken as each class), got {ratio}")
    if not 0 <= validation < 1:
        raise ValueError(f"validation must be in [0, 1) (the share of each class held out), got {validation}")
    if torch.isinf(scores).any() or not torch.isfinite(w).all():
        raise ValueError("w and scores must be finite (scores may be NaN to leave a sample out)")
    kept = ~torch.isnan(scores)
    w, scores = w[kept], scores[kept]
    chosen = int(len(w) * ratio)
    train = chosen - int(chosen * validation)
    if train < 1:
        raise ValueError(
            f"{len(w)} scored samples at ratio {ratio} give {chosen} per class, {train} to fit on; sample more "
            "latents or raise ratio"
        )
    order = torch.argsort(scores, descending=True, stable=True)
    if scores[order[chosen - 1]] <= scores[order[-chosen]]:
        raise ValueError(
            "the highest and the lowest scores overlap (the scores barely vary); the classifier does not "
            "separate these samples"
        )
    rng = np.random.default_rng(seed)
    positives = order[:chosen][torch.from_numpy(rng.permutation(chosen))]
    negatives = order[-chosen:][torch.from_numpy(rng.permutation(chosen))]
    x_train = torch.cat([w[positives[:train]], w[negatives[:train]]]).numpy()
    y_train = np.r_[np.ones(train, dtype=np.int64), np.zeros(train, dtype=np.int64)]
    svm = _linear_svm(c).fit(x_train, y_train)
    accuracy = math.nan
    if chosen > train:
        x_val = torch.cat([w[positives[train:]], w[negatives[train:]]]).numpy()
        y_val = np.r_[np.ones(chosen - train, dtype=np.int64), np.zeros(chosen - train, dtype=np.int64)]
        accuracy = float((svm.predict(x_val) == y_val).mean())
    normal = torch.from_numpy(np.array(svm.coef_, dtype=np.float64).reshape(-1))  # towards class 1: high scores
    normal = normal / normal.norm()
    return Directions(
        vectors=normal[None].to(torch.float32),
        values=torch.tensor([accuracy], dtype=torch.float32),
        total=1.0,
        method="interfacegan",
        names=(name,) if name else (),
    )


def project_boundary(primal: torch.Tensor, conditions: torch.Tensor) -> torch.Tensor:
    """Conditional manipulation: ``primal`` ``[w_dim]`` less its part in the span of ``conditions``
    ``[m, w_dim]`` (or one ``[w_dim]``), renormalised to unit length.

    The paper's formula ``n - C^T (C C^T)^-1 C n`` for any number of conditions, solved by least squares
    in float64 so that nearly parallel conditions do not blow it up. Moving along the result changes none
    of the conditions' signed distances.
    """
    primal = torch.as_tensor(primal)
    conditions = torch.as_tensor(conditions)
    conditions = conditions[None] if conditions.ndim == 1 else conditions
    if primal.ndim != 1 or conditions.ndim != 2 or conditions.shape[1] != primal.shape[0] or not len(conditions):
        raise ValueError(
            f"primal must be [w_dim] and conditions [m, w_dim] with the same w_dim, got "
            f"{list(primal.shape)} and {list(conditions.shape)}"
        )
    n, cond = primal.to(torch.float64), conditions.to(torch.float64)
    if not (torch.isfinite(n).all() and torch.isfinite(cond).all()):
        raise ValueError("the boundaries contain NaN or inf")
    # The component of n in the span of the conditions: C^T x with x the least-squares solution of C^T x = n.
    coefficients = torch.linalg.lstsq(cond.T, n[:, None]).solution
    rest = n - (cond.T @ coefficients)[:, 0]
    if rest.norm() <= 1e-6 * n.norm():
        raise ValueError("the primal boundary lies in the span of the conditions: nothing is left to move along")
    return (rest / rest.norm()).to(primal.dtype)
