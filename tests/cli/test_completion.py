"""Shell completion as a shell drives it: ``cnnlab`` run with argcomplete's variables (``_ARGCOMPLETE``,
``COMP_LINE``, ``COMP_POINT``) offers commands, options, the run ids of a real store after ``--run``
and its studies after ``--study``; ``cnnlab completion SHELL`` prints the code that turns it on, and
cnnlab works without argcomplete."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from .conftest import CNNLAB, cnnlab, write_study

IFS = "\013"  # argcomplete's separator of completions, as its bash code sets it


def complete(line: str, tmp_path, shell: str = "bash") -> list[str]:
    """What ``cnnlab`` offers for TAB at the end of ``line``, asked as the shell code asks it."""
    answer = tmp_path / "completions"
    env = {**os.environ, "_ARGCOMPLETE": "1", "_ARGCOMPLETE_SHELL": shell, "COMP_LINE": line,
           "COMP_POINT": str(len(line)), "_ARGCOMPLETE_STDOUT_FILENAME": str(answer)}
    result = subprocess.run(CNNLAB, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""  # no command ran
    text = answer.read_text()
    return text.split(IFS) if text else []


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> tuple:
    """A real store of the tiny study (2 runs, 1 epoch each) and its run ids."""
    from tests.conftest import TINY_STUDY

    folder = tmp_path_factory.mktemp("completion")
    spec = write_study(folder, json.loads(json.dumps(TINY_STUDY)))
    out = folder / "out"
    assert cnnlab("run", spec, "--out", out, "--quiet", "--epochs", "1", "--no-report").returncode == 0
    runs = json.loads(cnnlab("ls", out, "--runs", "--json").stdout)
    return out, [run["id"] for run in runs]


def test_commands_and_options_are_completed(tmp_path):
    commands = complete("cnnlab ", tmp_path)
    for command in ("run", "ls", "compare", "report", "spec", "summary", "explain", "datasets", "prune", "completion"):
        assert command in commands
    assert "--help" not in commands and "--debug" in complete("cnnlab -", tmp_path)  # options once '-' is typed
    assert complete("cnnlab re", tmp_path) == ["report "]
    assert complete("cnnlab run study.yaml --qu", tmp_path) == ["--quiet "]
    assert {"--epochs", "--precision", "--out"} <= {word.strip() for word in complete("cnnlab run study.yaml --", tmp_path)}
    assert complete("cnnlab completion ", tmp_path) == ["bash", "zsh", "fish"]


def test_run_ids_of_the_store_on_the_command_line_are_offered_after_run(tmp_path, store):
    out, ids = store
    assert sorted(word.strip() for word in complete(f"cnnlab explain {out} --run ", tmp_path)) == sorted(ids)
    assert complete(f"cnnlab explain {out} --run {ids[0][:6]}", tmp_path) == [
        f"{i} " for i in ids if i.startswith(ids[0][:6])]
    # zsh shows what each id is beside it.
    described = complete(f"cnnlab explain {out} --run ", tmp_path, shell="zsh")
    assert f"{ids[0]}:small/none repeat 0, done" in described
    assert complete(f"cnnlab ls {out} --study ", tmp_path) == ["tiny "]
    # No folder yet, or one without a store: nothing offered, and no error.
    assert complete("cnnlab explain --run ", tmp_path) == []
    assert complete(f"cnnlab explain {tmp_path} --run ", tmp_path) == []


def test_completion_reads_an_older_store_without_changing_a_byte_of_its_folder(tmp_path):
    import shutil
    import sqlite3
    from pathlib import Path

    old = tmp_path / "old"
    old.mkdir()
    fixture = Path(__file__).parents[1] / "store" / "fixtures" / "schema_v1.sqlite"  # written by cnnlab at e83ed5d
    shutil.copy(fixture, old / "cnnlab.sqlite")

    def files():
        return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in old.iterdir()}

    before = files()
    # Offered from the store as it is: its schema is not migrated (an older cnnlab would then refuse the folder).
    assert sorted(word.strip() for word in complete(f"cnnlab explain {old} --run ", tmp_path)) == [
        "c111613014a75773", "f42bede23025664a"]
    assert complete(f"cnnlab ls {old} --study ", tmp_path) == ["schema-v1 "]
    assert files() == before
    db = sqlite3.connect(f"file:{old / 'cnnlab.sqlite'}?mode=ro", uri=True)
    assert db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == ("1",)
    db.close()


def test_completion_prints_each_shell_s_activation_code():
    bash = cnnlab("completion", "bash")
    assert bash.returncode == 0 and "complete -o nospace -o default -o bashdefault -F _python_argcomplete cnnlab" in bash.stdout
    assert "compdef _python_argcomplete cnnlab" in cnnlab("completion", "zsh").stdout
    assert "complete --command cnnlab" in cnnlab("completion", "fish").stdout
    help_text = cnnlab("completion", "--help").stdout
    assert 'eval "$(cnnlab completion bash)"' in help_text


def test_cnnlab_works_without_argcomplete(tmp_path, tiny_study):
    spec = write_study(tmp_path, tiny_study)
    # argcomplete made unimportable, as where it is not installed.
    run = ("import sys; sys.modules['argcomplete'] = None; from cnnlab.cli import main; "
           "sys.exit(main(sys.argv[1:]))")
    env = {**os.environ, "_ARGCOMPLETE": "1", "COMP_LINE": "cnnlab ", "COMP_POINT": "7"}
    planned = subprocess.run([sys.executable, "-c", run, "spec", str(spec)], capture_output=True, text=True,
                             timeout=120, env=env)
    assert planned.returncode == 0 and "Study 'tiny': 2 runs" in planned.stdout
    refused = subprocess.run([sys.executable, "-c", run, "completion", "bash"], capture_output=True, text=True,
                             timeout=120)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert "shell completion needs the argcomplete package, which is not installed: pip install argcomplete" in refused.stderr
