"""Claim 5 (Sec. 3, App. D): θ learned by maximising I_N on minibatches (what training does) lands at the
maximiser of E[I_N(θ)], close to the maximiser θ* of the closed-form I_∞(θ).

Computed twice: the learned θ (torch, Adam on log θ with the training loss of `rpm_cli.objectives`, fresh
minibatches, several seeds) against argmax_θ E[I_N(θ)] found by golden-section search on one fixed set of
batches (numpy, common random numbers). θ* of I_∞ is shown beside them; it differs from the finite-N maximiser
by a finite-N shift, which is not a claim of the paper and is not checked."""
import math

import numpy as np

from rpm_cli.theory import gaussian as G
from rpm_cli.theory import montecarlo as MC
from rpm_cli.theory import training as T
from rpm_cli.theory.checks import ClaimResult, Figure, check
from rpm_cli.theory.claims.setting import fmt
from rpm_cli.domains import SEED, integer, list_of
from rpm_cli.theory.keys import number

KEYS = {
    "learn.steps": integer(1, 20_000),
    "learn.lr": number(0, 10),
    "learn.batch_size": integer(2, 1024),
    "learn.seeds": list_of(SEED, 2, 64, distinct=True),
    "learn.theta_init": number(0, 1e4),
    "learn.average_last": number(0, 1),
    "learn.finite_n_batches": integer(100, 20_000),
}
TITLE = "5. Learning θ by maximising I_N"


def run(s) -> ClaimResult:
    m, cl = s.model, s.cfg["learn"]
    runs = T.learn_theta(m, cl["batch_size"], cl["steps"], cl["lr"], cl["theta_init"], cl["seeds"],
                         cl["average_last"])
    mean, se = MC.mean_se([r["theta"] for r in runs])
    n = cl["batch_size"] - 1
    obj = T.FiniteNObjective(m, n, cl["finite_n_batches"], s.rng("learn/finite_n"))
    lo, hi = s.cfg["plot"]["theta_range"]
    fin = obj.argmax(s.theta_star * lo, s.theta_star * hi)
    curve_t = s.theta_star * np.geomspace(lo, hi, 24)
    thetas = s.theta_star * np.logspace(math.log10(lo), math.log10(hi), s.cfg["plot"]["theta_points"])
    q = {"runs": runs, "theta_mean": mean, "theta_se": se, "theta_star": s.theta_star, "n_train": n,
         "theta_star_interior": G.theta_star_is_interior(m, s.theta_star),
         "theta_star_finite_n": fin["theta"], "theta_star_finite_n_se": fin["se"],
         "i_inf_at_star": G.i_infinity(m, G.GaussianCritic(s.theta_star)),
         "i_inf_at_learned": [G.i_infinity(m, G.GaussianCritic(r["theta"])) for r in runs],
         "finite_n_curve": {"theta": curve_t, "i_n": [obj(float(t)) for t in curve_t]},
         "theta_curve": {"theta": thetas, "i_inf": G.i_infinity_gaussian_curve(m, thetas)}}
    checks = [check("learned_theta_at_finite_n_argmax",
                    f"θ learned by Adam on I_{n} minibatches = argmax_θ E[I_{n}(θ)]", "Eq. 6", mean, fin["theta"],
                    4 * math.hypot(se, fin["se"]),
                    (f"torch: Adam on log θ, {len(runs)} seeds × {cl['steps']} steps, Polyak average",
                     f"numpy: golden-section search on {cl['finite_n_batches']} fixed batches"),
                    note="tol = 4 SE (seeds; delta-method SE of the search's maximiser)")]
    prose = (
        f"Adam on log θ, {len(runs)} seeds, minibatches of {n + 1} pairs (N = {n}), step size decaying as "
        f"1/√(1 + t/100): θ = {fmt(mean)} ± {fmt(se, 2)}. The maximiser of E[I_{n}(θ)] on "
        f"{cl['finite_n_batches']} fixed batches: {fmt(fin['theta'])} ± {fmt(fin['se'], 2)}. The maximiser of the "
        f"closed-form I_∞(θ): θ* = {fmt(s.theta_star)} (I_∞ = {fmt(q['i_inf_at_star'])}; at the learned θ's "
        f"{', '.join(fmt(v) for v in q['i_inf_at_learned'])}). Training targets E[I_N], not I_∞; here their "
        f"maximisers differ by {fmt(fin['theta'] - s.theta_star, 2)} (a finite-N shift, shown, not checked)."
        + ("" if q["theta_star_interior"] else " I_∞(θ) has no interior maximiser here (f_θ → 1 is best)."))
    return ClaimResult("learn", TITLE, q, checks, [], [], prose, [figure(q)])


def figure(q) -> Figure:
    def draw(plt):
        th = q["theta_curve"]
        fig, ax = plt.subplots(figsize=(6, 4))
        ax.plot(th["theta"], th["i_inf"], label="$I_\\infty(\\theta)$ (closed form)")
        fc = q["finite_n_curve"]
        ax.plot(fc["theta"], fc["i_n"], color="C4", lw=1, label=f"E[$I_{{{q['n_train']}}}(\\theta)$] (MC)")
        ax.axvline(q["theta_star_finite_n"], color="C4", ls=":", lw=1,
                   label=f"argmax E[$I_{{{q['n_train']}}}$] = {q['theta_star_finite_n']:.3f}")
        ax.axvline(q["theta_star"], color="C1", ls="--", label=f"argmax θ* = {q['theta_star']:.3f}")
        for k, r in enumerate(q["runs"]):
            ax.plot([r["theta"]], [q["i_inf_at_learned"][k]], "v", color="C3", ms=7,
                    label="learned θ (per seed)" if k == 0 else None)
        ax.set_xscale("log")
        top = float(np.max(th["i_inf"]))
        ax.set_ylim(max(float(np.min(th["i_inf"])), top - 1.0) - 0.05, top + 0.1)
        ticks = np.geomspace(float(np.min(th["theta"])), float(np.max(th["theta"])), 5)
        ax.xaxis.set_minor_formatter(plt.NullFormatter())
        ax.set_xticks(ticks, [f"{t:.3g}" for t in ticks])
        ax.set_xlabel("Gaussian critic lengthscale θ")
        ax.set_ylabel("nats")
        ax.set_title(f"θ learned by maximising $I_{{{q['n_train']}}}$")
        ax.legend(fontsize=8)
        return fig
    return Figure("i_inf_theta", "I_inf(theta)", draw)
