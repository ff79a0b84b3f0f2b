"""The domains of `rpm train`'s keys, fuzzed: values accepted only inside their domains (an independent
oracle per key), surely-bad values refused, unknown keys and command lines answered in one line."""
import math

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from omegaconf import OmegaConf

from rpm_cli.config import leaf_keys, train_domains, validate_train
from rpm_cli.errors import UserError
from tests.helpers import TINY, compose_cfg, examples, run_rpm


BASE = compose_cfg()
DOMAINS = train_domains(BASE)  # the framework's keys, the balls' and com_cnn's
SURELY_BAD = st.one_of(st.just(float("nan")), st.just(float("inf")), st.just(-float("inf")), st.just(10**30),
                       st.just(-(10**30)), st.lists(st.integers(), max_size=3), st.just(""), st.just({"a": 1}))
ANY_VALUE = st.one_of(SURELY_BAD, st.integers(-10**6, 10**6), st.floats(allow_nan=True, allow_infinity=True),
                      st.booleans(), st.text(max_size=8), st.none())
KEYS = sorted(k for k in DOMAINS if OmegaConf.select(BASE, k) is not None or k == "max_memory_gb")


def _with(overrides: dict):
    cfg = OmegaConf.create(OmegaConf.to_container(BASE, resolve=True))
    for key, value in overrides.items():
        OmegaConf.update(cfg, key, value, force_add=True)
    return cfg


def _integer(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 2**32


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


# An independent, coarse reading of every key's domain, written from what each key means rather than from
# DOMAINS or from its default's type: what any valid value has. Lengths in pixels are continuous (ball
# centres are floats), so data.ball_diameter and data.step take any number (data.step=1.0 is a valid step:
# the video key stores it as a float); counts, sizes and seeds are integers.
ORACLE = {
    **dict.fromkeys(["seed", "data.seed", "data.val_seed", "data.test_seed", "data.image_size", "data.n_balls",
                     "data.n_frames", "data.val_frames", "data.test_frames", "encoder.hidden_channels",
                     "encoder.n_maps", "trainer.epochs", "trainer.restarts", "trainer.restart_epochs",
                     "trainer.batch_size", "trainer.threads", "trainer.keep_from"], _integer),
    **dict.fromkeys(["data.ball_diameter", "data.step", "data.heading_noise_deg", "encoder.map_bias_init",
                     "data.prior_lengthscale",
                     "trainer.lr", "trainer.momentum", "trainer.reseed_below"], _number),
    **dict.fromkeys(["evaluate", "debug", "data.antialias", "encoder.skip_background", "trainer.progress"],
                    lambda v: isinstance(v, bool)),
    **dict.fromkeys(["sweep_metric", "data.background", "encoder.latent_units", "encoder.kernels",
                     "trainer.optimizer", "trainer.loss_reduction", "trainer.batchnorm_batch", "trainer.device",
                     "logger.name"], lambda v: isinstance(v, str) and v.isidentifier()),
    "max_memory_gb": lambda v: v is None or (_number(v) and v > 0),  # null: the memory available
    "data.cache_dir": lambda v: v is None or (isinstance(v, str) and v.strip() != ""),  # null: no cache
}


def test_every_domain_has_an_oracle_that_accepts_its_default():
    assert sorted(ORACLE) == sorted(DOMAINS)
    for key in KEYS:
        assert ORACLE[key](OmegaConf.select(BASE, key)), key


@pytest.mark.fuzz
@settings(max_examples=examples(300))
@given(st.dictionaries(st.sampled_from(KEYS), ANY_VALUE, min_size=1, max_size=3))
@example({"data.cache_dir": None})  # null is a valid cache_dir (no cache)
@example({"data.step": 1.0})  # a float step is valid: the old oracle, reading the default's type, said no
def test_fuzzed_configs_are_accepted_only_inside_their_domains(overrides):
    cfg = _with(overrides)
    try:
        validate_train(cfg)
    except UserError as exc:
        message = str(exc)
        assert "\n" not in message and message.strip()
        # It names a key: one of those drawn, or one whose rule reads a drawn key (batch size, seeds, ...).
        assert any(name in message for name in [*DOMAINS, "prior", "config", "run would need"]), message
        return
    for key, value in overrides.items():
        assert ORACLE[key](value), f"{key}={value!r} was accepted"


@pytest.mark.fuzz
@settings(max_examples=examples(100))
@given(st.sampled_from(KEYS), SURELY_BAD)
@example("max_memory_gb", 10**30)  # max_memory_gb once had no upper bound
def test_surely_bad_values_are_always_refused(key, value):
    with pytest.raises(UserError):
        validate_train(_with({key: value}))


@pytest.mark.fuzz
@settings(max_examples=examples(40))  # each composes the config once: ~0.25 s
@given(st.text(alphabet="abcdefghijklmnopqrstuvwxyz_.", min_size=1, max_size=20))
def test_fuzzed_unknown_keys_are_one_line(key):
    from rpm_cli.overrides import check

    key = key.strip(".").replace("..", ".") or "x"
    message = check("train", [f"{key}=1"])
    known = OmegaConf.select(BASE, key, default="<missing>") != "<missing>"
    assert known or (message and "\n" not in message and key in message)


def test_the_domain_table_covers_every_trainable_key():
    names = ("data._target_", "data.name", "encoder._target_", "encoder.name", "objective._target_",
             "objective.name")  # which plug-in, not a setting
    uncovered = [k for k in leaf_keys(BASE) if k not in DOMAINS and not k.startswith("prior.") and k != "resume"
                 and k not in names]
    assert uncovered == [], "keys without a domain: " + ", ".join(uncovered)


CLI_VALUES = st.sampled_from(["-1", "0", "1", "2", "1.5", "nan", "inf", "abc", "''", "[1,2]", "null", "true", "1e9"])


@pytest.mark.slow
@pytest.mark.fuzz
@settings(max_examples=30)
@given(st.dictionaries(st.sampled_from(KEYS), CLI_VALUES, min_size=1, max_size=2))
def test_fuzzed_command_lines_exit_0_2_or_3_without_a_traceback(tmp_path_factory, overrides):
    cwd = tmp_path_factory.mktemp("fuzz")
    proc = run_rpm(["train", *TINY, "trainer.epochs=1", *[f"{k}={v}" for k, v in overrides.items()]], cwd, timeout=600)
    assert proc.returncode in (0, 2, 3), proc.stderr
    assert "Traceback" not in proc.stderr
    if proc.returncode:
        assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
        assert not (cwd / "outputs").exists() or proc.returncode == 3
