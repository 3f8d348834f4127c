"""The latency-accuracy curve stored with a model, and the choice of tracker settings under a note-on
latency budget (``rtamt live --latency-budget MS``).

The backbone's metadata may hold ``tracker_curve``: a list of tracker settings, each with the median and
95th-percentile note-on latency and the onset F1 it scored on the validation split (written by
``python -m rtamt.training.tune curve ... --write``). The named settings ``tracker`` (accurate) and
``tracker_low_latency`` are points of the curve too, with the figures of their ``_provenance``; a model
without a stored curve has just those two points.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from rtamt.tracker import TrackerConfig

CURVE_KEY = "tracker_curve"
NAMED = (("accurate", "tracker"), ("low-latency", "tracker_low_latency"))


class BudgetError(ValueError):
    """No stored setting fits the latency budget asked for."""


@dataclass(frozen=True)
class CurvePoint:
    """One stored tracker setting and its validation figures (None where not recorded)."""

    label: str
    tracker: TrackerConfig
    latency_ms_median: float | None
    latency_ms_p95: float | None
    onset_f1: float | None


def stored_curve(meta: dict) -> list[CurvePoint]:
    """The named settings and every point of ``tracker_curve``, in that order, duplicates dropped."""
    points: list[CurvePoint] = []
    for label, key in NAMED:
        if key in meta:
            figures = json.loads(meta.get(f"{key}_provenance", "{}"))
            points.append(CurvePoint(label, TrackerConfig.from_json(meta[key]), figures.get("latency_ms_median"),
                                     figures.get("latency_ms_p95"), figures.get("onset_f1")))  # fmt: skip
    for entry in json.loads(meta.get(CURVE_KEY, "[]")):
        tracker = TrackerConfig.from_json(json.dumps(entry["tracker"]))
        if all(point.tracker != tracker for point in points):
            points.append(CurvePoint(entry.get("label", f"curve {len(points)}"), tracker, entry.get("latency_ms_median"),
                                     entry.get("latency_ms_p95"), entry.get("onset_f1")))  # fmt: skip
    return points


def pick(curve: list[CurvePoint], budget_ms: float) -> CurvePoint:
    """The most accurate point whose validation median note-on latency fits ``budget_ms`` (ties: the
    faster, then the first stored)."""
    known = [p for p in curve if p.latency_ms_median is not None and p.onset_f1 is not None]
    if not known:
        raise BudgetError("this model stores no validation latency figures: use --mode instead of --latency-budget")
    fits = [p for p in known if p.latency_ms_median <= budget_ms]
    if not fits:
        fastest = min(known, key=lambda p: p.latency_ms_median)
        raise BudgetError(f"no stored tracker setting fits a {budget_ms:g} ms note-on latency budget: the fastest "
                          f"({fastest.label}) has a validation median of {fastest.latency_ms_median:g} ms")  # fmt: skip
    return max(fits, key=lambda p: (p.onset_f1, -p.latency_ms_median))


def named_point(curve: list[CurvePoint], mode: str) -> CurvePoint | None:
    """The point a ``--mode`` uses (low-latency falls back to accurate, as the pipeline does)."""
    by_label = {p.label: p for p in curve}
    return by_label.get(mode) or by_label.get("accurate")


def live_settings(model_dir, mode: str, budget_ms: float | None) -> CurvePoint | None:
    """The stored point ``rtamt live`` runs: under ``budget_ms`` when given, else ``mode``'s named point
    (None when the model has no backbone or no stored settings: the tracker's defaults run)."""
    from pathlib import Path

    from rtamt.models import open_session

    path = Path(model_dir) / "backbone.onnx"
    if not path.exists():
        return None
    curve = stored_curve(open_session(path, "backbone")[1])
    return pick(curve, budget_ms) if budget_ms is not None else named_point(curve, mode)
