"""The validation vocabulary of the theory config: each claim declares the domains of its own keys with these
rules; `validate` checks a config against the union before any work."""
import math

from omegaconf import DictConfig, OmegaConf

from rpm_cli.errors import UserError

MAX_SEED = 2 ** 32 - 1


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def integer(lo, hi):
    return f"an integer from {lo} to {hi}", lambda v: _is_int(v) and lo <= v <= hi


def number(lo=None, hi=None, lo_open=True, hi_open=False):
    words = "a finite number" + "".join([
        f" {'>' if lo_open else '>='} {lo:g}" if lo is not None else "",
        " and" if lo is not None and hi is not None else "",
        f" {'<' if hi_open else '<='} {hi:g}" if hi is not None else ""])

    def ok(v):
        return (_is_num(v) and (lo is None or (v > lo if lo_open else v >= lo))
                and (hi is None or (v < hi if hi_open else v <= hi)))
    return words, ok


def optional(rule):
    words, ok = rule
    return f"{words} or null", lambda v: v is None or ok(v)


def list_of(rule, lo_len, hi_len, distinct=False):
    words, ok = rule
    extra = ", all different" if distinct else ""
    return (f"a list of {lo_len} to {hi_len} values, each {words}{extra}",
            lambda v: isinstance(v, list) and lo_len <= len(v) <= hi_len and all(ok(x) for x in v)
            and (not distinct or len(set(v)) == len(v)))


def one_of(*choices):
    return f"one of: {', '.join(map(str, choices))}", lambda v: v in choices


BOOL = ("true or false", lambda v: isinstance(v, bool))
SEED = integer(0, MAX_SEED)


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
    for key, (words, ok) in rules.items():
        value = get(c, key)
        if not ok(value):
            raise UserError(f"{key} must be {words} (got {value!r})")
    for keys, cap in products:
        vals = [len(get(c, k)) if isinstance(get(c, k), list) else get(c, k) for k in keys]
        if math.prod(vals) > cap:
            raise UserError(f"{keys[0]} must be small enough that {' × '.join(keys)} ≤ {cap} "
                            f"(got {get(c, keys[0])!r}, product {math.prod(vals):g})")
    return c
