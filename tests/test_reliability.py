"""Bad arguments and outputs: a clear message, a non-zero exit, and no file left behind or changed."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from contextlib import contextmanager
from pathlib import Path

import pytest

from rtamt.cli import EXIT_OUTPUT, main
from rtamt.outputs import OutputError, open_output

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "duet"


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def run_cli(argv: list[str], capsys: pytest.CaptureFixture) -> tuple[int, str]:
    """Exit status and stderr of ``rtamt ARGV`` run in this process (argparse errors exit via SystemExit)."""
    try:
        code = main(argv)
    except SystemExit as exit_info:
        code = exit_info.code
    return code, capsys.readouterr().err


@pytest.fixture
def recording(tmp_path: Path) -> Path:
    """A copy of the example recording: the user's file that must never change."""
    path = tmp_path / "take1.flac"
    shutil.copy(EXAMPLE / "mix.flac", path)
    return path


@contextmanager
def tmpfs(where: Path, options: str):
    """A small tmpfs mounted at ``where`` (root only; skips the test where mounting is not allowed)."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root")
    where.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


@pytest.mark.parametrize(
    "value, reason",
    [
        ("-3", "must be 1 to 15"),
        ("0", "must be 1 to 15"),
        ("16", "must be 1 to 15"),
        ("100", "must be 1 to 15"),
        ("two", "not a whole number"),
    ],
)
@pytest.mark.parametrize("command", ["transcribe", "live"])
def test_invalid_instruments_are_refused_before_any_work(
    command: str, value: str, reason: str, tmp_path: Path, recording: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "out.mid"
    argv = (
        ["transcribe", str(recording), "-o", str(out)] if command == "transcribe" else ["live", "--no-midi"]
    )
    code, err = run_cli([*argv, "--instruments", value, "--exact"], capsys)
    assert code == 2
    assert "--instruments" in err and reason in err
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["take1.flac"]


@pytest.mark.parametrize("value, reason", [("-1", "must be 0"), ("100", "to 99"), ("high", "not a whole number")])
def test_invalid_worker_priority_is_refused(value: str, reason: str, capsys: pytest.CaptureFixture) -> None:
    code, err = run_cli(["live", "--no-midi", "--priority", value], capsys)
    assert code == 2
    assert "--priority" in err and reason in err


def test_exact_without_instruments_is_refused(
    tmp_path: Path, recording: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "out.mid"
    code, err = run_cli(["transcribe", str(recording), "-o", str(out), "--exact"], capsys)
    assert code == 2 and "--exact needs --instruments" in err
    assert not out.exists()


@pytest.mark.parametrize("alias", ["same", "dotted", "symlink", "hardlink"])
def test_output_equal_to_the_input_is_refused(
    alias: str, tmp_path: Path, recording: Path, capsys: pytest.CaptureFixture
) -> None:
    before = digest(recording)
    if alias == "same":
        out = recording
    elif alias == "dotted":
        (tmp_path / "sub").mkdir()
        out = tmp_path / "sub" / ".." / recording.name
    elif alias == "symlink":
        out = tmp_path / "link.mid"
        out.symlink_to(recording)
    else:
        out = tmp_path / "hard.mid"
        os.link(recording, out)
    code, err = run_cli(["transcribe", str(recording), "-o", str(out)], capsys)
    assert code == EXIT_OUTPUT
    assert "is the input" in err and "refusing to overwrite" in err
    assert digest(recording) == before
    assert not list(tmp_path.glob("**/*.tmp"))


@pytest.mark.parametrize("case", ["missing folder", "folder"])
def test_bad_output_paths_fail_before_the_work(
    case: str, tmp_path: Path, recording: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_work(*args: object, **kwargs: object) -> None:
        raise AssertionError("the transcriber was built before the output was checked")

    monkeypatch.setattr("rtamt.cli.build_transcriber", no_work)
    out = tmp_path / "nowhere" / "out.mid" if case == "missing folder" else tmp_path
    code, err = run_cli(["transcribe", str(recording), "-o", str(out)], capsys)
    assert code == EXIT_OUTPUT
    assert ("does not exist" if case == "missing folder" else "is a folder") in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["take1.flac"]


def test_unwritable_output_fails_before_the_work(
    tmp_path: Path, recording: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("rtamt.cli.build_transcriber", lambda *a, **k: pytest.fail("work started"))
    if os.geteuid() == 0:
        with tmpfs(tmp_path / "ro", "ro,size=64k") as folder:
            code, err = run_cli(["transcribe", str(recording), "-o", str(folder / "out.mid")], capsys)
            assert list(folder.iterdir()) == []
        assert "read-only file system" in err
    else:
        folder = tmp_path / "locked"
        folder.mkdir()
        folder.chmod(0o500)
        code, err = run_cli(["transcribe", str(recording), "-o", str(folder / "out.mid")], capsys)
        assert list(folder.iterdir()) == []
        assert "permission denied" in err
    assert code == EXIT_OUTPUT and "cannot write in" in err


def test_full_disk_leaves_no_temporary_file_and_keeps_the_old_output(
    tmp_path: Path, recording: Path, capsys: pytest.CaptureFixture
) -> None:
    with tmpfs(tmp_path / "small", "size=64k") as folder:
        old = folder / "out.mid"
        old.write_bytes(b"the user's previous file")
        handle = os.open(folder / "filler", os.O_WRONLY | os.O_CREAT)
        try:  # fill the file system to the last byte
            while os.write(handle, b"\0" * 512):
                pass
        except OSError:
            pass
        finally:
            os.close(handle)
        code, err = run_cli(["transcribe", str(recording), "-o", str(old)], capsys)
        assert code == EXIT_OUTPUT
        assert "no space left" in err and "not written" in err
        assert sorted(p.name for p in folder.iterdir()) == ["filler", "out.mid"]
        assert old.read_bytes() == b"the user's previous file"


def test_output_commit_removes_the_temporary_file_on_any_failure(tmp_path: Path) -> None:
    out = tmp_path / "out.mid"

    def broken(tmp: Path) -> None:
        tmp.write_bytes(b"half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt), open_output(out) as output:
        output.commit(broken)
    assert list(tmp_path.iterdir()) == []
    with open_output(out) as output:
        output.commit(lambda tmp: tmp.write_bytes(b"whole"))
    assert out.read_bytes() == b"whole" and list(tmp_path.iterdir()) == [out]
    with pytest.raises(OutputError, match="is the input"):
        open_output(out, [out])


@pytest.mark.parametrize(
    "argv, message",
    [
        ([], "nothing to evaluate"),
        (["/missing/bach10"], "/missing/bach10: no such folder"),
        (["--synthetic", "/missing/split"], "--synthetic /missing/split: no such folder"),
        (["--separation"], "--separation needs DATA_DIR"),
        (["EMPTY"], "no sub-folders with mix.flac and notes.csv"),
        (["NOSTEMS", "--separation"], "has all the stem files"),
        (["NOSTEMS", "--shifts", "0", "4"], "give --separation too"),
        (["NOSTEMS", "--separation", "--shifts", "0", "-4"], "distinct delays from 0 to 1000 ms"),
        (["NOSTEMS", "--separation", "--shifts", "4", "4"], "distinct delays from 0 to 1000 ms"),
    ],
)
def test_eval_without_data_says_what_is_missing(
    argv: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    (tmp_path / "EMPTY").mkdir()
    piece = tmp_path / "NOSTEMS" / "piece"
    piece.mkdir(parents=True)
    shutil.copy(EXAMPLE / "mix.flac", piece)
    shutil.copy(EXAMPLE / "notes.csv", piece)
    argv = [str(tmp_path / a) if a in ("EMPTY", "NOSTEMS") else a for a in argv]
    code, err = run_cli(["eval", *argv, "--json"], capsys)
    assert code == 2 and message in err
    assert "Traceback" not in err and "nan" not in capsys.readouterr().out.lower()


def fake_checkout(root: Path, committed: dict[str, str]) -> Path:
    """The Makefile, committed benchmark results and an installed-looking virtual environment (venv/) under
    ``root``; returns the results folder."""
    shutil.copy(ROOT / "Makefile", root)
    results = root / "benchmarks" / "results"
    results.mkdir(parents=True)
    for name, text in committed.items():
        (results / name).write_text(text)
    (root / "venv" / "bin").mkdir(parents=True)
    (root / "venv" / ".test").touch()
    return results


def make_bench(root: Path, bach10: str) -> subprocess.CompletedProcess:
    venv = root / "venv"
    return subprocess.run(["make", "-s", "bench", f"VENV={venv}", f"-o{venv}/.test", f"BACH10={bach10}"],
                          check=False, cwd=root, capture_output=True, text=True, timeout=60)  # fmt: skip


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_bench_without_data_changes_no_result(tmp_path: Path) -> None:
    """``make bench`` checks its inputs before running anything, so committed results stay as they are."""
    results = fake_checkout(tmp_path, {"cqt.json": "committed cqt.json", "bach10.json": "committed bach10.json"})
    done = make_bench(tmp_path, f"{tmp_path}/missing")
    assert done.returncode != 0
    assert "BACH10 not found" in done.stderr and "nothing was run" in done.stderr
    assert {p.name: p.read_text() for p in results.iterdir()} == {
        n: f"committed {n}" for n in ("cqt.json", "bach10.json")
    }


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_bench_result_is_kept_when_its_command_fails(tmp_path: Path) -> None:
    """A benchmark that fails half-way leaves its committed result untouched and no temporary file."""
    results = fake_checkout(tmp_path, {"cqt.json": "committed"})
    for split in ("data/synth/test", "data/synth/valid", "bach10/piece"):
        (tmp_path / split).mkdir(parents=True)
    (tmp_path / "bach10" / "piece" / "mix.flac").touch()
    rtamt = tmp_path / "venv" / "bin" / "rtamt"
    rtamt.write_text("#!/bin/sh\necho '{\"partial\": '\nexit 1\n")
    rtamt.chmod(0o755)
    done = make_bench(tmp_path, f"{tmp_path}/bach10")
    assert done.returncode != 0
    assert [p.name for p in results.iterdir()] == ["cqt.json"]
    assert (results / "cqt.json").read_text() == "committed"
