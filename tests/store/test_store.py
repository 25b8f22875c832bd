"""The run store: a real SQLite file, round trips, resume bookkeeping, safe loading."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest
import torch

from cnnlab.errors import StoreError
from cnnlab.spec.loader import parse_study
from cnnlab.spec.plan import expand
from cnnlab.store import SCHEMA_VERSION, Store
from cnnlab.store.lock import StoreLock
from cnnlab.store.artifacts import serialize_weights
from cnnlab.train.checkpoint import parse_checkpoint, serialize_state


@pytest.fixture
def plan(tiny_study):
    return expand(parse_study(tiny_study))


def _info():
    return {"params_total": 10, "params_trainable": 8, "params_non_trainable": 2, "split_hash": "abc",
            "split_sizes": {"train": 4}, "input_shape": [1, 8, 8], "class_names": list("0123456789"), "code_version": "0", "environment": {"torch": torch.__version__}}


def test_store_round_trip_through_a_real_sqlite_file(tmp_path, plan):
    with Store(tmp_path) as store:
        store.save_study("tiny", "name: tiny\n", {"name": "tiny"}, "tiny.yaml", {"device": "cpu"})
        store.register_runs(plan)
        run_id = plan[0].run_id
        store.start_run(run_id, _info())
        store.record_epoch(run_id, 0, {"train_loss": 1.5, "train_accuracy": 0.5, "val_loss": 1.2, "val_accuracy": 0.6,
                                       "lr": 0.01, "seconds": 0.3, "train_images_per_second": 100.0})
        store.finish_run(run_id, {"train_accuracy": 0.5, "val_accuracy": 0.6, "test_accuracy": 0.55, "best_epoch": 0,
                                  "train_seconds": 0.3})
    # Read back with plain sqlite3: the file is an ordinary database others can query.
    db = sqlite3.connect(tmp_path / "cnnlab.sqlite")
    assert db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0] == str(SCHEMA_VERSION)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    db.close()
    with Store(tmp_path, create=False) as store:
        runs = store.runs("tiny")
        assert [r["id"] for r in runs] == [c.run_id for c in plan]
        assert runs[0]["status"] == "done" and runs[1]["status"] == "queued"
        assert runs[0]["config"] == plan[0].model_dump(mode="json")
        assert runs[0]["params_total"] == 10 and runs[0]["test_accuracy"] == 0.55
        assert store.epochs(run_id)[0]["val_accuracy"] == 0.6
        assert store.study()["spec_text"] == "name: tiny\n"


def test_registering_again_keeps_finished_runs(tmp_path, plan):
    with Store(tmp_path) as store:
        store.save_study("tiny", "", {}, None, {})
        store.register_runs(plan)
        store.finish_run(plan[0].run_id, {"val_accuracy": 0.9})
        store.register_runs(plan)
        assert store.run(plan[0].run_id)["status"] == "done"


def test_truncate_epochs_forgets_what_a_resume_will_redo(tmp_path, plan):
    with Store(tmp_path) as store:
        store.save_study("tiny", "", {}, None, {})
        store.register_runs(plan)
        for epoch in range(4):
            store.record_epoch(plan[0].run_id, epoch, {"train_loss": float(epoch)})
        store.truncate_epochs(plan[0].run_id, 2)
        assert [e["epoch"] for e in store.epochs(plan[0].run_id)] == [0, 1]
        assert store.run(plan[0].run_id)["epochs_done"] == 2


class _InterruptedAfterBegin:
    """The store's connection, but Ctrl-C lands the moment a BEGIN has run, before the block
    that issued it can reach its own rollback."""

    def __init__(self, db):
        self.db, self.armed = db, True

    def execute(self, sql, *args):
        cursor = self.db.execute(sql, *args)
        if self.armed and sql.startswith("BEGIN"):
            self.armed = False
            raise KeyboardInterrupt
        return cursor

    def __getattr__(self, name):
        return getattr(self.db, name)


def _started_run(store, plan) -> str:
    store.save_study("tiny", "", {}, None, {})
    store.register_runs(plan)
    store.start_run(plan[0].run_id, _info())
    return plan[0].run_id


def test_ctrl_c_right_after_a_transaction_begins_rolls_it_back_and_the_store_stays_writable(tmp_path, plan):
    with Store(tmp_path) as store:
        run_id = _started_run(store, plan)
        real = store.db
        store.db = _InterruptedAfterBegin(real)
        with pytest.raises(KeyboardInterrupt):
            store.record_epoch(run_id, 0, {"train_loss": 1.5, "seconds": 0.3})
        store.db = real
        assert not real.in_transaction
        # What the driver writes next, on its way out (the run marked interrupted), goes through.
        store.record_epoch(run_id, 0, {"train_loss": 0.5, "seconds": 0.3})
    with Store(tmp_path, create=False) as store:
        assert [row["train_loss"] for row in store.epochs(run_id)] == [0.5]


def test_a_transaction_an_interrupted_rollback_left_open_is_dropped_by_the_next_write(tmp_path, plan):
    with Store(tmp_path) as store:
        run_id = _started_run(store, plan)
        # A second Ctrl-C inside a block's rollback: the block's half of its writes stays open.
        store.db.execute("BEGIN IMMEDIATE")
        store.db.execute("INSERT INTO epochs (run_id, epoch, train_loss) VALUES (?, 5, 9.0)", (run_id,))
        store.record_epoch(run_id, 0, {"train_loss": 0.5, "seconds": 0.3})
    with Store(tmp_path, create=False) as store:
        assert [(row["epoch"], row["train_loss"]) for row in store.epochs(run_id)] == [(0, 0.5)]


def test_weights_and_checkpoints_round_trip(tmp_path, plan):
    with Store(tmp_path) as store:
        store.save_study("tiny", "", {}, None, {})
        store.register_runs(plan)
        run_id = plan[0].run_id
        weights = {"conv1.conv.weight": torch.randn(4, 1, 3, 3), "batchnorm1.num_batches_tracked": torch.tensor(3)}
        store.save_weights(run_id, serialize_weights(weights))
        loaded = store.load_weights(run_id)
        assert all(torch.equal(loaded[k], v) for k, v in weights.items())
        state = {"format": 1, "epochs_done": 2, "model": weights, "optimizer": {}, "schedule": {},
                 "rng_torch": torch.get_rng_state(), "rng_data": torch.Generator().get_state(), "history": []}
        store.save_checkpoint(run_id, serialize_state(state))
        assert parse_checkpoint(store.checkpoint_bytes(run_id))["epochs_done"] == 2
        store.drop_checkpoint(run_id)
        assert store.checkpoint_bytes(run_id) is None
        assert not list(tmp_path.rglob(".tmp-cnnlab-*"))


def test_open_missing_store_says_what_to_do(tmp_path):
    with pytest.raises(StoreError, match="cnnlab run"):
        Store(tmp_path / "nothing", create=False)


def test_a_store_written_by_schema_1_upgrades_in_place_and_reads_the_same(tmp_path):
    fixture = Path(__file__).with_name("fixtures") / "schema_v1.sqlite"  # written by cnnlab at e83ed5d
    shutil.copy(fixture, tmp_path / "cnnlab.sqlite")
    before = sqlite3.connect(tmp_path / "cnnlab.sqlite")
    before.row_factory = sqlite3.Row
    rows = [dict(row) for row in before.execute("SELECT * FROM runs ORDER BY position")]
    epochs = [dict(row) for row in before.execute("SELECT * FROM epochs ORDER BY run_id, epoch")]
    before.close()
    with Store(tmp_path, create=False) as store:
        assert store.version == SCHEMA_VERSION
        runs = store.runs("schema-v1")
        assert [run.id for run in runs] == [row["id"] for row in rows] and len(runs) == 2
        assert [run.val_accuracy for run in runs] == [row["val_accuracy"] for row in rows]
        assert store.plan("schema-v1") is None  # no plan was kept then: every run counts
        assert sorted((e for run in runs for e in store.epochs(run.id)), key=lambda e: (e["run_id"], e["epoch"])) == epochs
    db = sqlite3.connect(tmp_path / "cnnlab.sqlite")
    assert db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0] == str(SCHEMA_VERSION)
    assert {"plans", "spec_history"} <= {row[0] for row in db.execute("SELECT name FROM sqlite_master")}


def test_a_store_written_by_a_newer_cnnlab_is_refused_and_left_as_it_is(tmp_path):
    with Store(tmp_path):
        pass
    db = sqlite3.connect(tmp_path / "cnnlab.sqlite")
    db.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    db.commit()
    db.close()
    before = (tmp_path / "cnnlab.sqlite").read_bytes()
    with pytest.raises(StoreError, match="schema version 99, this cnnlab reads versions up to .* written by a newer"):
        Store(tmp_path, create=False)
    assert (tmp_path / "cnnlab.sqlite").read_bytes() == before


def test_run_ids_from_the_database_become_paths_only_when_they_are_run_ids(tmp_path):
    with Store(tmp_path) as store, pytest.raises(StoreError, match="is not a run id"):
        store.remove_runs(["../../outside"])


def test_the_lock_never_follows_a_link_planted_at_its_name(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    lock = StoreLock(tmp_path / "out", "study")
    lock.path.parent.mkdir()
    lock.path.symlink_to(victim)
    with pytest.raises(StoreError, match="it is a link; remove it"), lock:
        pass
    assert victim.read_text() == "precious"


def test_a_tampered_artifact_path_or_run_id_is_refused_not_followed(tmp_path):
    from tests.conftest import TINY_STUDY

    config = expand(parse_study(TINY_STUDY))[0]
    with Store(tmp_path / "out") as store:
        store.save_study("tiny", "", {}, None, {})
        store.register_runs([config])
        store.save_artifact(config.run_id, "weights", "weights.safetensors", b"x")
        store.db.execute("UPDATE artifacts SET path = '../outside.txt'")
        (tmp_path / "outside.txt").write_text("not the store's")
        with pytest.raises(StoreError, match="outside the store's artifacts folder"):
            store.artifact_path(config.run_id, "weights")
        with pytest.raises(StoreError, match="is not a run id"):
            store.run_folder("../../outside")


def test_every_file_read_is_checked_against_its_recorded_size_and_sha256(tmp_path, plan):
    from cnnlab.store.artifacts import evaluation_files

    class Split:
        images, labels = torch.zeros((2, 1, 4, 4), dtype=torch.uint8), torch.tensor([0, 1])

        def __len__(self) -> int:
            return 2

    run_id = plan[0].run_id
    predictions, examples = evaluation_files({"val": torch.tensor([[0.9, 0.1], [0.2, 0.8]])}, {"val": Split()})
    with Store(tmp_path) as store:
        store.save_study("tiny", "", {}, None, {})
        store.register_runs(plan)
        store.save_artifact(run_id, "predictions", "predictions.npz", predictions)
        store.save_artifact(run_id, "examples", "examples.npz", examples)
        store.save_weights(run_id, serialize_weights({"w": torch.ones(3)}))
        assert store.artifact_bytes(run_id, "predictions") == predictions
        assert store.load_predictions(run_id).splits["val"].labels.tolist() == [0, 1]
        assert store.load_examples(run_id).split == "val"
        assert store.artifact_bytes(run_id, "checkpoint") is None and store.load_predictions(plan[1].run_id) is None
        for kind, read in (("predictions", store.load_predictions), ("examples", store.load_examples),
                           ("weights", store.load_weights)):
            path = store.artifact_path(run_id, kind)
            data = bytearray(path.read_bytes())
            data[-30] ^= 0xFF  # the same size, other bytes
            path.write_bytes(bytes(data))
            with pytest.raises(StoreError, match="changed since cnnlab wrote it .checksum mismatch.") as error:
                read(run_id)
            assert str(error.value).startswith(f"{path}: ")
            with pytest.raises(StoreError, match="checksum mismatch"):
                store.artifact_bytes(run_id, kind)


def test_checkpoints_get_names_of_their_own_and_a_changed_one_is_refused_and_kept(tmp_path, plan):
    run_id = plan[0].run_id
    with Store(tmp_path) as store:
        store.save_study("tiny", "", {}, None, {})
        store.register_runs(plan)
        first = store.save_checkpoint(run_id, b"epoch 1")
        second = store.save_checkpoint(run_id, b"epoch 2")
        assert first != second and not first.exists() and store.checkpoint_bytes(run_id) == b"epoch 2"
        second.write_bytes(b"epoch 9")
        with pytest.raises(StoreError, match="Delete the file to train that run again from scratch"):
            store.checkpoint_bytes(run_id)
        assert second.read_bytes() == b"epoch 9"


def test_rows_that_are_not_what_cnnlab_writes_are_store_errors_naming_the_row_and_column(tmp_path, plan):
    with Store(tmp_path) as store:
        store.save_study("tiny", "", {}, None, {})
        store.register_runs(plan)
        store.db.execute("UPDATE runs SET sweep_json = '[1, 2]' WHERE id = ?", (plan[0].run_id,))
        store.db.execute("UPDATE runs SET seed = 'seven' WHERE id = ?", (plan[1].run_id,))
        with pytest.raises(StoreError, match=f"runs row '{plan[0].run_id}': column sweep_json holds \\[1, 2\\], "
                                             "not a JSON object or null"):
            store.runs("tiny")
        damaged: list[StoreError] = []
        assert store.runs("tiny", damaged=damaged) == [] and len(damaged) == 2
        assert "column seed holds \"seven\", not a whole number" in str(damaged[1])
        store.db.execute("UPDATE runs SET seed = 1, sweep_json = '{}'")
        store.record_epoch(plan[0].run_id, 0, {"lr": 0.1})
        store.db.execute("UPDATE epochs SET lr = 'fast'")
        with pytest.raises(StoreError, match="column lr holds 'fast', not a number"):
            store.epochs(plan[0].run_id)


def test_another_programs_database_is_refused_before_anything_is_written_to_it(tmp_path):
    db = sqlite3.connect(tmp_path / "cnnlab.sqlite")
    db.execute("CREATE TABLE runs (x TEXT)")
    db.commit()
    db.close()
    before = (tmp_path / "cnnlab.sqlite").read_bytes()
    for create in (True, False):
        with pytest.raises(StoreError, match="not a cnnlab store but another program's SQLite database"):
            Store(tmp_path, create=create)
    assert (tmp_path / "cnnlab.sqlite").read_bytes() == before
