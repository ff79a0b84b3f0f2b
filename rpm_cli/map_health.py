"""Map health during training, read from the maps alone (no labels): a map that holds no ball of its own is
re-seeded while the others keep what they learned (`trainer.reseed_below`).

A start of the default recipe fails catastrophically when one map settles on the background and another
spreads over two balls; its maps' concentration (encoder.map_concentration) shows it, where the loss that
picks among starts does not always (issue 25's diagnosis on tuning seeds 10-34).
"""
import numpy as np
import torch

HEALTH_FRAMES = 64  # training frames, evenly spaced, on which each epoch's map health is measured
CHECKS = 3  # checks per run: maps form in the first epochs; later a healthy map rarely empties
OPTIMIZER_STATE = ("exp_avg", "exp_avg_sq", "momentum_buffer")  # Adam's moments and SGD's momentum


def health_frames(n_frames: int) -> torch.Tensor:
    return torch.linspace(0, n_frames - 1, min(HEALTH_FRAMES, n_frames)).round().long()


def reseed_epochs(first: int, epochs: int) -> range:
    """0-based epochs before which a check may re-seed: after the first trained epoch (or the chosen start's
    last) and the next CHECKS - 1, while at least two epochs remain to learn a ball with the fresh map. The
    window does not grow with trainer.epochs, so a run extended on resume (`trainer.epochs=N`) is the run
    trained for N epochs from the start whenever the shorter run's window was already complete."""
    start = max(first, 1)
    return range(start, min(start + CHECKS, epochs - 1))


def reseed_generator(seed: int, epoch: int) -> torch.Generator:
    """Fresh weights before `epoch` follow from the run's seed alone, so a resumed run draws the same."""
    state = np.random.SeedSequence([seed % 2**64, epoch]).generate_state(1)[0]
    return torch.Generator().manual_seed(int(state))


def reseed_unhealthy(model, optimizer, concentration: list[float], threshold: float, frames: torch.Tensor,
                     seed: int, epoch: int) -> list[int]:
    """Re-seed every map whose concentration is below threshold (and the encoder's idle features with them);
    returns the maps' indices.

    The optimizer's moments for the fresh slices are zeroed, so fresh weights do not inherit the stalled
    gradients' statistics of the ones they replace. Adam's step count belongs to the whole parameter, so its
    bias correction is spent and the fresh slices take larger steps than a new Adam would for their first few
    hundred steps (about 3x lr at first): measured as part of the recipe, not corrected.
    """
    unhealthy = [k for k, c in enumerate(concentration) if c < threshold]
    if unhealthy:
        for param, index in model.encoder.reseed_maps(unhealthy, frames, reseed_generator(seed, epoch)):
            state = optimizer.state.get(param, {})
            for key in OPTIMIZER_STATE:
                if state.get(key) is not None:
                    state[key][index].zero_()
    return unhealthy
