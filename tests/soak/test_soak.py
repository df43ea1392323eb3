"""A short soak in CI, so the soak harness keeps working: 90 s of mixed
load and churn on 3 members with a fault every 10-20 s; memory, fds and
the znodes and ephemerals left over must pass the same checks as the long
run (tests/soak/soak.py, docs/reliability.md)."""

import os
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "cluster"))

from clusterlib import impls  # noqa: E402

pytestmark = pytest.mark.skipif("ensemble" not in impls(), reason="Ensemble left out by ENSEMBLE_CLUSTER_IMPLS")


def test_short_soak_under_faults_stays_flat_and_leaves_nothing_behind(tmp_path):
    cmd = [
        sys.executable, os.path.join(HERE, "soak.py"), str(tmp_path / "soak"),
        "--minutes", "1.5", "--window", "15", "--quiet", "10,20", "--hold", "2,4",
        "--compare", "0.25", "--sessions", "16", "--inflight", "2", "--churners", "2",
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
    assert "verdict: ok" in out.stdout
