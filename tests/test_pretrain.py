"""MLM pre-training and its corpus, checked against independent references.

- masking: BERT's 15% / 80-10-10 proportions, measured on a large random batch;
- masked-only loss: equals `BertForMaskedLM`'s own full-vocabulary loss with labels -100 elsewhere;
- corpus: reads only its training-side files (every file open is recorded), drops the cut-off wiki line,
  decodes latin-1, deduplicates after whitespace normalisation, names a missing file;
- end to end: a 20-step run on a tiny model lowers the loss and writes a checkpoint that
  `transformers.AutoModel` / `AutoTokenizer` load.
"""

from __future__ import annotations

import argparse
import json
import math
import os
from pathlib import Path

import pytest
import torch

from simcse_lab.data.corpus import FORBIDDEN_PREFIXES, SOURCES, build_pretraining_corpus
from simcse_lab.errors import SimCSELabError
from simcse_lab.pretrain import PretrainConfig, add_pretrain_arguments, config_from_args, masked_lm_loss, pretrain
from simcse_lab.training.mlm import mask_tokens
from simcse_lab.training.schedule import linear_schedule

DATA_DIR = os.environ.get("SIMCSE_LAB_DATA")
needs_data = pytest.mark.skipif(not DATA_DIR, reason="SIMCSE_LAB_DATA is not set (the local data folder)")


# --------------------------------------------------------------------------- masking


def test_mask_tokens_follows_bert_proportions():
    generator = torch.Generator().manual_seed(0)
    vocab_size, mask_id, batch, width = 5000, 4, 1024, 128
    ids = torch.randint(5, vocab_size, (batch, width), generator=generator)
    lengths = torch.randint(3, width + 1, (batch,), generator=generator)
    positions = torch.arange(width)
    pad = positions[None, :] >= lengths[:, None]
    ids[pad] = 0
    ids[:, 0] = 2  # [CLS]
    ids[torch.arange(batch), lengths - 1] = 3  # [SEP]
    special = torch.isin(ids, torch.tensor([0, 1, 2, 3, 4]))

    corrupted, selected = mask_tokens(ids, special, vocab_size, mask_id, 0.15, generator)

    assert not selected[special].any(), "a special or pad token was selected"
    assert torch.equal(corrupted[~selected], ids[~selected]), "an unselected token was changed"
    n_real = int((~special).sum())  # ~65k real tokens: binomial sd of the 15% rate is ~0.0014
    assert abs(int(selected.sum()) / n_real - 0.15) < 0.006
    chosen_before, chosen_after = ids[selected], corrupted[selected]
    n = chosen_before.numel()  # ~10k: sd of each share is <= 0.004
    masked = chosen_after.eq(mask_id)
    kept = chosen_after.eq(chosen_before)
    replaced = ~masked & ~kept
    assert abs(masked.float().mean().item() - 0.8) < 0.02
    assert abs(kept.float().mean().item() - 0.1) < 0.015
    assert abs(replaced.float().mean().item() - 0.1) < 0.015
    assert n > 5000


# --------------------------------------------------------------------------- masked-only loss


def _tiny_bert(vocab_size=97):
    from transformers import BertConfig, BertForMaskedLM

    torch.manual_seed(0)
    config = BertConfig(vocab_size=vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=64, pad_token_id=0)
    return BertForMaskedLM(config).eval()


def test_masked_only_loss_equals_full_vocabulary_loss():
    model = _tiny_bert()
    generator = torch.Generator().manual_seed(1)
    ids = torch.randint(5, 97, (6, 20), generator=generator)
    attention = torch.ones_like(ids)
    attention[2, 12:] = 0  # some padding, which must not change the answer
    attention[5, 7:] = 0
    ids[attention == 0] = 0
    selected = (torch.rand(ids.shape, generator=generator) < 0.3) & attention.bool()
    targets_grid = torch.randint(5, 97, ids.shape, generator=generator)  # what the model must predict
    flat = selected.flatten().nonzero().squeeze(1)

    ours = masked_lm_loss(model, ids, attention, flat, targets_grid.flatten()[flat])
    labels = torch.where(selected, targets_grid, torch.full_like(ids, -100))
    reference = model(input_ids=ids, attention_mask=attention, labels=labels).loss

    torch.testing.assert_close(ours, reference, rtol=1e-5, atol=1e-5)


# --------------------------------------------------------------------------- corpus


def _fake_data_dir(root: Path) -> Path:
    """Every corpus file, plus the evaluation files filled with a canary sentence that must never appear."""
    for source in SOURCES:
        path = root / source.relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        if source.name == "wiki1m_head":
            path.write_text("a wiki sentence .\n\n   \n  a  wiki\tsentence . \ncut off mid-sen")
        elif source.name == "stsb.train":
            path.write_text("g\tf\t2012\t1\t5.0\tsts train one .\tsts train two .\n")
        elif source.name == "sick.train":
            path.write_text("pair_ID\tsentence_A\tsentence_B\tscore\tlabel\n1\tsick a .\tsick b .\t4.5\tNEUTRAL\n")
        elif source.name == "mr.pos":
            path.write_bytes("caf\xe9 sentence .\n".encode("latin-1"))  # latin-1, not valid UTF-8
        else:
            path.write_text(f"{source.name} sentence .\na wiki sentence .\n")
    for forbidden in ("sts/STSBenchmark/sts-test.csv", "sts/STSBenchmark/sts-dev.csv", "sick/SICK_test_annotated.txt",
                      "sick/SICK_trial.txt", "sts/STS12-en-test/STS.input.MSRpar.txt"):
        path = root / forbidden
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("g\tf\t2012\t1\t5.0\tCANARY eval sentence .\tCANARY eval sentence .\n")
    return root


def test_corpus_dedups_and_parses_each_format(tmp_path):
    sentences, report = build_pretraining_corpus(_fake_data_dir(tmp_path))

    assert sentences[0] == "a wiki sentence ."  # the whitespace variant and the cut-off last line are gone
    assert "cut off mid-sen" not in sentences
    assert sentences.count("a wiki sentence .") == 1
    assert "café sentence ." in sentences
    assert {"sts train one .", "sts train two .", "sick a .", "sick b ."} <= set(sentences)
    assert "sentence_A" not in sentences and not any("CANARY" in s for s in sentences)
    assert report["sources"]["wiki1m_head"] == {"file": "wiki/wiki1m_head.txt", "read": 2, "kept": 1}
    assert report["sources"]["wordnet"]["read"] == 2 and report["sources"]["wordnet"]["kept"] == 1
    assert report["totals"]["sentences"] == len(sentences) == len(set(sentences))
    assert report["totals"]["whitespace_tokens"] == sum(len(s.split()) for s in sentences)


def test_corpus_names_the_missing_file(tmp_path):
    root = _fake_data_dir(tmp_path)
    (root / "nli/s2.test").unlink()
    with pytest.raises(SimCSELabError, match=r"nli/s2\.test"):
        build_pretraining_corpus(root)


@needs_data
def test_corpus_reads_only_training_side_files(monkeypatch):
    opened = []
    real_read_bytes = Path.read_bytes
    real_open = open

    def recording_read_bytes(self):
        opened.append(str(self))
        return real_read_bytes(self)

    def recording_open(file, *args, **kwargs):
        opened.append(str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(Path, "read_bytes", recording_read_bytes)
    monkeypatch.setattr("builtins.open", recording_open)
    sentences, report = build_pretraining_corpus(DATA_DIR)

    root = Path(DATA_DIR).expanduser()
    relative = {Path(p).relative_to(root).as_posix() for p in opened if Path(p).is_relative_to(root)}
    assert relative == {s.relpath for s in SOURCES}
    assert not any(r.startswith(FORBIDDEN_PREFIXES) for r in relative)
    assert len(sentences) == len(set(sentences)) == report["totals"]["sentences"] > 100_000
    # the last line of wiki1m_head.txt is cut off and must be dropped
    last_wiki_line = (root / "wiki/wiki1m_head.txt").read_text(encoding="utf-8").splitlines()[-1]
    assert " ".join(last_wiki_line.split()) not in set(sentences)


# --------------------------------------------------------------------------- schedule and CLI


def test_schedule_over_shares_warms_up_then_decays_linearly():
    """Pre-training's schedule: progress and warm-up as shares of the run (total 1)."""
    assert linear_schedule(0.0, 0.1, 1.0) == 0.0
    assert math.isclose(linear_schedule(0.05, 0.1, 1.0), 0.5)
    assert math.isclose(linear_schedule(0.1, 0.1, 1.0), 1.0)
    assert math.isclose(linear_schedule(0.55, 0.1, 1.0), 0.5)
    assert linear_schedule(1.0, 0.1, 1.0) == 0.0 and linear_schedule(1.2, 0.1, 1.0) == 0.0


def test_schedule_in_steps_is_hugging_face_linear_schedule_with_warmup():
    """The trainer's schedule against transformers' get_linear_schedule_with_warmup, step by step."""
    from transformers import get_linear_schedule_with_warmup

    for warmup, total in ((0, 50), (7, 50), (50, 50)):
        optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
        reference = get_linear_schedule_with_warmup(optimizer, warmup, total)
        for step in range(total + 3):
            assert math.isclose(linear_schedule(step, warmup, total), reference.lr_lambdas[0](step), abs_tol=1e-12), (warmup, total, step)


def test_cli_flags_map_onto_the_config(monkeypatch):
    monkeypatch.setenv("SIMCSE_LAB_DATA", "/some/data")
    parser = add_pretrain_arguments(argparse.ArgumentParser())
    config = config_from_args(parser.parse_args(
        ["--output_dir", "out", "--max_steps", "0", "--time_budget_s", "60", "--no_bf16", "--hidden_size", "128"]))
    assert config == PretrainConfig(output_dir="out", data_dir="/some/data", max_steps=None, time_budget_s=60.0,
                                    bf16=False, hidden_size=128)
    assert config_from_args(parser.parse_args(["--bf16"])).bf16 is True
    assert config_from_args(parser.parse_args([])).bf16 is None


# --------------------------------------------------------------------------- end to end


def _toy_corpus(n=400):
    """Short sentences from a tiny grammar: enough structure for the loss to fall within 20 steps."""
    import random

    rng = random.Random(0)
    subjects = ["a man", "a woman", "the dog", "two kids", "the cat", "an old man"]
    verbs = ["is playing", "is eating", "is reading", "is riding", "is watching"]
    objects = ["the guitar", "a bike", "a book", "some food", "the ball", "a horse"]
    return [f"{rng.choice(subjects)} {rng.choice(verbs)} {rng.choice(objects)} ." for _ in range(n)]


def test_tiny_pretrain_lowers_loss_and_saves_a_loadable_checkpoint(tmp_path):
    from transformers import AutoModel, AutoTokenizer

    config = PretrainConfig(
        output_dir=str(tmp_path / "mini"), vocab_size=120, num_hidden_layers=2, hidden_size=32,
        num_attention_heads=2, intermediate_size=64, max_position_embeddings=32, max_seq_length=16,
        per_device_train_batch_size=32, learning_rate=3e-3, warmup_ratio=0.1, max_steps=20, log_every=5,
        heldout_sentences=40, progress=False,
    )
    result = pretrain(config, corpus=_toy_corpus())

    assert result.steps == 20 and result.stopped_by == "max_steps"
    losses = [point["loss"] for point in result.loss_curve]
    assert len(losses) == 4 and losses[-1] < losses[0] - 0.5, losses
    out = Path(result.output_dir)
    log = json.loads((out / "pretrain_log.json").read_text())
    assert log["result"]["steps"] == 20 and log["config"]["hidden_size"] == 32
    assert "## Measured geometry" in (out / "README.md").read_text()
    assert (out / "model.safetensors").exists() and (out / "vocab.txt").exists()

    tokenizer = AutoTokenizer.from_pretrained(out)
    model = AutoModel.from_pretrained(out)
    batch = tokenizer(["a man is playing the guitar ."], return_tensors="pt")
    assert tokenizer.convert_ids_to_tokens(batch["input_ids"][0])[1:3] == ["a", "man"]
    assert model(**batch).last_hidden_state.shape[-1] == 32


def test_time_budget_stops_the_run(tmp_path):
    config = PretrainConfig(
        output_dir=str(tmp_path / "timed"), vocab_size=120, num_hidden_layers=1, hidden_size=16,
        num_attention_heads=2, intermediate_size=32, max_position_embeddings=32, max_seq_length=16,
        per_device_train_batch_size=16, max_steps=None, time_budget_s=1.0, heldout_sentences=0, progress=False,
    )
    result = pretrain(config, corpus=_toy_corpus(200))
    assert result.stopped_by == "time_budget" and result.steps > 0
    assert result.wall_time_s < 5
