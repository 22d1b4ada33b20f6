"""SimCSE's follow-ups (ESimCSE, MixCSE, ArcCSE, PromptBERT), each against its formula written out by hand.

Every formula test was also run against the code with the method's distinguishing line removed (the repeated
token not written twice, the momentum update skipped, the queue's detach, the mix, the mix's detach, the
margin, the template's final token, the template-only position shift) and fails there.
"""

from __future__ import annotations

import json
import math
import random
import re
from collections import Counter

import numpy as np
import pytest
import torch
from scipy.stats import chisquare
from transformers import AutoModel, AutoTokenizer

import simcse_lab
from simcse_lab import SimCSEEncoder
from simcse_lab.augment import word_repetition
from simcse_lab.commands.cli import main as cli_main
from simcse_lab.data.training_files import load_training_file
from simcse_lab.errors import SimCSELabError
from simcse_lab.losses import simcse_logits, unsup_simcse_loss
from simcse_lab.models.prompt import PromptTemplate
from simcse_lab.losses_followup import arccon_logits, arccse_loss, esimcse_loss, mixcse_logits, mixcse_loss
from simcse_lab.train import TrainConfig, train
from simcse_lab.training.distributed import DistributedContext
from simcse_lab.training.objectives import build_objective

SENTENCES = ["a man plays the guitar", "a woman plays the piano", "the dog runs in the park", "two children read a book",
             "a cat sleeps on the red chair", "people eat food at the table", "the sun is big", "a boy sings"] * 4


@pytest.fixture
def sentence_file(tmp_path):
    path = tmp_path / "sentences.txt"
    path.write_text("\n".join(f"{s} {i}" for i, s in enumerate(SENTENCES)) + "\n")
    return path


def objective_for(method, model_dir, train_file, **settings):
    config = TrainConfig(model_name_or_path=str(model_dir), train_file=str(train_file), method=method, eval_steps=0,
                         **({} if method == "promptbert" else {"pooler_type": "avg"}), **settings)
    pooler = config.pooler_type
    encoder = SimCSEEncoder.from_pretrained(model_dir, pooler=pooler, device="cpu")
    dist = DistributedContext(torch.device("cpu"))
    return encoder, build_objective(config, load_training_file(train_file), encoder, torch.device("cpu"), dist)


def embeddings(seed, rows=6, dim=5):
    generator = torch.Generator().manual_seed(seed)
    return (torch.randn(rows, dim, generator=generator, dtype=torch.float64).float() for _ in range(2))


def cos(a, b) -> float:
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


def cross_entropy_by_hand(rows: list[list[float]]) -> float:
    """Mean over rows of -log softmax(row)[i], the positive being entry i of row i."""
    return sum(-row[i] + math.log(sum(math.exp(v) for v in row)) for i, row in enumerate(rows)) / len(rows)


# ---------------------------------------------------------------------- ESimCSE: word repetition
@pytest.mark.parametrize("length", [1, 3, 25])
def test_word_repetition_keeps_the_order_and_repeats_a_uniform_count_up_to_the_share(length):
    """Paper: dup_len ~ U{0..max(2, int(dup_rate * N))}, dup_len distinct tokens each written twice in place."""
    dup_rate, draws = 0.32, 3000
    most = min(length, max(2, int(dup_rate * length)))  # the paper's bound, capped at N
    tokens = list(range(length))  # distinct tokens, so every repeat is visible
    rng = random.Random(0)
    counts = Counter()
    for _ in range(draws):
        out = word_repetition(tokens, dup_rate, rng)
        assert out == sorted(out) and set(out) == set(tokens)  # the order kept, nothing lost or invented
        multiplicity = Counter(out)
        assert set(multiplicity.values()) <= {1, 2}
        repeated = len(out) - length
        assert all(out[out.index(t) + 1] == t for t, c in multiplicity.items() if c == 2)  # a repeat sits next to its token
        counts[repeated] += 1
    assert set(counts) == set(range(most + 1))  # every count from 0 to the bound occurs, none beyond
    assert chisquare([counts[k] for k in range(most + 1)]).pvalue > 1e-3  # uniform over {0, ..., bound}


def test_esimcse_positive_is_the_sentence_with_tokens_repeated_so_lengths_differ(tiny_model_dir, sentence_file):
    encoder, objective = objective_for("esimcse", tiny_model_dir, sentence_file)
    rows = np.arange(16)
    ids, mask = objective.method.batch(objective, rows)
    first, second = ids[:16], ids[16:]
    lengths = mask.sum(1)
    assert (lengths[16:] >= lengths[:16]).all() and (lengths[16:] > lengths[:16]).any()
    for original, repeated, n, m in zip(first.tolist(), second.tolist(), lengths[:16].tolist(), lengths[16:].tolist()):
        original, repeated = original[:n], repeated[:m]
        assert repeated[0] == original[0] and repeated[-1] == original[-1]  # [CLS] ... [SEP], once each
        collapsed, k = [], 0  # undo the repetition greedily: the original must come back, in order
        for token in repeated:
            if k < n and token == original[k]:
                collapsed.append(token)
                k += 1
        assert collapsed == original
        assert m - n <= max(2, int(0.32 * (n - 2)))


# ---------------------------------------------------------------------- ESimCSE: momentum encoder and queue
def test_esimcse_loss_is_infonce_with_the_queue_in_the_denominator():
    z1, z2 = embeddings(0)
    queue = torch.randn(4, 5, generator=torch.Generator().manual_seed(1))
    t = 0.05
    a, b, q = z1.numpy(), z2.numpy(), queue.numpy()
    rows = [[cos(a[i], b[j]) / t for j in range(6)] + [cos(a[i], q[m]) / t for m in range(4)] for i in range(6)]
    assert float(esimcse_loss(z1, z2, queue, t)) == pytest.approx(cross_entropy_by_hand(rows), rel=1e-5)
    assert torch.equal(esimcse_loss(z1, z2, queue[:0], t), unsup_simcse_loss(z1, z2, t))  # an empty queue is SimCSE


def test_queue_negatives_carry_no_gradient(tiny_model_dir, sentence_file):
    z1, z2 = (z.requires_grad_() for z in embeddings(2))
    queue = torch.randn(4, 5, requires_grad=True)
    esimcse_loss(z1, z2, queue).backward()
    assert z1.grad is not None and queue.grad is None  # the loss sees the queue as constants

    encoder, objective = objective_for("esimcse", tiny_model_dir, sentence_file, queue_size=12)
    encoder.train()
    for step in range(2):
        objective.loss(encoder, np.arange(step * 8, step * 8 + 8)).backward()
    momentum = objective.method.momentum.encoder
    assert all(not p.requires_grad and p.grad is None for p in momentum.parameters())
    assert any(p.grad is not None for p in encoder.parameters())
    assert not objective.method.queue.embeddings.requires_grad
    # the queue holds the momentum encoder's embeddings of the 16 sentences seen, in eval mode (no dropout)
    ids, mask = objective.method.batch(objective, np.arange(8, 16))
    expected = momentum.eval()(ids[:8], mask[:8])
    torch.testing.assert_close(objective.method.queue.embeddings[8:12], expected[:4])
    assert int(objective.method.queue.count) == 12  # 16 pushed, the last 12 kept


def test_momentum_update_is_the_ema_of_the_encoder_parameters(tiny_model_dir, sentence_file):
    encoder, objective = objective_for("esimcse", tiny_model_dir, sentence_file, momentum=0.9)
    momentum = objective.method.momentum.encoder
    with torch.no_grad():  # make the two encoders differ, as they do after the first optimiser step
        for p in encoder.parameters():
            p.add_(torch.randn_like(p) * 0.01)
    online = [p.detach().clone() for p in encoder.parameters()]
    before = [p.detach().clone() for p in momentum.parameters()]
    objective.loss(encoder.train(), np.arange(8))
    for after, old, theta in zip(momentum.parameters(), before, online):
        torch.testing.assert_close(after, 0.9 * old + 0.1 * theta, rtol=0, atol=1e-6)  # the update moves them by ~1e-3
    assert any(not torch.equal(a, b) for a, b in zip(momentum.parameters(), before))


def test_esimcse_resumes_exactly_with_its_queue_and_momentum_encoder(tiny_model_dir, sentence_file, tmp_path):
    from safetensors.torch import load_file

    settings = dict(model_name_or_path=str(tiny_model_dir), train_file=str(sentence_file), method="esimcse", pooler_type="avg",
                    max_steps=8, save_steps=4, per_device_train_batch_size=8, queue_size=12, eval_steps=0, show_progress=False)
    whole = train(TrainConfig(output_dir=str(tmp_path / "whole"), **settings))

    class StopAfterFirstSave:
        def on_save(self, state, path):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(TrainConfig(output_dir=str(tmp_path / "cut"), **settings), callbacks=[StopAfterFirstSave()])
    resumed = train(TrainConfig(output_dir=str(tmp_path / "cut"), resume_from_checkpoint="auto", **settings))
    assert resumed.steps == whole.steps == 8
    a, b = load_file(f"{whole.output_dir}/model.safetensors"), load_file(f"{resumed.output_dir}/model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)


# ---------------------------------------------------------------------- MixCSE
def mixcse_by_hand(a: np.ndarray, b: np.ndarray, lam: float, t: float) -> list[list[float]]:
    """The official cl_forward's logit rows: in-batch, anchors vs mixed positives, mixed anchors vs positives."""
    n = len(a)
    mixed_b = [lam * b[j] + (1 - lam) * b[(j + 1) % n] for j in range(n)]
    mixed_a = [lam * a[i] + (1 - lam) * a[(i + 1) % n] for i in range(n)]
    rows = []
    for i in range(n):
        row = [cos(a[i], b[j]) / t for j in range(n)]
        row += [0.0 if j == (i - 1) % n else cos(a[i], mixed_b[j]) / t for j in range(n)]
        row += [0.0 if j == (i + 1) % n else cos(mixed_a[i], b[j]) / t for j in range(n)]
        rows.append(row)
    return rows


def test_mixcse_mixes_a_positive_with_the_next_one_at_the_papers_weight():
    z1, z2 = embeddings(3)
    expected = mixcse_by_hand(z1.numpy(), z2.numpy(), 0.2, 0.05)
    torch.testing.assert_close(mixcse_logits(z1, z2, 0.2, 0.05), torch.tensor(expected), rtol=1e-5, atol=1e-4)
    assert float(mixcse_loss(z1, z2, 0.2, 0.05)) == pytest.approx(cross_entropy_by_hand(expected), rel=1e-5)
    assert TrainConfig(train_file="x.txt").mix_lambda == 0.2


def test_mixcse_hard_negatives_are_stop_gradient():
    """The gradient is that of the same logits with the mixed negatives computed from detached copies."""
    z1, z2 = embeddings(4)

    def grads(detach: bool):
        a, b = z1.clone().requires_grad_(), z2.clone().requires_grad_()
        if detach is None:
            mixcse_loss(a, b, 0.2, 0.05).backward()
            return a.grad, b.grad
        source_a, source_b = (a.detach(), b.detach()) if detach else (a, b)
        mixed_b = 0.2 * source_b + 0.8 * source_b.roll(-1, 0)
        mixed_a = 0.2 * source_a + 0.8 * source_a.roll(-1, 0)
        unit = torch.nn.functional.normalize
        shifted = torch.eye(6, dtype=torch.bool).roll(1, 1)
        logits = torch.cat([unit(a) @ unit(b).T, (unit(a) @ unit(mixed_b).T).masked_fill(shifted.T, 0),
                            (unit(mixed_a) @ unit(b).T).masked_fill(shifted, 0)], 1) / 0.05
        torch.nn.functional.cross_entropy(logits, torch.arange(6)).backward()
        return a.grad, b.grad

    ours, stopped, flowing = grads(None), grads(True), grads(False)
    for g, expected, other in zip(ours, stopped, flowing):
        torch.testing.assert_close(g, expected, rtol=1e-4, atol=1e-5)
        assert (g - other).abs().max() > 1e-3  # the test can tell stop-gradient from none


# ---------------------------------------------------------------------- ArcCSE
def test_arccse_margin_zero_is_simcse_exactly():
    z1, z2 = embeddings(5)
    assert torch.equal(arccon_logits(z1, z2, 0.0, 0.05), simcse_logits(z1, z2, temperature=0.05))
    assert torch.equal(arccse_loss(z1, z2, 0.0, 0.05), unsup_simcse_loss(z1, z2, 0.05))


def test_arccse_adds_the_angular_margin_to_the_positive_only():
    z1, z2 = embeddings(6)
    a, b, t, m = z1.numpy(), z2.numpy(), 0.05, math.radians(10)
    rows = [[(math.cos(math.acos(cos(a[i], b[j])) + m) if i == j else cos(a[i], b[j])) / t for j in range(6)] for i in range(6)]
    torch.testing.assert_close(arccon_logits(z1, z2, 10.0, t), torch.tensor(rows), rtol=1e-5, atol=1e-4)
    assert float(arccse_loss(z1, z2, 10.0, t)) == pytest.approx(cross_entropy_by_hand(rows), rel=1e-5)
    same = z1.clone().requires_grad_()
    arccse_loss(same, same.detach().clone(), 10.0, t).backward()  # cos = 1 on the diagonal: arccos's slope is infinite there
    assert torch.isfinite(same.grad).all()


# ---------------------------------------------------------------------- PromptBERT
def test_promptbert_applies_the_template_token_by_token():
    """The paper's template around the sentence's own tokens, the final "." included (the official issue #22:
    the trailing "." is worth 5 points of STS for untrained BERT)."""
    encoder = SimCSEEncoder.from_pretrained(simcse_lab.DEFAULT_MODEL, pooler="mask", device="cpu")
    batch = encoder.tokenize(["A man is playing a guitar.", "Dogs run."])
    tokens = [encoder.tokenizer.convert_ids_to_tokens(row[: int(n)]) for row, n in zip(batch["input_ids"], batch["attention_mask"].sum(1))]
    assert tokens[0] == ["[CLS]", "this", "sentence", ":", '"', "a", "man", "is", "playing", "a", "guitar", ".", '"', "means", "[MASK]",
                         ".", "[SEP]"]
    assert tokens[1][:5] == ["[CLS]", "this", "sentence", ":", '"'] and tokens[1][-5:] == ['"', "means", "[MASK]", ".", "[SEP]"]
    other = SimCSEEncoder.from_pretrained(simcse_lab.DEFAULT_MODEL, pooler="mask", device="cpu")
    other.prompt = PromptTemplate.from_text('This sentence of "[X]" means [MASK] .', other.tokenizer)
    second = other.tokenize(["Dogs run."])["input_ids"][0].tolist()
    assert other.tokenizer.convert_ids_to_tokens(second)[:6] == ["[CLS]", "this", "sentence", "of", '"', "dogs"]
    # the embedding is the last layer's state at the [MASK] token of the templated sentence
    raw = AutoModel.from_pretrained(simcse_lab.DEFAULT_MODEL).eval()
    with torch.no_grad():
        states = raw(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
    where = (batch["input_ids"] == encoder.tokenizer.mask_token_id).nonzero()
    torch.testing.assert_close(encoder.encode(["A man is playing a guitar.", "Dogs run."]), states[where[:, 0], where[:, 1]],
                               rtol=1e-4, atol=1e-5)


def test_a_long_sentence_is_cut_and_the_template_kept_whole(tiny_model_dir):
    encoder = SimCSEEncoder.from_pretrained(tiny_model_dir, pooler="mask", device="cpu")
    long = " ".join(["the dog runs in the park"] * 20)
    ids = encoder.tokenize([long], max_length=128)["input_ids"][0].tolist()
    assert len(ids) == encoder.max_tokens == 64
    suffix = list(encoder.prompt.suffix) + [encoder.tokenizer.sep_token_id]
    assert ids[-len(suffix):] == suffix and ids[1 : 1 + len(encoder.prompt.prefix)] == list(encoder.prompt.prefix)


def test_template_denoising_subtracts_the_template_alone_at_the_same_positions(tiny_model_dir, sentence_file):
    encoder, objective = objective_for("promptbert", tiny_model_dir, sentence_file)
    method = objective.method
    rows = np.array([0, 3, 5])
    with torch.no_grad():
        h1, h2 = method.embed_views(objective, encoder.eval(), rows)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    raw = AutoModel.from_pretrained(tiny_model_dir).eval()
    lines = sentence_file.read_text().splitlines()

    def mask_state(ids, positions):
        ids = torch.tensor([ids])
        with torch.no_grad():
            out = raw(input_ids=ids, position_ids=torch.tensor([positions])).last_hidden_state[0]
        return out[ids[0].tolist().index(tokenizer.mask_token_id)]

    for view, template in ((h1, 'This sentence : "'), (h2, 'This sentence of "')):
        before = tokenizer.convert_tokens_to_ids(tokenizer.tokenize(template))
        after = tokenizer.convert_tokens_to_ids(tokenizer.tokenize('" means [MASK] .'))
        for k, row in enumerate(rows):
            sentence = tokenizer.convert_tokens_to_ids(tokenizer.tokenize(lines[row]))
            cls, sep = tokenizer.cls_token_id, tokenizer.sep_token_id
            full = [cls, *before, *sentence, *after, sep]
            alone = [cls, *before, *after, sep]
            shifted = list(range(1 + len(before))) + [1 + len(before) + len(sentence) + j for j in range(len(after) + 1)]
            expected = mask_state(full, list(range(len(full)))) - mask_state(alone, shifted)
            torch.testing.assert_close(view[k], expected, rtol=1e-4, atol=1e-5)
            unshifted = mask_state(full, list(range(len(full)))) - mask_state(alone, list(range(len(alone))))
            assert (view[k] - unshifted).abs().max() > 1e-3  # the positions matter: the test can tell


# ---------------------------------------------------------------------- training, saving, loading
@pytest.mark.parametrize("method", ["simcse", "esimcse", "mixcse", "arccse", "promptbert"])
def test_each_method_trains_saves_and_loads_back_with_its_pooler(method, tiny_model_dir, sentence_file, tmp_path):
    result = train(TrainConfig(model_name_or_path=str(tiny_model_dir), train_file=str(sentence_file), output_dir=str(tmp_path / method),
                               method=method, **({} if method == "promptbert" else {"pooler_type": "avg"}), max_steps=4,
                               per_device_train_batch_size=8, eval_steps=0, logging_steps=2, show_progress=False))
    assert result.steps == 4 and all(math.isfinite(r["loss"]) for r in result.history)
    saved = json.loads((tmp_path / method / "simcse_config.json").read_text())
    assert saved["training"]["recipe"]["method"] == method
    encoder = SimCSEEncoder.from_pretrained(result.output_dir)
    if method == "promptbert":
        assert encoder.pooler == "mask" and saved["prompt_template"] == encoder.prompt.text == 'This sentence : "[X]" means [MASK] .'
    else:
        assert encoder.pooler == "avg" and encoder.prompt is None and "prompt_template" not in saved
    assert encoder.encode(["a dog runs"]).shape == (1, 32)


@pytest.mark.parametrize("method", ["esimcse", "mixcse", "arccse", "promptbert"])
def test_each_method_trains_through_the_cli(method, tiny_model_dir, sentence_file, tmp_path, capsys):
    out = tmp_path / "cli"
    code = cli_main(["train", "--model_name_or_path", str(tiny_model_dir), "--train_file", str(sentence_file), "--output_dir", str(out),
                     "--method", method, "--max_steps", "2", "--per_device_train_batch_size", "8", "--eval_steps", "0", "--no_progress",
                     *{"esimcse": ["--dup_rate", "0.5", "--queue_size", "8", "--momentum", "0.99"], "mixcse": ["--mix_lambda", "0.3"],
                       "arccse": ["--arc_margin", "5"], "promptbert": ["--no_template_denoising"]}[method]])
    assert code == 0, capsys.readouterr().err
    recipe = json.loads((out / "metrics.json").read_text())["recipe"]
    assert recipe["method"] == method
    assert {"esimcse": recipe["queue_size"] == 8 and recipe["dup_rate"] == 0.5, "mixcse": recipe["mix_lambda"] == 0.3,
            "arccse": recipe["arc_margin"] == 5.0, "promptbert": recipe["template_denoising"] is False}[method]
    assert SimCSEEncoder.from_pretrained(out).pooler == ("mask" if method == "promptbert" else "cls")


@pytest.mark.parametrize("settings, needle", [
    (dict(method="moco"), "valid methods are: simcse, esimcse, mixcse, arccse, promptbert"),
    (dict(method="esimcse", dup_rate=1.5), "dup_rate must be >= 0 and <= 1"),
    (dict(method="esimcse", momentum=1.0), "momentum must be >= 0 and < 1"),
    (dict(method="arccse", arc_margin=120.0), "arc_margin must be >= 0 and <= 90"),
    (dict(method="mixcse", do_mlm=True), "does not combine with do_mlm"),
    (dict(method="promptbert", pooler_type="avg"), "embeds with the mask pooler"),
    (dict(method="promptbert", prompt_template="[X] means"), "one [X] (the sentence) and one [MASK] after it"),
    (dict(pooler_type="mask"), "trains with --method promptbert"),
])
def test_a_bad_method_setting_is_one_line(settings, needle):
    with pytest.raises(SimCSELabError, match=re.escape(needle)):
        TrainConfig(train_file="x.txt", **settings)


def test_methods_train_on_unsupervised_files_only(tiny_model_dir, tmp_path):
    pairs = tmp_path / "pairs.csv"
    pairs.write_text("sent0,sent1\n" + "\n".join(f"a man plays {i},a man plays music" for i in range(20)) + "\n")
    with pytest.raises(SimCSELabError, match="trains on unsupervised data"):
        objective_for("mixcse", tiny_model_dir, pairs)
