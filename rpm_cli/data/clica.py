"""`data=clica`: the synthetic world of Zimmermann et al. 2021 ("Contrastive learning inverts the data
generating process"), generated here with numpy.

Latents z are uniform in the box [0, 1]^d; a pair's second latent z' is drawn around z from a Laplace or a
Normal conditional of scale b, each coordinate truncated to the box (exact rejection sampling); observations
are x = g(z) for a fixed invertible MLP g (square layers, LeakyReLU 0.2 between them). With z uniform, the
conditional is the InfoNCE prior of Eq. 21, so theory says what each f_θ recovers: a Laplace f_θ recovers z up
to permutation and sign (high MCC and R²), a Gaussian one up to a rotation (high R², MCC not guaranteed), a
linear critic much less. The mixing g follows the run's seed, so every seed is its own world; the validation
and test pairs are drawn through the same g from their own seeds.
"""
import numpy as np

from rpm_cli.data import cache
from rpm_cli.data.base import Dataset, Split, held_out_keys
from rpm_cli.domains import SEED, integer, number, one_of
from rpm_cli.readout import best_assignment, fit_affine, predict_affine

GENERATOR_VERSION = 1  # bump when the generator changes, so old caches are not reused
LEAKY_SLOPE = 0.2      # the anchor's LeakyReLU between the mixing layers
CONDITION_CANDIDATES = 100  # each mixing layer is the best-conditioned of this many Gaussian matrices
MAX_PAIRS = 10_000_000
CHANCE_SEED = 0        # the independent draw the chance row scores
FLOAT = 4


def _role_rng(seed: int, role: str) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, ("mixing", "train", "val", "test").index(role)]))


def mixing_weights(latent_dim: int, layers: int, seed: int) -> list[np.ndarray]:
    """The square matrices of g, each the best-conditioned of CONDITION_CANDIDATES Gaussian draws (scaled by
    1/√d), so g is invertible and does not squash any direction much (the anchor keeps well-conditioned ones)."""
    rng = _role_rng(seed, "mixing")
    weights = []
    for _ in range(layers):
        candidates = rng.normal(size=(CONDITION_CANDIDATES, latent_dim, latent_dim)) / np.sqrt(latent_dim)
        weights.append(candidates[np.argmin(np.linalg.cond(candidates))])
    return weights


def mix(z: np.ndarray, weights: list[np.ndarray]) -> np.ndarray:
    """x = g(z): linear layers with a LeakyReLU between them (none after the last)."""
    x = z
    for i, w in enumerate(weights):
        x = x @ w.T
        if i < len(weights) - 1:
            x = np.where(x > 0, x, LEAKY_SLOPE * x)
    return x


def conditional(z: np.ndarray, kind: str, scale: float, rng: np.random.Generator) -> np.ndarray:
    """z' ~ p(z' | z): Laplace or Normal noise of `scale` per coordinate, truncated to [0, 1] by redrawing the
    coordinates that fall outside (rejection: exactly the truncated conditional)."""
    draw = (lambda n: rng.laplace(0.0, scale, n)) if kind == "laplace" else (lambda n: rng.normal(0.0, scale, n))
    out = z + draw(z.shape)
    outside = (out < 0) | (out > 1)
    while outside.any():
        out[outside] = z[outside] + draw(int(outside.sum()))
        outside = (out < 0) | (out > 1)
    return out


def generate(key: dict, role: str) -> dict:
    d, n = key["latent_dim"], key["pairs"]
    rng = _role_rng(key["sample_seed"], role)
    z = rng.uniform(0.0, 1.0, size=(n, d))
    z_next = conditional(z, key["conditional"], key["scale"], rng)
    latents = np.concatenate([z, z_next])
    weights = mixing_weights(d, key["mixing_layers"], key["seed"])
    return {"observations": mix(latents, weights).astype(np.float32), "latents": latents.astype(np.float32)}


def r2_score(pred: np.ndarray, true: np.ndarray) -> float:
    """Coefficient of determination, averaged over the latent dimensions (each 1 - SSE / SST)."""
    sse = ((pred - true) ** 2).sum(0)
    sst = ((true - true.mean(0)) ** 2).sum(0)
    return float(np.mean(1.0 - sse / sst))


def linear_r2(z_train, latents_train, z_held, latents_held) -> float:
    """R² of the joint affine readout of the true latents from z, fitted on the training split."""
    return r2_score(predict_affine(fit_affine(z_train, latents_train), z_held), latents_held)


def matching(z: np.ndarray, latents: np.ndarray) -> list[tuple[int, int, float]]:
    """(z dimension, true latent, Pearson r) for each true latent, in true-latent order: the matching of
    greatest total |r| (more dimensions than latents leave some unmatched)."""
    r = np.corrcoef(z.T, latents.T)[: z.shape[1], z.shape[1]:]  # (z dims, true dims)
    r = np.nan_to_num(r)  # a constant dimension correlates with nothing
    return [(i, j, float(r[i, j])) for i, j in sorted(best_assignment(-np.abs(r)), key=lambda ij: ij[1])]


def matched_correlations(z: np.ndarray, latents: np.ndarray) -> list[float]:
    """|Pearson r| of each true latent with the latent dimension matched to it, in true-latent order."""
    return [abs(r) for _, _, r in matching(z, latents)]


def mcc(z: np.ndarray, latents: np.ndarray) -> float:
    """Mean correlation coefficient (the anchor's MCC): mean matched |Pearson r|, no readout fitted."""
    return float(np.mean(matched_correlations(z, latents)))


class ClicaDataset(Dataset):
    name = "clica"
    observation = "vector"
    table = (("r2", "linear R²"), ("mcc", "MCC"))
    sweep_score = ("mcc", -1)
    unit = ""
    pairs_key = "data.n_pairs"
    memory_keys = "data.n_pairs, data.val_pairs, data.test_pairs or trainer.batch_size"
    keys = {
        "latent_dim": integer(1, 64),
        "conditional": one_of("laplace", "normal"),
        "scale": number(0, 1, lo_open=True),
        "mixing_layers": integer(1, 10),
        "n_pairs": integer(3, MAX_PAIRS),
        "val_pairs": integer(3, MAX_PAIRS),
        "test_pairs": integer(3, MAX_PAIRS),
        "seed": SEED,
        **held_out_keys("pairs are"),
    }

    def __init__(self, latent_dim: int, conditional: str, scale: float, mixing_layers: int, n_pairs: int,
                 val_pairs: int, test_pairs: int, seed: int, val_seed: int, test_seed: int, cache_dir: str | None,
                 prior_lengthscale: float):
        self.world = {"version": GENERATOR_VERSION, "latent_dim": latent_dim, "conditional": conditional,
                      "scale": float(scale), "mixing_layers": mixing_layers, "seed": seed}
        self.roles = {"train": (seed, n_pairs), "val": (val_seed, val_pairs), "test": (test_seed, test_pairs)}
        self.cache_dir = cache_dir
        self.dim = latent_dim

    @classmethod
    def training_pairs(cls, data_cfg) -> int:
        return data_cfg.n_pairs

    @classmethod
    def memory(cls, cfg) -> dict[str, int]:
        d = cfg.data
        return {"pairs": 2 * (d.n_pairs + d.val_pairs + d.test_pairs) * 2 * d.latent_dim * FLOAT}

    @property
    def length_unit(self) -> float:
        return 1.0

    @property
    def observation_shape(self) -> tuple[int, ...]:
        return (self.dim,)

    @property
    def latent_dim(self) -> int:
        return self.dim

    def split(self, role: str) -> Split:
        sample_seed, pairs = self.roles[role]
        key = {**self.world, "role": role, "sample_seed": sample_seed, "pairs": pairs}
        shape = (2 * pairs, self.dim)
        arrays = cache.load("clica", key, self.cache_dir, lambda: generate(key, role),
                            lambda a: all(a[k].shape == shape for k in ("observations", "latents")),
                            lambda a: a)
        return Split(arrays["observations"], arrays["latents"], np.arange(pairs), np.arange(pairs, 2 * pairs))

    def scores(self, z_train, train: Split, z_held, held: Split) -> dict:
        matched = matched_correlations(z_held, held.latents)
        return {"r2": linear_r2(z_train, train.latents, z_held, held.latents), "mcc": float(np.mean(matched)),
                "matched_correlations": matched}

    def chance(self, train: Split, held: Split) -> dict:
        """R² of predicting the training mean, and the MCC of an independent uniform draw of the same shape."""
        mean = np.broadcast_to(train.latents.mean(0), held.latents.shape)
        noise = np.random.default_rng(CHANCE_SEED).uniform(size=held.latents.shape)
        return {"r2": r2_score(mean, held.latents), "mcc": mcc(noise, held.latents)}

