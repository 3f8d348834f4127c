"""Hanging notes when the machine is overloaded: the JACK soak repeated while busy loops take the CPUs.

    python benchmarks/soak_under_load.py [--runs 10] [--busy 8] [--minutes 0.25]

Each run is ``rtamt.soak.bench_soak`` (``rtamt live`` on a dummy-backend JACK graph fed the bundled example,
stopped with Ctrl-C) while ``--busy`` processes spin. An overloaded JACK graph overruns cycles and drops
their MIDI; a run counts the notes a listening synth would be left with (``hanging_notes``, All Notes Off
honoured) and those rtamt itself reports sending without a note-off (``hanging_notes_sent``). One JSON line
per run, then a summary line.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing

from rtamt.soak import bench_soak

FIELDS = ("returncode", "notes_sent", "hanging_notes", "hanging_notes_sent", "jack_xrun_messages",
          "load_average_1min_end")  # fmt: skip


def spin(stop: multiprocessing.synchronize.Event) -> None:
    while not stop.is_set():
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--busy", type=int, default=8, help="busy-loop processes while each run plays")
    parser.add_argument("--minutes", type=float, default=0.25)
    args = parser.parse_args()
    hanging_runs = 0
    for _ in range(args.runs):
        stop = multiprocessing.Event()
        spinners = [multiprocessing.Process(target=spin, args=(stop,), daemon=True) for _ in range(args.busy)]
        for process in spinners:
            process.start()
        try:
            result = bench_soak(minutes=args.minutes, stats_every_s=4.0)
        finally:
            stop.set()
            for process in spinners:
                process.join()
        if "skipped" in result:
            print(json.dumps(result))
            return
        hanging_runs += int(result["hanging_notes"] > 0 or result["hanging_notes_sent"] > 0)
        print(json.dumps({key: result.get(key) for key in FIELDS}), flush=True)
    print(json.dumps({"runs": args.runs, "busy": args.busy, "runs_with_hanging_notes": hanging_runs}))


if __name__ == "__main__":
    main()
