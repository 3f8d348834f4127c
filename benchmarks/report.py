"""Turn the JSON files under benchmarks/results/ into the tables of benchmarks/RESULTS.md.

    python benchmarks/report.py > benchmarks/RESULTS.md

Every number in RESULTS.md comes from one of these files, and every file from a command in the Makefile's
`bench` target (or the command noted next to its table).
"""

from __future__ import annotations

import json
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def stored_curve() -> dict | None:
    """The latency curve stored in the shipped backbone's metadata, with its provenance."""
    from rtamt.models import models_dir, open_session

    meta = open_session(models_dir() / "backbone.onnx", "backbone")[1]
    if "tracker_curve" not in meta:
        return None
    return {"points": json.loads(meta["tracker_curve"]), "provenance": json.loads(meta["tracker_curve_provenance"])}


def load(name: str) -> dict | None:
    path = RESULTS / name
    return json.loads(path.read_text()) if path.exists() else None


def fmt(value, digits: int = 3) -> str:
    if value is None:
        return "—"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


REAL_SETS = (("bach10", "BACH10 pieces 01–05 (quartet mixes)"), ("maps-dev", "maps-dev (8 real piano pieces)"))


def _sweep_result(name: str) -> dict | None:
    """The latency benchmark's result for the dev set folder called ``name``."""
    sweep = load("latency_sweep.json")
    results = sweep if isinstance(sweep, list) else [sweep] if sweep else []
    return next((r for r in results if Path(r["data"]).name == name), None)


def real_sets() -> list[str]:
    """rtamt on every real dev set beside basic-pitch on the same audio (`make bench-real`)."""
    rows, per_piece = [], []
    for name, title in REAL_SETS:
        accurate, basic, live = load(f"real_{name}.json"), load(f"basic_pitch_{name}.json"), _sweep_result(name)
        if accurate:
            m = accurate["folder"]["mean"]
            rows.append(f"| {title} | rtamt, accurate (files, `rtamt eval`) | {fmt(m['onset_f1'])} | {fmt(m['offset_f1'])} | "
                        f"{fmt(m['frame_f1'])} | {fmt(m.get('channels_mean'), 2)} | {fmt(m.get('latency_ms_median'), 1)} / "
                        f"{fmt(m.get('latency_ms_p95'), 1)} ms |")  # fmt: skip
        if live:
            a, lat = live["stream"]["accuracy"], live["stream"]["latency"]
            rows.append(f"| {title} | rtamt, `--mode low-latency` (live) | {fmt(a['onset_f1'])} | {fmt(a['offset_f1'])} | "
                        f"{fmt(a['frame_f1'])} | {fmt(a['channels_mean'], 2)} | {lat['median_ms']} / {lat['p95_ms']} ms |")  # fmt: skip
        if basic:
            m = basic["mean"]
            rows.append(f"| {title} | basic-pitch 0.4.0 (offline, whole file) | {fmt(m['onset_f1'])} | {fmt(m['offset_f1'])} | "
                        f"{fmt(m['frame_f1'])} | 1 | offline |")  # fmt: skip
        if accurate and "pieces" in accurate["folder"]:
            for piece, r in accurate["folder"]["pieces"].items():
                theirs = (basic or {}).get("pieces", {}).get(piece, {})
                per_piece.append(f"| {name} | {piece} | {fmt(r['onset_f1'])} | {fmt(theirs.get('onset_f1'))} | "
                                 f"{fmt(r['offset_f1'])} | {fmt(theirs.get('offset_f1'))} | {r.get('channels', '—')} |")  # fmt: skip
    if not rows:
        return []
    return ["## Real recordings: every dev set beside basic-pitch (`make bench-real`)", "",
            "`rtamt eval DIR --per-piece --json` (accurate settings, K unknown), the low-latency row from",
            "`rtamt bench latency --data DIR --sweep` (same chain, replayed), basic-pitch from",
            "`python benchmarks/basic_pitch_eval.py DIR --out ...` (scores cached per piece). Mean over pieces;",
            "note-on latency in stream time over matched notes; channels = MIDI channels opened per piece (one",
            "instrument in maps-dev, 4 in BACH10).", "",
            "| data | system | onset F1 | with-offset F1 | frame F1 | channels per piece | note-on latency median / p95 |",
            "|---|---|---|---|---|---|---|", *rows, "",
            "| set | piece | rtamt onset F1 | basic-pitch onset F1 | rtamt with-offset F1 | basic-pitch with-offset F1 | rtamt channels |",
            "|---|---|---|---|---|---|---|", *per_piece, ""]  # fmt: skip


def attack_sentence(result: dict) -> str:
    """The same latency measured from each note's attack in the audio, and where the annotations lie."""
    alignment, attack = result.get("annotation_alignment", {}).get("all"), result["stream"].get("latency_from_attack")
    if not alignment or not attack or not attack.get("matched_notes"):
        return ""
    return (f" Measured from each note's attack in the audio instead (the steepest rise of its harmonic energy, "
            f"`rtamt.attacks`): median {attack['median_ms']} ms, p95 {attack['p95_ms']} ms ({attack['matched_notes']} "
            f"notes; the tail also carries the attack finder's misplaced peaks in dense passages). The attack comes a median {alignment['median_ms']:+} ms after the annotated onset (quartiles "
            f"{alignment['q25_ms']:+} / {alignment['q75_ms']:+} ms; about +4 ms on rendered audio, whose labels are "
            "exact: see the table below).")


def latency_on_recordings() -> list[str]:
    """Note-on latency on the real dev sets, by octave against the two-period floor, and the sweep's curve."""
    from rtamt.constants import JACK_XRUN_MAX_SHARE
    from rtamt.latency import sweep_markdown

    rooms = load("validation_latency_rooms.json")
    out = []
    for name, title in REAL_SETS:
        r = _sweep_result(name)
        if not r:
            continue
        lat, a = r["stream"]["latency"], r["stream"]["accuracy"]
        if not out:
            out += [("## Note-on latency on recordings (`rtamt bench latency --data ../shared/data/bach10 "
                     "../shared/data/maps-dev --sweep --out benchmarks/results/latency_sweep`)"), "",
                    (f"{r['stream']['label'].capitalize()}. Matched notes only (mir_eval, 50 ms). Settings: "
                     f"`--mode {r['mode']}` (tracker and clusterer)."), ""]  # fmt: skip
        out += [(f"**{title}**: {lat['matched_notes']} of {a['notes_ref']} notes matched; median {lat['median_ms']} ms, "
                 f"p95 {lat['p95_ms']} ms, mean {lat['mean_ms']} ms; onset F1 {fmt(a['onset_f1'])}."
                 + attack_sentence(r)), "",
                "| octave (MIDI) | notes | median | p95 | two-period floor (top–bottom note) | median above the floor |",
                "|---|---|---|---|---|---|"]  # fmt: skip
        for row in r["stream"]["by_octave"]:
            out.append(f"| {row['midi'][0]}–{row['midi'][1]} | {row['notes']} | {row['median_ms']} ms | {row['p95_ms']} ms | "
                       f"{row['floor_ms'][0]}–{row['floor_ms'][1]} ms | {row['median_over_floor_ms']} ms |")  # fmt: skip
        out.append("")
    duet = load("latency_duet_jack.json")
    if duet and "latency" in duet.get("jack", {}):
        stream, timed, jack = duet["stream"]["latency"], duet["stream_timed_as_jack"], duet["jack"]["latency"]
        out += [("**Bundled duet, stream time against end to end through JACK** (`rtamt bench latency --data examples "
                 "--jack --out benchmarks/results/latency_duet_jack`, `--mode low-latency`): stream time "
                 f"{stream['median_ms']} / {stream['p95_ms']} ms (median / p95, {stream['matched_notes']} notes matched "
                 f"within 50 ms); timed by emission and matched within {duet['jack']['match_tolerance_ms']:.0f} ms as "
                 f"the JACK path is: {timed['median_ms']} / {timed['p95_ms']} ms ({timed['matched_notes']} notes); "
                 f"through JACK: {jack['median_ms']} / {jack['p95_ms']} ms ({jack['matched_notes']} notes, "
                 f"{duet['jack']['hanging_notes']} hanging, {duet['jack']['audio_skipped_s']} s of audio dropped, "
                 f"{duet['jack']['xruns']} xruns; a JACK figure is not trusted when more than "
                 f"{100 * JACK_XRUN_MAX_SHARE:g}% of its cycles were missed)."), ""]  # fmt: skip
    curve = stored_curve()
    if curve:
        provenance = curve["provenance"]
        out += [(f"**Latency curve stored in the shipped backbone, for `rtamt live --latency-budget`** (metadata "
                 f"`tracker_curve`, chosen by `python -m rtamt.training.tune curve --limits "
                 f"{' '.join(f'{x:g}' for x in provenance['limits_ms'])}` on {provenance['examples']} validation "
                 f"examples of {provenance['split']}, then calibrated by `tune leads`): validation figures, stream "
                 "time, tracker alone (no clusterer window). The last column scores the same settings on the same "
                 "examples heard through rooms (`python -m rtamt.training.tune stored --acoustics 0`)."), "",
                "| limit | note-on latency median / p95 | onset F1 | with-offset F1 | onset rule | in rooms: median / p95, onset F1 |",
                "|---|---|---|---|---|---|"]  # fmt: skip
        in_rooms = {c["label"]: c for c in (rooms or {}).get("curve", [])}
        for c in curve["points"]:
            rule = f"rise, placed {c['tracker']['rise_backdate_frames']} frame(s) earlier" if c["tracker"].get("onset_rise") else "peak"
            room = in_rooms.get(c["label"])
            room_cell = f"{room['latency_ms_median']} / {room['latency_ms_p95']} ms, {fmt(room['onset_f1'])}" if room else "—"
            out.append(f"| {c['label']} | {c['latency_ms_median']} / {c['latency_ms_p95']} ms | {fmt(c['onset_f1'])} | "
                       f"{fmt(c['offset_f1'])} | {rule} | {room_cell} |")  # fmt: skip
        out.append("")
    out += onset_alignment_section(load("onset_alignment.json"))
    out += validation_octaves_section(load("validation_latency_dry.json"), rooms)
    swept = [r for r in (_sweep_result(name) for name, _ in REAL_SETS) if r and "sweep" in r]
    if swept:
        out += ["### Latency–accuracy curve over the tracker's decision settings", "",
                "Every stored setting and its variants (onset rule: peak or rise placed a frame earlier; onset",
                "threshold; frames of sustained energy before a start); the Pareto front (no setting both faster",
                "and more accurate) below, every point in `results/latency_sweep.json`, plot `results/latency_sweep.png`.", ""]  # fmt: skip
        for r in swept:
            out += [sweep_markdown(r, dict(REAL_SETS)[Path(r["data"]).name]), ""]
        out += ["The onset-rise rule (note-on when the onset probability first reaches its threshold, placed a frame",
                "earlier) against the peak rule, all other settings as stored (dev-set measurements, not used to",
                "choose the shipped settings):", "",
                "| data | stored settings | peak rule: median / p95, onset F1 | rise rule: median / p95, onset F1 |",
                "|---|---|---|---|"]  # fmt: skip
        for r in swept:
            for base in (p for p in r["sweep"] if p["label"] in ("accurate", "low-latency")):
                rise = {**base["tracker"], "onset_rise": True, "rise_backdate_frames": 1}
                other = next((p for p in r["sweep"] if p["tracker"] == rise), None)
                if other:
                    out.append(f"| {Path(r['data']).name} | {base['label']} | {base['latency_ms_median']} / "
                               f"{base['latency_ms_p95']} ms, {fmt(base['onset_f1'])} | {other['latency_ms_median']} / "
                               f"{other['latency_ms_p95']} ms, {fmt(other['onset_f1'])} |")  # fmt: skip
        out.append("")
    return out


def onset_alignment_section(alignment: dict | None) -> list[str]:
    """Where the annotated onsets lie against the audio's steepest energy rise (benchmarks/onset_alignment.py)."""
    if not alignment:
        return []
    out = ["**Annotated onsets against the sound** (`python benchmarks/onset_alignment.py ../shared/data/bach10 "
           "../shared/data/maps-dev examples --split data/synth/valid data/synth-live/valid --limit 40 --json "
           "benchmarks/results/onset_alignment.json`; no model): the steepest rise of each note's harmonic energy, "
           "each CQT bin moved back by its group delay, minus the annotated onset. Every latency above is measured "
           "from the annotation; on the rendered splits the labels are exact, so their figure is the method's own "
           "offset. A slow attack (bowed, blown, a soundfont flute) rises most some way into the note; a piano's "
           "hammer gives a sharp rise at the strike.", "",
           "| data | notes | median | quartiles | lowest octave's median | highest octave's median |",
           "|---|---|---|---|---|---|"]  # fmt: skip
    for name, result in alignment.items():
        overall = result["all"]
        octaves = [v for k, v in result.items() if k != "all"]
        low, high = (octaves[0], octaves[-1]) if octaves else (overall, overall)
        out.append(f"| {name} | {overall['notes']} | {overall['median_ms']:+} ms | {overall['q25_ms']:+} / "
                   f"{overall['q75_ms']:+} ms | {low['median_ms']:+} ms | {high['median_ms']:+} ms |")  # fmt: skip
    return out + [""]


def validation_octaves_section(dry: dict | None, rooms: dict | None) -> list[str]:
    """Low-latency note-on latency per octave on the validation examples, dry and heard through rooms, beside
    the recordings' (where the recordings' extra latency comes from)."""
    if not dry or not rooms:
        return []
    columns = [("validation, dry", dry["low-latency"]["by_octave"]), ("validation, rooms", rooms["low-latency"]["by_octave"])]
    for name, title in REAL_SETS:
        r = _sweep_result(name)
        if r:
            columns.append((name, r["stream"]["by_octave"]))
    figures = {title: {tuple(row["midi"]): row for row in rows} for title, rows in columns}
    octaves = sorted({octave for rows in figures.values() for octave in rows})
    out = [("**Validation against the recordings, per octave** (`python -m rtamt.training.tune stored`, and with "
            f"`--acoustics {rooms['acoustics']}`: the {dry['examples']} validation examples heard through a room, "
            "with microphone colour and noise, `rtamt.training.augment.RECORDING`; tracker alone): median note-on "
            "latency of matched notes, low-latency settings (notes in brackets). Onset F1, dry / rooms: "
            f"{fmt(dry['low-latency']['onset_f1'])} / {fmt(rooms['low-latency']['onset_f1'])}; median "
            f"{dry['low-latency']['latency_ms_median']} / {rooms['low-latency']['latency_ms_median']} ms, p95 "
            f"{dry['low-latency']['latency_ms_p95']} / {rooms['low-latency']['latency_ms_p95']} ms. The onset head's "
            "median peak within 4 frames of a true onset, dry / rooms: "
            f"{dry['onset_head']['onset_probability_at_true_onsets']['p50']} / "
            f"{rooms['onset_head']['onset_probability_at_true_onsets']['p50']} (BACH10's in "
            "`results/onset_diagnosis.json`)."), "",
           "| octave (MIDI) | " + " | ".join(title for title, _ in columns) + " |",
           "|---|" + "---|" * len(columns)]  # fmt: skip
    for octave in octaves:
        cells = [f"{rows[octave]['median_ms']} ms ({rows[octave]['notes']})" if octave in rows else "—"
                 for rows in figures.values()]  # fmt: skip
        out.append(f"| {octave[0]}–{octave[1]} | " + " | ".join(cells) + " |")
    return out + [""]


def main() -> None:
    out = ["# Benchmark results", "",
           "Generated by `python benchmarks/report.py` from `benchmarks/results/*.json`; each JSON file is",
           "written by the command named in its section (all of them: `make bench`). Machine: the project's",
           "2-core development machine, shared and noisy: compare ratios within one run.", ""]  # fmt: skip
    cqt, vqt = load("cqt.json"), load("cqt_vqt10.json")
    if cqt:
        out += ["## Front end (`rtamt bench cqt --json`, `--gamma 10`)", "",
                "| setting | per hop median | per hop p99 | hop budget | real-time factor |", "|---|---|---|---|---|"]  # fmt: skip
        for name, r in (("constant Q", cqt), ("variable Q, γ = 10 Hz (shipped models)", vqt)):
            if r:
                out.append(f"| {name} | {r['per_hop_ms_median']:.3f} ms | {r['per_hop_ms_p99']:.3f} ms | "
                           f"{r['hop_budget_ms']} ms | {r['real_time_factor_per_hop']:.4f} |")  # fmt: skip
        out.append("")
        out += ["Group delay of each octave's content behind the frame time (ms, max over the octave):", "",
                "| octave | " + " | ".join(f"{o['f_low_hz']:.0f}–{o['f_high_hz']:.0f} Hz" for o in cqt["octave_latency_ms"]) + " |",
                "|---" * (len(cqt["octave_latency_ms"]) + 1) + "|"]  # fmt: skip
        for name, r in (("constant Q", cqt), ("γ = 10 Hz", vqt)):
            if r:
                out.append(f"| {name} | " + " | ".join(f"{o['latency_ms_max']:.0f}" for o in r["octave_latency_ms"]) + " |")
        out.append("")
    backbone = load("backbone.json")
    if backbone:
        out += ["## Backbone inference (`rtamt bench backbone`)", "",
                f"One frame per call with carried caches, one onnxruntime thread, {backbone['parameters']} parameters: "
                f"median {backbone['per_frame_ms_median']:.3f} ms, p99 {backbone['per_frame_ms_p99']:.3f} ms "
                f"(hop budget {backbone['hop_budget_ms']} ms).", ""]  # fmt: skip
    bach = load("bach10.json")
    synth = load("synthetic_test.json")
    live = load("bach10_low_latency.json")
    if bach or synth:
        out += ["## Note accuracy (`rtamt eval ../shared/data/bach10 --json`, "
                "`... --mode low-latency`, `rtamt eval --synthetic data/synth/test --limit 30 --json`)", "",
                "Streaming chain, mir_eval, onset tolerance 50 ms; latency = stream time at which the note-on leaves",
                "the chain minus the true onset (matched notes).", "",
                "| system | data | onset P | onset R | onset F1 | onset+offset F1 | frame F1 | note-on latency median / p95 |",
                "|---|---|---|---|---|---|---|---|"]  # fmt: skip
        rows = (("rtamt (streaming, causal)", bach, "folder"), ("rtamt, `--mode low-latency` (live settings)", live, "folder"),
                ("rtamt (streaming, causal)", synth, "synthetic"))
        for label, r, key in rows:
            if r and key in r:
                m = r[key]["mean"]
                data = "BACH10 pieces 1–5, mix" if key == "folder" else "synthetic test split (unseen timbres), first 30 examples"
                out.append(f"| {label} | {data} | {fmt(m['onset_p'])} | {fmt(m['onset_r'])} | {fmt(m['onset_f1'])} | "
                           f"{fmt(m['offset_f1'])} | {fmt(m['frame_f1'])} | {fmt(m.get('latency_ms_median'), 1)} / "
                           f"{fmt(m.get('latency_ms_p95'), 1)} ms |")  # fmt: skip
        basic = load("basic_pitch_bach10.json")
        if basic:
            m = basic["mean"]
            out.append(f"| basic-pitch 0.4.0 (offline, whole file) | BACH10 pieces 1–5, mix | {fmt(m['onset_p'])} | "
                       f"{fmt(m['onset_r'])} | {fmt(m['onset_f1'])} | {fmt(m['offset_f1'])} | {fmt(m['frame_f1'])} | offline |")  # fmt: skip
        out += ["| BasicAMT, synthetic training (published, offline) | BACH10 mix | | | 0.752 | | | offline |",
                "| basic-pitch 0.4.0 (design brief's measurement) | BACH10 pieces 1–5 | | | 0.687 | | | offline |", ""]
    if bach and "separation" in bach:
        out += ["## Timbre separation (`rtamt eval ../shared/data/bach10 --separation --json`)", "",
                "| K | mixes | online separation F (K unknown) | channels = K | channels (mean) | refined, K found online (`--refine`) | refined, K given | published (synthetic-trained, K given) |",
                "|---|---|---|---|---|---|---|---|"]  # fmt: skip
        published = {"2": 0.765, "3": 0.669, "4": 0.553}
        for k, r in bach["separation"]["by_size"].items():
            if k.isdigit():
                out.append(f"| {k} | {r['mixes']} | {fmt(r['online_separation_f'])} | {fmt(r['channels_equal_k'], 2)} | "
                           f"{fmt(r['channels_mean'], 2)} | {fmt(r.get('refined_found_separation_f'))} | "
                           f"{fmt(r.get('refined_k_separation_f'))} | {published[k]} |")  # fmt: skip
        out += ["", f"Channels = K on {fmt(bach['separation']['by_size']['channels_equal_k_all'], 3)} of all mixes.", ""]
        if live and "separation" in live:
            by_size = live["separation"]["by_size"]
            out += ["With the live settings (`--mode low-latency`: the live tracker and clusterer), online: separation F "
                    + " / ".join(fmt(by_size[k]["online_separation_f"]) for k in by_size if k.isdigit())
                    + f" for {' / '.join(k for k in by_size if k.isdigit())} instruments, channels = K on "
                    f"{fmt(by_size['channels_equal_k_all'], 3)} of all mixes.", ""]
    shifted = load("bach10_shifts.json")
    if shifted and "separation" in shifted:
        by_size = {k: r for k, r in shifted["separation"]["by_size"].items() if k.isdigit()}
        shifts = list(next(iter(by_size.values()))["online_separation_f_by_shift_ms"])
        out += [f"**The same music, delayed by {' / '.join(shifts)} ms** (`rtamt eval ../shared/data/bach10 --separation "
                f"--shifts {' '.join(shifts)} --json`): a delay under a hop moves every note against the analysis frames, "
                "and nothing else. Online separation F per delay, then pooled:", "",
                "| K | " + " | ".join(f"delayed {shift} ms" for shift in shifts) + " | pooled | refined, K found online, pooled |",
                "|---|" + "---|" * (len(shifts) + 2)]  # fmt: skip
        for k, r in by_size.items():
            per_shift = r["online_separation_f_by_shift_ms"]
            out.append(f"| {k} | " + " | ".join(fmt(per_shift[shift]) for shift in shifts)
                       + f" | {fmt(r['online_separation_f'])} | {fmt(r.get('refined_found_separation_f'))} |")
        out.append("")
    if synth and "separation_f" in synth.get("synthetic", {}).get("mean", {}):
        m = synth["synthetic"]["mean"]
        out += [f"Synthetic test mixes of held-out timbres (2–5 instruments, {m['separation_mixes']} mixes, online, K "
                f"unknown): separation F {fmt(m['separation_f'])}, channels = K on {fmt(m['channels_equal_k'], 2)} of them.", ""]
    methods = load("refine_methods.json")
    if methods:
        out += [f"Choice of the hindsight clustering (`python benchmarks/refine_methods.py --data {' '.join(methods['splits'])}`): "
                f"separation F on {methods['mixes']} validation mixes of held-out timbres, averaged per instrument count.", "",
                "| method | K given | | method | K unknown |", "|---|---|---|---|---|"]  # fmt: skip
        given, unknown = list(methods["k_given"].items()), list(methods["k_unknown"].items())
        for row in range(max(len(given), len(unknown))):
            left = f"{given[row][0]} | {fmt(given[row][1])}" if row < len(given) else " | "
            right = f"{unknown[row][0]} | {fmt(unknown[row][1])}" if row < len(unknown) else " | "
            out.append(f"| {left} | | {right} |")
        out.append("")
    out += real_sets()
    out += latency_on_recordings()
    latency = load("latency.json")
    if latency:
        a = latency["algorithmic"]
        out += ["## Live latency and compute (`rtamt bench latency`)", "",
                f"Stream: {latency['stream_minutes']} min at {latency['device_rate']} Hz in {latency['block_samples']}-sample blocks "
                "(the bundled example looped), both models, low-latency settings. Per hop = the compute of every block "
                "from just after one hop completes up to the block that completes the next.", "",
                "| quantity | value |", "|---|---|",
                f"| input block | {a['input_block_ms']} ms |", f"| resampler delay | {a['resampler_ms']} ms |",
                f"| model look-ahead | {a['model_lookahead_ms']} ms |", f"| note decision (onset peak) | {a['note_decision_ms']} ms |",
                f"| note decision (sustained start) | {a.get('sustained_start_decision_ms', '—')} ms |",
                f"| timbre decision window | {a.get('timbre_decision_ms', '—')} ms |",
                f"| whole chain per hop, median / p99 / max | {latency['per_hop_ms_median']:.3f} / {latency['per_hop_ms_p99']:.3f} / "
                f"{latency['per_hop_ms_max']:.3f} ms |",
                f"| per device block (what the worker does per {latency['block_samples']} samples), median / p99 | "
                f"{latency['per_block_ms_median']:.3f} / {latency['per_block_ms_p99']:.3f} ms |",
                f"| CPU taken by the hypervisor during the run | {100 * latency['cpu_steal_share']:.1f} % |",
                f"| load average (1 min) at the end of the run | {latency.get('load_average_1min_end', '—')} |",
                f"| real-time factor | {latency['real_time_factor']:.4f} |",
                f"| memory at start / end / peak | {latency['rss_mb_start']} / {latency['rss_mb_end']} / {latency['peak_rss_mb']} MB |"]  # fmt: skip
        jack = latency.get("jack_end_to_end", {})
        if "note_on_latency_ms_median" in jack:
            out += [f"| JACK end-to-end note-on latency, median / p95 | {jack['note_on_latency_ms_median']} / "
                    f"{jack['note_on_latency_ms_p95']} ms ({jack['matched_notes']} notes, onset F1 within 200 ms {jack.get('onset_f1_200ms')}) |"]  # fmt: skip
        out += ["", "CQT group delay by octave (ms): " + ", ".join(f"{k}: {v}" for k, v in a["cqt_group_delay_ms_by_octave"].items()), ""]
    out += soak_section(load("soak.json"))
    after = load("soak_12min.json")  # re-run after live stopped keeping every finished note
    if after and "reports" in after:
        out += [f"After `rtamt live` stopped keeping every finished note (it served only `transcribe --refine`), "
                f"`rtamt bench soak --minutes {after['minutes']:g}`: memory {after['rss_mb_start']} -> "
                f"{after['rss_mb_end']} MB ({after['rss_growth_pct']:+.2f} %) over {after['notes_sent']} notes, "
                f"{after['hanging_notes']} hanging, {after['dropped_blocks']} dropped blocks, per-hop p99 per "
                f"interval median {after['per_hop_ms_p99_median']} ms.", ""]  # fmt: skip
    print("\n".join(out))


def soak_section(soak: dict | None) -> list[str]:
    """Lines of the soak table (`rtamt bench soak`), none without a result."""
    if not soak or "reports" not in soak:
        return []
    p99 = ", ".join(f"{r['per_hop_ms_p99']:.1f}" for r in soak["reports"])
    first, last = soak["reports"][0], soak["reports"][-1]
    rss_per_hour = (last["rss_mb"] - first["rss_mb"]) / max(last["time"] - first["time"], 1.0) * 3600
    return ["## Soak: live for a long time (`rtamt bench soak --minutes "
            f"{soak['minutes']:g}`)", "",
            "`rtamt live --input system --midi-api jack` on a dummy-backend JACK server at "
            f"{soak['jack_rate']} Hz, fed "
            f"{soak['input']}, statistics every {soak['stats_every_s']:g} s, stopped by Ctrl-C. Machine: "
            f"{soak['cpus']} CPUs, load average {soak['load_average_1min_end']} at the end, "
            f"{100 * soak['cpu_steal_share']:.1f} % CPU taken by the hypervisor.", "",
            "| quantity | value |", "|---|---|",
            f"| audio processed | {soak['audio_s']} s |",
            f"| notes received / left hanging after Ctrl-C, as received through JACK / as sent | "
            f"{soak['notes_sent']} / {soak['hanging_notes']} / {soak.get('hanging_notes_sent', '—')} |",
            f"| dropped blocks (audio skipped) | {soak['dropped_blocks']} ({soak['skipped_s']} s) |",
            f"| JACK server xrun messages | {soak.get('jack_xrun_messages', '—')} |",
            f"| memory at first report / end (growth) | {soak['rss_mb_start']} / {soak['rss_mb_end']} MB "
            f"({soak['rss_growth_pct']:+.2f} %, {rss_per_hour:+.1f} MB per hour) |",
            f"| per-hop p99 per interval: first / last / median / max | {soak['per_hop_ms_p99_first']} / "
            f"{soak['per_hop_ms_p99_last']} / {soak['per_hop_ms_p99_median']} / "
            f"{soak['per_hop_ms_p99_max']} ms "
            "(budget 11.61 ms) |",
            f"| exit status | {soak['returncode']} ({soak['stopped_by']}) |",
            "", f"Per-hop p99 by interval (ms): {p99}", ""]  # fmt: skip


if __name__ == "__main__":
    main()
