"""The embedded default encoder: loads offline, is visibly anisotropic, and SimCSE reshapes it."""

import json
from pathlib import Path

import pytest

import simcse_lab
from simcse_lab import SimCSEEncoder, paths
from simcse_lab.data import load_sts, write_unsup_training_file
from simcse_lab.geometry import average_cosine, singular_spectrum, uniformity
from simcse_lab.train import TrainConfig, train


def test_default_model_loads_offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    encoder = SimCSEEncoder.from_pretrained(simcse_lab.DEFAULT_MODEL)
    assert encoder.pooler == "avg" and encoder.hidden_size == 256
    assert encoder.encode(["A man is playing a guitar."]).shape == (1, 256)
    config = json.loads((Path(simcse_lab.DEFAULT_MODEL) / "config.json").read_text())
    assert (config["num_hidden_layers"], config["hidden_size"]) == (4, 256)


def test_installed_package_falls_back_to_the_shipped_copy(monkeypatch, tmp_path):
    monkeypatch.setattr(paths, "_REPO_DEFAULT_MODEL", tmp_path / "no-checkout")
    assert paths._default_model_path() == str(Path(paths.__file__).resolve().parent / "default_model")


def test_raw_default_encoder_is_anisotropic(data_dir):
    sentences = list(dict.fromkeys(s for p in load_sts("stsb", "test", data_dir)[:400] for s in p[:2]))
    embeddings = SimCSEEncoder.from_pretrained(simcse_lab.DEFAULT_MODEL, pooler="avg").encode(sentences)
    assert average_cosine(embeddings) >= 0.4
    spectrum = singular_spectrum(embeddings)
    assert spectrum[1] < 0.6 and (spectrum > 0.1).sum() < 64  # one dominant direction, few strong ones


@pytest.mark.slow
def test_unsup_recipe_spreads_the_default_encoder(data_dir, tmp_path):
    train_file = write_unsup_training_file(tmp_path / "wiki_wordnet.txt", data_dir)
    probe = list(dict.fromkeys(s for p in load_sts("stsb", "dev", data_dir)[:300] for s in p[:2]))
    raw = SimCSEEncoder.from_pretrained(simcse_lab.DEFAULT_MODEL, pooler="avg").encode(probe)
    config = TrainConfig(train_file=str(train_file), output_dir=str(tmp_path / "out"), pooler_type="avg", max_steps=40,
                         per_device_train_batch_size=64, learning_rate=1e-4, eval_steps=0, seed=42, show_progress=False)
    trained = SimCSEEncoder.from_pretrained(train(config).output_dir).encode(probe)
    assert average_cosine(trained) < average_cosine(raw) - 0.1
    assert uniformity(trained) < uniformity(raw) - 0.3
