"""Plugins by name: the example plugin package (examples/rtamt-print-sink), installed, is listed by
`rtamt plugins`, its sink receives every note of a live run and its stage goes into the chain from a
rig file."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from rtamt.chain import Chain
from rtamt.cli import EXIT_USAGE, main
from rtamt.plugins import PluginError
from rtamt.rig import load_rig
from tests.conftest import setuptools_too_old

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "duet" / "mix.flac"
PLUGIN = ROOT / "examples" / "rtamt-print-sink"


@pytest.fixture(scope="module")
def plugin_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The environment of a Python where the example plugin package is installed (pip --target)."""
    if reason := setuptools_too_old():
        pytest.skip(reason)
    tmp = tmp_path_factory.mktemp("plugin")
    source = tmp / "source"
    shutil.copytree(PLUGIN, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    target = tmp / "site"
    install = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation",
                              "--no-index", "--target", str(target), str(source)],
                             capture_output=True, text=True, timeout=300)  # fmt: skip
    assert install.returncode == 0, install.stderr
    path = [str(target), *filter(None, [os.environ.get("PYTHONPATH")])]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(path)}


def rtamt(args: list[str], env: dict[str, str], cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rtamt", *args], capture_output=True, text=True, env=env,
                          cwd=cwd, timeout=300)  # fmt: skip


def test_rtamt_plugins_lists_the_installed_package(plugin_env: dict[str, str]) -> None:
    run = rtamt(["plugins"], plugin_env)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert any(line.split()[:2] == ["print", "rtamt-print-sink"] for line in lines), run.stdout
    assert any(line.split()[:2] == ["level-gate", "rtamt-print-sink"] for line in lines), run.stdout
    assert any(line.split()[:3] == ["osc", "built", "in"] for line in lines)


def test_the_plugin_sink_named_on_the_command_line_receives_every_note(plugin_env: dict[str, str]) -> None:
    run = rtamt(["live", "--input", str(EXAMPLE), "--quiet", "--sink", "print", "--sink", "jsonl"],
                plugin_env)  # fmt: skip
    assert run.returncode == 0, run.stderr
    printed = [line.split() for line in run.stdout.splitlines() if line.startswith("note ")]
    logged = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
    summary = json.loads(run.stderr.strip().splitlines()[-1])
    assert summary["notes"] >= 40
    assert sum(p[1] == "on" for p in printed) == summary["notes"] and len(printed) == len(logged)
    assert [(p[1] == "on", p[2], p[3]) for p in printed] == [
        (r["on"], f"channel={r['channel']}", f"pitch={r['pitch']}") for r in logged
    ]


def test_a_rig_file_inserts_a_plugin_stage_and_opens_its_sinks(plugin_env: dict[str, str],
                                                               tmp_path: Path) -> None:  # fmt: skip
    run = rtamt(["live", "--input", str(EXAMPLE), "--quiet", "--config", str(PLUGIN / "rig.toml")],
                plugin_env, cwd=tmp_path)  # fmt: skip
    assert run.returncode == 0, run.stderr
    ons = [line for line in run.stdout.splitlines() if line.startswith("note on")]
    assert len(ons) == json.loads(run.stderr.strip().splitlines()[-1])["notes"] >= 40
    assert (tmp_path / "live.mid").exists()  # the rig's midi-file sink
    closed = tmp_path / "closed.toml"  # the same rig with the gate shut: nothing reaches the chain
    closed.write_text((PLUGIN / "rig.toml").read_text().replace("threshold_db = -70", "threshold_db = 0"))
    run = rtamt(["transcribe", str(EXAMPLE), "-o", str(tmp_path / "gated.mid"), "--config", str(closed)],
                plugin_env)  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert "found no notes" in run.stdout


def test_rig_settings_are_defaults_that_the_command_line_overrides(tmp_path: Path) -> None:
    rig = tmp_path / "rig.toml"
    rig.write_text('mode = "low-latency"\ninstruments = 3\nmodels = "elsewhere"\n'
                   '[[stages]]\nname = "energy-norm"\nafter = "cqt"\nattack_s = 0.1\n')  # fmt: skip
    loaded = load_rig(rig)
    elsewhere = (tmp_path / "elsewhere").resolve()  # relative to the rig file
    assert loaded.settings == {"mode": "low-latency", "instruments": 3, "models": elsewhere}
    from rtamt.cqt import SlidingCQT
    from rtamt.resample import Resampler

    chain = Chain([Resampler(), SlidingCQT()])
    loaded.insert_stages(chain)
    assert [s.name for s in chain] == ["resample", "cqt", "energy-norm"] and chain[2].attack_s == 0.1
    from rtamt.cli import build_parser, parse_args

    args = parse_args(build_parser(), ["transcribe", "x.flac", "-o", "x.mid", "--config", str(rig),
                                       "--mode", "accurate"])  # fmt: skip
    assert (args.mode, args.instruments, args.models) == ("accurate", 3, elsewhere)


@pytest.mark.parametrize("text, message", [
    ("colour = 1\n", "unknown keys"), ("[[sinks]]\nport = 1\n", "needs a name"),
    ('mode = "fast"\n', "mode must be"), ("mode = \n", "not valid TOML"),
])  # fmt: skip
def test_a_bad_rig_file_is_a_clear_error(tmp_path: Path, text: str, message: str,
                                         capsys: pytest.CaptureFixture) -> None:  # fmt: skip
    rig = tmp_path / "rig.toml"
    rig.write_text(text)
    with pytest.raises(PluginError, match=message):
        load_rig(rig)
    assert main(["live", "--input", str(EXAMPLE), "--config", str(rig)]) == EXIT_USAGE
    assert message in capsys.readouterr().err


def test_rig_tracker_and_clusterer_settings_override_the_model_files(tmp_path: Path) -> None:
    from rtamt.cli import build_parser, build_rig_transcriber, parse_args
    from rtamt.pipeline import build_transcriber

    rig = tmp_path / "rig.toml"
    rig.write_text("[tracker]\nonset_threshold = 0.9\n[clusterer]\njoin_threshold = 0.5\n")
    args = parse_args(build_parser(), ["transcribe", "x.flac", "-o", "x.mid", "--config", str(rig)])
    shipped = build_transcriber()
    transcriber = build_rig_transcriber(args)
    assert transcriber.tracker.config.onset_threshold == 0.9 and transcriber.assigner.config.join_threshold == 0.5
    assert transcriber.tracker.config.sustain_frames == shipped.tracker.config.sustain_frames
    assert transcriber.assigner.config.evidence_min_frames == shipped.assigner.config.evidence_min_frames
    rig.write_text("[tracker]\nonset_treshold = 0.9\n")
    args = parse_args(build_parser(), ["transcribe", "x.flac", "-o", "x.mid", "--config", str(rig)])
    with pytest.raises(PluginError, match="unknown settings \\['onset_treshold'\\]"):
        build_rig_transcriber(args)
