"""The theory config's keys: each claim declares the domains of its own keys with rpm's one vocabulary
(rpm_cli/domains.py; `number` here is open below); `validate` checks a config against the union before any work."""
import math

from omegaconf import DictConfig, OmegaConf

from rpm_cli import domains
from rpm_cli.domains import require
from rpm_cli.errors import UserError


def number(lo=None, hi=None, lo_open=True, hi_open=False):
    """The theory configs' numbers: open below by default (a scale, a noise std, a rate must be > lo)."""
    return domains.number(-math.inf if lo is None else lo, math.inf if hi is None else hi, lo_open, hi_open)


def plain(cfg) -> dict:
    """The config as a plain dict without `hydra` (never resolved: it holds ${now:...})."""
    if isinstance(cfg, DictConfig):
        keep = [k for k in cfg.keys() if k != "hydra"]
        try:
            return OmegaConf.to_container(OmegaConf.masked_copy(cfg, keep), resolve=True)
        except Exception as exc:  # an interpolation that does not resolve
            raise UserError(f"the theory config does not resolve: {str(exc).splitlines()[0]}") from None
    return {k: v for k, v in dict(cfg).items() if k != "hydra"}


def get(c: dict, key: str):
    node = c
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            raise UserError(f"{key} must be set (missing from the theory config)")
        node = node[part]
    return node


def _leaf_keys(c: dict, prefix=""):
    for k, v in c.items():
        if isinstance(v, dict):
            yield from _leaf_keys(v, f"{prefix}{k}.")
        else:
            yield f"{prefix}{k}"


def validate(cfg, rules: dict, products=()) -> dict:
    """Raise UserError(f"{key} must be {rule} (got {value!r})") on the first unknown or bad key; products are
    (keys, cap) bounds on array sizes (a list counts by its length). Returns the plain config."""
    c = plain(cfg)
    for key in _leaf_keys(c):
        if key not in rules:
            raise UserError(f"{key} must be one of the theory config's keys (got unknown key {key!r})")
    for key, domain in rules.items():
        require(key, get(c, key), domain, c)
    for keys, cap in products:
        vals = [len(get(c, k)) if isinstance(get(c, k), list) else get(c, k) for k in keys]
        if math.prod(vals) > cap:
            raise UserError(f"{keys[0]} must be small enough that {' × '.join(keys)} ≤ {cap} "
                            f"(got {get(c, keys[0])!r}, product {math.prod(vals):g})")
    return c
