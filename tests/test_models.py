import math

import numpy as np
import torch

from rpm_cli.models.encoder import CentreOfMassEncoder, centre_of_mass
from rpm_cli.objectives import info_nce, info_nce_estimate, info_nce_estimate_full


def test_centre_of_mass_by_hand():
    maps = torch.zeros(1, 2, 4, 8)
    maps[0, 0, 2, 5] = 1.0  # one pixel: row 2, column 5
    maps[0, 1, 1, 1] = 3.0  # mass 3 at (x=1, y=1) and mass 1 at (x=7, y=3)
    maps[0, 1, 3, 7] = 1.0
    z = centre_of_mass(maps)[0].tolist()
    expected = [5.5 / 8, 2.5 / 4, (3 * 1.5 + 7.5) / 4 / 8, (3 * 1.5 + 3.5) / 4 / 4]
    assert np.allclose(z, expected)


def test_encoder_shapes_and_range():
    torch.manual_seed(0)
    enc = CentreOfMassEncoder(n_maps=3)
    z = enc(torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8))
    assert z.shape == (4, 6) and bool(((z > 0) & (z < 1)).all())


def test_map_bias_init_sets_the_background_level():
    enc = CentreOfMassEncoder(n_maps=3, map_bias_init=-8.0)
    assert torch.equal(enc.bn2.bias.detach(), torch.full((3,), -8.0))
    enc.eval()  # fresh running stats: mean 0, var 1, so a black frame's maps sit at sigmoid(-8)
    maps = enc.feature_maps(torch.zeros(1, 3, 16, 16, dtype=torch.uint8))
    assert torch.allclose(maps, torch.full_like(maps, torch.sigmoid(torch.tensor(-8.0)).item()), atol=1e-6)


def test_info_nce_by_hand():
    log_f = torch.tensor([[2.0, 0.0, -1.0], [0.5, 1.0, 0.0], [0.0, 3.0, 1.0]])
    rows = log_f.numpy()
    per_row = [-(rows[i, i] - np.log(np.exp(rows[i]).sum())) for i in range(3)]
    assert math.isclose(info_nce(log_f).item(), np.mean(per_row), rel_tol=1e-6)
    assert math.isclose(info_nce(log_f, "sum").item(), np.sum(per_row), rel_tol=1e-6)
    # Eq. 6 with N = B - 1 = 2 negatives per anchor
    assert math.isclose(info_nce_estimate(np.mean(per_row), 3), math.log(2) - np.mean(per_row))
    assert math.isclose(info_nce_estimate_full(log_f), math.log(2) - np.mean(per_row), rel_tol=1e-6)


def test_infonce_estimate_is_at_most_log_n():
    perfect = torch.eye(30) * 1e4  # every positive certain: the estimate reaches its ceiling log N
    assert math.isclose(info_nce_estimate_full(perfect), math.log(29), rel_tol=1e-9)
    assert info_nce_estimate_full(torch.randn(30, 30)) < math.log(29)


def test_uninformative_critic_gives_log_b():
    assert math.isclose(info_nce(torch.zeros(30, 30)).item(), math.log(30), rel_tol=1e-6)
