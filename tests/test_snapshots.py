"""Geometry snapshots: what the trainer records for `explore`'s training replay, checked against fresh encodes
by the checkpoints, against hand-written formulas, and against a run without snapshots."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from safetensors.torch import load_file
from scipy.stats import spearmanr

from simcse_lab import SimCSEEncoder
from simcse_lab.data.sts import load_sts
from simcse_lab.errors import SimCSELabError
from simcse_lab.evaluation.sts import ScoredPairs
from simcse_lab.train import TrainConfig, train
from simcse_lab.training import snapshots
from simcse_lab.training.snapshots import SNAPSHOT_DIR, choose_probe, frame_steps, load_replay

WIKI = "wiki/wiki1m_head.txt"


@pytest.fixture
def wiki_file(data_dir, tmp_path):
    path = tmp_path / "wiki.txt"
    path.write_text("\n".join((data_dir / WIKI).read_text(encoding="utf8").splitlines()[:300]) + "\n")
    return path


def config(model, train_file, output_dir, data_dir, **overrides) -> TrainConfig:
    values = dict(model_name_or_path=str(model), train_file=str(train_file), output_dir=str(output_dir), pooler_type="avg",
                  max_steps=8, per_device_train_batch_size=16, learning_rate=1e-3, eval_steps=4, save_total_limit=0,
                  eval_max_pairs=80, data_dir=str(data_dir), show_progress=False, geometry_snapshots=64)
    return TrainConfig(**{**values, **overrides})


def unit(x):
    x = np.asarray(x, dtype=np.float64)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def hand_numbers(embeddings, pairs: ScoredPairs) -> dict:
    """The snapshot numbers written out with numpy and scipy only."""
    u = unit(embeddings)
    cos = (u[pairs.left] * u[pairs.right]).sum(1)
    positive = pairs.gold >= 4
    d2 = ((u[pairs.left[positive]] - u[pairs.right[positive]]) ** 2).sum(1)
    i, j = np.triu_indices(len(u), 1)
    sq = ((u[i] - u[j]) ** 2).sum(1)
    s = np.linalg.svd(np.asarray(embeddings, dtype=np.float64), compute_uv=False)
    return {"spearman": 100 * spearmanr(cos, pairs.gold).correlation, "alignment": d2.mean(),
            "uniformity": np.log(np.exp(-2 * sq).mean()), "average_cosine": (u @ u.T)[i, j].mean(),
            "directions_above_0.1": int((s / s[0] > 0.1).sum())}


def test_snapshots_hold_the_probe_as_each_checkpoint_encodes_it(tiny_model_dir, wiki_file, data_dir, tmp_path):
    out = tmp_path / "out"
    heard = []

    class Listener:
        def on_snapshot(self, state, records):
            heard.append((state.step, [r["step"] for r in records]))

    result = train(config(tiny_model_dir, wiki_file, out, data_dir, max_steps=12), callbacks=[Listener()])
    replay = load_replay(out)
    assert [r["step"] for r in replay.records] == [0, 4, 8, 12] and [r["step"] for r in replay.frames] == [0, 4, 8, 12]
    assert heard == [(0, [0]), (4, [0, 4]), (8, [0, 4, 8]), (12, [0, 4, 8, 12])]
    probe = replay.probe
    assert len(probe.sentences) <= 64 and len(probe.sentences) >= 60  # pairs are added until the next would not fit
    dev = ScoredPairs.from_pairs(load_sts("stsb", "dev", data_dir)[:80])
    dev_pairs = {(dev.sentences[a], dev.sentences[b], g) for a, b, g in zip(dev.left, dev.right, dev.gold)}
    assert {(probe.sentences[a], probe.sentences[b], g) for a, b, g in zip(probe.left, probe.right, probe.gold)} <= dev_pairs

    for record, model in ((replay.records[0], tiny_model_dir), (replay.records[1], out / "checkpoint-4"), (replay.records[2], out / "checkpoint-8")):
        fresh = SimCSEEncoder.from_pretrained(model, pooler="avg").encode(probe.sentences, batch_size=128).numpy()
        stored = replay.embeddings(record)
        assert np.load(replay.directory / record["embeddings"]).dtype == np.float16
        np.testing.assert_allclose(stored, fresh, rtol=2e-3, atol=2e-3)  # fp16 rounding
        expected = hand_numbers(fresh, probe)
        for key, value in expected.items():
            assert record[key] == pytest.approx(value, rel=1e-4, abs=1e-4), key
        assert record["num_sentences"] == len(probe.sentences) and record["num_pairs"] == len(probe)
    assert result.history[-1]["step"] == 12


def test_snapshots_do_not_change_training(tiny_model_dir, wiki_file, data_dir, tmp_path):
    with_them = train(config(tiny_model_dir, wiki_file, tmp_path / "on", data_dir))
    without = train(config(tiny_model_dir, wiki_file, tmp_path / "off", data_dir, geometry_snapshots=0))
    assert not (tmp_path / "off" / SNAPSHOT_DIR).exists() and (tmp_path / "on" / SNAPSHOT_DIR / "steps.json").is_file()
    assert with_them.history == without.history
    a, b = (load_file(str(tmp_path / d / "model.safetensors")) for d in ("on", "off"))
    assert all(np.array_equal(a[k].numpy(), b[k].numpy()) for k in a)


def test_a_new_run_in_an_overwritten_dir_replaces_old_snapshots(tiny_model_dir, wiki_file, data_dir, tmp_path):
    train(config(tiny_model_dir, wiki_file, tmp_path / "out", data_dir, max_steps=4, eval_steps=2))
    assert (tmp_path / "out" / SNAPSHOT_DIR / "step-2.npy").is_file()
    train(config(tiny_model_dir, wiki_file, tmp_path / "out", data_dir, max_steps=3, eval_steps=3, overwrite_output_dir=True))
    assert sorted(p.name for p in (tmp_path / "out" / SNAPSHOT_DIR).glob("*.npy")) == ["step-0.npy", "step-3.npy"]
    assert [r["step"] for r in load_replay(tmp_path / "out").records] == [0, 3]


class FakeEncoder:
    output_dim = 4

    def encode(self, sentences, **kwargs):
        return np.random.default_rng(len(sentences)).normal(size=(len(sentences), 4)).astype(np.float32)


def fake_run(tmp_path, step, max_steps=30, eval_steps=10):
    pairs = ScoredPairs.from_pairs([(f"a{i}", f"b{i}", float(i % 6)) for i in range(20)])
    evaluator = SimpleNamespace(pairs=pairs, batch_size=8, max_length=16, embeddings=None)
    recorder = snapshots.GeometrySnapshots(evaluator, FakeEncoder(), tmp_path / SNAPSHOT_DIR, size=16)
    state = SimpleNamespace(step=step, max_steps=max_steps, config=SimpleNamespace(eval_steps=eval_steps))
    return recorder, evaluator, state


def test_a_resumed_run_drops_the_snapshots_after_its_checkpoint(tmp_path):
    recorder, evaluator, state = fake_run(tmp_path, 0)
    recorder.on_train_begin(state)
    for step in (10, 20):
        state.step = step
        evaluator.embeddings = np.random.default_rng(step).normal(size=(40, 4))
        recorder.on_evaluate(state, {})
    assert sorted(p.name for p in (tmp_path / SNAPSHOT_DIR).glob("*.npy")) == ["step-0.npy", "step-10.npy", "step-20.npy"]
    resumed, evaluator, state = fake_run(tmp_path, 10)  # the checkpoint was at step 10; step 20 is evaluated again
    resumed.on_train_begin(state)
    assert [r["step"] for r in load_replay(tmp_path).records] == [0, 10]
    assert sorted(p.name for p in (tmp_path / SNAPSHOT_DIR).glob("*.npy")) == ["step-0.npy", "step-10.npy"]
    state.step = 20
    evaluator.embeddings = np.random.default_rng(20).normal(size=(40, 4))
    resumed.on_evaluate(state, {})
    assert [r["step"] for r in load_replay(tmp_path).records] == [0, 10, 20]
    # the eval-step snapshot is the evaluator's rows of the probe sentences
    np.testing.assert_allclose(load_replay(tmp_path).embeddings(load_replay(tmp_path).records[-1]),
                               evaluator.embeddings[resumed.rows], rtol=1e-3, atol=1e-3)


def test_probe_rows_point_at_the_probe_sentences():
    pairs = ScoredPairs.from_pairs([(f"s{i}", f"s{i + 1}", float(i % 5)) for i in range(30)])  # sentences shared between pairs
    probe, rows = choose_probe(pairs, 12)
    assert len(probe.sentences) <= 12 and [pairs.sentences[r] for r in rows] == probe.sentences
    assert choose_probe(pairs, 12)[0].sentences == probe.sentences  # fixed seed


@pytest.mark.parametrize("max_steps, eval_steps, limit, expected", [
    (600, 100, 31, {100, 200, 300, 400, 500, 600}),
    (25, 10, 31, {10, 20, 25}),  # the last step is always evaluated
    (1000, 10, 5, {10, 260, 510, 750, 1000}),  # 100 evaluations, 5 kept, evenly spaced, the last among them
])
def test_frame_steps(max_steps, eval_steps, limit, expected):
    assert frame_steps(max_steps, eval_steps, limit) == expected


def test_a_long_run_keeps_its_embeddings_within_the_budget(tmp_path, monkeypatch):
    monkeypatch.setattr(snapshots, "SNAPSHOT_BYTES", 16 * 4 * 2 * 4)  # four snapshots of 16 sentences x 4 dims in fp16
    recorder, evaluator, state = fake_run(tmp_path, 0, max_steps=100, eval_steps=10)
    recorder.on_train_begin(state)
    for step in range(10, 101, 10):
        state.step = step
        evaluator.embeddings = np.random.default_rng(step).normal(size=(40, 4))
        recorder.on_evaluate(state, {})
    replay = load_replay(tmp_path)
    assert len(replay.records) == 11  # the numbers of every evaluation
    assert [r["step"] for r in replay.frames] == [0, 10, 50, 100]  # step 0 and three evenly spaced, the last among them


def test_geometry_snapshots_setting_is_checked(tmp_path):
    with pytest.raises(SimCSELabError, match="geometry_snapshots must be >= 2"):
        TrainConfig(train_file="x.txt", geometry_snapshots=1)
    TrainConfig(train_file="x.txt", geometry_snapshots=0)


def test_unreadable_snapshots_are_one_clear_error(tmp_path):
    folder = tmp_path / SNAPSHOT_DIR
    folder.mkdir()
    (folder / "probe.json").write_text("{not json")
    (folder / "steps.json").write_text("[]")
    with pytest.raises(SimCSELabError, match="cannot be read.*delete that folder"):
        load_replay(tmp_path)
    assert load_replay(tmp_path / "nothing-here") is None
