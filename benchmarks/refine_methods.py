"""Which hindsight clustering to use for `--refine`: each method re-clusters the whole-note embeddings of
the validation mixes (held-out timbres, 2-5 instruments), with K given and with K unknown.

    python benchmarks/refine_methods.py --data data/synth/valid data/synth-valid2/valid --limit 200

The online clusterer runs once per mix with the shipped `clusterer` settings; separation F is averaged
over the mixes of each instrument count, then over the counts (as the clusterer search does), and given
per count for K unknown. ``--min-instruments 1`` takes the solos in too (one instrument on one channel);
``--cache F`` keeps the model outputs (the same file as ``tune clusters --cache``). Prints JSON.
Validation splits only: this is how the shipped method was chosen, not how it is reported.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np

from rtamt.cluster import TimbreAssigner, refine, relabel
from rtamt.evaluate import separation_metrics
from rtamt.pipeline import build_transcriber
from rtamt.training.tune import cached_model_frames, mean_over_counts

Notes = list  # (note-on, note-off, whole-note embedding) per note, as TimbreAssigner.completed holds them


def _embeddings(notes: Notes) -> np.ndarray:
    return np.stack([e for _, _, e in notes])


def agglomerative(linkage: str) -> Callable[[Notes, int], list[int]]:
    def cluster(notes: Notes, k: int) -> list[int]:
        from sklearn.cluster import AgglomerativeClustering

        metric = "euclidean" if linkage == "ward" else "cosine"
        return list(AgglomerativeClustering(n_clusters=k, metric=metric, linkage=linkage).fit_predict(_embeddings(notes)))

    return cluster


def spectral(notes: Notes, k: int, sharpness: float = 20.0) -> list[int]:
    """Affinity exp(sharpness * (cosine - 1)) between every pair of notes: memory grows with notes squared."""
    from sklearn.cluster import SpectralClustering

    x = _embeddings(notes)
    affinity = np.exp(sharpness * (x @ x.T - 1.0))
    return list(SpectralClustering(k, affinity="precomputed", random_state=0, assign_labels="cluster_qr").fit_predict(affinity))


def agglomerative_threshold(notes: Notes, distance: float = 0.5) -> list[int]:
    """K unknown: average linkage cut at a cosine distance (the former `--refine` default)."""
    from sklearn.cluster import AgglomerativeClustering

    model = AgglomerativeClustering(n_clusters=None, metric="cosine", linkage="average", distance_threshold=distance)
    return list(model.fit_predict(_embeddings(notes)))


K_GIVEN: dict[str, Callable[[Notes, int], list[int]]] = {
    "k-means (shipped)": refine,
    "spectral": spectral,
    "agglomerative, average linkage (former)": agglomerative("average"),
    "agglomerative, Ward": agglomerative("ward"),
}
# K unknown: each method gets the notes and the number of timbres the online clusterer ended with
K_UNKNOWN: dict[str, Callable[[Notes, int], list[int]]] = {
    "online clusterer (no refinement)": lambda notes, _found: [on.timbre for on, _, _ in notes],
    "k-means, as many timbres as found online (shipped)": refine,
    "agglomerative, distance 0.5 (former)": lambda notes, _found: agglomerative_threshold(notes),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, nargs="+", default=[Path("data/synth/valid")])
    parser.add_argument("--limit", type=int, default=200)
    parser.add_argument("--models", type=Path, default=Path("models"))
    parser.add_argument("--min-instruments", type=int, default=2, help="1 takes the solo examples in too")
    parser.add_argument("--cache", type=Path, default=None, help="pickle file keeping the model outputs")
    args = parser.parse_args()
    transcriber = build_transcriber(model_dir=args.models)
    runs = []
    for frames, reference in cached_model_frames(args.models, args.data, args.limit, args.min_instruments, args.cache):
        assigner = TimbreAssigner(transcriber.tracker.config, transcriber.assigner.config)
        assigner.process(frames)
        assigner.flush()
        runs.append((reference, assigner.completed, assigner.timbres_found))

    def per_mix(labels_of: Callable[[Notes, int], list[int]], k_given: bool) -> list[tuple[int, float]]:
        scores = []
        for reference, notes, found in runs:
            k = len(reference)
            if k_given:
                labels = labels_of(notes, k) if len(notes) > k else list(range(len(notes)))
            else:
                labels = labels_of(notes, found) if len(notes) > 1 else [0] * len(notes)
            scores.append((k, separation_metrics(reference, relabel(notes, labels))["separation_f"]))
        return scores

    def by_count(scores: list[tuple[int, float]]) -> dict[str, float]:
        return {str(k): round(float(np.mean([f for c, f in scores if c == k])), 4) for k in sorted({c for c, _ in scores})}

    unknown = {name: per_mix(method, False) for name, method in K_UNKNOWN.items()}  # each method runs once
    result = {
        "mixes": len(runs),
        "splits": [str(d) for d in args.data],
        "k_given": {name: round(mean_over_counts(per_mix(method, True)), 4) for name, method in K_GIVEN.items()},
        "k_unknown": {name: round(mean_over_counts(scores), 4) for name, scores in unknown.items()},
        "k_unknown_by_count": {name: by_count(scores) for name, scores in unknown.items()},
    }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
