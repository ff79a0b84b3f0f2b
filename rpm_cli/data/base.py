"""The interface every dataset implements (`data=<name>`, configs/data/<name>.yaml with `_target_`).

A dataset is a world rpm learns from: three roles (train, validation, test), each a `Split` of observations
the encoder reads, the ground-truth latents behind them (read by the scores and the supervised baseline,
never by InfoNCE), and the pairs (x, x') InfoNCE contrasts, as indices into the observations. A dataset owns
its config keys' domains (checked before any work, `data.<key>` in every message), the scores `rpm evaluate`
reports on a held-out split, their chance level, and what it needs in memory.

Adding one: a subclass here and a YAML in configs/data/ (README, "Datasets").
"""
import abc
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from omegaconf import DictConfig

from rpm_cli.domains import SEED, Domain, now, number, require


@dataclass(frozen=True)
class Split:
    observations: np.ndarray  # (M, ...): what the encoder reads (uint8 frames, float vectors)
    latents: np.ndarray       # (M, ...): the ground truth behind each observation
    first: np.ndarray         # (P,) int64: each pair's first observation
    second: np.ndarray        # (P,) int64: its second (InfoNCE's positive; the other pairs' are negatives)

    @property
    def n_pairs(self) -> int:
        return len(self.first)


def consecutive_pairs(n: int) -> tuple[np.ndarray, np.ndarray]:
    """(t, t + 1) for every frame of a video of n frames."""
    return np.arange(n - 1), np.arange(1, n)


def held_out_keys(held_out: str) -> dict[str, Domain]:
    """The keys every dataset with three roles shares: the held-out splits' seeds (never the training seed, so
    `held_out` stays held out) and the cache directory."""
    return {
        "val_seed": Domain(lambda c: "an integer from 0 to 2**32 - 1, different from data.seed and data.test_seed",
                           lambda v, c: SEED.ok(v, c) and v not in (c.data.seed, c.data.test_seed)),
        "test_seed": Domain(lambda c: "an integer from 0 to 2**32 - 1, different from data.seed"
                                      + now(c, "data.seed") + f", so the test {held_out} held out",
                            lambda v, c: SEED.ok(v, c) and v != c.data.seed),
        "cache_dir": Domain(lambda c: "a directory path or null (no cache)",
                            lambda v, c: v is None or (isinstance(v, str) and v.strip() != "")),
    }


# Every dataset's key: where the distance priors' θ starts (configs/prior/*.yaml read ${data.prior_lengthscale}),
# in the dataset's length unit.
PRIOR_LENGTHSCALE = number(0, 1e6, lo_open=True)  # bounded: a lengthscale of 1e30 overflows f_θ


class Dataset(abc.ABC):
    #: The config's `name`, used to map configs written before datasets had `_target_`.
    name: ClassVar[str] = ""
    #: Domains of the config keys the constructor takes, in the order they are checked (a rule may read a key
    #: checked before it). The constructor trusts them: `check` runs first, from the config alone.
    keys: ClassVar[dict[str, Domain]] = {}
    #: What an encoder must read: "image" (uint8 frames, (3, H, W)) or "vector" (float32, (D,)).
    observation: ClassVar[str] = ""
    #: (score, column label) that `rpm evaluate` prints and sweeps summarise, the first the headline.
    table: ClassVar[tuple[tuple[str, str], ...]] = ()
    #: The score sweepers minimise under `sweep_metric=auto`, and its sign (-1: higher is better).
    sweep_score: ClassVar[tuple[str, int]] = ("", 1)
    #: The word for the length unit (θ in summaries): "px", or "" for latent units.
    unit: ClassVar[str] = ""

    @classmethod
    def check(cls, cfg: DictConfig) -> None:
        """Every key in its domain (one line naming `data.<key>`), then what only the whole config says."""
        for key, domain in cls.keys.items():
            require(f"data.{key}", cfg.data.get(key), domain, cfg)
        cls.check_together(cfg)
        # Last: it is often another key's value (the balls' diameter), whose own message says more.
        require("data.prior_lengthscale", cfg.data.get("prior_lengthscale"), PRIOR_LENGTHSCALE, cfg)

    @classmethod
    def check_together(cls, cfg: DictConfig) -> None:
        """Rules over several keys at once (a geometry that cannot be generated, ...)."""

    @classmethod
    @abc.abstractmethod
    def training_pairs(cls, data_cfg) -> int:
        """How many pairs the training split holds, from the config alone (the batch size's upper bound)."""

    @classmethod
    @abc.abstractmethod
    def memory(cls, cfg: DictConfig) -> dict[str, int]:
        """Bytes a run holds, by part, from the config alone (budget.py adds headroom and checks)."""

    #: The key (or expression) that sets how many training pairs there are, for the batch size's message.
    pairs_key: ClassVar[str] = ""
    #: The keys to lower when a run would not fit in memory, for the budget's message.
    memory_keys: ClassVar[str] = ""

    @property
    @abc.abstractmethod
    def length_unit(self) -> float:
        """Length units per encoder latent unit: the image size in pixels for images, 1 for vectors."""

    @property
    @abc.abstractmethod
    def observation_shape(self) -> tuple[int, ...]:
        """The shape of one observation: (3, H, W) for images, (D,) for vectors."""

    @property
    @abc.abstractmethod
    def latent_dim(self) -> int:
        """Numbers in one observation's ground truth (the supervised head's outputs)."""

    @abc.abstractmethod
    def split(self, role: str) -> Split:
        """The train, val or test split (generated once, then cached: data/cache.py)."""

    @abc.abstractmethod
    def scores(self, z_train: np.ndarray, train: Split, z_held: np.ndarray, held: Split) -> dict:
        """Held-out scores of latents (in length units) with readouts fitted on the training split."""

    @abc.abstractmethod
    def chance(self, train: Split, held: Split) -> dict:
        """The same scores at chance, for the table's control row."""

    def extras(self, train: Split) -> dict:
        """Dataset facts an evaluation records beside the scores (e.g. the θ the simulated motion implies)."""
        return {}
