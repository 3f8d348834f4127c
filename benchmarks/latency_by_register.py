"""Note-on latency of a backbone's stored live settings on the tracker's validation examples, by octave.

    python benchmarks/latency_by_register.py --model models/backbone.onnx --cache /tmp/pool40.pkl

Replays the first --limit examples of each validation split (``rtamt.training.tune.VALIDATION``) through
the ``tracker_low_latency`` settings and prints, per octave of the reference pitch: matched notes, median
and 95th-percentile stream-time latency, the octave's share of the slowest tenth of all note-ons, and the
share started by sustained energy (decided two or more frames after the frame they are placed at).
Validation data only: it says where a model's late note-ons come from without looking at the dev sets.
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from rtamt.backbone import Backbone
from rtamt.constants import HOP_S
from rtamt.evaluate import matched_note_ons, note_on_latency_s
from rtamt.tracker import NoteTracker, TrackerConfig
from rtamt.training.tune import cached_probabilities, validation_arguments


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    validation_arguments(parser)
    args = parser.parse_args()
    backbone = Backbone(args.model)
    tracker = NoteTracker(TrackerConfig.from_json(backbone.meta["tracker_low_latency"]))
    rows = []
    for probs, reference in cached_probabilities(args.model, args.data, args.limit, args.cache):
        tracker.reset()
        events = tracker.process(probs) + tracker.flush()
        for i, on in matched_note_ons(reference, events):
            latency = note_on_latency_s(on, reference[i][0], backbone.lookahead * HOP_S) * 1000
            rows.append((reference[i][2], on.decided - on.frame, latency))
    table = np.array(rows)
    slowest = table[table[:, 2] >= np.percentile(table[:, 2], 90)]
    report = {"matched_notes": len(table), "median_ms": round(float(np.median(table[:, 2])), 1),
              "p95_ms": round(float(np.percentile(table[:, 2], 95)), 1), "octaves": []}  # fmt: skip
    for low in range(24, 108, 12):
        mine = table[(table[:, 0] >= low) & (table[:, 0] < low + 12)]
        if len(mine):
            report["octaves"].append({
                "midi": [low, low + 11], "notes": len(mine), "median_ms": round(float(np.median(mine[:, 2])), 1),
                "p95_ms": round(float(np.percentile(mine[:, 2], 95)), 1),
                "share_of_slowest_tenth": round(float(np.mean((slowest[:, 0] >= low) & (slowest[:, 0] < low + 12))), 2),
                "sustained_start_share": round(float(np.mean(mine[:, 1] >= 2)), 2)})  # fmt: skip
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
