"""A wheel that works anywhere: built from the checkout, installed into a fresh venv outside it, it finds
its packaged models and transcribes the example into the same MIDI file as the checkout does."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from rtamt.api import transcribe
from tests.conftest import setuptools_too_old

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "duet" / "mix.flac"


def run(command: list[str], cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"{command}\n{result.stdout}\n{result.stderr}"
    return result


def test_the_built_wheel_installed_elsewhere_transcribes_like_the_checkout(tmp_path: Path) -> None:
    if reason := setuptools_too_old():
        pytest.skip(reason)
    wheels = tmp_path / "wheels"
    source = tmp_path / "source"  # a copy, so the build leaves nothing in the checkout
    skip = shutil.ignore_patterns(".venv", ".git", "data", "runs", "pack", "build", "*.egg-info",
                                  "__pycache__", ".pytest_cache", ".hypothesis", "checkpoints")  # fmt: skip
    shutil.copytree(ROOT, source, ignore=skip)
    build = run([sys.executable, "-m", "pip", "wheel", ".", "--no-deps", "--no-build-isolation", "-v",
                 "-w", str(wheels)], source)  # fmt: skip
    assert "SetuptoolsDeprecationWarning" not in build.stdout + build.stderr
    (wheel,) = wheels.glob("rtamt_live-*.whl")
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", str(venv)], tmp_path)
    python = venv / "bin" / "python"
    site = Path(run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                    tmp_path).stdout.strip())  # fmt: skip
    # the dependencies come from the test's own environment (no downloads); rtamt itself only from the wheel
    (site / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    install = run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index",
                   str(wheel)], tmp_path)  # fmt: skip
    assert "warning" not in (install.stdout + install.stderr).lower()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "RTAMT_MODELS")}
    where = run([str(python), "-c", "import rtamt, rtamt.models; print(rtamt.__file__); "
                 "print(rtamt.models.models_dir())"], tmp_path, env).stdout.split()  # fmt: skip
    assert all(Path(p).is_relative_to(site) for p in where), where
    out = tmp_path / "duet.mid"
    run([str(venv / "bin" / "rtamt"), "transcribe", str(EXAMPLE), "-o", str(out)], tmp_path, env)
    in_tree = tmp_path / "in-tree.mid"
    transcribe(EXAMPLE).to_midi(in_tree)
    assert out.read_bytes() == in_tree.read_bytes()
    code = f"import rtamt; print(rtamt.transcribe({str(EXAMPLE)!r}))"  # as the README documents
    summary = run([str(python), "-c", code], tmp_path, env)
    found = int(re.search(r"found (\d+) notes", summary.stdout).group(1))
    assert 40 <= found <= 60 and "timbre 2" in summary.stdout  # the duet has 49 notes
    version = run([str(venv / "bin" / "rtamt"), "--version"], tmp_path, env)
    assert version.stdout.startswith("rtamt ")
