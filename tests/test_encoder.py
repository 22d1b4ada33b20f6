"""Encoder: poolers against hand computations on a tiny random BERT, dropout views, encode, save/load."""

import json

import numpy as np
import pytest
import torch
from transformers import AutoConfig, AutoModel, AutoTokenizer

from simcse_lab import POOLERS, SimCSEEncoder
from simcse_lab.augment import dropout_task_difficulty, dropout_views
from simcse_lab.losses import unsup_simcse_loss
from simcse_lab.errors import SimCSELabError

SENTENCES = ["a man plays the guitar", "the dog runs in the park", "two", "a small red car is on the road with people"]


def hand_pool(pooler, hidden_states, mask, mlp=None):
    """Mean over real tokens written as a python loop over each sentence's tokens."""
    out = []
    for b in range(mask.shape[0]):
        n = int(mask[b].sum())
        if pooler in ("cls", "cls_before_pooler"):
            v = hidden_states[-1][b, 0]
        else:
            layers = {"avg": [hidden_states[-1]], "avg_top2": [hidden_states[-1], hidden_states[-2]],
                      "avg_first_last": [hidden_states[1], hidden_states[-1]]}[pooler]
            v = sum(sum(layer[b, t] for t in range(n)) / n for layer in layers) / len(layers)
        if pooler == "cls" and mlp is not None:
            v = torch.tanh(mlp.dense.weight @ v + mlp.dense.bias)
        out.append(v)
    return torch.stack(out)


@pytest.mark.parametrize("pooler", POOLERS)
def test_pooler_matches_hand_computation(tiny_model_dir, pooler):
    encoder = SimCSEEncoder.from_pretrained(tiny_model_dir, pooler=pooler, device="cpu")
    raw = AutoModel.from_pretrained(tiny_model_dir).eval()
    batch = encoder.tokenizer(SENTENCES, padding=True, return_tensors="pt")
    with torch.no_grad():
        states = raw(**batch, output_hidden_states=True).hidden_states
        expected = hand_pool(pooler, states, batch["attention_mask"], encoder.mlp)
    got = encoder.encode(SENTENCES)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)


def test_mlp_only_train_drops_head_at_inference(tiny_model_dir):
    encoder = SimCSEEncoder.from_pretrained(tiny_model_dir, pooler="cls", mlp_only_train=True, device="cpu")
    before = SimCSEEncoder.from_pretrained(tiny_model_dir, pooler="cls_before_pooler", device="cpu")
    torch.testing.assert_close(encoder.encode(SENTENCES), before.encode(SENTENCES))
    assert encoder.mlp is not None and encoder.train().uses_mlp and not encoder.eval().uses_mlp


def test_unknown_pooler_lists_valid_ones(tiny_model_dir):
    with pytest.raises(SimCSELabError, match="valid poolers are: cls, cls_before_pooler, avg, avg_top2, avg_first_last"):
        SimCSEEncoder.from_pretrained(tiny_model_dir, pooler="max")


def test_dropout_views_differ_in_train_mode_and_agree_in_eval(tiny_model_dir):
    encoder = SimCSEEncoder.from_pretrained(tiny_model_dir, pooler="avg", device="cpu")
    torch.manual_seed(0)
    z1, z2 = dropout_views(encoder.train(), SENTENCES)
    assert (z1 - z2).abs().max() > 1e-3
    z1, z2 = dropout_views(encoder.eval(), SENTENCES)
    torch.testing.assert_close(z1, z2)


def test_dropout_task_difficulty_matches_the_loss_on_the_same_views(tiny_model_dir):
    encoder = SimCSEEncoder.from_pretrained(tiny_model_dir, pooler="avg", device="cpu").eval()
    sentences = SENTENCES * 3  # 12 sentences: three batches of 4
    torch.manual_seed(0)
    report = dropout_task_difficulty(encoder, sentences, batch_size=4, temperature=0.1)
    assert not encoder.training  # the caller's mode is restored
    torch.manual_seed(0)  # the same dropout masks, batch by batch, computed by hand
    expected_loss, expected_positive = 0.0, 0.0
    with torch.no_grad():
        for start in (0, 4, 8):
            z1, z2 = dropout_views(encoder.train(), sentences[start:start + 4])
            expected_loss += float(unsup_simcse_loss(z1, z2, 0.1)) / 3
            expected_positive += float(torch.nn.functional.cosine_similarity(z1, z2).mean()) / 3
    assert report["initial_loss"] == pytest.approx(expected_loss, rel=1e-5)
    assert report["positive_cosine"] == pytest.approx(expected_positive, rel=1e-5)
    assert -1 <= report["negative_cosine"] <= report["hardest_negative_cosine"] <= 1


def test_dropout_task_difficulty_without_dropout_has_identical_views(tiny_model_dir):
    no_dropout = SimCSEEncoder.from_pretrained(tiny_model_dir, pooler="avg", device="cpu", dropout=0.0)
    report = dropout_task_difficulty(no_dropout, SENTENCES, batch_size=4)
    assert report["positive_cosine"] == pytest.approx(1.0, abs=1e-5)
    with pytest.raises(SimCSELabError, match="at least one batch"):
        dropout_task_difficulty(no_dropout, SENTENCES[:3], batch_size=4)


def test_encode_restores_order_and_matches_single_calls(tiny_model_dir):
    encoder = SimCSEEncoder.from_pretrained(tiny_model_dir, pooler="avg", device="cpu")
    together = encoder.encode(SENTENCES, batch_size=2)
    alone = torch.cat([encoder.encode([s]) for s in SENTENCES])
    torch.testing.assert_close(together, alone, rtol=1e-4, atol=1e-5)
    assert encoder.encode([]).shape == (0, encoder.hidden_size)
    normed = encoder.encode(SENTENCES, normalize=True)
    torch.testing.assert_close(normed.norm(dim=1), torch.ones(len(SENTENCES)))


@pytest.mark.parametrize("pooler,mlp_only_train", [("cls", False), ("cls", True), ("avg", False), ("cls_before_pooler", False)])
def test_save_load_round_trip(tiny_model_dir, tmp_path, pooler, mlp_only_train):
    encoder = SimCSEEncoder.from_pretrained(tiny_model_dir, pooler=pooler, mlp_only_train=mlp_only_train, device="cpu")
    with torch.no_grad():  # make the head distinctive so a wrong reload would show
        if encoder.mlp is not None:
            encoder.mlp.dense.weight.mul_(3.0)
    expected = encoder.encode(SENTENCES)
    encoder.save_pretrained(tmp_path)
    assert json.loads((tmp_path / "simcse_config.json").read_text())["pooler"] == pooler
    assert not list(tmp_path.glob("*.bin")), "weights must be safetensors only"
    reloaded = SimCSEEncoder.from_pretrained(tmp_path, device="cpu")
    torch.testing.assert_close(reloaded.encode(SENTENCES), expected)

    # Plain transformers: the same backbone; for cls + MLP, pooler_output is the embedding (official layout).
    model = AutoModel.from_pretrained(tmp_path).eval()
    batch = encoder.tokenizer(SENTENCES, padding=True, return_tensors="pt")
    with torch.no_grad():
        out = model(**batch)
    if pooler == "cls" and not mlp_only_train:
        torch.testing.assert_close(out.pooler_output, expected, rtol=1e-4, atol=1e-5)
    elif pooler == "avg":
        mask = batch["attention_mask"].unsqueeze(-1).float()
        torch.testing.assert_close((out.last_hidden_state * mask).sum(1) / mask.sum(1), expected, rtol=1e-4, atol=1e-5)
    else:
        torch.testing.assert_close(out.last_hidden_state[:, 0], expected, rtol=1e-4, atol=1e-5)

    # sentence-transformers: loads the directory with the right pooling (and the Dense MLP when used).
    st = pytest.importorskip("sentence_transformers")
    model = st.SentenceTransformer(str(tmp_path), device="cpu")
    np.testing.assert_allclose(model.encode(SENTENCES), expected.numpy(), rtol=1e-4, atol=1e-5)


def test_official_simcse_checkpoint_uses_pooler_weights_as_mlp(tiny_model_dir, tmp_path):
    """An official checkpoint stores the MLP as the BERT pooler; 'unsup' ones use cls_before_pooler."""
    import shutil

    sup_dir = tmp_path / "sup-simcse-tiny"
    unsup_dir = tmp_path / "unsup-simcse-tiny"
    shutil.copytree(tiny_model_dir, sup_dir)
    shutil.copytree(tiny_model_dir, unsup_dir)
    sup = SimCSEEncoder.from_pretrained(sup_dir, device="cpu")
    unsup = SimCSEEncoder.from_pretrained(unsup_dir, device="cpu")
    assert (sup.pooler, unsup.pooler) == ("cls", "cls_before_pooler")
    model = AutoModel.from_pretrained(sup_dir).eval()
    batch = sup.tokenizer(SENTENCES, padding=True, return_tensors="pt")
    with torch.no_grad():
        torch.testing.assert_close(sup.encode(SENTENCES), model(**batch).pooler_output, rtol=1e-4, atol=1e-5)


def test_a_plain_model_under_a_folder_named_simcse_is_not_official(tiny_model_dir, tmp_path):
    import shutil

    target = tmp_path / "my_simcse_lab_checkout" / "models" / "plain-bert"
    shutil.copytree(tiny_model_dir, target)
    assert SimCSEEncoder.from_pretrained(target, device="cpu").pooler == "avg"


def test_a_sentence_transformers_pooling_config_outranks_simcse_in_the_name(tiny_model_dir, tmp_path):
    """Regression: a local sentence-transformers model named like an official SimCSE checkpoint ("my-simcse-st")
    with mean pooling loaded as cls, with an "MLP" taken from BERT's untrained pooler. The saved configuration
    comes first: its mean pooling, which sentence-transformers itself computes the same way."""
    import shutil

    target = tmp_path / "my-simcse-st"
    shutil.copytree(tiny_model_dir, target)
    (target / "1_Pooling").mkdir()
    (target / "1_Pooling" / "config.json").write_text(json.dumps({"word_embedding_dimension": 32, "pooling_mode_cls_token": False,
                                                                  "pooling_mode_mean_tokens": True}))
    (target / "modules.json").write_text(json.dumps([
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]))
    encoder = SimCSEEncoder.from_pretrained(target, device="cpu")
    assert (encoder.pooler, encoder.mlp) == ("avg", None)
    assert "1_Pooling" in encoder.pooler_reason
    st = pytest.importorskip("sentence_transformers")
    reference = st.SentenceTransformer(str(target), device="cpu").encode(SENTENCES)
    np.testing.assert_allclose(encoder.encode(SENTENCES).numpy(), reference, rtol=1e-4, atol=1e-5)


def test_pooler_reason_says_where_the_pooler_came_from(tiny_model_dir, tmp_path):
    import shutil

    assert "no saved pooling configuration" in SimCSEEncoder.from_pretrained(tiny_model_dir, device="cpu").pooler_reason
    assert "given by the caller" in SimCSEEncoder.from_pretrained(tiny_model_dir, pooler="cls", device="cpu").pooler_reason
    shutil.copytree(tiny_model_dir, tmp_path / "unsup-simcse-tiny")
    assert "official SimCSE checkpoint name" in SimCSEEncoder.from_pretrained(tmp_path / "unsup-simcse-tiny", device="cpu").pooler_reason
    SimCSEEncoder.from_pretrained(tiny_model_dir, pooler="avg_top2", device="cpu").save_pretrained(tmp_path / "saved")
    assert "simcse_config.json" in SimCSEEncoder.from_pretrained(tmp_path / "saved", device="cpu").pooler_reason


def test_encode_of_nothing_has_the_width_of_the_post_processed_embeddings(tiny_model_dir):
    """Regression: with a whitening that keeps k < D dimensions attached, encode([]) gave D columns, encode(x) k."""
    from simcse_lab.models.postprocess import fit_postprocess

    encoder = SimCSEEncoder.from_pretrained(tiny_model_dir, pooler="avg", device="cpu")
    fit_postprocess(encoder, SENTENCES * 10, kind="whitening", k=3)
    assert encoder.encode(SENTENCES).shape == (4, 3)
    assert encoder.encode([]).shape == (0, 3)


def test_a_directory_transformers_cannot_read_is_not_called_a_network_problem(tmp_path):
    """Regression: every ValueError of a load was reported with the offline advice; a config with an unknown
    model_type is a damaged directory, and the message says what a model directory needs."""
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "no-such-architecture"}))
    with pytest.raises(SimCSELabError) as caught:
        SimCSEEncoder.from_pretrained(tmp_path)
    assert "HF_HUB_OFFLINE" not in str(caught.value) and "config.json, the weights" in str(caught.value)


def pooler_output(model_dir, sentences) -> torch.Tensor:
    """What the official evaluation.py and simcse/tool.py return for --pooler cls: transformers' pooler_output."""
    tokenizer, model = AutoTokenizer.from_pretrained(model_dir), AutoModel.from_pretrained(model_dir).eval()
    with torch.no_grad():
        return model(**tokenizer(sentences, padding=True, return_tensors="pt")).pooler_output


def test_cls_on_an_ordinary_checkpoint_is_its_pooler_output_on_every_load(tiny_model_dir):
    """Regression: pooler='cls' on a checkpoint not saved by simcse_lab drew a new random MLP on every load (STS16 of
    all-MiniLM-L6-v2 moved between runs); it is the checkpoint's own pretrained pooler, as officially."""
    first = SimCSEEncoder.from_pretrained(tiny_model_dir, pooler="cls", device="cpu")
    second = SimCSEEncoder.from_pretrained(tiny_model_dir, pooler="cls", device="cpu")
    torch.testing.assert_close(first.encode(SENTENCES), second.encode(SENTENCES), rtol=0, atol=0)
    torch.testing.assert_close(first.encode(SENTENCES), pooler_output(tiny_model_dir, SENTENCES), rtol=1e-4, atol=1e-5)
    assert "pretrained pooler" in first.pooler_reason


def test_cls_on_a_checkpoint_without_pooler_weights_is_a_fixed_untrained_head(tiny_model_dir, tmp_path):
    """An MLM checkpoint (like the embedded default encoder) has no pooler: cls is the [CLS] state through a Linear+tanh
    drawn from seed 0, N(0, initializer_range) weights and zero bias (transformers' initialisation, made reproducible)."""
    from transformers import BertForMaskedLM

    mlm_dir = tmp_path / "mlm"
    BertForMaskedLM(AutoConfig.from_pretrained(tiny_model_dir)).save_pretrained(mlm_dir)
    AutoTokenizer.from_pretrained(tiny_model_dir).save_pretrained(mlm_dir)
    first, second = (SimCSEEncoder.from_pretrained(mlm_dir, pooler="cls", device="cpu") for _ in range(2))
    torch.testing.assert_close(first.encode(SENTENCES), second.encode(SENTENCES), rtol=0, atol=0)
    weight = torch.empty(32, 32).normal_(0.0, 0.02, generator=torch.Generator().manual_seed(0))
    cls_state = SimCSEEncoder.from_pretrained(mlm_dir, pooler="cls_before_pooler", device="cpu").encode(SENTENCES)
    torch.testing.assert_close(first.encode(SENTENCES), torch.tanh(cls_state @ weight.T), rtol=1e-4, atol=1e-5)
    assert "no pooler weights" in first.pooler_reason


def test_training_starts_from_a_fresh_head_and_resuming_keeps_the_saved_one(tiny_model_dir, tmp_path):
    """The official cl_init builds a new MLPLayer: fresh_mlp=True (what the trainer passes) ignores the checkpoint's
    pooler and draws the head from the global RNG, so a seeded run draws the same one."""
    from simcse_lab.data.training_files import TrainingData
    from simcse_lab.train import TrainConfig
    from simcse_lab.training.distributed import DistributedContext
    from simcse_lab.training.trainer import load_model_and_objective

    pretrained = AutoModel.from_pretrained(tiny_model_dir).pooler.dense.weight
    torch.manual_seed(1)
    fresh = SimCSEEncoder.from_pretrained(tiny_model_dir, pooler="cls", fresh_mlp=True, device="cpu")
    torch.manual_seed(1)
    again = SimCSEEncoder.from_pretrained(tiny_model_dir, pooler="cls", fresh_mlp=True, device="cpu")
    assert not torch.allclose(fresh.mlp.dense.weight, pretrained)
    torch.testing.assert_close(fresh.mlp.dense.weight, again.mlp.dense.weight, rtol=0, atol=0)

    config = TrainConfig(model_name_or_path=str(tiny_model_dir), train_file="unused.txt", pooler_type="cls")
    data = TrainingData("unsup", [("a man plays the guitar",), ("a woman reads a book",)])
    context = DistributedContext(torch.device("cpu"))
    encoder, _ = load_model_and_objective(config, data, None, context)
    assert not torch.allclose(encoder.mlp.dense.weight, pretrained)
    with torch.no_grad():
        encoder.mlp.dense.weight.mul_(3.0)
    encoder.save_pretrained(tmp_path / "checkpoint-1")
    resumed, _ = load_model_and_objective(config, data, tmp_path / "checkpoint-1", context)
    torch.testing.assert_close(resumed.mlp.dense.weight, encoder.mlp.dense.weight)
