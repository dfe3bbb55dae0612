"""The dataset layer: exact splits, every benchmark loader, user files, errors, fetch."""

from __future__ import annotations

import functools
import hashlib
import http.server
import json
import re
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from opro.data import (
    ALL_FILES,
    BBH_KINDS,
    BBH_TASKS,
    DATASETS,
    MANIFEST,
    MMLU_SUBJECTS,
    Dataset,
    bbh_kind,
    default_data_dir,
    fetch_benchmarks,
    load_dataset,
    resolve_data_dir,
    select_files,
    split_indices,
    subsample,
)
from opro.data.fetch import DEFAULT_SOURCE, SOURCE_COMMIT, checksums
from opro.errors import ConfigError
from opro.llm.fake import FakeLLM
from opro.problems.instructions.kind import KIND as INSTRUCTIONS
from opro.problems.instructions.spec import InstructionsSpec
from tests.conftest import SHARED_DATA

FIX = "give `data_dir` or set OPRO_DATA_DIR"


@pytest.fixture
def data_env(monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("OPRO_DATA_DIR", str(SHARED_DATA))
    return SHARED_DATA


def one_line_error(exc: pytest.ExceptionInfo[ConfigError], *needles: str) -> str:
    message = str(exc.value)
    assert "\n" not in message, message
    for needle in needles:
        assert needle in message, (needle, message)
    return message


# --- splits ---------------------------------------------------------------------------


def test_gsm8k_split_matches_the_papers_indices() -> None:
    train, test = split_indices(7473, 0.035, seed=0)
    assert len(train) == 261
    assert train[:8] == [29, 33, 38, 39, 42, 49, 72, 98]
    assert len(test) == 7473 - 261


@pytest.mark.parametrize(("n", "ratio"), [(250, 0.2), (187, 0.2), (7473, 0.035), (10, 1.0)])
def test_split_is_disjoint_covering_sorted_and_deterministic(n: int, ratio: float) -> None:
    train, test = split_indices(n, ratio, seed=3)
    assert len(train) == int(ratio * n)
    assert not set(train) & set(test)
    assert sorted(train + test) == list(range(n))
    assert train == sorted(train)
    assert test == sorted(test)
    assert split_indices(n, ratio, seed=3) == (train, test)
    if 0 < len(train) < n:
        assert split_indices(n, ratio, seed=4) != (train, test)


def test_bbh_split_sizes() -> None:
    train, test = split_indices(250, 0.2)
    assert (len(train), len(test)) == (50, 200)


def test_split_leaves_numpy_global_state_alone() -> None:
    np = pytest.importorskip("numpy")
    np.random.seed(123)
    expected = np.random.rand()
    np.random.seed(123)
    split_indices(100, 0.5, seed=0)
    assert np.random.rand() == expected


@pytest.mark.parametrize("ratio", [0.0, -0.1, 1.5])
def test_bad_ratio_is_a_config_error(ratio: float) -> None:
    with pytest.raises(ConfigError) as exc:
        split_indices(10, ratio)
    one_line_error(exc, "train_ratio", "(0, 1]")


def test_subsample() -> None:
    items = tuple(range(100))
    picked = subsample(items, 10, seed=1)
    assert len(picked) == 10
    assert list(picked) == sorted(picked)
    assert subsample(items, 10, seed=1) == picked
    assert subsample(items, 100) == items
    assert subsample(items, 500) == items
    with pytest.raises(ConfigError) as exc:
        subsample(items, 0)
    one_line_error(exc, "give max_train N")


# --- benchmark loaders ---------------------------------------------------------------


def test_kind_tables() -> None:
    assert len(BBH_TASKS) == 27 == len(BBH_KINDS)
    assert sorted(p.stem for p in (SHARED_DATA / "BIG-Bench-Hard-data").glob("*.json")) == list(
        BBH_TASKS
    )
    assert sorted(
        p.name[: -len("_test.csv")] for p in (SHARED_DATA / "MMLU-data/test").iterdir()
    ) == (list(MMLU_SUBJECTS))
    assert bbh_kind("object_counting") == "numeric"
    assert bbh_kind("web_of_lies") == "boolean"
    assert bbh_kind("word_sorting") == "text"
    assert bbh_kind("snarks") == "choice"
    assert set(DATASETS) >= {"gsm8k", "bbh:TASK", "multiarith", "aqua", "jsonl:PATH"}


@pytest.mark.parametrize("task", BBH_TASKS)
def test_every_bbh_task_loads(task: str, data_env: Path) -> None:
    data = load_dataset(f"bbh:{task}")
    n = len(json.loads((data_env / "BIG-Bench-Hard-data" / f"{task}.json").read_text())["examples"])
    assert data.name == f"bbh:{task}"
    assert data.kind == BBH_KINDS[task]
    assert len(data.train) == int(0.2 * n)
    assert len(data.test) == n - int(0.2 * n)
    assert all(e.kind == data.kind for e in data.split("all"))
    assert [e.index for e in data.split("all")] == list(range(n))
    if data.kind == "choice":
        assert all(e.answer.startswith("(") and e.answer.endswith(")") for e in data.train)


def test_bbh_boolean_expressions_details(data_env: Path) -> None:
    data = load_dataset("bbh:boolean_expressions")
    assert (len(data.train), len(data.test)) == (50, 200)
    assert data.task == "boolean expressions"
    assert {e.answer for e in data.train} == {"True", "False"}
    assert load_dataset("bbh:dyck_languages").split("all")[0].answer == "] ]"


def test_gsm8k(data_env: Path) -> None:
    data = load_dataset("gsm8k")
    assert (len(data.train), len(data.test)) == (261, 1319)
    assert [e.index for e in data.train[:8]] == [29, 33, 38, 39, 42, 49, 72, 98]
    assert data.kind == "numeric"
    assert data.task == "grade school math"
    assert data.test[0].index == 0
    assert data.test[-1].index == 1318
    assert all(e.answer.lstrip("-").isdigit() for e in data.train + data.test)
    assert len(data.split("all")) == 261 + 1319
    assert len(load_dataset("gsm8k", train_ratio=0.1).train) == 747


def test_multiarith(data_env: Path) -> None:
    data = load_dataset("multiarith")
    everything = data.split("all")
    assert len(everything) == 600
    # A transfer test set, as in the paper: the whole file is the test fold.
    assert (len(data.train), len(data.test)) == (0, 600)
    assert data.test == everything
    assert everything[0].answer == "39"
    assert not everything[0].question.startswith(" ")
    assert all(not e.answer.endswith(".0") for e in everything)
    split = load_dataset("multiarith", train_ratio=0.2)  # still available on request
    assert (len(split.train), len(split.test)) == (120, 480)
    assert split.train[0].index == split_indices(600, 0.2)[0][0]


def test_transfer_sets_cannot_be_optimised_without_a_way_out(data_env: Path) -> None:
    for name in ("multiarith", "aqua"):
        with pytest.raises(ConfigError) as exc:
            load_dataset(name).check_trainable()
        one_line_error(exc, "transfer test set", "optimise on gsm8k", f"--dataset {name}")
    load_dataset("aqua", train_ratio=0.5).check_trainable()
    load_dataset("bbh:navigate").check_trainable()
    apis = {"scorer": "completion", "optimizer": "completion"}
    spec = InstructionsSpec(dataset="aqua").resolved(apis)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="opro evaluate --dataset aqua"):  # `opro optimize`
        INSTRUCTIONS.build(spec, {"scorer": FakeLLM("echo")})


def test_aqua(data_env: Path) -> None:
    data = load_dataset("aqua")
    everything = data.split("all")
    assert len(everything) == 254
    assert (len(data.train), len(data.test)) == (0, 254)
    assert data.kind == "choice"
    first = everything[0]
    assert first.answer in {"(A)", "(B)", "(C)", "(D)", "(E)"}
    # As the authors build it: each raw option behind "(", then their question line.
    assert first.question.startswith("A car is being driven")
    assert "tower?\n(A)5(√3 + 1)\n(B)6(√3 + √2)\n" in first.question
    ask = "\nWhat's the answer in (A) (B) (C) (D) (E)?"
    assert all(e.question.endswith(ask) for e in everything)


def test_mmlu(data_env: Path) -> None:
    data = load_dataset("mmlu:abstract_algebra")
    everything = data.split("all")
    assert len(everything) == 100
    assert (len(data.train), len(data.test)) == (20, 80)
    q = everything[0].question
    assert q.startswith("Find the degree")
    assert q.endswith("\n(A) 0\n(B) 4\n(C) 2\n(D) 6\nWhat's the answer in (A) (B) (C) (D)?")
    assert everything[0].answer == "(B)"


def test_examples_know_their_dataset(data_env: Path) -> None:
    for spec in ("gsm8k", "bbh:snarks", "mmlu:anatomy", "aqua"):
        data = load_dataset(spec)
        assert {e.dataset for e in data.train + data.test} == {spec}


def test_max_train_and_explicit_data_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPRO_DATA_DIR", raising=False)
    full = load_dataset("bbh:navigate", SHARED_DATA)
    small = load_dataset("bbh:navigate", SHARED_DATA, max_train=7, seed=0)
    assert len(small.train) == 7
    assert set(small.train) <= set(full.train)
    assert [e.index for e in small.train] == sorted(e.index for e in small.train)
    assert small.test == full.test
    assert load_dataset("bbh:navigate", SHARED_DATA, max_train=10_000).train == full.train
    with pytest.raises(ConfigError):
        load_dataset("bbh:navigate", SHARED_DATA, max_train=0)


def test_data_dir_resolution(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("OPRO_DATA_DIR", str(tmp_path / "d"))
    assert default_data_dir() == tmp_path / "d"
    assert resolve_data_dir(None) == tmp_path / "d"
    assert resolve_data_dir(tmp_path / "x") == tmp_path / "x"
    monkeypatch.delenv("OPRO_DATA_DIR")
    assert default_data_dir() == tmp_path / "cache" / "data"  # conftest's OPRO_CACHE_DIR


# --- user files ----------------------------------------------------------------------


def test_jsonl_user_file(tmp_path: Path) -> None:
    path = tmp_path / "my_qa.jsonl"
    rows = [{"question": f"q{i}", "answer": i * 1.0} for i in range(8)]
    rows += [
        {"question": "yes?", "answer": True, "kind": "boolean"},
        {"question": "t", "answer": "x"},
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n")
    data = load_dataset(f"jsonl:{path}")
    assert data.name == f"jsonl:{path.resolve()}"
    assert data.task == "my qa"
    assert data.kind == "text"
    assert (len(data.train), len(data.test)) == (2, 8)
    everything = data.split("all")
    assert [e.answer for e in everything[:3]] == ["0", "1", "2"]
    assert everything[8].kind == "boolean"
    assert everything[8].answer == "True"
    assert isinstance(data, Dataset)


def test_csv_user_file_with_kinds(tmp_path: Path) -> None:
    path = tmp_path / "quiz.csv"
    lines = ["question,answer,kind"] + [f'"What is {i}, plus 1?",{i + 1},numeric' for i in range(9)]
    lines.append("Pick one,(B),choice")
    path.write_text("\n".join(lines) + "\n")
    data = load_dataset(f"csv:{path}", train_ratio=0.5)
    assert data.kind == "numeric"
    assert (len(data.train), len(data.test)) == (5, 5)
    everything = data.split("all")
    assert everything[0].question == "What is 0, plus 1?"
    assert everything[0].answer == "1"
    assert everything[9].kind == "choice"
    plain = tmp_path / "plain.csv"
    plain.write_text("answer,question\n4,2+2\n")
    assert load_dataset(f"csv:{plain}", train_ratio=1.0).train[0].kind == "text"


# --- errors --------------------------------------------------------------------------


def test_unknown_dataset_suggests() -> None:
    with pytest.raises(ConfigError) as exc:
        load_dataset("gsm9k")
    one_line_error(exc, "did you mean gsm8k?", "choose from gsm8k, bbh:TASK", "jsonl:PATH")


def test_unknown_bbh_task_suggests(data_env: Path) -> None:
    with pytest.raises(ConfigError) as exc:
        load_dataset("bbh:boolean_expresions")
    one_line_error(exc, "did you mean boolean_expressions?", "opro data list")
    with pytest.raises(ConfigError) as exc:
        load_dataset("bbh")
    one_line_error(exc, "bbh:TASK")


def test_missing_data_dir_and_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPRO_DATA_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(ConfigError) as exc:
        load_dataset("gsm8k")
    one_line_error(exc, "nowhere", "not found", FIX, "opro data fetch")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError) as exc:
        load_dataset("multiarith", tmp_path / "empty")
    one_line_error(exc, "MultiArith.json not found", FIX)


def _fake_data_dir(tmp_path: Path, rel: str, content: str) -> Path:
    path = tmp_path / "data" / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content)
    return tmp_path / "data"


@pytest.mark.parametrize(
    ("spec", "rel", "content", "needles"),
    [
        ("bbh:navigate", "BIG-Bench-Hard-data/navigate.json", '{"examples": [', ["bad JSON"]),
        ("aqua", "AQuA-data/AQuA.json", '{"question": "q"}\n{oops\n', ["line 1", "'options'"]),
        ("aqua", "AQuA-data/AQuA.json", "\n{oops\n", ["bad JSON at line 2"]),
        ("bbh:navigate", "BIG-Bench-Hard-data/navigate.json", '{"examples": [{"input": "x"}]}',
         ["example 0", "'target'"]),
        ("multiarith", "MultiArith-data/MultiArith.json", "[]", ["empty dataset"]),
        ("gsm8k", "gsm_data/gsm_train.tsv", "q\t1\n", ["line 1", "columns, expected 3"]),
        ("mmlu:anatomy", "MMLU-data/test/anatomy_test.csv", "q,a,b\n", ["line 1"]),
        ("bbh:navigate", "BIG-Bench-Hard-data/navigate.json", "", ["bad JSON"]),
    ],
)  # fmt: skip
def test_malformed_benchmark_files(
    tmp_path: Path, spec: str, rel: str, content: str, needles: list[str]
) -> None:
    root = _fake_data_dir(tmp_path, rel, content)
    with pytest.raises(ConfigError) as exc:
        load_dataset(spec, root)
    one_line_error(exc, Path(rel).name, "opro data fetch --force", *needles)


def test_non_utf8_file(tmp_path: Path) -> None:
    root = _fake_data_dir(tmp_path, "AQuA-data/AQuA.json", "")
    (root / "AQuA-data/AQuA.json").write_bytes(b'{"question": "\xff"}\n')
    with pytest.raises(ConfigError) as exc:
        load_dataset("aqua", root)
    one_line_error(exc, "not UTF-8")


@pytest.mark.parametrize(
    ("name", "content", "needles"),
    [
        ("a.jsonl", '{"question": "q", "answer": 1}\n{"question": "q2"}\n', ["line 2", "'answer'"]),
        ("a.jsonl", '{"question": "q", "answer": 1}\nnot json\n', ["line 2", "bad JSON"]),
        ("a.jsonl", "\n\n", ["empty dataset"]),
        ("a.jsonl", '{"question": "q", "answer": 1, "kind": "bool"}\n', ["kind 'bool'"]),
        ("a.csv", "question,answer\n", ["empty dataset"]),
        ("a.csv", "", ["empty dataset"]),
        ("a.csv", "question,solution\nq,1\n", ["line 2", "'answer'"]),
        ("a.csv", "question,answer\nq,1,extra\n", ["line 2", "more columns"]),
    ],
)
def test_malformed_user_files(tmp_path: Path, name: str, content: str, needles: list[str]) -> None:
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(ConfigError) as exc:
        load_dataset(f"{path.suffix[1:]}:{path}")
    one_line_error(exc, name, "fix the file", *needles)


def test_missing_user_file_and_tiny_train_fold(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as exc:
        load_dataset(f"jsonl:{tmp_path / 'nope.jsonl'}")
    one_line_error(exc, "nope.jsonl not found", "check the path")
    path = tmp_path / "four.jsonl"
    path.write_text('{"question": "q", "answer": 1}\n' * 4)
    tiny = load_dataset(f"jsonl:{path}")  # 20 % of 4 is no training example: evaluating works
    assert (len(tiny.train), len(tiny.split("all"))) == (0, 4)
    with pytest.raises(ConfigError) as exc:  # optimizing names the real ways out
        tiny.check_trainable()
    one_line_error(exc, "no training examples", "train_size", "train_ratio", "test_dataset")
    assert len(load_dataset(f"jsonl:{path}", train_size=2).train) == 2
    with pytest.raises(ConfigError) as exc:
        load_dataset(f"jsonl:{path}", train_size=4)
    one_line_error(exc, "has 4 examples", "train_size 4 leaves none to test on")


# --- fetch ---------------------------------------------------------------------------


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Path]]:
    """A local HTTP server over a copy of a few real benchmark files."""
    for name in ("no_proxy", "NO_PROXY"):
        monkeypatch.setenv(name, "127.0.0.1,localhost")
    root = tmp_path / "served"
    for rel in ("BIG-Bench-Hard-data/boolean_expressions.json", "MultiArith-data/MultiArith.json"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(SHARED_DATA / rel, root / rel)
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", root
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_manifest_and_selection() -> None:
    assert len(MANIFEST["bbh"]) == 27
    assert len(MANIFEST["mmlu"]) == 57
    assert all((SHARED_DATA / rel).is_file() for group in MANIFEST.values() for rel in group)
    assert select_files(["aqua", "gsm8k"]) == (
        "gsm_data/gsm_train.tsv",
        "gsm_data/gsm_test.tsv",
        "AQuA-data/AQuA.json",
    )
    assert len(select_files()) == 2 + 27 + 1 + 1 + 57
    with pytest.raises(ConfigError) as exc:
        select_files(["bhh"])
    one_line_error(exc, "did you mean bbh?")
    with pytest.raises(ConfigError) as exc:
        select_files(files=["AQuA-data/aqua.json"])
    one_line_error(exc, "did you mean AQuA-data/AQuA.json?")


def test_fetch_downloads_validates_and_skips(served: tuple[str, Path], tmp_path: Path) -> None:
    url, _ = served
    dest = tmp_path / "dest"
    files = ["BIG-Bench-Hard-data/boolean_expressions.json", "MultiArith-data/MultiArith.json"]
    written = fetch_benchmarks(dest, base_url=url, files=files)
    assert written == [dest / rel for rel in files]
    for rel in files:
        assert (dest / rel).read_bytes() == (SHARED_DATA / rel).read_bytes()
    assert len(load_dataset("bbh:boolean_expressions", dest).train) == 50
    assert len(load_dataset("multiarith", dest).split("all")) == 600
    assert fetch_benchmarks(dest, base_url=url, files=files) == []  # already there
    assert fetch_benchmarks(dest, base_url=url, only=["multiarith"], force=True) == [
        dest / "MultiArith-data/MultiArith.json"
    ]
    assert not list(dest.rglob("*.part"))


def test_fetch_uses_env_source_and_dir(
    served: tuple[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, _ = served
    monkeypatch.setenv("OPRO_DATA_URL", url)
    monkeypatch.setenv("OPRO_DATA_DIR", str(tmp_path / "env-dest"))
    written = fetch_benchmarks(only=["multiarith"])
    assert written == [tmp_path / "env-dest" / "MultiArith-data/MultiArith.json"]


def test_fetch_404_leaves_nothing(served: tuple[str, Path], tmp_path: Path) -> None:
    url, _ = served
    dest = tmp_path / "dest"
    with pytest.raises(ConfigError) as exc:
        fetch_benchmarks(dest, base_url=url, only=["aqua"])
    one_line_error(exc, "could not download", "AQuA.json", "404", "`source` URL")
    assert not [p for p in dest.rglob("*") if p.is_file()]


@pytest.mark.parametrize("damage", ["truncated", "altered", "not json"])
def test_fetch_refuses_a_file_that_is_not_the_authors(
    served: tuple[str, Path], tmp_path: Path, damage: str
) -> None:
    url, root = served
    served_file = root / "MultiArith-data/MultiArith.json"
    data = served_file.read_bytes()
    middle = len(data) // 2
    served_file.write_bytes(
        {
            "truncated": data[:middle],
            "altered": data[:middle] + bytes([data[middle] ^ 1]) + data[middle + 1 :],
            "not json": b'[{"sQuestion": "q"',
        }[damage]
    )
    dest = tmp_path / "dest"
    dest.mkdir()
    with pytest.raises(ConfigError) as exc:
        fetch_benchmarks(dest, base_url=url, files=["MultiArith-data/MultiArith.json"])
    message = one_line_error(exc, "MultiArith.json", "SHA-256", "truncated or altered", "`source`")
    assert url in message
    assert not [p for p in dest.rglob("*") if p.is_file()]  # nothing partial, no .part


def test_checksums_pin_every_file_of_the_pinned_commit() -> None:
    assert SOURCE_COMMIT in DEFAULT_SOURCE
    listed = checksums()
    assert set(listed) == set(ALL_FILES)
    for rel in ALL_FILES:  # ../shared/data holds the authors' files: each digest is theirs
        assert hashlib.sha256((SHARED_DATA / rel).read_bytes()).hexdigest() == listed[rel], rel


def test_fetch_unreachable_source(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as exc:
        fetch_benchmarks(tmp_path, base_url="http://127.0.0.1:9", only=["aqua"], timeout=5)
    one_line_error(exc, "could not download", "check your connection")
    with pytest.raises(ConfigError) as exc:
        fetch_benchmarks(tmp_path, base_url="not-a-url", only=["aqua"])
    one_line_error(exc, "could not download")
    assert not [p for p in tmp_path.rglob("*.part")]


def test_data_commands(served: tuple[str, Path], tmp_path: Path) -> None:
    """`opro data fetch` into a dir, then `opro optimize`'s loader reads it; `opro data list`."""
    from tests.conftest import run_cli

    url, _ = served
    dest = tmp_path / "fetched"
    env = {"no_proxy": "127.0.0.1,localhost", "NO_PROXY": "127.0.0.1,localhost"}
    fetched = run_cli(
        "data", "fetch", "--only", "multiarith", "--source", url, "--data-dir", str(dest), env=env
    )
    assert fetched.returncode == 0, fetched.stderr
    assert "1 file(s) downloaded" in fetched.stdout
    assert len(load_dataset("multiarith", dest).split("all")) == 600
    missing = run_cli("data", "fetch", "--only", "aqua", "--source", url, "--data-dir", str(dest))
    assert missing.returncode == 2
    assert "could not download" in missing.stderr
    assert not (dest / "AQuA-data" / "AQuA.json").exists()
    listed = run_cli("data", "list", "--data-dir", str(dest))
    assert "bbh:TASK" in listed.stdout
    assert "boolean_expressions" in listed.stdout


def test_the_generated_adjective_order_task_needs_no_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from opro.data.synthetic import ORDER

    monkeypatch.setenv("OPRO_DATA_DIR", str(tmp_path / "nothing-here"))
    data = load_dataset("synthetic:adjective_order")
    assert (len(data.train), len(data.test), data.kind) == (50, 200, "choice")
    assert data == load_dataset("synthetic:adjective_order")  # the same everywhere
    examples = data.train + data.test
    assert sorted(e.answer for e in examples).count("(A)") == 125
    rank = {word: r for r, (_, words) in enumerate(ORDER) for word in words}
    for e in examples:
        options = dict(re.findall(r"^(\(\w\)) (.*)$", e.question, flags=re.MULTILINE))
        right, wrong = options[e.answer], options[{"(A)": "(B)", "(B)": "(A)"}[e.answer]]
        ranks = [rank[w] for w in right.split()[:-1]]
        assert ranks == sorted(set(ranks)), e.question  # in order, each category once
        assert sorted(wrong.split()) == sorted(right.split())
        assert wrong != right
    with pytest.raises(ConfigError, match=r"unknown generated task 'adjective_ordr'.*_order"):
        load_dataset("synthetic:adjective_ordr")
