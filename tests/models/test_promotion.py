"""The one promotion rule: candidate vs its baselines, then what ships vs the champion."""

from __future__ import annotations

import pytest

from models.promotion import backtest_system, baseline_system, select_system, versus_champion

BASELINES = ("lane_history", "lane_history_calibrated", "prevalence")


BEST = "lane_history_calibrated"


@pytest.mark.parametrize(
    ("candidate", "tolerance", "ships"),
    [
        pytest.param(0.10, 0.0, "transitcast", id="better ships"),
        pytest.param(0.12, 0.0, BEST, id="worse: the baseline ships"),
        pytest.param(0.11, 0.0, BEST, id="a tie is not a win"),
        pytest.param(0.1095, 0.01, BEST, id="within the tolerance"),
        pytest.param(float("nan"), 0.0, BEST, id="no score"),
    ],
)
def test_a_candidate_ships_only_when_it_beats_its_best_baseline(
    candidate: float, tolerance: float, ships: str
) -> None:
    label = ships if ships == "transitcast" else f"baseline:{ships}"
    scores = {
        "transitcast": candidate,
        "lane_history": 0.13,
        "lane_history_calibrated": 0.11,
        "prevalence": 0.2,
    }
    choice = select_system(scores, "brier", baselines=BASELINES, shippable=BASELINES, tolerance=tolerance)
    assert (choice.system, choice.label) == (ships, label)
    assert choice.beats_baselines and choice.best_baseline == ("lane_history_calibrated", 0.11)
    assert backtest_system(choice.label) == choice.system


def test_without_a_shippable_baseline_the_candidate_stays_flagged() -> None:
    scores = {"lgbm": 1.2, "seasonal_naive": 1.0, "oracle": 0.5}
    choice = select_system(scores, "scaled_pinball", candidate="lgbm", baselines=["seasonal_naive"])
    assert choice.system == "lgbm" and not choice.beats_baselines
    assert "seasonal_naive" in choice.reason and choice.candidate == "lgbm"


def test_higher_is_better_metrics_and_the_baseline_label() -> None:
    choice = select_system({"transitcast": 0.7, "lane": 0.8}, "auc", baselines=["lane"], shippable=["lane"],
                           lower_is_better=False)  # fmt: skip
    assert choice.label == baseline_system("lane") == "baseline:lane"


@pytest.mark.parametrize(
    ("value", "champion", "has_champion", "beats", "promoted"),
    [
        pytest.param(1.0, None, False, True, True, id="first version"),
        pytest.param(1.0, None, False, False, True, id="first version, flagged"),
        pytest.param(0.9, 1.0, True, True, True, id="better"),
        pytest.param(0.995, 1.0, True, True, False, id="not by the margin"),
        pytest.param(0.5, 1.0, True, False, False, id="loses to a baseline: champion stays"),
        pytest.param(1.0, None, True, True, True, id="champion cannot be re-measured"),
    ],
)
def test_versus_champion(
    value: float, champion: float | None, has_champion: bool, beats: bool, promoted: bool
) -> None:
    scores = {"lgbm": value, "naive": value * (1.5 if beats else 0.5)}
    choice = select_system(scores, "pinball", candidate="lgbm", baselines=["naive"])
    decision = versus_champion(choice, champion, has_champion=has_champion, min_improvement=0.01)
    assert decision.promoted is promoted, decision.reason
