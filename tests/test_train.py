"""A short unsupervised run improves the loss and uniformity; supervised and the CLI work end to end."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from simcse_lab import SimCSEEncoder
from simcse_lab.geometry import uniformity
from simcse_lab.train import TrainConfig, train

WIKI = "wiki/wiki1m_head.txt"


@pytest.fixture
def wiki_file(data_dir, tmp_path):
    lines = (data_dir / WIKI).read_text(encoding="utf8").splitlines()[:400]
    path = tmp_path / "wiki.txt"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_unsup_run_lowers_loss_and_improves_uniformity(tiny_model_dir, wiki_file, data_dir, tmp_path):
    probe = (data_dir / WIKI).read_text(encoding="utf8").splitlines()[1000:1200]
    before = uniformity(SimCSEEncoder.from_pretrained(tiny_model_dir, pooler="avg").encode(probe))
    config = TrainConfig(model_name_or_path=str(tiny_model_dir), train_file=str(wiki_file), output_dir=str(tmp_path / "out"),
                         pooler_type="avg", max_steps=40, per_device_train_batch_size=16, learning_rate=1e-3,
                         eval_steps=20, eval_max_pairs=100, logging_steps=5, data_dir=str(data_dir), show_progress=False)
    result = train(config)
    losses = [r["loss"] for r in result.history if "loss" in r]
    assert sum(losses[-3:]) / 3 < sum(losses[:2]) / 2
    after = uniformity(SimCSEEncoder.from_pretrained(result.output_dir).encode(probe))
    assert after < before - 0.1, (before, after)
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics["best_step"] in (20, 40) and metrics["steps"] == 40
    assert {"stsb_dev", "alignment", "uniformity", "avg_cosine"} <= set(result.history[-1])


def test_dev_score_in_training_is_the_score_evaluate_gives_the_saved_model(tiny_model_dir, wiki_file, data_dir, tmp_path):
    """Training truncates its batches at max_seq_length, but STS-B dev is scored on whole sentences, as
    `evaluate_sts` scores them (here max_seq_length 6 would cut most dev sentences)."""
    from simcse_lab.evaluate import evaluate_sts

    config = TrainConfig(model_name_or_path=str(tiny_model_dir), train_file=str(wiki_file), output_dir=str(tmp_path / "out"),
                         pooler_type="avg", max_steps=4, max_seq_length=6, per_device_train_batch_size=16, learning_rate=1e-3,
                         eval_steps=4, eval_max_pairs=200, data_dir=str(data_dir), show_progress=False)
    result = train(config)
    encoder = SimCSEEncoder.from_pretrained(result.output_dir)
    scores = evaluate_sts(lambda s: encoder.encode(s), tasks=["stsb"], split="dev", data_dir=data_dir, max_pairs=200)
    truncated = evaluate_sts(lambda s: encoder.encode(s, max_length=6), tasks=["stsb"], split="dev", data_dir=data_dir, max_pairs=200)
    assert abs(truncated["stsb"] - scores["stsb"]) > 0.5  # the test can tell the two apart
    assert result.best_score == pytest.approx(scores["stsb"], abs=0.05)


def test_supervised_triplets_with_cls_mlp_only_train(tiny_model_dir, data_dir, tmp_path):
    rows = (data_dir / "nli/snli_devtest_triplets.csv").read_text(encoding="utf8").splitlines()[:101]
    path = tmp_path / "nli.csv"
    path.write_text("\n".join(rows) + "\n")
    config = TrainConfig(model_name_or_path=str(tiny_model_dir), train_file=str(path), output_dir=str(tmp_path / "sup"),
                         pooler_type="cls", mlp_only_train=True, max_steps=6, per_device_train_batch_size=16,
                         hard_negative_weight=0.0, eval_steps=0, show_progress=False)
    result = train(config)
    assert result.best_score is None and result.steps == 6
    encoder = SimCSEEncoder.from_pretrained(result.output_dir)
    assert (encoder.pooler, encoder.mlp_only_train) == ("cls", True)


def run_cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "simcse_lab", *args], capture_output=True, text=True, env=env, timeout=600)


def test_cli_train_evaluate_diagnose(tiny_model_dir, wiki_file, data_dir, tmp_path):
    out = tmp_path / "cli"
    done = run_cli("train", "--model_name_or_path", str(tiny_model_dir), "--train_file", str(wiki_file), "--output_dir", str(out),
                   "--max_steps", "8", "--per_device_train_batch_size", "16", "--pooler_type", "avg", "--eval_steps", "4",
                   "--eval_max_pairs", "60", "--data_dir", str(data_dir), "--do_train", "--evaluation_strategy", "steps",
                   "--no_progress")
    assert done.returncode == 0, done.stderr
    assert "best STS-B dev" in done.stdout
    done = run_cli("evaluate", "--model_name_or_path", str(out), "--mode", "dev", "--data_dir", str(data_dir))
    assert done.returncode == 0, done.stderr
    assert "STSBenchmark (dev)" in done.stdout and "SICKRelatedness (dev)" in done.stdout and "NOT test" in done.stdout
    saved = json.loads((out / "eval_results_dev.json").read_text())
    assert set(saved["sts_dev"]) == {"stsb_dev", "sickr_dev", "avg_dev"}
    assert saved["protocol"]["split"] == "dev" and "sts_test" not in saved
    done = run_cli("diagnose", "--model_name_or_path", str(out), "--data_dir", str(data_dir), "--output_dir", str(tmp_path / "diag"))
    assert done.returncode == 0, done.stderr
    assert "average cosine" in done.stdout
    report = json.loads((tmp_path / "diag" / "report.json").read_text())
    assert 0 < report["spectrum"][-1] <= report["spectrum"][0] == 1.0


def test_cli_errors_are_one_line(tmp_path):
    done = run_cli("train", "--train_file", str(tmp_path / "missing.txt"), "--output_dir", str(tmp_path / "o"))
    assert done.returncode == 2
    assert done.stderr.strip().startswith("error:") and "Traceback" not in done.stderr
    assert "does not exist" in done.stderr


def test_sbert_objective_defaults_to_avg_pooling_and_saves_its_head(tiny_model_dir, tmp_path):
    from simcse_lab.training.sbert import SBERTHead

    path = tmp_path / "nli_pairs.csv"
    rows = ["sent0,sent1,label"] + [f"a man plays {i},a man plays music,entailment" if i % 2 else f"a dog runs {i},a cat sleeps,contradiction"
                                    for i in range(40)]
    path.write_text("\n".join(rows) + "\n")
    config = TrainConfig(model_name_or_path=str(tiny_model_dir), train_file=str(path), output_dir=str(tmp_path / "sbert"),
                         max_steps=4, per_device_train_batch_size=8, eval_steps=0, show_progress=False)
    result = train(config)
    assert SimCSEEncoder.from_pretrained(result.output_dir).pooler == "avg"
    head = SBERTHead.load(result.output_dir)
    assert tuple(head.linear.weight.shape) == (3, 3 * 32)  # (u, v, |u-v|) of the tiny BERT's 32 dims -> 3 labels


def test_torch_compile_gets_the_mode_and_static_shapes(tiny_model_dir, wiki_file, tmp_path, monkeypatch):
    """--torch_compile_mode reaches torch.compile (reduce-overhead: CUDA graphs on a GPU); the run trains on."""
    import torch

    calls = []

    def record_compile(model, **kwargs):
        calls.append(kwargs)
        return model  # eager: compiling takes minutes on this CPU, and the mode matters on a GPU only

    step_begins = []
    monkeypatch.setattr(torch, "compile", record_compile)
    monkeypatch.setattr(torch.compiler, "cudagraph_mark_step_begin", lambda: step_begins.append(1))
    result = train(TrainConfig(model_name_or_path=str(tiny_model_dir), train_file=str(wiki_file), output_dir=str(tmp_path / "out"),
                               per_device_train_batch_size=8, max_steps=2, eval_steps=0, torch_compile=True,
                               torch_compile_mode="reduce-overhead", device="cpu", show_progress=False))
    assert calls == [{"dynamic": False, "mode": "reduce-overhead"}]
    assert result.steps == 2
    assert len(step_begins) == 2  # each step tells the CUDA graphs that the previous step's outputs are done with
    train(TrainConfig(model_name_or_path=str(tiny_model_dir), train_file=str(wiki_file), output_dir=str(tmp_path / "out2"),
                      per_device_train_batch_size=8, max_steps=2, eval_steps=0, torch_compile=True, device="cpu", show_progress=False))
    assert len(step_begins) == 2  # the default mode replays no CUDA graphs


# --------------------------------------------------------------------------- regressions of the review (issue 16)
@pytest.mark.parametrize("flag, value, needle", [
    ("--logging_steps", "0", "logging_steps must be >= 1, got 0"),
    ("--temp", "-1", "temp must be > 0, got -1.0"),
    ("--warmup_ratio", "2", "warmup_ratio must be >= 0 and <= 1, got 2.0"),
    ("--max_grad_norm", "nan", "max_grad_norm must be >= 0, got nan"),
    ("--seed", "-3", "seed must be >= 0 and <= 4294967295 (numpy's seed range), got -3"),
])
def test_a_setting_out_of_range_is_one_line_before_anything_runs(tmp_path, flag, value, needle):
    """Regression: --logging_steps 0 died in a ZeroDivisionError traceback mid-run; every numeric setting is range-checked
    when the config is built, so the CLI fails with one line and writes nothing."""
    train_file = tmp_path / "s.txt"
    train_file.write_text("a sentence\nanother one\n")
    done = run_cli("train", "--train_file", str(train_file), "--output_dir", str(tmp_path / "o"), flag, value)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.count("\n") == 1 and needle in done.stderr, done.stderr
    assert not (tmp_path / "o").exists()


def test_model_cards_name_where_the_model_lives_not_the_temporary_directory(tiny_model_dir, wiki_file, data_dir, tmp_path):
    """Regression: the card was written inside the temporary directory, so output_dir/README.md said
    `# SimCSE encoder (.tmp-best_model-11383)` and told users to load that path."""
    out = tmp_path / "unsup"
    train(TrainConfig(model_name_or_path=str(tiny_model_dir), train_file=str(wiki_file), output_dir=str(out), pooler_type="avg",
                      max_steps=4, per_device_train_batch_size=16, eval_steps=2, save_total_limit=0, eval_max_pairs=60,
                      data_dir=str(data_dir), show_progress=False))
    card = (out / "README.md").read_text()
    assert ".tmp" not in card and "# SimCSE encoder (unsup)" in card and f'from_pretrained("{out}")' in card
    checkpoint_card = (out / "checkpoint-2" / "README.md").read_text()
    assert ".tmp" not in checkpoint_card and f'from_pretrained("{out / "checkpoint-2"}")' in checkpoint_card


def test_the_sbert_head_saved_beside_the_model_is_the_best_steps_head(tiny_model_dir, tmp_path, monkeypatch):
    """Regression: the encoder came from the best STS-B dev step but its SBERT head from the final step. Dev scores
    that fall after step 2 make step 2 the best; the saved head must be the one checkpoint-2's optimiser state had."""
    from simcse_lab.evaluation.dev import DevEvaluator
    from simcse_lab.training.sbert import SBERTHead

    scores = iter([60.0, 50.0, 40.0])
    monkeypatch.setattr(DevEvaluator, "stsb_dev", classmethod(lambda cls, data_dir=None, max_pairs=None: cls(None)))
    monkeypatch.setattr(DevEvaluator, "__call__", lambda self, encoder: {"stsb_dev": next(scores)})
    path = tmp_path / "nli_pairs.csv"
    rows = ["sent0,sent1,label"] + [f"a man plays {i},a man plays music,entailment" if i % 2 else f"a dog runs {i},a cat sleeps,contradiction"
                                    for i in range(40)]
    path.write_text("\n".join(rows) + "\n")
    result = train(TrainConfig(model_name_or_path=str(tiny_model_dir), train_file=str(path), output_dir=str(tmp_path / "sbert"),
                               max_steps=6, per_device_train_batch_size=8, learning_rate=1e-2, eval_steps=2, save_total_limit=0,
                               eval_at_start=False, geometry_snapshots=0, show_progress=False))  # a fake evaluator: no pairs
    assert result.best_step == 2
    state = torch.load(tmp_path / "sbert" / "checkpoint-2" / "trainer_state.pt", weights_only=True)["objective"]
    saved = SBERTHead.load(result.output_dir).state_dict()
    torch.testing.assert_close(saved["linear.weight"], state["head.linear.weight"])
    final = torch.load(tmp_path / "sbert" / "checkpoint-4" / "trainer_state.pt", weights_only=True)["objective"]
    assert not torch.equal(final["head.linear.weight"], state["head.linear.weight"])  # the head did move after step 2


def test_sts_b_dev_is_read_once_per_run(tiny_model_dir, wiki_file, data_dir, tmp_path, monkeypatch):
    """Regression: the trainer read STS-B dev twice (once to see whether it exists, once to evaluate)."""
    import simcse_lab.evaluation.dev as dev

    reads = []
    real = dev.load_sts
    monkeypatch.setattr(dev, "load_sts", lambda *args, **kwargs: reads.append(args) or real(*args, **kwargs))
    train(TrainConfig(model_name_or_path=str(tiny_model_dir), train_file=str(wiki_file), output_dir=str(tmp_path / "out"), pooler_type="avg",
                      max_steps=2, per_device_train_batch_size=16, eval_steps=1, eval_max_pairs=40, data_dir=str(data_dir),
                      show_progress=False))
    assert len(reads) == 1


def test_augmented_batches_keep_the_model_limit_and_the_static_widths(tiny_model_dir, tmp_path):
    """Regression: the text-augmentation path tokenised with the config's max_seq_length alone (past the model's 64
    positions here) and ignored the multiple-of-8 widths torch.compile needs."""
    from simcse_lab.data import load_training_file
    from simcse_lab.training.distributed import DistributedContext
    from simcse_lab.training.objectives import build_objective

    path = tmp_path / "long.txt"
    path.write_text("\n".join(" ".join(["the man plays the guitar"] * (2 + i)) for i in range(20)) + "\n")  # up to 105 words
    encoder = SimCSEEncoder.from_pretrained(tiny_model_dir, pooler="avg", device="cpu")
    cpu = torch.device("cpu")
    for compile_widths in (False, True):
        config = TrainConfig(train_file=str(path), augmentation="crop", augmentation_ratio=0.1, max_seq_length=200,
                             torch_compile=compile_widths)
        objective = build_objective(config, load_training_file(path), encoder, cpu, DistributedContext(cpu))
        for rows in (np.arange(0, 4), np.arange(0, 20), np.arange(0, 2)):
            ids, mask = objective.batch(rows)
            assert ids.shape[1] <= encoder.max_tokens == 64
            assert not compile_widths or ids.shape[1] % 8 == 0, ids.shape
            encoder.train()
            assert objective.loss(encoder, rows).isfinite()


def test_same_mask_views_share_one_dropout_mask(tiny_model_dir, tmp_path):
    """augmentation="same_mask" (the paper's "fixed 0.1"): one train-mode forward pass, its embeddings used as both
    views, so every positive logit is exactly 1/t; reference: the same pass replayed from the same RNG state, put
    through the loss written out with identical views."""
    from simcse_lab.data import load_training_file
    from simcse_lab.losses import simcse_logits, unsup_simcse_loss
    from simcse_lab.training.distributed import DistributedContext
    from simcse_lab.training.objectives import build_objective

    path = tmp_path / "s.txt"
    path.write_text("\n".join(f"the man number {i} plays the guitar in the park" for i in range(8)) + "\n")
    encoder = SimCSEEncoder.from_pretrained(tiny_model_dir, pooler="avg", device="cpu", dropout=0.3).train()
    cpu = torch.device("cpu")
    objective = build_objective(TrainConfig(train_file=str(path), augmentation="same_mask"), load_training_file(path), encoder,
                                cpu, DistributedContext(cpu))
    rows = np.arange(8)
    ids, mask = objective.batch(rows)
    assert ids.shape[0] == 8  # one view on the wire, not two
    torch.manual_seed(5)
    loss = objective.loss(encoder, rows)
    torch.manual_seed(5)
    z = encoder(ids, mask)
    assert torch.allclose(simcse_logits(z, z, temperature=0.05).diagonal(), torch.full((8,), 20.0), atol=1e-4)
    torch.testing.assert_close(loss, unsup_simcse_loss(z, z, 0.05))
