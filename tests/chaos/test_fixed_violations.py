"""The violations the chaos runs found in Ensemble (docs/reliability.md),
each pinned by its reproducer, which met them in nearly every try before
they were fixed."""

import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "cluster"))

import repro_refused_after_pause  # noqa: E402
import repro_xid_reuse  # noqa: E402
from clusterlib import impls  # noqa: E402

pytestmark = pytest.mark.skipif("ensemble" not in impls(), reason="Ensemble left out by ENSEMBLE_CLUSTER_IMPLS")


def test_a_write_is_never_answered_with_the_result_of_another_connections_request():
    for _ in range(3):  # a race: it shows in nearly every try
        bad, text = repro_xid_reuse.attempt("ensemble")
        assert not bad, text


def test_a_conditional_write_on_the_current_version_is_not_refused_after_a_leader_pause():
    for pause in (0.9, 1.0, 1.1):  # the term must survive the pause
        bad, text = repro_refused_after_pause.attempt("ensemble", pause)
        assert not bad, text
