"""The one validation vocabulary: a key's domain as words (for the error message and the README) and a
predicate. `rpm train`'s keys (config.py), the theory lab's claims (theory/keys.py) and the priors'
constructors (models/priors/base.py) all state their domains with these, and all refuse a value the same way:
`{key} must be {words} (got {value!r})`, one line, exit code 2.

A value passes only when it is in its domain: numbers finite, integers real integers (not booleans), strings
from their set, booleans real booleans. A rule may read the rest of the config (`cfg`, None when there is none,
e.g. for the README's table), so a domain that depends on another key can say which.
"""
import math
from dataclasses import dataclass
from typing import Callable

from rpm_cli.errors import UserError

MAX_SEED = 2**32 - 1  # numpy's legacy seeding and torch.manual_seed both take it


def is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def is_num(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


@dataclass(frozen=True)
class Domain:
    rule: Callable[[object], str]  # in words, given the config (some rules name another key's value)
    ok: Callable[[object, object], bool]  # (value, config)

    def describe(self, cfg=None) -> str:
        return self.rule(cfg)

    def admits(self, value, cfg=None) -> bool:
        try:
            return bool(self.ok(value, cfg))
        except (TypeError, AttributeError, ValueError):  # a value of the wrong kind for the predicate
            return False


def now(c, key: str, expression=lambda v: v) -> str:
    """` (value)` of a key a rule depends on, for an error message; nothing for the README (c is None)."""
    if c is None:
        return ""
    from omegaconf import OmegaConf

    return f" ({expression(OmegaConf.select(c, key))})"


def require(key: str, value, domain: Domain, cfg=None):
    """value, or a one-line UserError naming the key and its domain."""
    if not domain.admits(value, cfg):
        try:
            words = domain.describe(cfg)
        except (TypeError, AttributeError, ValueError):
            words = domain.describe(None)
        raise UserError(f"{key} must be {words} (got {value!r})")
    return value


def integer(lo: int, hi: int | None = None, note: str = "") -> Domain:
    words = f"an integer from {lo} to {hi}{note}" if hi is not None else f"an integer >= {lo}{note}"
    return Domain(lambda c: words, lambda v, c: is_int(v) and lo <= v and (hi is None or v <= hi))


def number(lo: float = -math.inf, hi: float = math.inf, lo_open: bool = False, hi_open: bool = False) -> Domain:
    def ok(v, c):
        return is_num(v) and (v > lo if lo_open else v >= lo) and (v < hi if hi_open else v <= hi)

    parts = [f"{'>' if lo_open else '>='} {lo:g}" if lo > -math.inf else "",
             f"{'<' if hi_open else '<='} {hi:g}" if hi < math.inf else ""]
    words = "a finite number" + (" " + " and ".join(p for p in parts if p) if any(parts) else "")
    return Domain(lambda c: words, ok)


def one_of(*options) -> Domain:
    return Domain(lambda c: "one of: " + ", ".join(map(str, options)), lambda v, c: v in options)


def optional(domain: Domain) -> Domain:
    return Domain(lambda c: f"{domain.describe(c)} or null", lambda v, c: v is None or domain.ok(v, c))


def list_of(domain: Domain, lo_len: int, hi_len: int, distinct: bool = False) -> Domain:
    extra = ", all different" if distinct else ""
    return Domain(lambda c: f"a list of {lo_len} to {hi_len} values, each {domain.describe(c)}{extra}",
                  lambda v, c: isinstance(v, list) and lo_len <= len(v) <= hi_len
                  and all(domain.ok(x, c) for x in v) and (not distinct or len(set(v)) == len(v)))


BOOLEAN = Domain(lambda c: "true or false", lambda v, c: isinstance(v, bool))
SEED = integer(0, MAX_SEED)
