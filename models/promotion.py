"""Stage: models (promotion). The one promotion rule of every model family, as pure functions.

Reads and writes nothing: backtest scores in, decisions out. The MLflow side (aliases, tags, re-measuring a
champion) is `pipelines.adapters.mlflow.Tracker.promote_if_better`; shipments and demand both call it.

The rule, in two steps, on ONE backtest (same data, same folds, same rows for every system):

1. `select_system`, candidate vs its baselines: the candidate ships when its gate metric beats the best
   baseline's by more than `tolerance` (relative). Otherwise the best shippable baseline ships in its place
   (for shipments each baseline is a model, `models.lgbm.LGBMModel.fit_baseline`), visibly
   (``system: "baseline:<name>"``). A family without shippable baselines (demand) keeps its candidate,
   flagged ``beats_baselines=False``.
2. `versus_champion`, what ships vs the registered champion re-measured on the same backtest: promoted when
   better by more than `min_improvement` (relative). The first version becomes champion; a version that
   loses to a baseline with nothing to fall back on never replaces a champion; a champion that cannot be
   re-measured on this backtest (its logged config no longer runs) is replaced.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass

__all__ = [
    "CANDIDATE",
    "ChampionDecision",
    "SystemChoice",
    "backtest_system",
    "baseline_system",
    "select_system",
    "versus_champion",
]

CANDIDATE = "transitcast"


def baseline_system(name: str) -> str:
    """The shipped `system` label of a baseline (``"baseline:lane_history_calibrated"``)."""
    return f"baseline:{name}"


def backtest_system(label: str) -> str:
    """Inverse of `baseline_system` (a candidate's label is its own backtest system)."""
    return label.removeprefix("baseline:")


@dataclass(frozen=True)
class SystemChoice:
    """Step 1: which system ships.

    Attributes:
        system: the backtest system that ships (the candidate or a baseline).
        label: the ``system`` recorded on the model (``transitcast`` or ``baseline:<name>``).
        metric: the gate metric.
        value: the shipped system's gate metric.
        candidate_value: the candidate's (None when it could not be fitted or scored).
        best_baseline: the best baseline's name and value (None without baselines).
        beats_baselines: whether what ships is at least as good as every baseline.
        reason: one sentence for logs, tags and reports.
        candidate: the candidate's system name.
    """

    system: str
    label: str
    metric: str
    value: float
    candidate_value: float | None
    best_baseline: tuple[str, float] | None
    beats_baselines: bool
    reason: str
    candidate: str = CANDIDATE


def _better(a: float, b: float, lower_is_better: bool, margin: float) -> bool:
    """``a`` beats ``b`` by more than the relative `margin`."""
    gain = (b - a) if lower_is_better else (a - b)
    return gain > abs(b) * margin


def select_system(
    scores: Mapping[str, float],
    metric: str,
    *,
    candidate: str = CANDIDATE,
    baselines: Collection[str],
    shippable: Collection[str] = (),
    tolerance: float = 0.0,
    lower_is_better: bool = True,
) -> SystemChoice:
    """Step 1 of the rule (module docstring).

    Args:
        scores: gate metric per system, all measured on the same backtest.
        metric: the gate metric's name.
        candidate: the candidate system.
        baselines: the systems the candidate must beat.
        shippable: the baselines that can ship instead (models with the candidate's interface).
        tolerance: relative margin the candidate needs over the best baseline.
        lower_is_better: direction of the metric.
    """
    finite = {s: v for s, v in scores.items() if v is not None and math.isfinite(v)}
    known = {s: finite[s] for s in baselines if s in finite}
    pick = min if lower_is_better else max
    best = pick(known.items(), key=lambda kv: kv[1]) if known else None
    own = finite.get(candidate)

    def choose(system: str, value: float, beats: bool, reason: str) -> SystemChoice:
        label = candidate if system == candidate else baseline_system(system)
        return SystemChoice(system, label, metric, value, own, best, beats, reason, candidate)

    if best is None:
        if own is None:
            raise ValueError(f"no {metric} for {candidate!r} nor any baseline: nothing to choose from")
        return choose(candidate, own, True, f"{metric} {own:.5g}, no baseline")
    name, value = best
    if own is not None and _better(own, value, lower_is_better, tolerance):
        return choose(
            candidate, own, True, f"{metric} {own:.5g} beats the best baseline {name} ({value:.5g})"
        )
    lost = "no candidate score" if own is None else f"{metric} {own:.5g} does not beat {name} ({value:.5g})"
    ship = {s: known[s] for s in shippable if s in known}
    if not ship:
        if own is None:
            raise ValueError(f"{candidate!r} has no {metric} and no baseline can ship in its place")
        return choose(candidate, own, False, f"{lost}; nothing to fall back on")
    fallback, fallback_value = pick(ship.items(), key=lambda kv: kv[1])
    beats = not _better(value, fallback_value, lower_is_better, 0.0)
    return choose(fallback, fallback_value, beats, f"{lost}: the baseline {fallback} ships instead")


@dataclass(frozen=True)
class ChampionDecision:
    """Step 2: does the shipped version replace the champion."""

    promoted: bool
    challenger_value: float
    champion_value: float | None
    reason: str


def versus_champion(
    choice: SystemChoice,
    champion_value: float | None,
    *,
    has_champion: bool,
    min_improvement: float = 0.0,
    lower_is_better: bool = True,
) -> ChampionDecision:
    """Step 2 of the rule (module docstring).

    Args:
        choice: step 1's outcome for the new version.
        champion_value: the champion's gate metric re-measured on the SAME backtest (None: none or unknown).
        has_champion: whether a champion exists.
        min_improvement: relative improvement needed over the champion.
        lower_is_better: direction of the metric.
    """
    value, metric = choice.value, choice.metric
    warning = "" if choice.beats_baselines else f" (warning: {choice.reason})"
    if not has_champion:
        return ChampionDecision(True, value, None, f"no champion yet{warning}")
    if not choice.beats_baselines:
        return ChampionDecision(False, value, champion_value, f"the champion stays: {choice.reason}")
    if champion_value is None or not math.isfinite(champion_value):
        reason = (
            "the champion could not be re-measured on this backtest (its config no longer runs): replaced"
        )
        return ChampionDecision(True, value, None, reason)
    promoted = _better(value, champion_value, lower_is_better, min_improvement)
    margin = f" by more than {min_improvement:.1%}" if min_improvement else ""
    verdict = "better" if promoted else "not better"
    reason = f"{metric} {value:.5g} vs champion {champion_value:.5g}: {verdict}{margin}"
    return ChampionDecision(promoted, value, champion_value, reason)
