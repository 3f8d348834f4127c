"""How smoothly the live view's page follows the stream: 600 animation frames of the page in headless
Chromium while `rtamt live --input examples/duet/mix.flac --realtime --view 0` plays.

    python benchmarks/view_frames.py > benchmarks/results/view_frames.json

Frame intervals (requestAnimationFrame timestamps) and the roll's scroll step per frame (stream seconds);
a smooth page has steps close to the frame interval and none backwards.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
import time

import numpy as np
from view_overhead import ROOT, chromium_page  # this folder is on sys.path when run as a script

RECORD = """return new Promise(done => { const t = [], shown = [];
  const frame = (now) => { t.push(now); shown.push(view.shown);
    if (t.length < 600) requestAnimationFrame(frame); else done({t, shown}); };
  requestAnimationFrame(frame); });"""


def main() -> None:
    browser = chromium_page("about:blank", tempfile.mkdtemp())
    live = subprocess.Popen(
        [sys.executable, "-m", "rtamt", "live", "--input", str(ROOT / "examples" / "duet" / "mix.flac"), "--realtime",
         "--no-midi", "--quiet", "--view", "0"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        browser.get(re.search(r"http://\S+/", live.stderr.readline()).group(0))
        time.sleep(3)
        record = browser.execute_script(RECORD)
        live.wait(60)
    finally:
        browser.quit()
        if live.poll() is None:
            live.kill()
    times = np.array(record["t"])
    interval = np.diff(times)
    step = np.diff(np.array(record["shown"])) * 1000
    print(json.dumps({
        "frames": len(times), "frames_per_s": round(1000 * len(interval) / (times[-1] - times[0]), 1),
        "interval_ms_median": round(float(np.median(interval)), 2),
        "interval_ms_p99": round(float(np.percentile(interval, 99)), 2),
        "frames_over_25_ms": int((interval > 25).sum()),
        "scroll_step_ms_median": round(float(np.median(step)), 2),
        "scroll_step_ms_p1": round(float(np.percentile(step, 1)), 2),
        "scroll_step_ms_p99": round(float(np.percentile(step, 99)), 2),
        "scroll_steps_backwards": int((step < 0).sum()),
    }, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
