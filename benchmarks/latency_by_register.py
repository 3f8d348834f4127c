"""Note-on latency of a backbone's stored live settings on the tracker's validation examples, by octave.

    python benchmarks/latency_by_register.py --model models/backbone.onnx --cache /tmp/pool40.pkl

Replays the first --limit examples of each validation split (``rtamt.training.tune.VALIDATION``) through
the ``tracker_low_latency`` settings and prints, per octave of the reference pitch, what
``rtamt.latency.by_octave`` gives (matched notes, median and 95th-percentile stream-time latency, the
two-period floor) plus the octave's share of the slowest tenth of all note-ons and the share started by
sustained energy (decided two or more frames after the frame they are placed at).
Validation data only: it says where a model's late note-ons come from without looking at the dev sets.
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from rtamt.backbone import Backbone
from rtamt.constants import HOP_S
from rtamt.evaluate import matched_note_ons, note_on_latency_s
from rtamt.latency import by_octave, distribution
from rtamt.tracker import NoteTracker, TrackerConfig
from rtamt.training.tune import cached_probabilities, validation_arguments


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    validation_arguments(parser)
    args = parser.parse_args()
    backbone = Backbone(args.model)
    tracker = NoteTracker(TrackerConfig.from_json(backbone.meta["tracker_low_latency"]))
    latency_s, pitches, delays = [], [], []
    for probs, reference in cached_probabilities(args.model, args.data, args.limit, args.cache):
        tracker.reset()
        events = tracker.process(probs) + tracker.flush()
        for i, on in matched_note_ons(reference, events):
            latency_s.append(note_on_latency_s(on, reference[i][0], backbone.lookahead * HOP_S))
            pitches.append(reference[i][2])
            delays.append(on.decided - on.frame)
    latency, pitch, delay = np.array(latency_s), np.array(pitches, dtype=int), np.array(delays)
    slowest = latency >= np.percentile(latency, 90)
    octaves = by_octave(latency, pitch)
    for row in octaves:  # what by_octave gives, plus where the slowest note-ons are and which rule started them
        mine = (pitch >= row["midi"][0]) & (pitch <= row["midi"][1])
        row["share_of_slowest_tenth"] = round(float(np.mean(mine[slowest])), 2)
        row["sustained_start_share"] = round(float(np.mean(delay[mine] >= 2)), 2)
    overall = distribution(latency)
    report = {key: overall[key] for key in ("matched_notes", "median_ms", "p95_ms")} | {"octaves": octaves}
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
