"""simcse_lab's own BERT forward (padding-free, [CLS]-only last layer, oneDNN) against transformers'
BertModel: same hidden states, same gradients; and off the CPU, no reads back to the host."""

import importlib.util
import numpy as np
import pytest
import torch
from transformers import (AutoTokenizer, BertConfig, BertModel, CamembertConfig, CamembertModel, DistilBertConfig, DistilBertModel,
                          RobertaConfig, RobertaModel, XLMRobertaConfig, XLMRobertaModel)

from simcse_lab import SimCSEEncoder
from simcse_lab.models import bert_forward
from simcse_lab.training import objectives
from simcse_lab.models.batches import TokenizedColumn
from simcse_lab.models.bert_forward import (GPU_PACK_MIN_POSITIONS, MIN_PADDING_SHARE, bert_hidden_states, dropout, host_packing_pays,
                                     real_token_positions, supports_own_forward, worth_packing)
from simcse_lab.training.distributed import DistributedContext
from simcse_lab.errors import SimCSELabError
from simcse_lab.training.objectives import SimCSEObjective


ARCHITECTURES = {"bert": (BertConfig, BertModel), "roberta": (RobertaConfig, RobertaModel),
                 "xlm-roberta": (XLMRobertaConfig, XLMRobertaModel), "camembert": (CamembertConfig, CamembertModel)}


def tiny_bert(dropout_p: float = 0.0, seed: int = 0, kind: str = "bert"):
    """A random 3-layer BertModel, or RoBERTa / XLM-R / CamemBERT of the same shape (padding id 0, as ragged_batch pads)."""
    config_class, model_class = ARCHITECTURES[kind]
    torch.manual_seed(seed)
    config = config_class(vocab_size=200, hidden_size=32, num_hidden_layers=3, num_attention_heads=4, intermediate_size=64,
                          max_position_embeddings=64, hidden_dropout_prob=dropout_p, attention_probs_dropout_prob=dropout_p,
                          pad_token_id=0)
    return model_class(config)


def ragged_batch(lengths, width=None, seed=1, left=False):
    """Random ids with the given real lengths; padding (id 0) on the right, or on the left."""
    generator = torch.Generator().manual_seed(seed)
    width = width or max(lengths)
    ids = torch.zeros(len(lengths), width, dtype=torch.long)
    mask = torch.zeros(len(lengths), width, dtype=torch.long)
    for row, n in enumerate(lengths):
        span = slice(width - n, width) if left else slice(0, n)
        ids[row, span] = torch.randint(5, 120, (n,), generator=generator)
        mask[row, span] = 1
    return ids, mask


@pytest.mark.parametrize("kind", sorted(ARCHITECTURES))
@pytest.mark.parametrize("pack", [True, False], ids=["packed", "dense"])
@pytest.mark.parametrize("left", [False, True], ids=["right-padded", "left-padded"])
def test_hidden_states_equal_bert_model_at_real_positions(left, pack, kind):
    model = tiny_bert(kind=kind).eval()
    ids, mask = ragged_batch([7, 3, 12, 1, 12, 5], width=14, left=left)
    with torch.no_grad():
        reference = model(input_ids=ids, attention_mask=mask, output_hidden_states=True).hidden_states
        ours = bert_hidden_states(model, ids, mask, all_layers=True, pack=pack)
    assert len(ours) == len(reference) == 4  # embeddings + 3 layers
    real = mask.bool()
    for theirs, mine in zip(reference, ours):
        assert torch.allclose(mine[real], theirs[real], atol=1e-5)
        if pack:
            assert mine[~real].abs().max() == 0  # padding positions are zeros, not garbage
        else:
            assert torch.allclose(mine, theirs, atol=1e-5)  # every position, as BertModel computes it


@pytest.mark.parametrize("pack", [True, False], ids=["packed", "dense"])
def test_first_token_only_gives_the_cls_state_of_the_last_layer(pack):
    model = tiny_bert().eval()
    ids, mask = ragged_batch([7, 3, 12, 1, 12, 5], width=14)
    with torch.no_grad():
        reference = model(input_ids=ids, attention_mask=mask).last_hidden_state[:, 0]
        (ours,) = bert_hidden_states(model, ids, mask, pack=pack, first_token_only=True)
    assert ours.shape == (6, 1, 32)
    assert torch.allclose(ours[:, 0], reference, atol=1e-5)
    with pytest.raises(ValueError, match="all_layers"):
        bert_hidden_states(model, ids, mask, all_layers=True, first_token_only=True)


def test_token_type_ids_are_used():
    model = tiny_bert().eval()
    ids, mask = ragged_batch([6, 9, 4])
    types = (torch.arange(ids.shape[1]) >= 3).long().expand_as(ids) * mask
    with torch.no_grad():
        reference = model(input_ids=ids, attention_mask=mask, token_type_ids=types).last_hidden_state
        (ours,) = bert_hidden_states(model, ids, mask, token_type_ids=types)
        (without,) = bert_hidden_states(model, ids, mask)
    real = mask.bool()
    assert torch.allclose(ours[real], reference[real], atol=1e-5)
    assert not torch.allclose(without[real], reference[real], atol=1e-3)


@pytest.mark.parametrize(("pack", "first_token_only"), [(True, False), (False, False), (True, True), (False, True)],
                         ids=["packed", "dense", "packed-cls", "dense-cls"])
@pytest.mark.parametrize("kind", sorted(ARCHITECTURES))
def test_gradients_equal_bert_model(pack, first_token_only, kind):
    """Training mode with dropout 0: every parameter gets the gradient BertModel's forward gives it,
    for an average over real tokens, or for the [CLS] state (first_token_only)."""
    ids, mask = ragged_batch([9, 2, 11, 6], seed=3)
    weights = torch.randn(4, 32, generator=torch.Generator().manual_seed(4))
    grads = []
    for run in ("transformers", "simcse_lab"):
        model = tiny_bert(dropout_p=0.0, kind=kind).train()
        if run == "transformers":
            states = model(input_ids=ids, attention_mask=mask).last_hidden_state
        else:
            (states,) = bert_hidden_states(model, ids, mask, pack=pack, first_token_only=first_token_only)
        if first_token_only:
            pooled = states[:, 0]
        else:
            pooled = (states * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
        (pooled * weights).sum().backward()
        grads.append({name: p.grad for name, p in model.named_parameters() if p.grad is not None})
    reference, ours = grads
    assert set(ours) == {name for name in reference if not name.startswith("pooler.")}
    for name, grad in ours.items():
        assert torch.allclose(grad, reference[name], atol=1e-5, rtol=1e-4), name


def test_dropout_keeps_each_element_with_probability_one_minus_p_and_keeps_the_mean():
    module = torch.nn.Dropout(0.25).train()
    torch.manual_seed(0)
    x = torch.ones(200_000)
    y = dropout(x, module)
    kept = (y != 0).float().mean().item()
    assert abs(kept - 0.75) < 0.005
    assert torch.allclose(y[y != 0], torch.full_like(y[y != 0], 1 / 0.75))
    assert abs(y.mean().item() - 1.0) < 0.01
    assert dropout(x, module.eval()) is x


@pytest.mark.parametrize("pooler", ["avg_first_last", "avg", "cls", "cls_before_pooler"])
def test_encoder_uses_it_for_bert_on_cpu_and_matches_the_transformers_path(tiny_model_dir, pooler):
    encoder = SimCSEEncoder.from_pretrained(tiny_model_dir, pooler=pooler, device="cpu").eval()
    assert encoder.bert_forward == "auto" and encoder.runs_own_forward(torch.device("cpu"))
    assert not encoder.runs_own_forward(torch.device("cuda"))  # auto: transformers' forward on GPUs
    ragged = encoder.tokenize(["a man plays the guitar", "two", "the dog runs in the park and then it sleeps"])  # packed
    even = encoder.tokenize(["a man plays the guitar", "a woman plays the piano"])  # dense
    assert worth_packing(ragged["attention_mask"]) and not worth_packing(even["attention_mask"])
    for batch in (ragged, even):
        with torch.no_grad():
            encoder.bert_forward = "auto"
            ours = encoder(batch["input_ids"], batch["attention_mask"])
            encoder.bert_forward = "transformers"
            reference = encoder(batch["input_ids"], batch["attention_mask"])
        assert ours.shape == reference.shape == (len(batch["input_ids"]), encoder.output_dim)
        assert torch.allclose(ours, reference, atol=1e-5)


def test_cls_poolers_run_the_last_layer_on_the_cls_row_only(tiny_model_dir, monkeypatch):
    """The saving itself: the last layer's feed-forward sees one row per sentence for [CLS] poolers."""
    import simcse_lab.models.bert_forward as bert_forward

    seen = []
    real_layer = bert_forward.bert_layer

    def counting_layer(*args, **kwargs):
        rows = real_layer(*args, **kwargs)
        seen.append(rows.shape[0])
        return rows

    monkeypatch.setattr(bert_forward, "bert_layer", counting_layer)
    sentences = ["a man plays the guitar", "two", "the dog runs in the park and then it sleeps"]
    for pooler in ("cls", "avg"):
        encoder = SimCSEEncoder.from_pretrained(tiny_model_dir, pooler=pooler, device="cpu").eval()
        batch = encoder.tokenize(sentences)
        seen.clear()
        with torch.no_grad():
            encoder(batch["input_ids"], batch["attention_mask"])
        tokens = int(batch["attention_mask"].sum())
        layers = encoder.backbone.config.num_hidden_layers
        assert seen == ([tokens] * (layers - 1) + [3] if pooler == "cls" else [tokens] * layers)


def test_training_mode_still_draws_two_different_dropout_views(tiny_model_dir):
    encoder = SimCSEEncoder.from_pretrained(tiny_model_dir, pooler="avg", device="cpu", dropout=0.1).train()
    batch = encoder.tokenize(["two", "the dog runs in the park"])
    assert worth_packing(batch["attention_mask"])
    first = encoder(batch["input_ids"], batch["attention_mask"])
    second = encoder(batch["input_ids"], batch["attention_mask"])
    assert not torch.allclose(first, second)


def test_packing_only_pays_with_padding_to_skip():
    """encode's length-sorted batches (little padding) keep the transformers forward; random batches are packed."""
    _, sorted_batch = ragged_batch([20, 20, 19, 19, 19, 18])  # 6 of 120 positions padding: 5%
    _, random_batch = ragged_batch([20, 3, 11, 7, 16, 5])  # 58 of 120: 48%
    assert MIN_PADDING_SHARE > 6 / 120
    assert not worth_packing(sorted_batch)
    assert worth_packing(random_batch)
    assert worth_packing(torch.ones(4, 10, dtype=torch.long)) is False  # no padding at all


def tiny_distilbert() -> DistilBertModel:
    torch.manual_seed(0)
    return DistilBertModel(DistilBertConfig(vocab_size=100, dim=32, n_layers=1, n_heads=4, hidden_dim=64, max_position_embeddings=40))


def test_other_architectures_keep_the_transformers_forward():
    assert not supports_own_forward(tiny_distilbert())
    assert all(supports_own_forward(tiny_bert(kind=kind)) for kind in ARCHITECTURES)


needs_onednn = pytest.mark.skipif(not bert_forward.onednn_available(), reason="this torch has no oneDNN linear")


@needs_onednn
@pytest.mark.parametrize("bias", [True, False])
def test_onednn_linear_equals_f_linear_in_values_and_gradients(bias, monkeypatch):
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(37, 24, generator=generator)
    module = torch.nn.Linear(24, 40, bias=bias)
    grad_out = torch.randn(40, 37, generator=generator).t()  # a transposed, non-contiguous upstream gradient
    results = []
    for use_onednn in (False, True):
        module.zero_grad()
        inputs = x.clone().requires_grad_()
        out = bert_forward.linear(inputs, module, onednn=use_onednn)
        out.backward(grad_out)
        results.append((out.detach(), inputs.grad, module.weight.grad.clone(), None if module.bias is None else module.bias.grad.clone()))
    for reference, ours in zip(*results):
        assert (reference is None) == (ours is None)
        if reference is not None:
            assert torch.allclose(ours, reference, atol=1e-5, rtol=1e-5)


@needs_onednn
def test_onednn_runs_the_products_of_the_cpu_forward_and_autocast_keeps_torch_linear(monkeypatch):
    calls = []
    real = bert_forward.matmul_transposed
    monkeypatch.setattr(bert_forward, "matmul_transposed", lambda *args: calls.append(args[0].shape) or real(*args))
    model = tiny_bert().eval()
    ids, mask = ragged_batch([7, 3, 12])
    with torch.no_grad():
        bert_hidden_states(model, ids, mask)
        assert len(calls) == 3 * 6  # 3 layers x (Q, K, V, attention output, FFN up, FFN down)
        calls.clear()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            bert_hidden_states(model, ids, mask)
            products = bert_forward.linear(torch.randn(4, 32), model.encoder.layer[0].intermediate.dense)
    assert calls == [] and products.dtype == torch.bfloat16  # autocast's bf16 linear, not oneDNN's fp32 one



@needs_onednn
def test_onednn_check_gives_the_same_answer_when_first_asked_under_bf16_autocast():
    """The check runs once; a first call from a bf16 training step must not switch oneDNN off for good."""
    bert_forward.onednn_available.cache_clear()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert bert_forward.onednn_available()
    assert bert_forward.onednn_available()


def test_dense_cls_row_equals_bert_model_at_position_0_even_where_that_is_padding(monkeypatch):
    """What "own" runs on a GPU: the dense layout, torch's linear, the [CLS]-only last layer with no check of
    the mask; with left padding position 0 is padding, and BertModel's output there is still what it gives."""
    model = tiny_bert().eval()
    ids, mask = ragged_batch([7, 3, 12, 1, 12, 5], width=14, left=True)
    with torch.no_grad():
        reference = model(input_ids=ids, attention_mask=mask).last_hidden_state[:, 0]
        (ours,) = bert_hidden_states(model, ids, mask, pack=False, first_token_only=True, onednn=False)
    assert torch.allclose(ours[:, 0], reference, atol=1e-5)


def test_bert_forward_choice_is_checked(tiny_model_dir):
    encoder = SimCSEEncoder.from_pretrained(tiny_model_dir, device="cpu")
    with pytest.raises(SimCSELabError, match="unknown bert_forward 'fast'.*auto, own, transformers"):
        encoder.bert_forward = "fast"
    encoder.bert_forward = "own"
    assert encoder.runs_own_forward(torch.device("cuda")) and encoder.runs_own_forward(torch.device("cpu"))
    encoder.bert_forward = "transformers"
    assert not encoder.runs_own_forward(torch.device("cpu"))
    other = SimCSEEncoder(tiny_distilbert(), encoder.tokenizer, pooler="avg")
    with pytest.raises(SimCSELabError, match="BERT and RoBERTa encoders only .* DistilBertModel"):
        other.bert_forward = "own"
    assert not other.runs_own_forward(torch.device("cpu"))


@pytest.mark.parametrize("layout", ["dense", "packed on the host"])
@pytest.mark.parametrize("pooler", ["cls", "avg", "avg_first_last"])
def test_own_forward_off_the_cpu_reads_nothing_back_to_the_host(tiny_model_dir, pooler, layout, monkeypatch):
    """A training step on the meta device: its tensors have shapes but no values, so any read back to the
    host (.item(), bool(tensor), nonzero: each a device sync on a GPU) raises there. The step below (batch
    from the pre-tokenised columns, forward, InfoNCE, backward, clipping, AdamW) runs through; with
    transformers' forward it does not where transformers builds the attention mask in its masking_utils (its
    `padding_mask.all()`; the 4.40 floor's eager BERT reads nothing back either)."""
    encoder = SimCSEEncoder.from_pretrained(tiny_model_dir, pooler=pooler, device="cpu", dropout=0.1)
    sentences = ["a man plays the guitar", "two", "the dog runs in the park and then it sleeps", "a red car"]
    column = TokenizedColumn.from_sentences(encoder.tokenizer, sentences, 16)
    encoder.to("meta").train()
    meta, dist = torch.device("meta"), DistributedContext(torch.device("meta"))
    objective = SimCSEObjective(encoder, [column], meta, dist, mode="unsup")
    parameters = [p for p in encoder.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(parameters, lr=1e-3, foreach=True)

    packed = []
    monkeypatch.setattr(objectives, "real_token_positions", lambda mask: packed.append(mask.shape) or real_token_positions(mask))
    if layout == "packed on the host":
        monkeypatch.setattr(bert_forward, "GPU_PACK_MIN_POSITIONS", 0)  # this small batch packs as a big one would
    encoder.bert_forward = "own"
    loss = objective.loss(encoder, np.arange(4))
    assert [shape[0] for shape in packed] == ([8] if layout == "packed on the host" else [])  # 4 sentences x 2 views
    loss.backward()
    torch.nn.utils.clip_grad_norm_(parameters, 1.0)
    optimizer.step()
    assert loss.device == meta and all(p.grad is not None for p in encoder.backbone.encoder.parameters())

    with pytest.raises(RuntimeError, match="meta"):  # one read back, so the step above would have shown one
        loss.item()
    if importlib.util.find_spec("transformers.masking_utils") is not None:
        encoder.bert_forward = "transformers"
        with pytest.raises(RuntimeError, match="meta"):
            objective.loss(encoder, np.arange(4))


@pytest.mark.parametrize("pooler", ["cls", "avg", "avg_first_last"])
def test_positions_found_on_the_host_give_the_same_embeddings(tiny_model_dir, pooler):
    """What a GPU batch runs when packed on the host, here on the CPU: equal to transformers' forward."""
    encoder = SimCSEEncoder.from_pretrained(tiny_model_dir, pooler=pooler, device="cpu").eval()
    batch = encoder.tokenize(["a man plays the guitar", "two", "the dog runs in the park and then it sleeps"])
    ids, mask = batch["input_ids"], batch["attention_mask"]
    with torch.no_grad():
        ours = encoder(ids, mask, token_positions=real_token_positions(mask))
        encoder.bert_forward = "transformers"
        reference = encoder(ids, mask, token_positions=real_token_positions(mask))  # ignored there
    assert torch.allclose(ours, reference, atol=1e-5)


def test_a_gpu_batch_packs_when_big_padded_and_right_padded():
    lengths = [32, 9, 20, 14] * 128  # 512 rows x 32 positions, 41% padding
    _, big = ragged_batch(lengths)
    assert big.numel() >= GPU_PACK_MIN_POSITIONS and host_packing_pays(big)
    _, small = ragged_batch([32, 9, 20, 14] * 16)  # batch 64 (launch-bound on a GPU): dense
    assert not host_packing_pays(small)
    _, left = ragged_batch(lengths, left=True)  # position 0 is padding in some rows: the [CLS] layer needs it real
    assert not host_packing_pays(left)
    assert not host_packing_pays(torch.ones(512, 32, dtype=torch.long))  # nothing to skip
    positions = real_token_positions(small)
    assert positions.tolist()[:33] == list(range(32)) + [32]  # row 0's 32 tokens, then row 1 starts at 32
    assert len(positions) == int(small.sum())


@pytest.mark.parametrize("pooler", ["cls", "avg"])
@pytest.mark.parametrize("kind", ["roberta", "xlm-roberta"])
def test_encoder_runs_roberta_with_its_own_forward_too(tiny_model_dir, kind, pooler):
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)  # pads with id 0, the tiny RoBERTa's padding id
    encoder = SimCSEEncoder(tiny_bert(kind=kind), tokenizer, pooler=pooler).eval()
    assert encoder.runs_own_forward(torch.device("cpu"))
    batch = encoder.tokenize(["a man plays the guitar", "two", "the dog runs in the park and then it sleeps"])
    assert worth_packing(batch["attention_mask"])
    with torch.no_grad():
        ours = encoder(batch["input_ids"], batch["attention_mask"])
        encoder.bert_forward = "transformers"
        reference = encoder(batch["input_ids"], batch["attention_mask"])
    assert torch.allclose(ours, reference, atol=1e-5)
