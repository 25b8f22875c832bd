"""A study folder is untrusted input: one shared by someone else may be damaged or tampered with.

Each test copies one real finished study (trained once for the module), spoils the copy one way,
and opens it with the commands that read a folder (``ls``, ``report``, ``explain``, ``run``). Every
command either refuses it (exit status 2, one paragraph naming the file and what is wrong, no
traceback) or, where part of the folder is still good, shows that part and names what is not.
Whatever it does, nothing outside the folder is read through it or changed: a sentinel tree of
files beside the folder keeps its bytes and modification times, and a store that was refused
keeps its bytes too.

The classes: a link planted at the study's lock file; a run id that leads outside; an artifact
path outside the folder or through a link; a damaged database page; a dropped table; another
program's SQLite file; a file that is not SQLite; a newer schema; JSON columns that are not JSON
or not the right shape; artifact files whose checksum no longer matches (weights, checkpoint);
and damaged evaluation files, which leave the report written with a note naming them.
"""

from __future__ import annotations

import copy
import os
import shutil
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import pytest
import torch

from cnnlab.api import run_study
from cnnlab.cli.main import main
from cnnlab.store import Store
from cnnlab.store.lock import StoreLock
from tests.conftest import TINY_STUDY

from .conftest import assert_clean_error, cnnlab, tree, write_spec

STUDY = "tiny"


@dataclass
class Finished:
    spec: Path
    folder: Path
    best: str  # the run the report and 'explain' pick
    other: str  # the other run


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Finished:
    """One real finished study: two runs on scikit-learn's digits, trained once for the module."""
    base = tmp_path_factory.mktemp("finished")
    spec = write_spec(base / "study.yaml", copy.deepcopy(TINY_STUDY))
    threads = torch.get_num_threads()
    with pytest.MonkeyPatch.context() as patch:  # no user cache, as for every test here
        patch.setenv("XDG_CACHE_HOME", str(base / "cache"))
        patch.delenv("CNNLAB_DATA", raising=False)
        try:
            assert run_study(spec, base / "study", threads=1).outcome.ok
        finally:
            torch.set_num_threads(threads)
    from cnnlab.store.lookup import best_run

    with Store(base / "study", create=False) as store:
        best = best_run(store, STUDY).id
        other = next(run.id for run in store.runs(STUDY) if run.id != best)
    return Finished(spec, base / "study", best, other)


@pytest.fixture(autouse=True)
def restore_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@dataclass
class Scene:
    """A copy of the finished study, with sentinel files beside it that no command may touch."""

    finished: Finished
    root: Path
    folder: Path
    neighbour: Path  # a folder of someone else's files beside the study
    victim: Path  # one more file beside it, what planted links point to

    @property
    def db(self) -> Path:
        return self.folder / "cnnlab.sqlite"

    def sql(self, *statements: str) -> None:
        """Edit the store by hand, as anyone with sqlite3 can."""
        db = sqlite3.connect(self.db)
        try:
            db.execute("PRAGMA foreign_keys=OFF")
            for statement in statements:
                db.execute(statement)
            db.commit()
        finally:
            db.close()

    def outside(self) -> dict[str, tuple[Optional[bytes], int]]:
        """Every path beside the folder (and the spec and the original study) with its bytes
        (a link's target, a folder's None) and modification time."""
        found = {}
        for top in (self.root, self.finished.folder.parent):
            for path in [top, *top.rglob("*")]:
                if path == self.folder or self.folder in path.parents:
                    continue
                if path.is_symlink():
                    content: Optional[bytes] = os.readlink(path).encode()
                else:
                    content = path.read_bytes() if path.is_file() else None
                found[str(path)] = (content, path.lstat().st_mtime_ns)
        return found

    def inside(self) -> dict[str, bytes]:
        """The folder's files (SQLite's transient -wal and -shm files left out)."""
        return {name: data for name, data in tree(self.folder).items() if not name.endswith(("-wal", "-shm"))}


@pytest.fixture
def scene(finished, tmp_path) -> Scene:
    folder = tmp_path / "study"
    shutil.copytree(finished.folder, folder, symlinks=True)
    neighbour = tmp_path / "neighbour"
    (neighbour / "deep").mkdir(parents=True)
    (neighbour / "notes.txt").write_text("someone else's notes\n")
    (neighbour / "data.bin").write_bytes(os.urandom(512))
    (neighbour / "deep" / "secret.txt").write_text("not cnnlab's to read\n")
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    return Scene(finished, tmp_path, folder, neighbour, victim)


def command(name: str, scene: Scene, *extra: str) -> list[str]:
    folder = str(scene.folder)
    if name == "run":
        return ["run", str(scene.finished.spec), "--out", folder, "--quiet", "--threads", "1", *extra]
    return [name, folder, *extra]


def cli(capsys, scene: Scene, argv: list[str], *fragments: str, status: int = 2) -> tuple[str, str]:
    """Run ``cnnlab ARGV`` in this process: the exit status, no traceback, the fragments in stderr,
    and nothing beside the folder changed. Returns stdout and stderr."""
    before = scene.outside()
    result = main(argv)
    out, err = capsys.readouterr()
    assert result == status, f"exit {result}\nstdout:\n{out}\nstderr:\n{err}"
    assert "Traceback" not in out + err, err
    for fragment in fragments:
        assert fragment in err, f"{fragment!r} not in stderr:\n{err}"
    assert scene.outside() == before, "a file beside the study folder changed"
    if status == 2:
        errors = [line for line in err.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and err.rstrip().endswith(errors[0]), f"not one paragraph, last:\n{err}"
    return out, err


def assert_refused_unchanged(capsys, scene: Scene, argv: list[str], *fragments: str) -> str:
    """Refused (exit status 2, one paragraph), and the folder kept as it was: nothing of it
    overwritten. Returns stderr."""
    before = scene.inside()
    _, err = cli(capsys, scene, argv, *fragments)
    assert scene.inside() == before, "the refused folder was changed"
    return err


DB_COMMANDS = ["ls", "report", "explain", "run"]


# ---------------------------------------------------------------- links and paths that lead outside


@pytest.mark.parametrize("target", ["a file", "a missing file"])
def test_a_link_planted_at_the_lock_file_is_refused_and_its_target_untouched(capsys, scene, target):
    lock = StoreLock(scene.folder, STUDY).path
    lock.unlink(missing_ok=True)
    # Followed, the link would have its target written, or created (outside the folder).
    lock.symlink_to(scene.victim if target == "a file" else scene.root / "created-through-the-lock")
    assert_refused_unchanged(capsys, scene, command("run", scene), str(lock), "it is a link; remove it")
    assert scene.victim.read_text() == "precious\n" and not (scene.root / "created-through-the-lock").exists()


@pytest.mark.parametrize("name", DB_COMMANDS + ["prune"])
def test_a_run_id_that_leads_outside_is_refused_by_every_command(capsys, scene, name):
    tampered = "../../neighbour"  # artifacts/../../neighbour: the sentinel folder beside the study
    scene.sql(*(f"UPDATE {table} SET {column} = '{tampered}' WHERE {column} = '{scene.finished.best}'"
                for table, column in (("runs", "id"), ("epochs", "run_id"), ("artifacts", "run_id"),
                                      ("plans", "run_id"))))
    fragments = (str(scene.db), repr(tampered), "not a run id")
    if name == "ls":  # the other run is still listed, the tampered one named
        out, _ = cli(capsys, scene, command(name, scene, "--runs"), *fragments)
        assert scene.finished.other in out and tampered not in out
    elif name == "report":  # written without the tampered run, which it names; nothing else changed
        before = scene.inside()
        cli(capsys, scene, command(name, scene), *fragments, "was written without 1 run")
        assert {n: d for n, d in scene.inside().items() if n != "report.html"} == before
        assert scene.finished.other in (scene.folder / "report.html").read_text(encoding="utf-8")
    else:
        assert_refused_unchanged(capsys, scene, command(name, scene), *fragments)


def test_an_artifact_path_outside_the_folder_is_never_read(capsys, scene):
    scene.sql(f"UPDATE artifacts SET path = '../neighbour/notes.txt' WHERE kind = 'weights' AND run_id = "
              f"'{scene.finished.best}'")
    assert_refused_unchanged(capsys, scene, command("explain", scene), str(scene.db),
                             "'../neighbour/notes.txt', outside the store's artifacts folder")


@pytest.mark.parametrize("where", ["file", "run folder", "artifacts folder"])
def test_artifacts_reached_through_a_link_are_never_read_or_written(capsys, scene, where):
    run = scene.folder / "artifacts" / scene.finished.best
    elsewhere = scene.root / "elsewhere"
    # The link leads to exact copies: only the link itself can tell them apart from the real thing.
    if where == "file":
        elsewhere.mkdir()
        shutil.move(run / "weights.safetensors", elsewhere / "weights.safetensors")
        (run / "weights.safetensors").symlink_to(elsewhere / "weights.safetensors")
        link = run / "weights.safetensors"
    else:
        link = run if where == "run folder" else scene.folder / "artifacts"
        shutil.move(link, elsewhere)
        link.symlink_to(elsewhere, target_is_directory=True)
    for name in ("explain", "run"):
        fragments = ["through a link"] if where == "file" else [str(link), "is a link"]
        if where == "file" and name == "run":
            continue  # a finished study's rerun reads no weights; the report it writes refuses them (below)
        assert_refused_unchanged(capsys, scene, command(name, scene), *fragments)


# ---------------------------------------------------------------- the database file itself


def _damage_page_of(scene: Scene, table: str) -> None:
    """Overwrite the start of a table's page in the middle of the file, as a bad disk sector would."""
    db = sqlite3.connect(f"file:{scene.db}?mode=ro", uri=True)
    page_size = db.execute("PRAGMA page_size").fetchone()[0]
    root = db.execute("SELECT rootpage FROM sqlite_master WHERE name = ?", (table,)).fetchone()[0]
    db.close()
    data = bytearray(scene.db.read_bytes())
    assert 1 < root < len(data) // page_size  # neither the header page nor the last one
    start = (root - 1) * page_size
    data[start:start + 64] = b"\xff" * 64
    scene.db.write_bytes(bytes(data))


@pytest.mark.parametrize("table", ["epochs", "runs", "plans"])
@pytest.mark.parametrize("name", DB_COMMANDS)
def test_a_damaged_database_page_is_refused_and_left_as_it_is(capsys, scene, name, table):
    _damage_page_of(scene, table)
    assert_refused_unchanged(capsys, scene, command(name, scene), str(scene.db), "damaged", "malformed")


@pytest.mark.parametrize("table", ["epochs", "runs", "artifacts"])
@pytest.mark.parametrize("name", DB_COMMANDS)
def test_a_dropped_table_is_refused_and_left_as_it_is(capsys, scene, name, table):
    scene.sql(f"DROP TABLE {table}")
    assert_refused_unchanged(capsys, scene, command(name, scene), str(scene.db), f"its {table} table is missing")


def _foreign(scene: Scene, *statements: str) -> None:
    scene.db.unlink()
    db = sqlite3.connect(scene.db)
    for statement in statements:
        db.execute(statement)
    db.commit()
    db.close()


FOREIGN = {
    "a contacts database": ("CREATE TABLE contacts (name TEXT, phone TEXT)", "INSERT INTO contacts VALUES ('A', '1')"),
    # Tables named like cnnlab's, another design: setting it up used to fail with "disk full?".
    "tables named like cnnlab's": ("CREATE TABLE runs (x TEXT)", "INSERT INTO runs VALUES ('a')"),
    "a meta table of its own": ("CREATE TABLE meta (k TEXT, v TEXT)", "INSERT INTO meta VALUES ('a', 'b')"),
}


@pytest.mark.parametrize("kind", list(FOREIGN))
@pytest.mark.parametrize("name", DB_COMMANDS)
def test_another_programs_sqlite_file_is_refused_and_left_as_it_is(capsys, scene, name, kind):
    _foreign(scene, *FOREIGN[kind])
    err = assert_refused_unchanged(capsys, scene, command(name, scene), str(scene.db), "not a cnnlab store",
                                   "another program's SQLite database")
    assert "disk" not in err and "read-only" not in err


@pytest.mark.parametrize("name", DB_COMMANDS)
def test_a_file_that_is_not_sqlite_is_refused_and_left_as_it_is(capsys, scene, name):
    scene.db.write_bytes(b"id,accuracy\n" + b"0123456789abcdef,0.9\n" * 400)
    assert_refused_unchanged(capsys, scene, command(name, scene), str(scene.db), "not an SQLite database")


@pytest.mark.parametrize("name", DB_COMMANDS)
def test_a_store_of_a_newer_schema_is_refused_and_left_as_it_is(capsys, scene, name):
    scene.sql("UPDATE meta SET value = '7' WHERE key = 'schema_version'")
    assert_refused_unchanged(capsys, scene, command(name, scene), str(scene.db), "schema version 7",
                             "written by a newer cnnlab")


# ---------------------------------------------------------------- rows that are not what cnnlab wrote


def test_ls_lists_the_readable_runs_and_names_the_one_whose_json_is_damaged(capsys, scene):
    scene.sql(f"UPDATE runs SET config_json = '{{\"layers\": [' WHERE id = '{scene.finished.best}'")
    before = scene.inside()
    out, _ = cli(capsys, scene, command("ls", scene, "--runs"), str(scene.db),
                 f"runs row '{scene.finished.best}': column config_json is not JSON")
    assert scene.finished.other in out and scene.finished.best not in out  # what can be read is shown
    assert scene.inside() == before


@pytest.mark.parametrize("value", ['{"a": 1}', "42", '["cat", ["dog"]]', "not json"])
def test_a_class_names_column_of_the_wrong_shape_is_refused_naming_the_run_and_column(capsys, scene, value):
    scene.sql(f"UPDATE runs SET class_names_json = '{value}' WHERE id = '{scene.finished.best}'")
    assert_refused_unchanged(capsys, scene, command("explain", scene), str(scene.db), scene.finished.best,
                             "column class_names_json")


def test_the_report_of_a_store_with_a_damaged_run_row_shows_the_rest_and_names_it(capsys, scene):
    scene.sql(f"UPDATE runs SET class_names_json = '42' WHERE id = '{scene.finished.best}'")
    before = scene.inside()
    _, err = cli(capsys, scene, command("report", scene), "report.html was written without 1 run",
                 scene.finished.best, "column class_names_json")
    after = scene.inside()
    # The report, and nothing else, was written.
    assert {n: d for n, d in after.items() if n != "report.html"} == {n: d for n, d in before.items() if n != "report.html"}
    html = (scene.folder / "report.html").read_text(encoding="utf-8")
    assert "could not be read and is left out of every table" in html and scene.finished.best in html
    assert scene.finished.other in html  # the readable run is in the report


def test_a_config_that_is_json_but_not_a_run_config_is_refused_by_explain(capsys, scene):
    scene.sql(f"UPDATE runs SET config_json = '{{\"layers\": \"all of them\"}}' WHERE id = '{scene.finished.best}'")
    assert_refused_unchanged(capsys, scene, command("explain", scene), str(scene.db), scene.finished.best,
                             "column config_json is not what cnnlab writes there")


# ---------------------------------------------------------------- files that changed since cnnlab wrote them


def test_weights_changed_by_one_byte_are_refused_by_explain(capsys, scene):
    weights = scene.folder / "artifacts" / scene.finished.best / "weights.safetensors"
    data = bytearray(weights.read_bytes())
    data[-5] ^= 0x01  # a tensor's value: still a readable file, no longer the trained weights
    weights.write_bytes(bytes(data))
    assert_refused_unchanged(capsys, scene, command("explain", scene), str(weights),
                             "changed since cnnlab wrote it (checksum mismatch)")


def test_a_changed_checkpoint_is_refused_not_resumed_and_kept(capsys, scene):
    run = scene.finished.best
    with Store(scene.folder) as store:  # the run as a killed 'cnnlab run' leaves it, with its checkpoint
        store.save_checkpoint(run, b"the state after epoch 2")
        store.end_run(run, "interrupted")
        checkpoint = store.artifact_path(run, "checkpoint")
    checkpoint.write_bytes(b"the state after epoch 3")
    epochs = sqlite3.connect(scene.db).execute("SELECT COUNT(*) FROM epochs WHERE run_id = ?", (run,)).fetchone()
    cli(capsys, scene, command("run", scene), str(checkpoint), "checksum mismatch", "Delete the file", "--force")
    assert checkpoint.read_bytes() == b"the state after epoch 3"  # refused, not discarded
    assert sqlite3.connect(scene.db).execute("SELECT COUNT(*) FROM epochs WHERE run_id = ?", (run,)).fetchone() == epochs


def test_a_checkpoint_written_but_not_yet_recorded_never_reads_as_changed(scene):
    """A process killed between writing a checkpoint and recording it: the record still describes
    a whole file (the previous checkpoint), so the resume is not refused as if it were tampering."""
    run = scene.finished.best
    with Store(scene.folder) as store:
        first = store.save_checkpoint(run, b"after epoch 1")
        newer = first.with_name("checkpoint-0123456789abcdef.pt")
        newer.write_bytes(b"after epoch 2")  # renamed into place; the kill came before the row
        assert store.checkpoint_bytes(run) == b"after epoch 1"
        assert store.save_checkpoint(run, b"after epoch 2").name != first.name
        assert sorted(p.name for p in first.parent.glob("checkpoint*")) == [store.artifact_path(run, "checkpoint").name]


def test_damaged_evaluation_files_leave_the_report_written_with_notes_naming_them(capsys, scene):
    run = scene.folder / "artifacts" / scene.finished.best
    for name in ("predictions.npz", "examples.npz"):
        data = (run / name).read_bytes()
        (run / name).write_bytes(data[: len(data) // 2])  # cut short, as by a full disk or a bad copy
    cli(capsys, scene, command("report", scene), status=0)
    report = (scene.folder / "report.html").read_text(encoding="utf-8")
    for name in ("predictions.npz", "examples.npz"):
        assert f"{run / name}: changed since cnnlab wrote it (checksum mismatch)" in report
    assert "No confusion matrix:" in report and "No example images:" in report


def test_ls_shows_the_table_when_one_runs_epochs_row_is_damaged_and_names_the_run(capsys, scene):
    scene.sql(f"UPDATE epochs SET train_accuracy = 'high' WHERE run_id = '{scene.finished.best}' AND epoch = 1")
    before = scene.inside()
    out, err = cli(capsys, scene, command("ls", scene), str(scene.db), f"epochs row of run '{scene.finished.best}'",
                   "the epochs of 1 run could not be read, so its best train accuracy is left out above")
    assert "small/none" in out and "small/dropout" in out  # the table of what can be read
    assert scene.inside() == before


def test_overrides_that_are_not_texts_in_a_changed_spec_do_not_break_ls_or_the_report(capsys, scene):
    scene.sql("""UPDATE studies SET spec_json = json_set(spec_json, '$.overrides', json('[1, {"a": 2}, "train.epochs=3"]'))""")
    out, _ = cli(capsys, scene, command("ls", scene), status=0)
    assert "(with train.epochs=3)" in out
    cli(capsys, scene, command("report", scene), status=0)
    assert "train.epochs=3 (over the spec below)" in (scene.folder / "report.html").read_text(encoding="utf-8")
    scene.sql("""UPDATE studies SET spec_json = json_set(spec_json, '$.overrides', 'train.epochs=3')""")
    out, _ = cli(capsys, scene, command("ls", scene), status=0)
    assert "(with" not in out


def _rewrite_weights_facts(scene: Scene, change) -> Path:
    """The best run's weights with their inference facts changed, and the store's checksum to match: what
    someone who hands over a study folder can do."""
    import hashlib
    import json

    from cnnlab.store.artifacts import INFERENCE_KEY, read_weights, serialize_weights
    from safetensors import safe_open

    weights = scene.folder / "artifacts" / scene.finished.best / "weights.safetensors"
    with safe_open(str(weights), "pt") as handle:
        facts = json.loads(handle.metadata()[INFERENCE_KEY])
    change(facts)
    data = serialize_weights(read_weights(weights), facts)
    weights.write_bytes(data)
    scene.sql(f"UPDATE artifacts SET sha256 = '{hashlib.sha256(data).hexdigest()}', bytes = {len(data)} "
              f"WHERE run_id = '{scene.finished.best}' AND kind = 'weights'")
    return weights


@pytest.mark.parametrize("change, reason", [
    (lambda facts: facts.pop("cnnlab_version"), "its cnnlab_version is not a string"),
    (lambda facts: facts.update(format=True), "has format 'True'"),
    (lambda facts: facts["dataset"].update(name=["<script>"]), "its dataset is not"),
], ids=["no cnnlab_version", "format true", "a dataset name that is a list"])
def test_weights_facts_changed_with_their_checksum_are_refused_by_export(capsys, scene, tmp_path, change, reason):
    weights = _rewrite_weights_facts(scene, change)
    output = tmp_path / "model.pt"
    assert_refused_unchanged(capsys, scene, command("export", scene, "--format", "torchscript", "-o", str(output)),
                             f"{weights} is not a valid cnnlab weights file", reason)
    assert not output.exists()


def test_export_through_a_linked_export_folder_is_refused_and_its_target_untouched(capsys, scene):
    (scene.neighbour / ".tmp-cnnlab-notes").write_text("named like debris, someone's file\n")
    link = scene.folder / "export"
    link.symlink_to(scene.neighbour, target_is_directory=True)
    assert_refused_unchanged(capsys, scene, command("export", scene, "--format", "torchscript"), f"{link} is a link",
                             "-o FILE")
    assert (scene.neighbour / ".tmp-cnnlab-notes").exists()


# ---------------------------------------------------------------- real processes: no traceback reaches the user


def test_real_processes_refuse_a_damaged_store_and_changed_weights_without_a_traceback(scene):
    weights = scene.folder / "artifacts" / scene.finished.best / "weights.safetensors"
    data = bytearray(weights.read_bytes())
    data[-5] ^= 0x01
    weights.write_bytes(bytes(data))
    before = scene.outside()
    assert_clean_error(cnnlab("explain", scene.folder), 2, str(weights), "checksum mismatch")
    _damage_page_of(scene, "runs")
    stored = scene.db.read_bytes()
    result = cnnlab("ls", scene.folder)
    assert_clean_error(result, 2, str(scene.db), "damaged", "malformed")
    assert result.stderr.count("\n") == 1  # one paragraph
    assert scene.db.read_bytes() == stored and scene.outside() == before
