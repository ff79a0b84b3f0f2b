import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.optimize import linear_sum_assignment

from rpm_cli.readout import best_assignment, chance_metrics, joint_l2, readout_metrics
from tests.helpers import examples


def _centres(n, seed):
    return np.random.default_rng(seed).uniform(0, 256, size=(n, 3, 2))


def test_affine_latents_read_out_exactly():
    c_train, c_test = _centres(100, 0), _centres(50, 1)
    a = np.random.default_rng(2).normal(size=(6, 6))
    z_train, z_test = c_train.reshape(100, 6) @ a + 3.0, c_test.reshape(50, 6) @ a + 3.0
    assert joint_l2(z_train, c_train, z_test, c_test) < 1e-6


def test_slot_metric_finds_permuted_slots_and_rejects_mixed_ones():
    c_train, c_test = _centres(100, 0), _centres(50, 1)
    perm = [2, 0, 1]  # slot k holds ball perm[k], scaled and shifted
    z_train = np.concatenate([c_train[:, b] * 0.01 + 0.2 for b in perm], axis=1)
    z_test = np.concatenate([c_test[:, b] * 0.01 + 0.2 for b in perm], axis=1)
    exact = readout_metrics(z_train, c_train, z_test, c_test)
    assert exact["slot_l2_px"] < 1e-6 and exact["balls_tracked"] == 3
    mixed = np.random.default_rng(3).normal(size=(6, 6))  # every slot mixes every ball
    m = readout_metrics(z_train @ mixed, c_train, z_test @ mixed, c_test)
    assert m["readout_l2_px"] < 1e-6 and m["slot_l2_px"] > 20 and m["balls_tracked"] == 0
    # Two slots on their balls, the third blind: one ball untracked.
    blind = z_train.copy(), z_test.copy()
    blind[0][:, 4:], blind[1][:, 4:] = 0.5, 0.5
    m = readout_metrics(blind[0], c_train, blind[1], c_test)
    assert m["balls_tracked"] == 2 and len(m["slot_matched_px"]) == 3 and max(m["slot_matched_px"]) > 20


def test_best_assignment_by_hand():
    cost = np.array([[5.0, 1.0, 9.0], [1.0, 5.0, 9.0], [9.0, 9.0, 0.0]])
    assert sorted(best_assignment(cost)) == [(0, 1), (1, 0), (2, 2)]
    assert sorted(best_assignment(np.array([[3.0, 1.0, 2.0]]))) == [(0, 1)]


@settings(max_examples=examples(200))
@given(st.tuples(st.integers(1, 9), st.integers(1, 9)).flatmap(
    lambda shape: arrays(np.float64, shape, elements=st.integers(-5, 5).map(float) | st.floats(-1e3, 1e3))))
def test_best_assignment_costs_what_scipys_hungarian_costs(cost):
    """Tried matchings (up to 8! of them) and scipy's Hungarian (beyond) both find a least-cost matching, ties (whole
    numbers) included: one column per row, min(rows, cols) pairs, the same total as scipy's."""
    pairs = best_assignment(cost)
    rows, cols = linear_sum_assignment(cost)
    assert len(pairs) == min(cost.shape)
    assert len({r for r, _ in pairs}) == len({c for _, c in pairs}) == len(pairs)
    assert np.isclose(sum(cost[r, c] for r, c in pairs), cost[rows, cols].sum(), rtol=1e-12, atol=1e-9)


def test_chance_is_distance_to_training_mean():
    c_train = np.zeros((4, 1, 2))
    c_test = np.array([[[3.0, 4.0]], [[0.0, 1.0]]])
    assert np.isclose(chance_metrics(c_train, c_test)["readout_l2_px"], 3.0)
