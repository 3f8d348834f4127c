"""The live worker's per-hop compute with the live view served and watched, against without (issue 19).

    python benchmarks/view_overhead.py [--copies 2] [--repeats 2] > benchmarks/results/view_overhead.json

Plays the duet (repeated ``--copies`` times) through `rtamt live --realtime --no-midi` in these set-ups,
taken in turn ``--repeats`` times so that the machine's drift spreads over all of them: no view; `--view`
with a websocket reader (the server's own cost); `--view` with the page open in headless Chromium (adds
the browser's drawing, on the same CPUs); and the first and last again with the worker at normal
scheduling (`--priority 0`; by default it asks for SCHED_FIFO, which these runs get where permitted).
Reports the worker's per-hop median and p99 from rtamt's final summary, the scheduling it got, drops,
the notes the page counted against the notes sent, and the browser's CPU while it drew.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parent.parent
CHROME_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--window-size=1280,720"]  # fmt: skip


def websocket_reader(url: str, result: dict) -> threading.Thread:
    """Reads the view's stream in a thread until it ends; counts the note-ons it was sent."""

    async def read() -> None:
        import aiohttp

        async with aiohttp.ClientSession() as http, http.ws_connect(url + "events") as ws:
            async for message in ws:
                data = json.loads(message.data)
                if data["type"] == "hello":
                    result["page_notes"] = sum(data["counts"].values())
                elif data["type"] == "tick":
                    result["page_notes"] += sum(1 for e in data["events"] if e[0])

    thread = threading.Thread(target=lambda: asyncio.run(read()), daemon=True)
    thread.start()
    return thread


def chromium_page(url: str, profile: str) -> object:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for flag in [*CHROME_FLAGS, f"--user-data-dir={profile}"]:
        options.add_argument(flag)
    options.binary_location = shutil.which("chromium")
    browser = webdriver.Chrome(options=options, service=Service(shutil.which("chromedriver")))
    browser.get(url)
    return browser


def browser_cpu_s() -> float:
    """CPU seconds used so far by every Chromium process (and chromedriver), from /proc."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and "chrom" in (entry / "comm").read_text():
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except OSError:
            continue
    return total


# set-up -> (what watches the view: None, "reader" or "chromium"; extra `rtamt live` options)
SETUPS: dict[str, tuple[str | None, list[str]]] = {
    "no view": (None, []),
    "view + websocket reader": ("reader", []),
    "view + Chromium page": ("chromium", []),
    "no view, normal scheduling": (None, ["--priority", "0"]),
    "view + Chromium page, normal scheduling": ("chromium", ["--priority", "0"]),
}


def run(audio: Path, setup: str) -> dict:
    watcher, options = SETUPS[setup]
    # the browser starts (a few CPU-seconds) before the stream does, so only its page's steady cost counts
    browser = chromium_page("about:blank", tempfile.mkdtemp()) if watcher == "chromium" else None
    command = [
        sys.executable,
        "-m",
        "rtamt",
        "live",
        "--input",
        str(audio),
        "--realtime",
        "--no-midi",
        "--quiet",
        *options,
    ]
    if watcher is not None:
        command += ["--view", "0"]
    live = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    result: dict = {"setup": setup}
    reader = None
    try:
        if watcher is not None:
            line = live.stderr.readline()
            url = re.search(r"http://\S+/", line).group(0)
            if watcher == "reader":
                reader = websocket_reader(url, result)
            else:
                browser.get(url)
        started, cpu_before = time.monotonic(), browser_cpu_s()
        _, err = live.communicate(timeout=600)
        if browser is not None:
            result["browser_cpu_percent"] = round(
                100 * (browser_cpu_s() - cpu_before) / (time.monotonic() - started), 1
            )
        if reader is not None:
            reader.join(5)
        if browser is not None:
            time.sleep(1.0)
            result["page_notes"] = int(browser.find_element("id", "notes-total").text)
    finally:
        if browser is not None:
            browser.quit()
        if live.poll() is None:
            live.kill()
    summary = json.loads(err.strip().splitlines()[-1])
    result.update(
        {k: summary[k] for k in ("per_hop_ms_median", "per_hop_ms_p99", "dropped_blocks", "notes", "audio_s",
                                  "worker_scheduling")}
    )
    print(json.dumps(result), file=sys.stderr)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=2, help="the duet this many times in a row")
    parser.add_argument("--repeats", type=int, default=2, help="runs of each set-up")
    args = parser.parse_args()
    browser = shutil.which("chromium") and shutil.which("chromedriver")
    setups = [name for name, (watcher, _) in SETUPS.items() if watcher != "chromium" or browser]
    audio, rate = sf.read(ROOT / "examples" / "duet" / "mix.flac", dtype="float32")
    with tempfile.TemporaryDirectory() as folder:
        long = Path(folder) / "duet-long.flac"
        sf.write(long, np.tile(audio, args.copies), rate)
        runs = [run(long, setup) for _ in range(args.repeats) for setup in setups]
    by_setup = {}
    for setup in setups:
        mine = [r for r in runs if r["setup"] == setup]
        by_setup[setup] = {
            "per_hop_ms_median": round(float(np.median([r["per_hop_ms_median"] for r in mine])), 3),
            "per_hop_ms_p99": round(float(np.median([r["per_hop_ms_p99"] for r in mine])), 3),
            "dropped_blocks": sum(r["dropped_blocks"] for r in mine),
            "page_counted_every_note": all(r.get("page_notes", r["notes"]) == r["notes"] for r in mine),
            "worker_scheduling": sorted({r["worker_scheduling"] for r in mine}),
        }
        if SETUPS[setup][0] == "chromium":
            by_setup[setup]["browser_cpu_percent"] = round(
                float(np.median([r["browser_cpu_percent"] for r in mine])), 1
            )
    for setup in setups:  # against no view at the same scheduling
        base = "no view, normal scheduling" if "--priority" in SETUPS[setup][1] else "no view"
        if setup != base:
            by_setup[setup]["p99_vs_no_view"] = round(by_setup[setup]["per_hop_ms_p99"] / by_setup[base]["per_hop_ms_p99"], 3)
    print(json.dumps({"audio_s": runs[0]["audio_s"], "repeats": args.repeats, "cpus": os.cpu_count(),
                      "load_average_at_end": os.getloadavg(), "by_setup": by_setup, "runs": runs}, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
