"""Stage: decisions. Restock service calibration: which quantile level of demand realises a service target.

Pure: realised cycle service levels of replays (one curve per volume band and window, over the quantile
levels replayed) in, a `RestockCalibration` out; JSON text in and out. Reads and writes nothing: the
`calibrate-restock` flow (`pipelines/flows/calibrate.py`) runs the replays and stores the artefact, and the
benchmark (`bench/decisions_sim.py --calibrate`) calls the same `fit_restock_calibration`.

Under lost sales, case packs and MOQs the realised cycle service level is far above the quantile level
used, so the plan maps each target to the level that realised it on an earlier window, per volume band
(`RestockConfig.quantile_map`). The realised curve is made monotone (pool-adjacent-violators) and inverted
by linear interpolation (`fit_quantile_map`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

import numpy as np

__all__ = [
    "BANDS",
    "DEFAULT_TARGETS",
    "RestockCalibration",
    "fit_quantile_map",
    "fit_restock_calibration",
    "parse_restock_calibration",
]

BANDS: Final = ("slow", "medium", "fast")
DEFAULT_TARGETS: Final[tuple[float, ...]] = tuple(round(float(x), 3) for x in np.arange(0.5, 0.991, 0.01))
_FORMAT: Final = 1

QuantileMap = dict[str, tuple[tuple[float, ...], tuple[float, ...]]]


@dataclass(frozen=True)
class RestockCalibration:
    """A fitted service calibration and where it comes from.

    Attributes:
        volume_bands: mean weekly units that end the slow and the medium band.
        quantile_map: per band, `(targets, levels)` for `RestockConfig.quantile_map`.
        levels: quantile levels replayed.
        realised_csl: per band, the realised cycle service level at each level (mean over the windows).
        windows: the replay windows (`<start> + <weeks> wk`).
        data_version: version of the data the replays ran on (DVC hash), when known.
        note: how it was made (flow or command).
    """

    volume_bands: tuple[float, float]
    quantile_map: QuantileMap
    levels: tuple[float, ...] = ()
    realised_csl: dict[str, tuple[float, ...]] = field(default_factory=dict)
    windows: tuple[str, ...] = ()
    data_version: str | None = None
    note: str = ""

    def config_fields(self) -> dict[str, object]:
        """The `RestockConfig` fields this calibration sets (`volume_bands`, `quantile_map`)."""
        return {"volume_bands": self.volume_bands, "quantile_map": self.quantile_map}

    def to_json(self) -> str:
        """JSON text (read back by `parse_restock_calibration` and `RestockConfig.from_json`)."""
        out = {
            "format": _FORMAT,
            "volume_bands": list(self.volume_bands),
            "windows": list(self.windows),
            "levels": list(self.levels),
            "realised_csl": {b: list(c) for b, c in self.realised_csl.items()},
            "data_version": self.data_version,
            "note": self.note,
            "quantile_map": {
                b: {"targets": list(t), "levels": list(v)} for b, (t, v) in self.quantile_map.items()
            },
        }
        return json.dumps(out, indent=1) + "\n"


def parse_restock_calibration(text: str, source: str = "calibration") -> RestockCalibration:
    """A calibration from its JSON text.

    Args:
        text: JSON with `volume_bands` and `quantile_map: {band: {targets, levels}}` (other fields optional).
        source: file name for error messages.

    Raises:
        ValueError: when the text is not JSON or a required field is missing.
    """
    try:
        raw = json.loads(text)
        qmap = {b: (tuple(m["targets"]), tuple(m["levels"])) for b, m in raw["quantile_map"].items()}
        bands = tuple(raw["volume_bands"])
    except (KeyError, TypeError, AttributeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{source}: calibration needs volume_bands and quantile_map.<band>.targets/levels "
                         f"({exc!r})") from exc  # fmt: skip
    if len(bands) != 2:
        raise ValueError(f"{source}: volume_bands must hold 2 numbers, got {list(bands)}")
    return RestockCalibration(
        volume_bands=(float(bands[0]), float(bands[1])),
        quantile_map=qmap,
        levels=tuple(raw.get("levels", ())),
        realised_csl={b: tuple(c) for b, c in raw.get("realised_csl", {}).items()},
        windows=tuple(raw.get("windows", ())),
        data_version=raw.get("data_version"),
        note=str(raw.get("note", raw.get("command", ""))),
    )


def fit_quantile_map(
    levels: Sequence[float], realised: Sequence[float], targets: Sequence[float]
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Map service targets to quantile levels from a replay: the level whose realised CSL meets each target.

    The realised CSL per level is made monotone (pool-adjacent-violators), then inverted by linear
    interpolation; targets below the lowest realised CSL get the lowest level tried, above the highest the
    highest level. Duplicate (target, level) pairs are dropped so the result validates in `RestockConfig`.

    Args:
        levels: quantile levels replayed (increasing).
        realised: realised cycle service level at each level.
        targets: service targets to map (increasing, in (0, 1)).

    Returns:
        `(targets, levels)` for `RestockConfig.quantile_map`.
    """
    x, y = np.asarray(levels, float), np.asarray(realised, float)
    if x.size < 2 or x.size != y.size or np.any(np.diff(x) <= 0):
        raise ValueError("levels must be increasing, at least 2, one realised CSL each")
    blocks = [[v, 1.0] for v in y]  # pool adjacent violators: non-decreasing fit of y
    fit: list[list[float]] = []
    for v, n in blocks:
        fit.append([v, n])
        while len(fit) > 1 and fit[-2][0] > fit[-1][0]:
            (a, na), (b, nb) = fit[-2], fit.pop()
            fit[-1] = [(a * na + b * nb) / (na + nb), na + nb]
    iso = np.concatenate([np.full(int(n), v) for v, n in fit])
    out_t: list[float] = []
    out_l: list[float] = []
    for t in sorted(targets):
        if t <= iso[0]:
            lvl = x[0]
        elif t >= iso[-1]:
            lvl = x[-1]
        else:
            k = int(np.searchsorted(iso, t, side="left"))  # iso[k-1] < t <= iso[k]
            lvl = x[k - 1] + (t - iso[k - 1]) / (iso[k] - iso[k - 1]) * (x[k] - x[k - 1])
        lvl = max(lvl, out_l[-1]) if out_l else lvl
        out_t.append(float(t))
        out_l.append(float(lvl))
    return tuple(out_t), tuple(out_l)


def fit_restock_calibration(
    levels: Sequence[float],
    curves: Mapping[str, Sequence[Sequence[float]]],
    *,
    volume_bands: tuple[float, float] = (1.0, 10.0),
    targets: Sequence[float] = DEFAULT_TARGETS,
    windows: Sequence[str] = (),
    data_version: str | None = None,
    note: str = "",
) -> RestockCalibration:
    """The calibration from replayed service levels: mean over windows per band, then `fit_quantile_map`.

    Args:
        levels: quantile levels replayed (increasing).
        curves: per volume band, one realised-CSL curve per window (one value per level; NaN where the
            band had no series). A band whose mean curve is not finite everywhere gets no map.
        volume_bands: the band edges the replays used.
        targets: service targets to map.
        windows: labels of the replay windows.
        data_version: version of the data replayed.
        note: how it was made.

    Returns:
        The calibration (levels rounded to 4 decimals, realised CSL too).
    """
    realised: dict[str, tuple[float, ...]] = {}
    qmap: QuantileMap = {}
    for band, per_window in curves.items():
        if band not in BANDS:
            raise ValueError(f"curves: band {band!r} is not one of {list(BANDS)}")
        values = np.asarray(per_window, float)
        count = (~np.isnan(values)).sum(axis=0)
        total = np.where(np.isnan(values), 0.0, values).sum(
            axis=0
        )  # what np.nanmean does, without its warning
        mean = np.divide(total, count, out=np.full(total.shape, np.nan), where=count > 0).round(4)
        realised[band] = tuple(float(v) for v in mean)
        if np.all(np.isfinite(mean)):
            xs, ys = fit_quantile_map(levels, list(realised[band]), targets)
            qmap[band] = (xs, tuple(round(y, 4) for y in ys))
    return RestockCalibration(
        volume_bands=(float(volume_bands[0]), float(volume_bands[1])),
        quantile_map=qmap,
        levels=tuple(float(x) for x in levels),
        realised_csl=realised,
        windows=tuple(windows),
        data_version=data_version,
        note=note,
    )
