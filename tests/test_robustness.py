"""Bad input gets one clear message (problem + fix); the CLI prints one `error:` line, exits 2 and
leaves nothing half-written; what simcse_lab saves and loads cannot run code.

References the tests check against, independent of the code under test:
- the CLI contract (exit status 2, no traceback, one `error:` line) read from a real subprocess;
- truncation: the model run by hand on `[CLS] + first L-2 word pieces + [SEP]`;
- safety: a pickle whose loading would create a marker file (the marker must not appear);
- the source itself, parsed with `ast`, for from_pretrained / subprocess / shell / pickle calls.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

import simcse_lab
from simcse_lab import geometry
from simcse_lab.commands.cli import main
from simcse_lab.data import load_sts, load_training_file, read_sentences
from simcse_lab.models.encoder import SimCSEEncoder
from simcse_lab.errors import SimCSELabError, SimCSELabTypeError

PACKAGE_DIR = Path(simcse_lab.__file__).parent
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


def subprocess_env(**extra) -> dict:
    """The test's environment for a child python, offline (no 30 s of hub retries) and import-ready."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYTHONWARNINGS": "ignore", **extra}
    env["PYTHONPATH"] = os.pathsep.join([str(PACKAGE_DIR.parent), env.get("PYTHONPATH", "")])
    return env


def assert_one_error_line(stderr: str, *needles: str) -> str:
    """stderr holds exactly one line starting with 'error: ', no traceback; return that line."""
    lines = [line for line in stderr.splitlines() if line.startswith("error: ")]
    assert "Traceback" not in stderr, stderr
    assert len(lines) == 1, stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


@pytest.fixture(scope="module")
def tiny_encoder(tiny_model_dir) -> SimCSEEncoder:
    return SimCSEEncoder.from_pretrained(tiny_model_dir, pooler="avg", device="cpu")


# --------------------------------------------------------------------------- training files


@pytest.fixture
def files(tmp_path) -> dict[str, Path]:
    """One small file per kind of bad (or awkward) training input."""
    made = {
        "empty.txt": "",
        "blank.txt": "\n  \n\t\n",
        "four_columns.csv": "a,b,c,d\n1,2,3,4\n",
        "one_column.csv": "sent0\nx\n",
        "ragged.csv": "sent0,sent1\nx,y\nz\n",
        "header_only.csv": "sent0,sent1\n",
        "few.txt": "one sentence\nanother one\n",
    }
    paths = {}
    for name, text in made.items():
        paths[name] = tmp_path / name
        paths[name].write_text(text)
    (tmp_path / "a_directory").mkdir()
    paths["a_directory"] = tmp_path / "a_directory"
    paths["missing.txt"] = tmp_path / "missing.txt"
    return paths


@pytest.mark.parametrize("name, needles", [
    ("missing.txt", ["does not exist", "check the path"]),
    ("empty.txt", ["is empty", "one sentence per line"]),
    ("blank.txt", ["holds no sentences", "only empty lines"]),
    ("a_directory", ["is a directory", "pass a .txt file"]),
    ("four_columns.csv", ["expected a CSV header", "sent0,sent1", "hard_neg", "found 4 column(s)"]),
    ("one_column.csv", ["expected a CSV header", "sent0,sent1", "found 1 column(s)"]),
    ("ragged.csv", ["line 3", "expected 2 non-empty columns ['sent0', 'sent1']"]),
    ("header_only.csv", ["has a header but no rows"]),
])
@pytest.mark.filterwarnings("ignore:.*skipped .* empty line")
def test_bad_training_file_names_problem_and_fix(files, name, needles):
    with pytest.raises(SimCSELabError) as caught:
        load_training_file(files[name])
    for needle in needles:
        assert needle in str(caught.value)


def test_empty_lines_are_skipped_with_a_count(tmp_path):
    path = tmp_path / "gaps.txt"
    path.write_text("first\n\n   \nsecond\n\t\nthird\n")
    with pytest.warns(UserWarning, match=r"skipped 3 empty line\(s\)"):
        sentences, skipped = read_sentences(path)
    assert sentences == ["first", "second", "third"] and skipped == 3
    csv_path = tmp_path / "gaps.csv"
    csv_path.write_text('sent0,sent1\na,b\n,\n"c, with comma",d\n')
    with pytest.warns(UserWarning, match=r"skipped 1 empty row\(s\)"):
        data = load_training_file(csv_path)
    assert data.rows == [("a", "b"), ("c, with comma", "d")] and data.mode == "pairs"


def test_unreadable_file_message(tmp_path, monkeypatch):
    """os.access semantics: what the process may read, so the check is right for root as well."""
    path = tmp_path / "locked.txt"
    path.write_text("a sentence\n")
    monkeypatch.setattr("simcse_lab.data.training_files.os.access", lambda p, mode: False)
    with pytest.raises(SimCSELabError, match="not readable .*chmod"):
        load_training_file(path)


@pytest.mark.skipif(IS_ROOT, reason="root reads a chmod 000 file anyway; test_unreadable_file_message covers the message")
def test_chmod_000_file_is_refused(tmp_path):
    path = tmp_path / "locked.txt"
    path.write_text("a sentence\n")
    path.chmod(0)
    try:
        with pytest.raises(SimCSELabError, match="not readable"):
            load_training_file(path)
    finally:
        path.chmod(0o644)


# --------------------------------------------------------------------------- encode


@pytest.mark.parametrize("bad, needle", [
    (["fine", 3], "item 1 is int"),
    (["fine", None], "item 1 is NoneType"),
    ([b"bytes"], "item 0 is bytes"),
    ([["nested"]], "item 0 is list"),
    (None, "got NoneType"),
    (5, "got int"),
])
def test_encode_rejects_non_strings(tiny_encoder, bad, needle):
    with pytest.raises(SimCSELabTypeError) as caught:
        tiny_encoder.encode(bad)
    assert needle in str(caught.value)
    assert isinstance(caught.value, TypeError)  # code catching TypeError keeps working


def test_encode_rejects_invalid_unicode(tiny_encoder):
    with pytest.raises(SimCSELabError, match=r"item 1 .*not valid Unicode .*lone surrogate.*encode\('utf-8', 'replace'\)"):
        tiny_encoder.encode(["fine", "bad \ud800 text"])
    with pytest.raises(SimCSELabError, match="item 0"):
        tiny_encoder.encode("\udfff")


def test_encode_empty_list_is_an_empty_matrix(tiny_encoder):
    out = tiny_encoder.encode([])
    assert out.shape == (0, tiny_encoder.hidden_size) and out.dtype == torch.float32


def test_over_long_sentence_equals_its_truncation(tiny_encoder):
    """A 5000-word sentence is cut at max_length tokens: compare with the model run by hand on the cut."""
    words = ("the man plays a guitar in the park and the dog runs " * 500).split()[:5000]
    sentence = " ".join(words)
    max_length = 16
    got = tiny_encoder.encode([sentence], max_length=max_length)
    tok = tiny_encoder.tokenizer
    pieces = tok(sentence, add_special_tokens=False)["input_ids"]
    assert len(pieces) > 1000
    ids = torch.tensor([[tok.cls_token_id, *pieces[: max_length - 2], tok.sep_token_id]])
    tiny_encoder.eval()
    with torch.no_grad():
        hidden = tiny_encoder.backbone(input_ids=ids, attention_mask=torch.ones_like(ids)).last_hidden_state
    torch.testing.assert_close(got, hidden.mean(1), atol=1e-5, rtol=1e-5)
    # the default max_length (128) is beyond this model's 64 positions: still encodes, cut at 64
    assert torch.isfinite(tiny_encoder.encode(sentence)).all()


# --------------------------------------------------------------------------- geometry


GEOMETRY_CALLS = {
    "average_cosine": lambda x: geometry.average_cosine(x),
    "uniformity": lambda x: geometry.uniformity(x),
    "alignment": lambda x: geometry.alignment(x, x[::-1].copy()),
    "singular_spectrum": lambda x: geometry.singular_spectrum(x),
    "cosine_matrix": lambda x: geometry.cosine_matrix(x),
    "pair_cosines": lambda x: geometry.pair_cosines(x, x),
    "whitening": lambda x: geometry.Whitening.fit(x),
}


@pytest.mark.parametrize("bad_value", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("name", sorted(GEOMETRY_CALLS))
def test_geometry_rejects_non_finite_embeddings(name, bad_value):
    x = np.random.default_rng(0).normal(size=(6, 4))
    GEOMETRY_CALLS[name](x)  # finite input works
    x[2, 1] = bad_value
    with pytest.raises(SimCSELabError, match=r"NaN or inf in 1 of 6 rows.*learning rate"):
        GEOMETRY_CALLS[name](x)


# --------------------------------------------------------------------------- data directory


def test_data_dir_missing_a_task_file_says_which_and_how_to_get_it(tmp_path):
    (tmp_path / "sts" / "STS12-en-test").mkdir(parents=True)
    with pytest.raises(SimCSELabError) as caught:
        load_sts("stsb", "dev", tmp_path)
    message = str(caught.value)
    assert str(tmp_path / "sts" / "STSBenchmark" / "sts-dev.csv") in message
    assert "SIMCSE_LAB_DATA" in message and "get_transfer_data.bash" in message
    with pytest.raises(SimCSELabError, match=r"STS\.input\.MSRpar\.txt"):
        load_sts("sts12", "test", tmp_path)


@pytest.mark.parametrize("call, valid", [
    (lambda model: load_sts("sts99"), "sts12, sts13, sts14, sts15, sts16, stsb, sickr"),
    (lambda model: load_sts("stsb", "validation"), "train, dev, test"),
    (lambda model: SimCSEEncoder.from_pretrained(model, pooler="mean"), "cls, cls_before_pooler, avg, avg_top2, avg_first_last"),
])
def test_unknown_choice_lists_the_valid_ones(tiny_model_dir, call, valid):
    with pytest.raises(SimCSELabError, match="valid .* are: " + valid):
        call(tiny_model_dir)


# --------------------------------------------------------------------------- the CLI, in-process


def train_args(model_dir: Path, train_file, output_dir: Path, *extra: str) -> list[str]:
    return ["train", "--model_name_or_path", str(model_dir), "--train_file", str(train_file), "--output_dir", str(output_dir),
            "--per_device_train_batch_size", "2", "--max_steps", "1", "--eval_steps", "0", "--no_progress", *extra]


@pytest.mark.parametrize("file_name, extra, needles", [
    ("missing.txt", [], ["does not exist"]),
    ("empty.txt", [], ["is empty"]),
    ("blank.txt", [], ["holds no sentences"]),
    ("a_directory", [], ["is a directory"]),
    ("four_columns.csv", [], ["expected a CSV header", "sent0,sent1"]),
    ("ragged.csv", [], ["line 3"]),
    ("few.txt", ["--per_device_train_batch_size", "4"], ["fewer than one batch of 4", "lower per_device_train_batch_size"]),
    ("few.txt", ["--per_device_train_batch_size", "1"], [">= 2 (contrastive learning needs in-batch negatives)"]),
    ("few.txt", ["--pooler_type", "mean"], ["unknown pooler 'mean'", "cls, cls_before_pooler, avg, avg_top2, avg_first_last"]),
    ("few.txt", ["--objective", "infonce"], ["unknown objective 'infonce'", "auto, simcse, sbert"]),
    ("few.txt", ["--on_nonfinite", "ignore"], ["unknown on_nonfinite mode 'ignore'", "stop, skip"]),
    ("few.txt", ["--augmentation", "synonym"], ["unknown augmentation 'synonym'", "none, crop, word_deletion, delete_one_word"]),
    ("few.txt", ["--fp16"], ["fp16 needs a CUDA GPU", "--bf16"]),
    ("few.txt", ["--torch_compile", "--torch_compile_mode", "cudagraphs"],
     ["unknown torch_compile_mode 'cudagraphs'", "default, reduce-overhead, max-autotune, max-autotune-no-cudagraphs"]),
    ("few.txt", ["--torch_compile_mode", "reduce-overhead"], ["needs torch_compile on", "--torch_compile"]),
    ("few.txt", ["--bert_forward", "fast"], ["unknown bert_forward 'fast'", "auto, own, transformers"]),
    ("few.txt", ["--resume_from_checkpoint", "/nonexistent/checkpoint-5"], ["not a complete simcse_lab checkpoint", "auto"]),
    ("few.txt", ["--config", "/nonexistent/recipe.json"], ["cannot read --config"]),
    ("few.txt", ["--config", "BAD_JSON"], ["is not valid JSON"]),
    ("few.txt", ["--config", "UNKNOWN_KEY"], ["unknown training setting(s) ['learning_rat']", "learning_rate"]),
    ("few.txt", ["--model_name_or_path", "/nonexistent/model"], ["is not a directory holding a saved model"]),
])
def test_cli_train_bad_input_one_error_line_and_no_output_dir(tiny_model_dir, files, tmp_path, capsys, file_name, extra, needles):
    if "BAD_JSON" in extra or "UNKNOWN_KEY" in extra:
        recipe = tmp_path / "recipe.json"
        recipe.write_text('{"learning_rate": 3e-5,}' if "BAD_JSON" in extra else '{"learning_rat": 3e-5}')
        extra = [str(recipe) if e in ("BAD_JSON", "UNKNOWN_KEY") else e for e in extra]
    if torch.cuda.is_available() and "--fp16" in extra:
        pytest.skip("fp16 is valid with a GPU")
    output_dir = tmp_path / "out"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        status = main(train_args(tiny_model_dir, files[file_name], output_dir, *extra))
    assert status == 2
    assert_one_error_line(capsys.readouterr().err, *needles)
    assert not output_dir.exists(), "a failed start must not leave an output directory behind"


def test_cli_train_refuses_a_non_empty_output_dir(tiny_model_dir, files, tmp_path, capsys):
    output_dir = tmp_path / "out"
    output_dir.mkdir()
    (output_dir / "results.json").write_text("{}")
    status = main(train_args(tiny_model_dir, files["few.txt"], output_dir))
    assert status == 2
    assert_one_error_line(capsys.readouterr().err, "already exists and is not empty", "--overwrite_output_dir",
                          "--resume_from_checkpoint auto")
    assert sorted(p.name for p in output_dir.iterdir()) == ["results.json"]


def test_cli_train_auto_resume_without_a_checkpoint(tiny_model_dir, files, tmp_path, capsys):
    """Killed after an evaluation saved best_model but before the first checkpoint: nothing to resume."""
    output_dir = tmp_path / "out"
    (output_dir / "best_model").mkdir(parents=True)
    status = main(train_args(tiny_model_dir, files["few.txt"], output_dir, "--resume_from_checkpoint", "auto"))
    assert status == 2
    assert_one_error_line(capsys.readouterr().err, "found no complete checkpoint-<step>", "--overwrite_output_dir")
    assert [p.name for p in output_dir.iterdir()] == ["best_model"]


def test_cli_train_output_dir_is_a_file(tiny_model_dir, files, tmp_path, capsys):
    (tmp_path / "out").write_text("not a directory")
    assert main(train_args(tiny_model_dir, files["few.txt"], tmp_path / "out")) == 2
    assert_one_error_line(capsys.readouterr().err, "exists and is a file", "choose another --output_dir")


@pytest.mark.parametrize("extra, needles", [
    (["--mode", "full"], ["unknown mode 'full'", "test, fasttest, dev"]),
    (["--task_set", "all"], ["unknown task_set 'all'", "transfer"]),
    (["--pooler", "max"], ["unknown pooler 'max'", "avg_first_last"]),
    (["--tasks", "sts99"], ["unknown task 'sts99'", "sickr", "mrpc"]),
    (["--tasks", "stsb", "--data_dir", "EMPTY"], ["sts-test.csv", "SIMCSE_LAB_DATA"]),
])
def test_cli_evaluate_bad_input(tiny_model_dir, tmp_path, capsys, extra, needles):
    extra = [str(tmp_path) if e == "EMPTY" else e for e in extra]
    status = main(["evaluate", "--model_name_or_path", str(tiny_model_dir), "--output", str(tmp_path / "r.json"), *extra])
    assert status == 2
    assert_one_error_line(capsys.readouterr().err, *needles)
    assert not (tmp_path / "r.json").exists()


# --------------------------------------------------------------------------- the CLI and the hub, as real processes


def test_cli_process_exit_status_and_stderr(tmp_path, tiny_model_dir):
    """A real `python -m simcse_lab`: status 2, one error line, no traceback, no output dir."""
    bad = tmp_path / "bad.csv"
    bad.write_text("only_one_column\nx\n")
    result = subprocess.run([sys.executable, "-m", "simcse_lab", *train_args(tiny_model_dir, bad, tmp_path / "out")],
                            capture_output=True, text=True, env=subprocess_env(), timeout=300, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert_one_error_line(result.stderr, "bad.csv", "sent0,sent1")
    assert not (tmp_path / "out").exists()


HUB_SCRIPT = textwrap.dedent("""
    import json
    from simcse_lab.models.encoder import SimCSEEncoder
    from simcse_lab.errors import SimCSELabError
    messages = {}
    for name in ("bert-base-uncased", "simcse-lab-test/no-such-model-xyz"):
        try:
            SimCSEEncoder.from_pretrained(name)
            messages[name] = "LOADED"
        except SimCSELabError as error:
            messages[name] = str(error)
    print(json.dumps(messages))
""")


def test_offline_hub_request_says_how_to_work_offline(tmp_path):
    """HF_HUB_OFFLINE=1 with an empty cache: both a real id and a nonexistent one get the offline advice."""
    env = subprocess_env(HF_HOME=str(tmp_path / "hf_home"))
    result = subprocess.run([sys.executable, "-c", HUB_SCRIPT], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    messages = json.loads(result.stdout.strip().splitlines()[-1])
    for name, message in messages.items():
        assert message.startswith(f"could not load model {name!r}"), message
        assert "local model directory" in message and "HF_HUB_OFFLINE=1" in message and "DEFAULT_MODEL" in message


# --------------------------------------------------------------------------- trust model


class Marker:
    """A pickle that, if ever unpickled with weights_only=False, creates a file."""

    def __init__(self, path: Path):
        self.path = str(path)

    def __reduce__(self):
        return (Path.touch, (Path(self.path),))


def test_saved_model_holds_only_safetensors_weights(tiny_encoder, tmp_path):
    tiny_encoder.save_pretrained(tmp_path / "saved")
    names = [p.relative_to(tmp_path / "saved").as_posix() for p in (tmp_path / "saved").rglob("*") if p.is_file()]
    assert "model.safetensors" in names
    assert not [n for n in names if n.endswith((".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt"))], names


def test_malicious_pytorch_model_bin_is_refused(tiny_model_dir, tmp_path):
    """transformers loads a .bin with torch.load(weights_only=True): a plain-tensor .bin loads (the official
    SimCSE checkpoints are .bin), a pickle that would run code is refused with one clear error."""
    from safetensors.torch import load_file

    model_dir = tmp_path / "bin_only"
    model_dir.mkdir()
    for item in tiny_model_dir.iterdir():
        if item.is_file() and item.name != "model.safetensors":
            (model_dir / item.name).write_bytes(item.read_bytes())
    weights = load_file(str(tiny_model_dir / "model.safetensors"))
    torch.save(weights, model_dir / "pytorch_model.bin")
    loaded = SimCSEEncoder.from_pretrained(model_dir, pooler="avg")
    assert torch.equal(loaded.backbone.embeddings.word_embeddings.weight, weights["embeddings.word_embeddings.weight"])

    marker = tmp_path / "code_ran"
    torch.save({**weights, "embeddings.word_embeddings.weight": Marker(marker)}, model_dir / "pytorch_model.bin")
    with pytest.raises(SimCSELabError, match="refused to load model .*pickled objects other than tensors"):
        SimCSEEncoder.from_pretrained(model_dir, pooler="avg")
    assert not marker.exists()


def test_trainer_state_with_a_pickled_object_fails_to_load(tmp_path):
    from simcse_lab.training import checkpoint

    marker = tmp_path / "code_ran"
    directory = tmp_path / "checkpoint-5"
    directory.mkdir()
    torch.save({"rng": {"torch": torch.get_rng_state()}, "optimizer": Marker(marker)}, directory / checkpoint.STATE_FILE)
    (directory / checkpoint.STATE_JSON).write_text("{}")
    with pytest.raises(SimCSELabError, match="cannot load the training state .*not written by simcse_lab"):
        checkpoint.load_training_state(directory)
    assert not marker.exists()
    # the same file without the object loads: the refusal is about the object, not the format
    torch.save({key: {} for key in checkpoint.STATE_TENSOR_KEYS} | {"rng": {"torch": torch.get_rng_state()}},
               directory / checkpoint.STATE_FILE)
    (directory / checkpoint.STATE_JSON).write_text(json.dumps({key: 0 for key in checkpoint.STATE_PLAIN_KEYS}))
    tensors, _ = checkpoint.load_training_state(directory)
    assert torch.equal(tensors["rng"]["torch"], torch.get_rng_state())


def library_calls() -> list[tuple[str, ast.Call]]:
    calls = []
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Call):
                calls.append((f"{path.name}:{node.lineno}", node))
    return calls


def call_name(node: ast.Call) -> str:
    """'a.b.c' for a call of a.b.c(...), '' for anything fancier."""
    parts, target = [], node.func
    while isinstance(target, ast.Attribute):
        parts.append(target.attr)
        target = target.value
    if isinstance(target, ast.Name):
        parts.append(target.id)
    return ".".join(reversed(parts))


def test_trust_remote_code_is_never_turned_on_implicitly():
    """Every from_pretrained call passes trust_remote_code as the caller's own variable or not at all
    (default False); no call spreads **kwargs, which could smuggle it in."""
    checked = 0
    for where, node in library_calls():
        if not call_name(node).endswith("from_pretrained"):
            continue
        checked += 1
        assert not any(k.arg is None for k in node.keywords), f"{where}: **kwargs in a from_pretrained call"
        for keyword in node.keywords:
            if keyword.arg == "trust_remote_code":
                value = keyword.value
                ok = (isinstance(value, ast.Name) and value.id == "trust_remote_code") or (
                    isinstance(value, ast.Constant) and value.value is False)
                assert ok, f"{where}: trust_remote_code={ast.unparse(value)}"
    assert checked >= 5, "the scan found too few from_pretrained calls: is it looking at the package?"
    import inspect
    assert inspect.signature(SimCSEEncoder.from_pretrained).parameters["trust_remote_code"].default is False


def test_loading_passes_trust_remote_code_false(tiny_model_dir, monkeypatch):
    """The same, observed at run time: what transformers actually receives."""
    import transformers

    seen = []
    for cls in (transformers.AutoConfig, transformers.AutoModel, transformers.AutoTokenizer):
        original = cls.from_pretrained.__func__

        def spy(klass, *args, _original=original, **kwargs):
            seen.append(kwargs.get("trust_remote_code", False))
            return _original(klass, *args, **kwargs)

        monkeypatch.setattr(cls, "from_pretrained", classmethod(spy))
    SimCSEEncoder.from_pretrained(tiny_model_dir)
    assert len(seen) >= 3 and not any(seen), seen  # config, model, tokenizer (+ the tokenizer's own config look-up)


def runs_code(name: str) -> bool:
    """Calls that run a shell, another program, or code/pickles from data."""
    exact = {"os.system", "os.popen", "eval", "exec", "compile", "pickle.load", "pickle.loads", "marshal.load", "marshal.loads",
             "shelve.open", "pty.spawn"}
    return name in exact or name.startswith(("subprocess.", "os.exec", "os.spawn", "os.posix_spawn"))


def test_library_runs_no_shell_and_unpickles_nothing_unsafely():
    """No subprocess / os.system / shell=True / eval / exec / pickle.load in the package; every
    torch.load passes weights_only=True."""
    problems = []
    for where, node in library_calls():
        name = call_name(node)
        if runs_code(name):
            problems.append(f"{where}: {name}(...)")
        if any(k.arg == "shell" and not (isinstance(k.value, ast.Constant) and k.value.value is False) for k in node.keywords):
            problems.append(f"{where}: shell=...")
        if name == "torch.load":
            weights_only = [k for k in node.keywords if k.arg == "weights_only"]
            if not (weights_only and isinstance(weights_only[0].value, ast.Constant) and weights_only[0].value.value is True):
                problems.append(f"{where}: torch.load without weights_only=True")
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                modules = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                problems += [f"{path.name}:{node.lineno}: imports {m}" for m in modules if m.split(".")[0] in ("subprocess", "marshal", "shelve")]
    assert not problems, problems
