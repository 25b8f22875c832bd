"""Hostile specs: whatever a study file holds, cnnlab answers with a clean error or a valid plan,
quickly, and refuses absurd-but-valid requests before allocating anything.

The property tests feed generated documents (random text, valid specs with random parts replaced
by wrong types, huge numbers, deep nesting and unicode, YAML alias bombs, recursive aliases and
every YAML tag) through what ``cnnlab spec`` does: ``read_yaml``, ``parse_study``, ``expand`` and
the model check. The only exception allowed out is ``CnnlabError``; each document must be
answered within ``TIME_BOUND`` seconds of CPU time.
"""

from __future__ import annotations

import copy
import time
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cnnlab.execute.preflight import known_shape_problems as check_models
from cnnlab.errors import CnnlabError, SpecError
from cnnlab.spec.loader import MAX_NODES, read_yaml, parse_study
from cnnlab.spec.plan import expand

from .conftest import assert_clean_error, cnnlab

TIME_BOUND = 2.0  # seconds of CPU time per document
FIGURES = {"documents": 0, "valid": 0, "refused": 0}

BASE = {
    "name": "fuzz",
    "seed": 0,
    "dataset": {"name": "digits", "split": {"train": 100, "val": 0.2, "test": "rest"}, "augment": ["hflip", {"crop": 1}]},
    "architectures": {
        "A": [{"conv": {"filters": 4, "kernel": 3, "padding": "same"}}, {"maxpool": 2}, "flatten", {"dense": 16},
              {"dense": 10}],
        "B": [{"conv": 2}, {"maxpool": 2}, "flatten", {"dense": 10}],
    },
    "variants": {"none": {}, "l2": {"l2": 1e-4, "on": ["dense"]}, "drop": {"dropout": 0.2}, "bn": {"batchnorm": True}},
    "sweep": {"conv.kernel": [1, 3], "train.optimizer.lr": [0.01, 0.001]},
    "train": {"optimizer": {"name": "sgd", "lr": 0.1, "momentum": 0.9}, "batch_size": 8, "epochs": 2,
              "schedule": {"name": "step", "every": 1, "factor": 0.5}, "early_stopping": {"patience": 1}},
    "repeats": 2,
    "evaluate": {"kfold": 0},
}


def answer(text: str) -> str:
    """What ``cnnlab spec`` does with a document: 'valid' or 'refused'; anything else raises."""
    started = time.process_time()
    try:
        data, lines = read_yaml(text, "fuzz.yaml")
        study = parse_study(data, "fuzz.yaml", lines)
        plan = expand(study)
        check_models(study, plan)
        outcome = "valid"
    except CnnlabError as error:
        assert str(error).strip(), "an error without a message"
        outcome = "refused"
    finally:
        spent = time.process_time() - started
    assert spent < TIME_BOUND, f"{spent:.2f} s of CPU for one document"
    FIGURES["documents"] += 1
    FIGURES[outcome] += 1
    return outcome


# ---------------------------------------------------------------- strategies

NAMES = st.text(min_size=1, max_size=12)
huge_numbers = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([10**9, 10**12, 2**31, 2**32, 2**63, -1, 0, 10**100]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([1e308, -1e308, 5e-324, -0.0]),
)
scalars = st.one_of(
    st.none(), st.booleans(), huge_numbers,
    st.text(max_size=30),
    st.text(alphabet=st.characters(min_codepoint=0x80, max_codepoint=0x10FFFF, blacklist_categories=("Cs",)), max_size=20),
    st.sampled_from(["", "rest", "all", "same", "valid", "relu", "softmax", "conv", "dense", "flatten", "sgd", "nan",
                     "-.inf", "1e-5", "0x10", "on", "yes", "~", "\u202e", "\x00", "a" * 5000]),
)
values = st.recursive(
    scalars,
    lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(st.one_of(NAMES, st.integers()), children, max_size=4)),
    max_leaves=12,
)


def paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    """Every path into a nested dict/list, the root's children first."""
    out = []
    if isinstance(node, dict):
        for key, value in node.items():
            out.append(prefix + (key,))
            out += paths(value, prefix + (key,))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            out.append(prefix + (index,))
            out += paths(value, prefix + (index,))
    return out


@st.composite
def mutated_specs(draw) -> str:
    """The base spec with a few parts replaced, removed or added, dumped as YAML."""
    spec = copy.deepcopy(BASE)
    for _ in range(draw(st.integers(1, 4))):
        where = paths(spec)
        if not where:
            break
        path = draw(st.sampled_from(where))
        parent = spec
        for part in path[:-1]:
            parent = parent[part]
        action = draw(st.sampled_from(["replace", "replace", "replace", "remove", "add"]))
        if action == "replace":
            parent[path[-1]] = draw(values)
        elif action == "remove":
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[draw(NAMES)] = draw(values)
        else:
            parent.append(draw(values))
    return yaml.safe_dump(spec, allow_unicode=draw(st.booleans()), sort_keys=False)


def mostly(valid, *edges):
    """Usually a value from ``valid``, sometimes one of the edge values (some of them invalid)."""
    return st.one_of(valid, valid, valid, st.sampled_from(edges))


@st.composite
def plausible_specs(draw) -> str:
    """The base spec with unicode names and numbers near and past their limits: many are valid."""
    spec = copy.deepcopy(BASE)
    text = st.text(min_size=1, max_size=20)
    spec["name"] = draw(text)
    first = draw(text)
    spec["architectures"] = {draw(text): spec["architectures"]["B"], first: spec["architectures"]["A"]}
    spec["variants"] = {draw(text): variant for variant in spec["variants"].values()}
    spec["seed"] = draw(mostly(st.integers(0, 2**32 - 1), -1, 2**32, 2**64))
    spec["repeats"] = draw(mostly(st.integers(1, 5), 0, 1000, 1001))
    spec["train"]["batch_size"] = draw(mostly(st.integers(1, 4096), 0, 10**6, 10**6 + 1, 10**9))
    spec["train"]["epochs"] = draw(mostly(st.integers(1, 100), 0, 10**5, 10**5 + 1))
    spec["train"]["optimizer"]["lr"] = draw(mostly(st.floats(1e-6, 1.0), 0.0, 100.0, 100.5, float("inf"), float("nan")))
    size = draw(mostly(st.integers(1, 512), 0, 10**6, 10**6 + 1, 10**9))
    if draw(st.booleans()):
        spec["architectures"][first][0]["conv"]["filters"] = size
    else:
        spec["architectures"][first][3]["dense"] = size
    spec["sweep"] = {"conv.kernel": draw(st.lists(mostly(st.integers(1, 9), 0, 4096, 4097), min_size=1, max_size=4)),
                     "train.batch_size": draw(st.lists(mostly(st.integers(1, 5000), 0, 10**7), min_size=1, max_size=3))}
    spec["evaluate"]["kfold"] = draw(mostly(st.sampled_from([0, 2, 5]), 1, 100, 101))
    spec["dataset"]["split"] = draw(st.sampled_from([
        {"train": 100, "val": 0.2, "test": "rest"}, {"train": 10**9}, {"val": 1.0, "test": 0},
        {"train": "all", "val": 0, "test": 0}, {"train": 1.5}, {"val": "rest", "test": "rest"},
    ]))
    return yaml.safe_dump(spec, allow_unicode=draw(st.booleans()), sort_keys=False)


def alias_bomb(breadth: int, depth: int) -> str:
    lines = ["a0: &a0 [" + ", ".join(["lol"] * breadth) + "]"]
    for level in range(1, depth + 1):
        lines.append(f"a{level}: &a{level} [" + ", ".join([f"*a{level - 1}"] * breadth) + "]")
    return "\n".join(lines) + "\nname: x\n"


YAML_TRICKS = [
    "!!python/object/apply:os.system ['touch /tmp/cnnlab-fuzz-pwned']",
    "!!python/name:os.system",
    "!!binary aGVsbG8=",
    "!!binary //79/A==",
    "!!set {a: null, b: null}",
    "!!omap [a: 1, b: 2]",
    "!!pairs [a: 1, a: 2]",
    "!!timestamp 2001-12-14t21:59:43.10-05:00",
    "2001-12-14",
    "!!float nan",
    "!!int 0x" + "f" * 5000,
    "0b" + "1" * 20000,
    "0" + "7" * 5000,
    ":".join(["59"] * 2000),
    "1_000_000_000_000_000_000_000",
    "&r [*r]",
    "&m {a: *m}",
    "{<<: {a: 1}, b: 2}",
    "? [a, b]\n  : c",
    "!custom 3",
    "!<tag:yaml.org,2002:str> 3",
    "\"\\ud800\"",
    "[" * 60 + "]" * 60,
    "{a: " * 60 + "1" + "}" * 60,
    "[" * 3000 + "]" * 3000,
]


@st.composite
def yaml_tricks(draw) -> str:
    """A YAML feature, planted at a random place of the base spec (or as the whole document)."""
    trick = draw(st.sampled_from(YAML_TRICKS))
    text = yaml.safe_dump(BASE, sort_keys=False)
    lines = text.splitlines()
    candidates = [i for i, line in enumerate(lines) if line.rstrip().endswith(":") is False and ": " in line]
    choice = draw(st.integers(-1, len(candidates) - 1))
    if choice < 0:
        return trick
    index = candidates[choice]
    key = lines[index].split(": ", 1)[0]
    if "\n" in trick:
        indent = len(key) - len(key.lstrip()) + 2
        trick = "\n" + "\n".join(" " * indent + part for part in trick.splitlines())
    lines[index] = f"{key}: {trick}"
    return "\n".join(lines) + "\n"


def documents():
    return st.one_of(
        st.text(max_size=300),
        st.binary(max_size=200).map(lambda data: data.decode("latin-1")),
        mutated_specs(),
        mutated_specs(),
        plausible_specs(),
        plausible_specs(),
        yaml_tricks(),
        st.builds(alias_bomb, st.integers(2, 12), st.integers(1, 9)),
        st.builds(lambda n: "a: " + "[" * n + "]" * n, st.integers(1, 5000)),
        st.builds(lambda n: "- " * n + "x", st.integers(1, 3000)),
    )


def test_the_base_spec_is_valid():
    assert answer(yaml.safe_dump(BASE, sort_keys=False)) == "valid"


# ---------------------------------------------------------------- the properties


@settings(max_examples=500, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(documents())
def test_any_document_is_a_clean_error_or_a_valid_plan(text):
    answer(text)


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(plausible_specs())
def test_specs_near_their_limits_are_valid_plans_or_clean_errors(text):
    answer(text)


def test_fuzz_figures(request):
    """Runs after the property test (same module, file order) and prints how many were tried."""
    print(f"\n[hostile specs] {FIGURES['documents']} generated documents: {FIGURES['valid']} valid plans, "
          f"{FIGURES['refused']} clean refusals, 0 other exceptions, each under {TIME_BOUND} s of CPU")
    if FIGURES["documents"]:
        assert FIGURES["documents"] >= 500


@pytest.mark.parametrize("trick", YAML_TRICKS, ids=range(len(YAML_TRICKS)))
def test_every_yaml_trick_alone_and_planted(trick):
    assert answer(trick) == "refused"
    planted = yaml.safe_dump(BASE, sort_keys=False).replace("seed: 0", "seed: " + trick.replace("\n", " "), 1)
    answer(planted)


def test_billion_laughs_is_refused_quickly():
    started = time.process_time()
    with pytest.raises(SpecError, match=f"more than {MAX_NODES:,} values"):
        read_yaml(alias_bomb(10, 9), "bomb.yaml")  # 10**9 'lol's if expanded
    assert time.process_time() - started < 1.0


def test_huge_integers_in_any_notation_are_refused_cleanly():
    for number in ["0x" + "f" * 5000, "0b" + "1" * 20000, "0" + "7" * 5000, ":".join(["59"] * 2000), "9" * 5000]:
        with pytest.raises(SpecError, match="big.yaml"):
            data, lines = read_yaml(yaml.safe_dump(BASE).replace("seed: 0", f"seed: {number}"), "big.yaml")
            parse_study(data, "big.yaml", lines)
    with pytest.raises(SpecError, match="seed"):
        parse_study({**BASE, "seed": 10**5000})  # from Python, too


def test_strings_that_are_not_text_are_refused_with_their_line():
    # YAML escapes can make unpaired surrogates: no terminal, file or database can hold them.
    text = yaml.safe_dump(BASE, sort_keys=False)
    for planted in (text.replace("name: digits", 'name: "\\ud800"'), text.replace("  A:\n", '  "\\udfff":\n')):
        with pytest.raises(SpecError, match=r"s.yaml:\d+: the (string|key) '\\ud[8f]\w\w' holds an unpaired surrogate"):
            read_yaml(planted, "s.yaml")
    with pytest.raises(SpecError, match="unpaired surrogate"):
        parse_study({**BASE, "dataset": {"name": "\ud800"}})  # from Python, too


def test_a_plan_of_millions_of_runs_is_refused_before_it_is_expanded():
    spec = {**BASE, "sweep": {"conv.filters": list(range(1, 1001)), "train.optimizer.lr": [0.1] * 1000}, "repeats": 1000}
    started = time.process_time()
    with pytest.raises(SpecError, match="runs"):
        expand(parse_study(spec))
    assert time.process_time() - started < 1.0


# ---------------------------------------------------------------- through the command line


CLI_CASES = {
    "alias bomb": alias_bomb(10, 9),
    "python object tag": "name: x\nseed: !!python/object/apply:os.system ['touch /tmp/cnnlab-fuzz-pwned']\n",
    "huge hex integer": yaml.safe_dump(BASE).replace("seed: 0", "seed: 0x" + "f" * 5000),
    "not utf-8": "name: caf\xe9\n",
    "unpaired surrogate": yaml.safe_dump(BASE).replace("name: digits", 'name: "\\ud800"'),
    "wrong types": yaml.safe_dump({**BASE, "repeats": "many", "architectures": {"A": [{"dense": {"units": [1, 2]}}]}}),
}


def test_cnnlab_spec_answers_hostile_files_with_status_2_and_no_traceback(tmp_path):
    for name, text in CLI_CASES.items():
        path = tmp_path / (name.replace(" ", "_") + ".yaml")
        path.write_bytes(text.encode("latin-1" if name == "not utf-8" else "utf-8"))
        started = time.monotonic()
        result = cnnlab("spec", path, timeout=60)
        assert_clean_error(result, 2, str(path))
        assert result.stderr.startswith("error: "), result.stderr
        assert time.monotonic() - started < 30
    import os

    assert not os.path.exists("/tmp/cnnlab-fuzz-pwned")


# ---------------------------------------------------------------- absurd but valid


def test_a_billion_unit_dense_layer_is_refused_by_validation():
    spec = copy.deepcopy(BASE)
    spec["architectures"]["A"][3] = {"dense": 10**9}
    with pytest.raises(SpecError, match=r"architectures\.A\[3\]\.dense: expected less than or equal to 1000000; found 1000000000"):
        parse_study(spec)


def test_a_huge_but_allowed_model_is_refused_before_allocating(tmp_path):
    import resource

    from cnnlab.errors import ModelError
    from cnnlab.models import build_model

    spec = copy.deepcopy(BASE)
    spec["dataset"] = {"name": "cifar10"}
    # 3 x 32 x 32 = 3,072 features into a million units: 3.07e9 weights (12 GB of float32).
    spec["architectures"] = {"A": ["flatten", {"dense": 10**6}, {"dense": 10}]}
    spec["sweep"] = {}
    study = parse_study(spec)
    plan = expand(study)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.process_time()
    problems = check_models(study, plan)
    assert problems and ("parameters" in problems[0] or "elements" in problems[0]), problems
    with pytest.raises(ModelError, match="refused before"):
        build_model(plan[0].layer_list(), (3, 32, 32), 10)
    assert time.process_time() - started < 1.0
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 100_000  # kB: nothing big was allocated
    path = tmp_path / "huge.yaml"
    path.write_text(yaml.safe_dump(spec))
    result = cnnlab("spec", path)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "cannot be built" in result.stderr and "refused before allocating" in result.stderr


def test_a_batch_larger_than_the_training_split_trains_one_short_batch_per_epoch(tmp_path):
    """Kept as Keras and PyTorch do it: one batch of the whole split per epoch (see the
    hardening notes for the proposed warning)."""
    import torch

    from cnnlab.api import open_store, run_study

    spec = copy.deepcopy(BASE)
    spec.update(sweep={}, variants={"none": {}}, repeats=1, architectures={"B": BASE["architectures"]["B"]})
    spec["dataset"] = {"name": "digits", "split": {"train": 40, "val": 20, "test": 20}}
    spec["train"] = {"batch_size": 100_000, "epochs": 2}
    from cnnlab.execute.progress import StudyProgress

    class Messages(StudyProgress):
        said: list = []

        def message(self, text):
            self.said.append(text)

    threads = torch.get_num_threads()
    try:
        assert run_study(spec, tmp_path, threads=1, progress=Messages()).outcome.ok
    finally:
        torch.set_num_threads(threads)
    assert Messages.said == ["warning: train.batch_size 100,000 is larger than the training split (40 images): "
                             "each epoch is one batch of 40"]
    with open_store(tmp_path) as store:
        (run,) = store.runs()
        assert run["split_sizes"]["train"] == 40 and len(store.epochs(run["id"])) == 2


def test_a_model_whose_activations_cannot_fit_in_memory_is_refused_before_training():
    spec = copy.deepcopy(BASE)
    spec.update(sweep={}, variants={"none": {}}, repeats=1)
    spec["architectures"] = {"wide": [{"conv": {"filters": 10**6, "kernel": 1}}, "globalavgpool", {"dense": 10}]}
    study = parse_study(spec)
    problems = check_models(study, expand(study))  # nothing is allocated here
    assert problems and "memory" in problems[0]
