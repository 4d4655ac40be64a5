"""The ideal-denoiser oracle: QSM's sampler run with eps_theta replaced by the exact value of its
regression target, on a task whose Q is known in closed form (the toy bandits, any layout of
optima). It answers "what would QSM's policy be if the denoiser had learned its target
perfectly?", in seconds and with no learning at all, so that a finding can say whether a result
comes from the practical algorithm (sampler steps, target form, score scale, geometry) or from
learning (a critic or denoiser that has not converged).

On a toy bandit the next context ignores the action, so Q(s, a) = r(a) + gamma * V and
dQ/da = dr/da exactly: r(a) = max_k exp(-|a - mu_k|^2 / (2 w^2)) (qsm.harness.envs.ToyBandit), whose
gradient is that of the nearest bump. The bump's smooth continuation is used outside the box
(the sampler's first call sees a_T ~ N(0, I) unclipped; a critic network extrapolates smoothly
too, where the environment's clipped reward would have no gradient).

Target forms (`form`):
  constant      -M_q dr/da            the paper's (qsm.learners.diffusion.score_target, as
                                      the agent)
  sigma_scaled  -sigma_t M_q dr/da    noise-level consistent, sigma_t = sqrt(1 - abar_t)
  boltzmann     -sigma_t d/dx log p_t(x), p_t = the Boltzmann law exp(M_q r) on [-1, 1] noised to
                step t, by quadrature (1-D tasks): the exact denoiser of the law QSM's theory
                aims at, a reference for the sampler itself (many small steps reproduce it).

The sampler is the agent's own (qsm.learners.diffusion.reverse_chain and Schedule: VP schedule, T
steps, temperature, clip to [-1, 1] after every step). Its samples are measured by the audit's own
code: state_measures (mass on the bounds, in corners, interior modes), optima_coverage (mass near
each optimum) and pattern_law (bound patterns), over `states` groups of `samples` draws as the audit
measures a run's probe states, and return / optimum is the mean reward of all draws (evaluation
uses the stochastic sampler with no added noise).

Where a run disagrees with its prediction, two measures say why. Scale: the oracle again at 0.8
to 1.2 times M_q (a learned critic's dQ/da is never exact, and M_q scales the target as the slope
does); a prediction whose return moves a lot over that band rests on the score's exact size. Steps:
at the run's probe states and with the same noise, the chain with the run's learned denoiser at
one step t and the exact one at the others (step_swaps); the step whose swap moves the return to
the learned policy's is where learning makes the difference.

The other end of the same question: the sampler with no denoiser at all (eps_theta = 0, what
it draws knowing nothing of Q). QSM's denoiser is regressed onto -M_q dQ/da, not onto the noise,
so nothing in the chain undoes its 1 / sqrt(alpha_t) rescaling: with a weak score the draws
spread, and every step's clip piles them on the bounds (at the paper's T 5, two thirds of each
coordinate). Per QSM-like run on any task (no_denoiser.csv), how many probe states hold, coordinate
by coordinate, what that sampler draws (total variation of the shares at -1, inside and at +1
within NO_DENOISER_TV): there the policy's mass on the bounds is the sampler's own, not the
task's.

    python -m analysis.audit.oracle point toy_bimodal --M_q 50 --T 5
    python -m analysis.audit.oracle no-denoiser --T 5
    python -m analysis.audit.oracle predict --configfile config/study.yaml \
        --out docs/predictions/oracle_predictions.csv
    python -m analysis.audit.oracle check --manifest results/tables/run_manifest.json \
        --tables results/tables --figures results/figures
        # oracle.csv, oracle_steps.csv, no_denoiser.csv, oracle.png
"""
from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import torch

from analysis.audit.measure import state_measures
from analysis.audit.scale import mass_any_bound, policy_runs, setting
from analysis.audit.tables import LEARNED_THRESHOLD, learned, optima_coverage
from analysis.estimators.bootstrap import DEFAULT_REPS, DEFAULT_SEED, bootstrap_mean_ci
from analysis.estimators.mixed import bound_mass, pattern_law
from qsm.harness.envs import ToyBandit
from qsm.harness.seeding import SeedStreams
from qsm.learners.diffusion import Schedule, reverse_chain, score_target

FORMS = ("constant", "sigma_scaled", "boltzmann")
MODULE = "analysis.audit.oracle"
ORACLE_SEED = 0
#: The oracle agrees with a setting's runs when its "learned" (return >= 0.8 of the optimum) is the
#: majority of the seeds' and its return / optimum is within this of their mean: the widest gap
#: on the archived M_q sweep is 0.072 (toy_quadmodal at M_q = 5; tests/test_oracle.py).
AGREEMENT = 0.1
#: Measures of a point, in the order of the predictions table.
MEASURES = ("return_over_optimum", "mass_any_bound", "mass_corner", "mass_interior",
            "frac_near_any", "optima_covered", "interior_modes", "n_heavy_patterns",
            "pattern_entropy")


class OracleError(ValueError):
    """A task without a closed-form Q, or a setting the oracle cannot run."""


def toy_optima(task: str) -> np.ndarray:
    if task not in ToyBandit.VARIANTS:
        raise OracleError(f"the oracle needs a task whose Q is known in closed form: one of "
                          f"{', '.join(ToyBandit.VARIANTS)}; got {task!r}")
    return ToyBandit.VARIANTS[task].astype(np.float64)


def reward(a: np.ndarray, optima: np.ndarray, width: float = ToyBandit.WIDTH) -> np.ndarray:
    """r(a) of the toy bandit at actions a (..., d), as ToyBandit.reward (clipped to the box)."""
    a = np.clip(a, -1, 1)
    d2 = ((a[..., None, :] - optima) ** 2).sum(-1)
    return np.exp(-d2 / (2 * width**2)).max(-1)


def reward_gradient(a: torch.Tensor, optima: torch.Tensor, width: float) -> torch.Tensor:
    """dr/da at a (S, B, d): the nearest bump's gradient, continued smoothly outside the box."""
    diff = a.unsqueeze(-2) - optima                                               # (S, B, K, d)
    bumps = torch.exp(-(diff**2).sum(-1) / (2 * width**2))                        # (S, B, K)
    k = bumps.argmax(-1, keepdim=True)
    nearest = diff.gather(-2, k.unsqueeze(-1).expand(*k.shape, a.shape[-1])).squeeze(-2)
    return -nearest / width**2 * bumps.gather(-1, k)


class BoltzmannScore:
    """d/dx log p_t(x) for p_0 proportional to exp(beta r(a)) on [-1, 1] (1-D), noised by the VP
    forward process to each step t: p_t(x) = int p_0(a) N(x; sqrt(abar_t) a, 1 - abar_t) da,
    on a grid of x by quadrature, interpolated linearly."""

    def __init__(self, optima, beta, schedule: Schedule, width, grid=1601, span=6.0):
        a = np.linspace(-1, 1, grid)
        log_p0 = beta * reward(a[:, None], optima, width)
        w = np.exp(log_p0 - log_p0.max())
        w /= w.sum()
        self.x = np.linspace(-span, span, 2 * grid)
        self.scores = []
        for abar in schedule.alpha_bars.double().numpy():
            var = 1 - abar
            z = (self.x[:, None] - math.sqrt(abar) * a[None, :]) / math.sqrt(var)
            logk = -0.5 * z**2 + np.log(w)[None, :]
            m = logk.max(axis=1, keepdims=True)
            k = np.exp(logk - m)
            # d/dx log p_t(x) = E[-(x - sqrt(abar) a) / var | x]
            self.scores.append(-(k * z).sum(1) / k.sum(1) / math.sqrt(var))

    def __call__(self, x: torch.Tensor, t: int) -> torch.Tensor:
        out = np.interp(x.double().numpy().ravel(), self.x, self.scores[t])
        return torch.from_numpy(out).to(x.dtype).view_as(x)


class IdealDenoiser:
    """Stands in for the agent's Denoiser in the sampler: eps(s, a, t) = the exact target."""

    def __init__(self, task: str, M_q: float, form: str, schedule: Schedule):
        if form not in FORMS:
            raise OracleError(f"form must be one of {', '.join(FORMS)}; got {form!r}")
        self.optima_np = toy_optima(task)
        self.optima = torch.from_numpy(self.optima_np).float()
        self.M_q, self.form, self.schedule = float(M_q), form, schedule
        self.sigmas = (1 - schedule.alpha_bars).sqrt()
        if form == "boltzmann":
            if self.optima.shape[1] != 1:
                raise OracleError("the boltzmann form is computed by quadrature on 1-D tasks only")
            self.boltzmann = BoltzmannScore(self.optima_np, self.M_q, schedule, ToyBandit.WIDTH)

    def at(self, obs):
        return self

    def __call__(self, a: torch.Tensor, t: int) -> torch.Tensor:
        sigma = self.sigmas[t]
        if self.form == "boltzmann":
            return -sigma * self.boltzmann(a, t)
        grad = reward_gradient(a, self.optima, ToyBandit.WIDTH)
        return score_target(grad, self.M_q, self.form, sigma)


@dataclass(frozen=True)
class Point:
    """One setting of the sampler on one toy task."""
    task: str
    M_q: float = 50.0
    T: int = 5
    form: str = "constant"
    temperature: float = 1.0
    beta_min: float = 0.1
    beta_max: float = 10.0


class StepSwitch:
    """A denoiser for the sampler that is `learned` at the steps in `learned_steps` and `ideal` at
    the others: the chain with one step's denoiser swapped shows what that step alone does."""

    def __init__(self, learned, ideal, learned_steps):
        self.learned, self.ideal, self.steps = learned, ideal, frozenset(learned_steps)

    def at(self, obs):
        learned, ideal = self.learned.at(obs), self.ideal.at(obs)
        return lambda a, t: learned(a, t) if t in self.steps else ideal(a, t)


class BeforeLast:
    """Wraps a denoiser and keeps the chain's samples as its last step (t = 0) receives them."""

    def __init__(self, denoiser):
        self.denoiser, self.seen = denoiser, None

    def at(self, obs):
        inner = self.denoiser.at(obs)

        def call(a, t):
            if t == 0:
                self.seen = a.clone()
            return inner(a, t)
        return call


def run_chain(denoiser, schedule: Schedule, obs: torch.Tensor, act_dim: int, seed: int,
              temperature: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """The agent's sampler (one seed, obs (1, n, obs_dim)) with `denoiser`: its actions (n, d) and
    the chain's samples before its last step (n, d). The same seed draws the same noise whatever
    the denoiser, so chains that differ in one step's denoiser differ only by what it does."""
    watch = BeforeLast(denoiser)
    with torch.no_grad():
        a = reverse_chain(watch, schedule, obs, act_dim, SeedStreams([seed], "oracle"),
                          temperature)
    return a[0].double().numpy(), watch.seen[0].double().numpy()


def sample(point: Point, n: int, seed: int = ORACLE_SEED, before_last: bool = False):
    """n actions (n, d) of the ideal-denoiser sampler at this point (and, with before_last, the
    chain's samples before its last step)."""
    if point.T < 1:
        raise OracleError(f"T must be >= 1; got {point.T}")
    schedule = Schedule(point.T, point.beta_min, point.beta_max)
    den = IdealDenoiser(point.task, point.M_q, point.form, schedule)
    x, seen = run_chain(den, schedule, torch.zeros(1, n, 1), den.optima.shape[1], seed,
                        point.temperature)
    return (x, seen) if before_last else x


def measure(point: Point, states: int = 8, samples: int = 1000, seed: int = ORACLE_SEED) -> dict:
    """The audit's measures of the oracle's samples: `states` groups of `samples` draws, each
    measured as a probe state is (means over groups), coverage and return pooled; and the mass on
    a bound of the chain before its last step (`bound_before_last`)."""
    x, seen = sample(point, states * samples, seed, before_last=True)
    optima = toy_optima(point.task)
    per_state = [state_measures(g) for g in x.reshape(states, samples, -1)]
    patterns = [pattern_law(g) for g in x.reshape(states, samples, -1)]
    frac, near_any, covered = optima_coverage(x[None], optima)

    def mean(rows, key):
        values = [r[key] for r in rows if r[key] is not None and not
                  (isinstance(r[key], float) and math.isnan(r[key]))]
        return float(np.mean(values)) if values else math.nan

    out = {"return_over_optimum": float(reward(x, optima).mean()),
           "mass_any_bound": mean(per_state, "mass_any_bound"),
           "mass_corner": mean(per_state, "mass_corner"),
           "mass_interior": mean(per_state, "mass_interior"),
           "frac_near_any": near_any, "optima_covered": covered,
           "interior_modes": mean(per_state, "interior_modes"),
           "n_heavy_patterns": mean(patterns, "n_heavy_patterns"),
           "pattern_entropy": mean(patterns, "pattern_entropy"),
           "bound_before_last": float(bound_mass(np.clip(seen, -1, 1))["any_bound"])}
    for k, v in enumerate(frac):
        out[f"frac_opt{k + 1}"] = float(v)
    return out


def point_of(e) -> Point:
    """The oracle's point at a QSM run's setting (its sampler's hyperparameters)."""
    M_q, T, form = setting(e)
    h = e.hparams or {}
    return Point(e.task, M_q, T, form, float(h.get("temperature", 1.0)),
                 float(h.get("beta_min", 0.1)), float(h.get("beta_max", 10.0)))


def step_swaps(e, seed: int = ORACLE_SEED) -> dict | None:
    """Which step of the sampler makes a run's policy differ from the oracle's: at the run's
    probe states, with the same noise, the return / optimum of the chain with the ideal denoiser
    at every step ('ideal'), with the run's learned denoiser at every step ('learned': its policy
    redrawn), and with the learned one at step t alone ({t: ...}). None for a run without a
    suite policy to load (an official JAX learner's, or none kept)."""
    from qsm.policy import LoadedPolicy, PolicyError
    try:
        agent = LoadedPolicy(e.path, device="cpu").agent
    except PolicyError:
        return None
    if not hasattr(agent, "denoiser"):
        return None
    point = point_of(e)
    ideal = IdealDenoiser(e.task, point.M_q, point.form, agent.schedule)
    samples = e.actions.shape[1]
    obs = torch.as_tensor(np.repeat(e.states, samples, axis=0), dtype=torch.float32)[None]
    optima, act_dim = toy_optima(e.task), agent.act_dim

    def chain(steps):
        x, _ = run_chain(StepSwitch(agent.denoiser, ideal, steps), agent.schedule, obs,
                         act_dim, seed, point.temperature)
        return float(reward(x, optima).mean())
    return {"ideal": chain(()), "learned": chain(range(point.T)),
            **{t: chain((t,)) for t in range(point.T)}}


def learned_prediction(measures: dict) -> bool:
    """The audit's rule for a run that learned a task with known optima, applied to the oracle."""
    return measures["return_over_optimum"] >= LEARNED_THRESHOLD


# -- the other end: the sampler with no denoiser -------------------------------------------------

#: A probe state is the no-denoiser sampler's when no coordinate's shares at -1, inside and at +1
#: are further than this from the sampler's in total variation (1000 samples: about 0.02 by chance)
NO_DENOISER_TV = 0.1
NO_DENOISER_SAMPLES = 100_000


class NoDenoiser:
    """eps_theta = 0 at every step: the sampler knowing nothing of Q."""

    def at(self, obs):
        return lambda a, t: torch.zeros_like(a)


def no_denoiser_split(T: int, beta_min: float = 0.1, beta_max: float = 10.0,
                      temperature: float = 1.0, samples: int = NO_DENOISER_SAMPLES,
                      seed: int = ORACLE_SEED) -> np.ndarray:
    """The shares of one coordinate of the no-denoiser sampler's draws at -1, inside and at +1
    (coordinates are independent when eps_theta is 0, so one describes them all)."""
    if T < 1:
        raise OracleError(f"T must be >= 1; got {T}")
    x, _ = run_chain(NoDenoiser(), Schedule(T, beta_min, beta_max), torch.zeros(1, samples, 1), 1,
                     seed, temperature)
    return coordinate_splits(x[None])[0, 0]


def coordinate_splits(actions: np.ndarray) -> np.ndarray:
    """(P, d, 3): per probe state and coordinate, the shares of the samples (P, N, d) at -1,
    strictly inside and at +1 (the sampler clips, so a bound is hit exactly)."""
    a = np.clip(np.asarray(actions, np.float64), -1.0, 1.0)
    return np.stack([(a <= -1).mean(1), (np.abs(a) < 1).mean(1), (a >= 1).mean(1)], axis=-1)


def distance_to(splits: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """(P,): per probe state, the largest over coordinates of the total variation between the
    state's shares (P, d, 3) and the reference's (3,)."""
    return 0.5 * np.abs(splits - reference).sum(-1).max(-1)


NO_DENOISER_COLUMNS = ["algo", "task", "seed", "M_q", "T", "score_target", "other_hparams",
                       "act_dim", "n_states", "states_as_no_denoiser", "distance_median",
                       "coord_bound", "no_denoiser_coord_bound", "mass_any_bound",
                       "no_denoiser_mass_any_bound", "no_denoiser_lower", "no_denoiser_inside",
                       "no_denoiser_upper"]


def no_denoiser_table(entries) -> pd.DataFrame:
    """Per audited QSM-like run (any task; policy distribution), its probe states beside the
    no-denoiser sampler at the run's T, schedule and temperature: how many states are that
    sampler's (distance_to within NO_DENOISER_TV), the median distance, and the share of each
    coordinate and of the samples with any coordinate on a bound, the run's and the sampler's."""
    splits, rows = {}, []
    for e in sorted(policy_runs(entries), key=lambda e: (e.algo, e.task, e.path)):
        if setting(e) is None:
            continue
        p = point_of(e)
        key = (p.T, p.beta_min, p.beta_max, p.temperature)
        if key not in splits:
            splits[key] = no_denoiser_split(*key)
        null = splits[key]
        splits_e = coordinate_splits(e.actions)
        d = distance_to(splits_e, null)
        act_dim = e.actions.shape[-1]
        rows.append({"algo": e.algo, "task": e.task, "seed": e.seed, "M_q": p.M_q, "T": p.T,
                     "score_target": p.form, "other_hparams": other_hparams(e),
                     "act_dim": act_dim, "n_states": len(d),
                     "states_as_no_denoiser": int((d <= NO_DENOISER_TV).sum()),
                     "distance_median": float(np.median(d)),
                     "coord_bound": float(1 - splits_e[..., 1].mean()),
                     "no_denoiser_coord_bound": 1 - null[1],
                     "mass_any_bound": mass_any_bound(e),
                     "no_denoiser_mass_any_bound": 1 - null[1] ** act_dim,
                     "no_denoiser_lower": null[0], "no_denoiser_inside": null[1],
                     "no_denoiser_upper": null[2]})
    return pd.DataFrame(rows, columns=NO_DENOISER_COLUMNS)


# -- beside the runs: the audit's oracle.csv and oracle.png --------------------------------------

ORACLE_COLUMNS = ["algo", "task", "M_q", "T", "score_target", "other_hparams", "n_seeds",
                  "predicted_return", "predicted_return_scale_low", "predicted_return_scale_high",
                  "learned_return", "learned_return_ci_low", "learned_return_ci_high",
                  "predicted_bound", "predicted_bound_before_last", "learned_bound",
                  "learned_bound_ci_low", "learned_bound_ci_high", "predicted_near_any",
                  "learned_near_any", "predicted_learned", "n_learned", "agrees", "note"]
#: The oracle again at these multiples of M_q: how much its prediction rests on the score's exact
#: size (a learned critic's dQ/da is never exact; M_q scales the target as the slope does).
SCALE_FACTORS = (0.8, 0.9, 1.1, 1.2)
STEPS_COLUMNS = ["algo", "task", "M_q", "T", "score_target", "other_hparams", "chain", "step",
                 "n_seeds", "return", "return_ci_low", "return_ci_high"]


def other_hparams(e) -> str:
    """The run's hyperparameters, other than the sampler's setting, that differ from its agent's
    declared defaults ('' when none), e.g. 'actor_hidden=[64,64]'."""
    from qsm.declare.catalog import agent_catalog
    from qsm.declare.hparams import show_value
    catalog = agent_catalog()
    specs = catalog[e.algo].specs if e.algo in catalog else {}
    out = []
    for k, v in sorted((e.hparams or {}).items()):
        if k in ("M_q", "T", "score_target") or k not in specs:
            continue
        default = specs[k].default
        if (list(v) if isinstance(v, (list, tuple)) else v) != \
                (list(default) if isinstance(default, (list, tuple)) else default):
            out.append(f"{k}={show_value(v)}")
    return " ".join(out)


def settings(entries) -> dict:
    """The audited QSM-like runs on toy tasks grouped by (algo, task, M_q, T, form, other
    hyperparameters): runs that differ elsewhere (a capacity sweep's widths) are kept apart: the
    prediction is the same, what they learned need not be."""
    groups: dict[tuple, list] = {}
    for e in policy_runs(entries):
        s = setting(e)
        if s is not None and e.task in ToyBandit.VARIANTS:
            groups.setdefault((e.algo, e.task, *s, other_hparams(e)), []).append(e)
    return dict(sorted(groups.items()))


def oracle_table(entries, reps=DEFAULT_REPS, seed=DEFAULT_SEED, states=8,
                 samples=1000) -> pd.DataFrame:
    rows = []
    for (algo, task, M_q, T, form, other), runs in settings(entries).items():
        point = point_of(runs[0])
        m = measure(point, states, samples)
        scaled = [m["return_over_optimum"]] + [
            measure(replace(point, M_q=point.M_q * f), states, samples)["return_over_optimum"]
            for f in SCALE_FACTORS]
        ret = bootstrap_mean_ci([e.final_normalized for e in runs], reps, seed)
        bound = bootstrap_mean_ci([mass_any_bound(e) for e in runs], reps, seed)
        near = float(np.mean([optima_coverage(e.actions, e.optima)[1] for e in runs]))
        flags = [learned(e) for e in runs]
        n_learned = sum(1 for f in flags if f)
        predicted = learned_prediction(m)
        majority = n_learned * 2 > len(runs)
        agrees = predicted == majority and abs(m["return_over_optimum"] - ret[0]) <= AGREEMENT
        note = "" if agrees else (
            f"disagree: predicted {m['return_over_optimum']:.2f} of the optimum "
            f"({'learned' if predicted else 'not learned'}), learned {ret[0]:.2f} "
            f"({n_learned} of {len(runs)} seeds learned)")
        rows.append({"algo": algo, "task": task, "M_q": M_q, "T": T, "score_target": form,
                     "other_hparams": other, "n_seeds": len(runs),
                     "predicted_return": m["return_over_optimum"],
                     "predicted_return_scale_low": min(scaled),
                     "predicted_return_scale_high": max(scaled),
                     "learned_return": ret[0], "learned_return_ci_low": ret[1],
                     "learned_return_ci_high": ret[2], "predicted_bound": m["mass_any_bound"],
                     "predicted_bound_before_last": m["bound_before_last"],
                     "learned_bound": bound[0], "learned_bound_ci_low": bound[1],
                     "learned_bound_ci_high": bound[2],
                     "predicted_near_any": m["frac_near_any"], "learned_near_any": near,
                     "predicted_learned": predicted, "n_learned": n_learned,
                     "agrees": agrees, "note": note})
    return pd.DataFrame(rows, columns=ORACLE_COLUMNS)


def steps_table(entries, reps=DEFAULT_REPS, seed=DEFAULT_SEED) -> pd.DataFrame:
    """Per QSM setting on a toy task, the step decomposition of its runs (step_swaps): the
    return / optimum of the ideal chain, of the learned one, and of the ideal chain with the
    learned denoiser at one step t, mean over the seeds with a policy to load and its 95%
    bootstrap interval."""
    rows = []
    for (algo, task, M_q, T, form, other), runs in settings(entries).items():
        swaps = [s for s in (step_swaps(e) for e in runs) if s is not None]
        if not swaps:
            continue
        for key in ("ideal", "learned", *range(T)):
            ci = bootstrap_mean_ci([s[key] for s in swaps], reps, seed)
            rows.append({"algo": algo, "task": task, "M_q": M_q, "T": T, "score_target": form,
                         "other_hparams": other,
                         "chain": key if isinstance(key, str) else "learned at one step",
                         "step": "" if isinstance(key, str) else key, "n_seeds": len(swaps),
                         "return": ci[0], "return_ci_low": ci[1], "return_ci_high": ci[2]})
    return pd.DataFrame(rows, columns=STEPS_COLUMNS)


def plot_oracle(oracle_df, runs, outdir, provenance):
    """Predicted (the ideal-denoiser oracle) beside learned, per toy task and QSM setting; `runs`:
    the toy runs drawn (algo, task, seed, path, status, audited)."""
    from analysis.audit import plots
    from analysis.plotting import algo_color
    tasks = sorted(oracle_df["task"].unique()) if len(oracle_df) else []
    fig, axes = plots._task_panels(tasks)
    for ax, task in zip(axes, tasks):
        s = oracle_df[oracle_df["task"] == task].reset_index(drop=True)
        for i, r in s.iterrows():
            ax.bar(i, r["learned_return"], width=0.6, color=algo_color(r["algo"]), alpha=0.7,
                   edgecolor="k", lw=0.4)
            plots._interval(ax, i, r["learned_return"], r["learned_return_ci_low"],
                      r["learned_return_ci_high"])
            # beside the bar's own interval, so that the two lines are never confused
            ax.errorbar(i + 0.2, r["predicted_return"], capsize=3, color="firebrick", lw=1.2,
                        yerr=[[r["predicted_return"] - r["predicted_return_scale_low"]],
                              [r["predicted_return_scale_high"] - r["predicted_return"]]],
                        ls="none", zorder=3,
                        label="oracle at 0.8 to 1.2 × M_q" if i == 0 else None)
            ax.plot(i + 0.2, r["predicted_return"], marker="D", ms=7, mfc="white", mec="k",
                    mew=1.4, ls="none", label="oracle (exact denoiser)" if i == 0 else None,
                    zorder=4)
            if not r["agrees"]:
                ax.text(i, 1.02, "differ", ha="center", fontsize=7, color="firebrick")
        labels = [f"M_q {r['M_q']:g}\nT {r['T']}"
                  + ("\nσ-scaled" if r["score_target"] == "sigma_scaled" else "")
                  + (f"\n{r['other_hparams']}" if isinstance(r["other_hparams"], str)
                     and r["other_hparams"] else "")
                  for _, r in s.iterrows()]
        ax.set_xticks(range(len(s)))
        ax.set_xticklabels(labels, fontsize=6.5)
        ax.set_xlim(-0.7, len(s) - 0.3)
        ax.axhline(LEARNED_THRESHOLD, color="0.4", lw=0.8, ls="--")
        ax.set_ylim(0, 1.35)  # headroom for the legend
        ax.set_yticks([0, 0.2, 0.4, 0.6, 0.8, 1.0])
        ax.set_ylabel("final return / optimum", fontsize=8)
        ax.set_title(task, fontsize=10)
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=6.5, loc="upper left", frameon=False)
    fig.suptitle("QSM's learned policy against its sampler with the exact denoiser (no "
                 "learning)\n(" + plots._seeds_text(runs, tasks) + ")", fontsize=11)
    cap = ("Bars: final evaluation return over the optimum's of the QSM runs at each setting, mean "
           "over seeds with its 95% bootstrap CI. Diamonds: the ideal-denoiser oracle "
           "(analysis/audit/oracle.py): the agent's sampler (VP schedule, T steps, clip to [-1, 1] "
           "after every step, temperature) with eps_theta replaced by the exact value of its "
           "regression target on the toy, whose Q is known in closed form; 8,000 draws; the red "
           "bar through it: the oracle's range at 0.8 to 1.2 times M_q (a long bar: the "
           "prediction rests on the score's exact size). Where "
           "bar and diamond agree, what the runs do is what the sampler does with a perfect "
           "denoiser: learning is not what decides it. 'differ': the oracle's learned flag is not "
           f"the seeds' majority, or the returns differ by more than 0.1. Dashed: the audit's "
           f"'learned' threshold ({LEARNED_THRESHOLD:g}). Every number: oracle.csv; which "
           f"sampler step makes a difference: oracle_steps.csv. "
           + plots._skipped_text(runs))
    return plots._save(fig, outdir, "oracle", cap, provenance, runs[runs["task"].isin(tasks)])




def check(manifest, tables, figures, reps=DEFAULT_REPS, seed=DEFAULT_SEED, log=print) -> list:
    """oracle.csv and oracle.png: the oracle at the setting of every audited QSM run on a toy
    task of the manifest, beside what those runs learned; oracle_steps.csv: which sampler step
    makes the runs differ from it (steps_table); no_denoiser.csv: every audited QSM-like run
    beside its sampler with no denoiser (no_denoiser_table); returns the written paths."""
    from pathlib import Path

    from analysis.audit.load import load_entries
    from analysis.records.manifest import load_manifest
    from analysis.records.outputs import write_table
    from analysis.records.provenance import Provenance

    manifest = load_manifest(manifest)
    roles = ("benchmark", "audit", *manifest.sweeps)
    entries = [e for role in roles for e in load_entries(manifest, ("policy",), roles=(role,))]
    prov = Provenance.of(manifest, roles, MODULE).with_status({e.path: e.status for e in entries})
    df = oracle_table(entries, reps=reps, seed=seed)
    used = {e.path for e in policy_runs(entries) if e.task in ToyBandit.VARIANTS
            and setting(e) is not None}
    paths = [write_table(Path(tables) / "oracle.csv", df, prov, used, float_format="%.6g")]
    steps = steps_table(entries, reps=reps, seed=seed)
    paths.append(write_table(Path(tables) / "oracle_steps.csv", steps, prov, used,
                             float_format="%.6g"))
    null = no_denoiser_table(entries)
    paths.append(write_table(Path(tables) / "no_denoiser.csv", null, prov,
                             {e.path for e in policy_runs(entries) if setting(e) is not None},
                             float_format="%.6g"))
    runs = pd.DataFrame([{"algo": e.algo, "task": e.task, "seed": e.seed, "path": e.path,
                          "status": e.status, "audited": e.audited}
                         for e in {e.path: e for e in entries}.values()
                         if e.task in ToyBandit.VARIANTS and (e.path in used or not e.audited)],
                        columns=["algo", "task", "seed", "path", "status", "audited"])
    runs["audited"] = runs["audited"].astype(bool)  # an empty column must still select rows
    paths += plot_oracle(df, runs, figures, prov)
    log(f"oracle: {len(df)} settings of {len(used)} runs -> {', '.join(map(str, paths))}")
    return paths


# -- predictions for a configuration's runs ------------------------------------------------------

def qsm_points(config: dict, algo: str = "qsm") -> list[dict]:
    """Every (role, task, setting) of a configuration at which `algo` trains on a toy bandit: the
    audit's tasks at the configuration's settings, and every sweep point; one row per setting."""
    base = {"M_q": 50.0, "T": 5, "score_target": "constant"}
    defaults = {**base, **config.get("hparams", {}).get(algo, {}).get("all", {})}
    rows = []
    audit = config.get("audit", {})
    if algo in audit.get("algos", []):
        for task in audit.get("tasks", []):
            if task in ToyBandit.VARIANTS:
                rows.append({"role": "audit", "task": task, **defaults})
    for sweep in config.get("sweeps") or []:
        if algo not in sweep["algos"]:
            continue
        for task in sweep["tasks"]:
            if task not in ToyBandit.VARIANTS:
                continue
            for value in sweep["values"]:
                rows.append({"role": sweep["name"], "task": task,
                             **defaults, **(sweep.get("hparams") or {}), sweep["hparam"]: value})
    return rows


def predictions(config: dict, states: int = 8, samples: int = 1000) -> pd.DataFrame:
    rows = []
    for row in qsm_points(config):
        point = Point(row["task"], float(row["M_q"]), int(row["T"]), row["score_target"])
        m = measure(point, states, samples)
        rows.append({"role": row["role"], "task": row["task"], "M_q": point.M_q, "T": point.T,
                     "score_target": point.form, **m,
                     "predicted_learned": learned_prediction(m)})
    df = pd.DataFrame(rows)
    frac_cols = sorted((c for c in df.columns if c.startswith("frac_opt")),
                       key=lambda c: int(c[len("frac_opt"):]))
    head = ["role", "task", "M_q", "T", "score_target", *MEASURES]
    return df[head + frac_cols + ["predicted_learned"]]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m analysis.audit.oracle",
                                description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    one = sub.add_parser("point", help="measure the ideal-denoiser sampler at one setting")
    one.add_argument("task", help=f"a toy task: {', '.join(ToyBandit.VARIANTS)}")
    one.add_argument("--M_q", type=float, default=50.0)
    one.add_argument("--T", type=int, default=5)
    one.add_argument("--form", choices=FORMS, default="constant")
    one.add_argument("--temperature", type=float, default=1.0)
    null = sub.add_parser("no-denoiser", help="the shares of one coordinate at -1, inside and "
                                              "at +1 of the sampler with eps_theta = 0")
    null.add_argument("--T", type=int, default=5)
    null.add_argument("--temperature", type=float, default=1.0)
    null.add_argument("--samples", type=int, default=NO_DENOISER_SAMPLES)
    chk = sub.add_parser("check", help="oracle.csv and oracle.png: the oracle beside the QSM toy "
                                       "runs of a run manifest")
    chk.add_argument("--manifest", required=True, help="run_manifest.json")
    chk.add_argument("--tables", required=True, help="folder for oracle.csv")
    chk.add_argument("--figures", required=True, help="folder for oracle.png and .pdf")
    chk.add_argument("--reps", type=int, default=DEFAULT_REPS, help="bootstrap resamples")
    chk.add_argument("--seed", type=int, default=DEFAULT_SEED, help="seed of the bootstrap")
    pred = sub.add_parser("predict", help="predictions for every QSM toy run of a configuration")
    pred.add_argument("--configfile", required=True)
    pred.add_argument("--out", required=True, help="CSV to write")
    for q in (one, pred):
        q.add_argument("--states", type=int, default=8)
        q.add_argument("--samples", type=int, default=1000)
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "point":
            m = measure(Point(args.task, args.M_q, args.T, args.form, args.temperature),
                        args.states, args.samples)
            for k, v in m.items():
                print(f"{k:>22}  {v:.4g}" if isinstance(v, float) else f"{k:>22}  {v}")
            return 0
        if args.command == "no-denoiser":
            lower, inside, upper = no_denoiser_split(args.T, temperature=args.temperature,
                                                     samples=args.samples)
            print(f"T {args.T}, {args.samples} draws: at -1 {lower:.4f}, inside {inside:.4f}, "
                  f"at +1 {upper:.4f}")
            return 0
        if args.command == "check":
            check(args.manifest, args.tables, args.figures, args.reps, args.seed,
                  log=lambda m: print(m, file=sys.stderr))
            return 0
        import yaml
        with open(args.configfile) as f:
            config = yaml.safe_load(f)
        df = predictions(config, args.states, args.samples)
        df.to_csv(args.out, index=False, float_format="%.4f")
        print(f"{len(df)} predictions written to {args.out}")
        return 0
    except OracleError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
