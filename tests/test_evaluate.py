"""Evaluation scores computed by hand."""
import math

import numpy as np
import pytest
import torch


def test_retrieval_gives_ties_no_credit():
    from rpm_cli.evaluate import prior_scores

    from rpm_cli.data.base import Split, consecutive_pairs

    class Flat(torch.nn.Module):  # scores every candidate alike
        prior = torch.nn.Linear(1, 1)
        length_unit = 64

        def prior_logits(self, z, z_next):
            return torch.zeros(len(z), len(z_next))

    video = Split(np.zeros((12, 1)), np.zeros((12, 1)), *consecutive_pairs(12))
    scores = prior_scores(Flat(), np.random.default_rng(0).random((12, 4)) * 64, video, batch_size=4)
    assert scores["retrieval_top1"] == 0 and scores["retrieval_mrr"] == pytest.approx(1 / 11)
    assert scores["infonce_estimate_all"] == pytest.approx(math.log(10 / 11))  # log N - log(N + 1), N = 10
