"""Run records as a store hands them out, for analysis tests that need no store."""

from __future__ import annotations

import dataclasses

from cnnlab.records import RunRecord


def run_record(**columns) -> RunRecord:
    """A finished selection run ("r1", net/none, repeat 0): every column None but those a stored run
    always has, then ``columns``."""
    values = {f.name: None for f in dataclasses.fields(RunRecord)}
    values.update(id="r1", study="s", position=0, architecture="net", variant="none", repeat=0, phase="select", seed=1,
                  status="done", created_at="", epochs_done=1, attempts=1)
    values.update(columns)
    return RunRecord(**values)
