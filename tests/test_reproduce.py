"""`simcse-lab reproduce`: the ledger's statistics against numpy/scipy, resuming after a kill, the recipe check."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import scipy.stats

from simcse_lab.commands import reproduce as rep
from simcse_lab.commands.ledger import COLUMNS, column_stats, ledger_markdown, parse_reference, summarize
from simcse_lab.training.config import TrainConfig
from simcse_lab.training.trainer import train as real_train

SEEDS_SMALL = dict(max_steps=6, per_device_train_batch_size=16, pooler_type="avg", eval_steps=3, save_steps=3, eval_max_pairs=40,
                   show_progress=False)


@pytest.mark.parametrize("n", [2, 3, 7])
def test_column_statistics_equal_numpy_and_scipy(n):
    values = np.random.default_rng(n).normal(60, 2, size=n)
    stats = column_stats(values)
    low, high = scipy.stats.t.interval(0.95, n - 1, loc=np.mean(values), scale=scipy.stats.sem(values))
    assert stats["mean"] == pytest.approx(np.mean(values), abs=1e-12)
    assert stats["std"] == pytest.approx(np.std(values, ddof=1), abs=1e-12)
    assert (stats["min"], stats["max"]) == (values.min(), values.max())
    assert stats["ci95"] == pytest.approx([low, high], abs=1e-10)


def test_one_seed_has_no_spread():
    assert column_stats([61.5]) == {"n": 1, "mean": 61.5, "std": None, "min": 61.5, "max": 61.5, "ci95": None}


def fake_record(seed, rng):
    tasks = ["sts12", "sts13", "sts14", "sts15", "sts16", "stsb", "sickr"]
    test = {f"{t}_test": float(rng.normal(55, 3)) for t in tasks}
    test["avg_test"] = float(np.mean(list(test.values())))
    return {"seed": seed, "best_step": 100 * seed, "stsb_dev": float(rng.normal(65, 1)), "sts_test": test, "wall_seconds": 10.0,
            "protocol": {"pooler": "avg", "pooler_description": "avg", "max_length": 128}}


def test_summary_and_markdown_are_computed_from_the_per_seed_values():
    rng = np.random.default_rng(0)
    records = [fake_record(s, rng) for s in (1, 2, 3)]
    summary = summarize(records)
    assert list(summary) == list(COLUMNS)
    for column in COLUMNS:
        values = [r["stsb_dev"] if column == "stsb_dev" else r["sts_test"][column] for r in records]
        assert summary[column]["mean"] == pytest.approx(np.mean(values)) and summary[column]["std"] == pytest.approx(np.std(values, ddof=1))
    ledger = {"name": "x", "recipe": {"learning_rate": 1e-4}, "per_seed": records, "summary": summary, "references": [],
              "environments": {"abc": {"id": "abc", "torch": "2"}}, "wall_seconds": {"seeds": 30, "total": 31, "invocations": [{}]}}
    markdown = ledger_markdown(ledger)
    assert "never used to select" in markdown and "STS-B dev (selection)" in markdown
    mean, std = summary["avg_test"]["mean"], summary["avg_test"]["std"]
    assert f"{mean:.2f} ± {std:.2f}" in markdown and "95% CI (t, 2 df)" in markdown


def test_parse_seeds_and_references():
    assert rep.parse_seeds("3") == [1, 2, 3] and rep.parse_seeds("1,5,2") == [1, 5, 2] and rep.parse_seeds("7,") == [7]
    for bad in ("0", "a", "1,1", "-2,3"):
        with pytest.raises(Exception, match="--seeds"):
            rep.parse_seeds(bad)
    reference = parse_reference("avg:73.16:76.70:75.11:simple-simcse README, 50 seeds")
    assert reference == {"column": "avg_test", "min": 73.16, "max": 76.70, "mean": 75.11, "label": "simple-simcse README, 50 seeds"}
    with pytest.raises(Exception, match="COLUMN:MIN:MAX"):
        parse_reference("bogus:1:2")


@pytest.fixture
def tiny_recipe(tiny_model_dir, wiki_file, data_dir, tmp_path):
    return TrainConfig(model_name_or_path=str(tiny_model_dir), train_file=str(wiki_file), output_dir=str(tmp_path / "run"),
                       data_dir=str(data_dir), **SEEDS_SMALL)


@pytest.fixture
def wiki_file(tmp_path):
    rng = np.random.default_rng(0)
    words = "a man plays the guitar dog runs in park woman sings on stage child eats food".split()
    path = tmp_path / "wiki.txt"
    path.write_text("\n".join(" ".join(rng.choice(words, size=rng.integers(3, 9))) for _ in range(200)) + "\n")
    return path


class Interrupt:
    """A trainer callback: the Ctrl-C (or kill) of a run, right after its first checkpoint is saved."""

    def on_save(self, state, path):
        raise KeyboardInterrupt


def test_interrupted_reproduce_resumes_without_rerunning_finished_seeds(tiny_recipe, tmp_path, monkeypatch):
    calls = []

    def recording_train(config, callbacks=()):
        calls.append((config.seed, config.resume_from_checkpoint))
        if config.seed == 2 and len(calls) == 2:  # the first attempt at seed 2 is killed mid-training
            return real_train(config, callbacks=[Interrupt()])
        return real_train(config)

    monkeypatch.setattr(rep, "train", recording_train)
    monkeypatch.setattr(rep, "write_figure", lambda ledger, folder, say: None)  # plotly/kaleido: not what this test is about
    ledger_dir = tmp_path / "ledger"
    with pytest.raises(KeyboardInterrupt):
        rep.reproduce(tiny_recipe, [1, 2, 3], ledger_dir, say=lambda _: None)
    first = (ledger_dir / "seed-1" / rep.RESULT_FILE).read_bytes()
    assert json.loads((ledger_dir / rep.LEDGER_JSON).read_text())["seeds_done"] == [1]
    assert (ledger_dir / "seed-2" / "checkpoint-3").is_dir() and not (ledger_dir / "seed-2" / rep.RESULT_FILE).exists()

    lines = []
    ledger = rep.reproduce(tiny_recipe, [1, 2, 3], ledger_dir, say=lines.append)
    assert [seed for seed, _ in calls] == [1, 2, 2, 3]  # seed 1 was not trained again
    assert (ledger_dir / "seed-1" / rep.RESULT_FILE).read_bytes() == first
    assert "seed 1: finished earlier, kept" in lines[0] and any("seed 2: resuming from" in line for line in lines)
    assert ledger["seeds_done"] == [1, 2, 3] and ledger["per_seed"][1]["resumed_from_step"] == 3
    assert all(r["best_step"] in (3, 6) for r in ledger["per_seed"])
    assert not list(ledger_dir.glob("seed-*/checkpoint-*"))  # finished seeds keep their selected model only
    # statistics of the ledger = numpy on its own per-seed values
    values = [r["sts_test"]["avg_test"] for r in ledger["per_seed"]]
    assert ledger["summary"]["avg_test"]["std"] == pytest.approx(np.std(values, ddof=1))
    assert ledger["wall_seconds"]["seeds"] == pytest.approx(sum(r["wall_seconds"] for r in ledger["per_seed"]), abs=0.2)
    assert set(ledger["environments"][ledger["per_seed"][0]["environment_id"]]) >= {"python", "torch", "transformers", "tokenizers",
                                                                                   "cuda", "cudnn", "device", "cpu", "simcse_lab"}
    # the same ledger with another recipe is refused
    with pytest.raises(Exception, match="another recipe"):
        rep.reproduce(TrainConfig(**{**tiny_recipe.__dict__, "learning_rate": 1e-3}), [1], ledger_dir, say=lambda _: None)


@pytest.mark.slow
def test_killed_reproduce_process_resumes(tiny_model_dir, wiki_file, data_dir, tmp_path):
    """The real thing: SIGKILL the command once seed 1 is finished, run it again."""
    ledger_dir = tmp_path / "ledger"
    command = [sys.executable, "-m", "simcse_lab", "reproduce", "--model_name_or_path", str(tiny_model_dir), "--train_file", str(wiki_file),
               "--data_dir", str(data_dir), "--seeds", "2", "--ledger_dir", str(ledger_dir), "--no_progress",
               *[x for k, v in SEEDS_SMALL.items() if k != "show_progress" for x in (f"--{k}", str(v))]]
    env = {**os.environ, "PYTHONPATH": str(Path(rep.__file__).resolve().parents[2])}
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    result = ledger_dir / "seed-1" / rep.RESULT_FILE
    deadline = time.time() + 600
    while not result.exists() and process.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert result.exists()
    finished = result.read_bytes()
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "seed 1: finished earlier, kept" in done.stdout and result.read_bytes() == finished
    ledger = json.loads((ledger_dir / rep.LEDGER_JSON).read_text())
    assert ledger["seeds_done"] == [1, 2] and (ledger_dir / ledger["figure"]).is_file()
    assert "never used to select" in (ledger_dir / rep.LEDGER_MD).read_text()


def test_the_fingerprints_commit_is_what_git_says_without_starting_git(tmp_path):
    """The ledger's commit is read from .git's files (the library starts no processes): HEAD through its ref, a
    packed ref, a detached HEAD; no checkout gives None."""
    import shutil
    import subprocess

    from simcse_lab.commands.fingerprint import git_commit

    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    repo = tmp_path / "repo"
    run = lambda *args: subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True).stdout.strip()  # noqa: E731
    repo.mkdir()
    run("init", "-q")
    (repo / "a.txt").write_text("a\n")
    run("add", "a.txt")
    run("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "one")
    assert git_commit(repo) == run("rev-parse", "HEAD")
    run("pack-refs", "--all")  # the branch now lives in packed-refs only
    assert git_commit(repo) == run("rev-parse", "HEAD")
    run("checkout", "-q", "--detach")
    assert git_commit(repo) == run("rev-parse", "HEAD")
    assert git_commit(tmp_path / "nothing-here") is None
