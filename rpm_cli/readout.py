"""Supervised linear readout of ball positions from latents, scored in pixels (Fig. 1C).

`joint`: one affine least-squares map from all of z to all ball centres (the paper's readout).
`slot`: each map's (x, y) fitted to each ball on its own, maps matched to balls by the assignment of least
total error. Only the slot metric says that each latent tracks one ball: a random encoder's six numbers
can already be a good joint basis for the positions.
"""
import itertools
import math

import numpy as np


def fit_affine(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Least-squares W with [x, 1] @ W ≈ y."""
    design = np.concatenate([x, np.ones((len(x), 1))], axis=1).astype(np.float64)
    weights, *_ = np.linalg.lstsq(design, y.astype(np.float64), rcond=None)
    return weights


def predict_affine(weights: np.ndarray, x: np.ndarray) -> np.ndarray:
    return np.concatenate([x, np.ones((len(x), 1))], axis=1) @ weights


def mean_l2(pred: np.ndarray, true: np.ndarray) -> float:
    """Mean Euclidean distance over frames and balls; both (N, n_balls, 2) in pixels."""
    return float(np.linalg.norm(pred - true, axis=-1).mean())


EVERY_MATCHING_UP_TO = 40_320  # 8!: up to this many matchings, each is tried (3 balls make 6); scipy's Hungarian beyond


def best_assignment(cost: np.ndarray) -> list[tuple[int, int]]:
    """Rows matched to columns with the least total cost (maps to balls here, latent dimensions to true latents
    in data/clica.py); min(rows, cols) pairs. A small matrix tries every matching: the least total is the same
    (ties may pick another matching of it), and importing scipy.optimize for it took 0.3 s of `rpm evaluate`'s
    2 s (measured)."""
    rows, cols = cost.shape
    if rows > cols:
        return sorted((r, c) for c, r in best_assignment(cost.T))
    if 0 < rows and math.perm(cols, rows) <= EVERY_MATCHING_UP_TO and np.isfinite(cost).all():
        matchings = np.array(list(itertools.permutations(range(cols), rows)))  # (matchings, rows): row r's column
        best = matchings[np.argmin(cost[np.arange(rows), matchings].sum(1))]
        return [(r, int(c)) for r, c in enumerate(best)]
    from scipy.optimize import linear_sum_assignment  # here, not at the top: rpm evaluate's matrices rarely need it

    return [(int(r), int(c)) for r, c in zip(*linear_sum_assignment(cost))]


def joint_predictions(z_train, c_train, z_test) -> np.ndarray:
    """Held-out centres (N, n_balls, 2) from the joint affine readout fitted on the training video."""
    n_balls = c_train.shape[1]
    weights = fit_affine(z_train, c_train.reshape(len(c_train), -1))
    return predict_affine(weights, z_test).reshape(-1, n_balls, 2)


def joint_l2(z_train, c_train, z_test, c_test) -> float:
    return mean_l2(joint_predictions(z_train, c_train, z_test), c_test)


def slot_costs(z_train, c_train, z_test, c_test) -> np.ndarray:
    """cost[k, b]: held-out L2 of the affine map from slot k's (x, y) to ball b's centre."""
    n_slots, n_balls = z_train.shape[1] // 2, c_train.shape[1]
    cost = np.empty((n_slots, n_balls))
    for k in range(n_slots):
        zk_train, zk_test = z_train[:, 2 * k:2 * k + 2], z_test[:, 2 * k:2 * k + 2]
        for b in range(n_balls):
            weights = fit_affine(zk_train, c_train[:, b])
            cost[k, b] = mean_l2(predict_affine(weights, zk_test), c_test[:, b])
    return cost


TRACKED_PX = 5.0  # a slot "tracks" its matched ball when its held-out error is below this


def slot_matches(z_train, c_train, z_test, c_test) -> list[float]:
    """Held-out L2 of each matched (slot, ball) pair, in ball order."""
    cost = slot_costs(z_train, c_train, z_test, c_test)
    return [float(cost[k, b]) for k, b in sorted(best_assignment(cost), key=lambda kb: kb[1])]


def readout_metrics(z_train, c_train, z_test, c_test) -> dict:
    matched = slot_matches(z_train, c_train, z_test, c_test)
    return {"readout_l2_px": joint_l2(z_train, c_train, z_test, c_test), "slot_l2_px": float(np.mean(matched)),
            "slot_matched_px": matched, "balls_tracked": sum(m < TRACKED_PX for m in matched)}


def chance_metrics(c_train, c_test) -> dict:
    """Predict every ball at its mean training position: both metrics coincide."""
    l2 = mean_l2(np.broadcast_to(c_train.mean(axis=0), c_test.shape), c_test)
    return {"readout_l2_px": l2, "slot_l2_px": l2}
