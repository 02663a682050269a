"""A short coverage-guided run of scripts/fuzz_atheris.py, where atheris is installed: a
finding (an exception other than the decoders' own errors, or an input slower than 2 s)
fails the test and leaves the input in the test's directory."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "fuzz_atheris.py"


@pytest.mark.skipif(importlib.util.find_spec("atheris") is None,
                    reason="atheris does not install here (scripts/setup.sh tries)")
def test_twenty_seconds_of_coverage_guided_fuzzing_find_nothing(tmp_path: Path) -> None:
    run = subprocess.run([sys.executable, str(SCRIPT), "-max_len=65536", "-timeout=2",
                          "-max_total_time=20", "-rss_limit_mb=2048", "-seed=1"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=120)
    findings = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(
        ("crash-", "timeout-", "oom-", "leak-")))
    assert run.returncode == 0 and not findings, (findings, run.stderr[-3000:])
    assert "Done" in run.stderr  # libFuzzer's summary: it really ran
