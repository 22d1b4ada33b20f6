"""The padding-free BERT forward against transformers' BertModel: same hidden states, same gradients."""

import pytest
import torch
from transformers import BertConfig, BertModel, RobertaConfig, RobertaModel

from simcse_lab import SimCSEEncoder
from simcse_lab.padding_free import MIN_PADDING_SHARE, dropout, padding_free_hidden_states, supports_padding_free, worth_packing


def tiny_bert(dropout_p: float = 0.0, seed: int = 0) -> BertModel:
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=120, hidden_size=32, num_hidden_layers=3, num_attention_heads=4, intermediate_size=64,
                        max_position_embeddings=64, hidden_dropout_prob=dropout_p, attention_probs_dropout_prob=dropout_p)
    return BertModel(config)


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


@pytest.mark.parametrize("left", [False, True], ids=["right-padded", "left-padded"])
def test_hidden_states_equal_bert_model_at_real_positions(left):
    model = tiny_bert().eval()
    ids, mask = ragged_batch([7, 3, 12, 1, 12, 5], width=14, left=left)
    with torch.no_grad():
        reference = model(input_ids=ids, attention_mask=mask, output_hidden_states=True).hidden_states
        ours = padding_free_hidden_states(model, ids, mask, all_layers=True)
    assert len(ours) == len(reference) == 4  # embeddings + 3 layers
    real = mask.bool()
    for theirs, mine in zip(reference, ours):
        assert torch.allclose(mine[real], theirs[real], atol=1e-5)
        assert mine[~real].abs().max() == 0  # padding positions are zeros, not garbage


def test_token_type_ids_are_used():
    model = tiny_bert().eval()
    ids, mask = ragged_batch([6, 9, 4])
    types = (torch.arange(ids.shape[1]) >= 3).long().expand_as(ids) * mask
    with torch.no_grad():
        reference = model(input_ids=ids, attention_mask=mask, token_type_ids=types).last_hidden_state
        (ours,) = padding_free_hidden_states(model, ids, mask, token_type_ids=types)
        (without,) = padding_free_hidden_states(model, ids, mask)
    real = mask.bool()
    assert torch.allclose(ours[real], reference[real], atol=1e-5)
    assert not torch.allclose(without[real], reference[real], atol=1e-3)


def test_gradients_equal_bert_model():
    """Training mode with dropout 0: every parameter gets the gradient BertModel's forward gives it."""
    ids, mask = ragged_batch([9, 2, 11, 6], seed=3)
    weights = torch.randn(4, 32, generator=torch.Generator().manual_seed(4))
    grads = []
    for run in ("transformers", "padding_free"):
        model = tiny_bert(dropout_p=0.0).train()
        if run == "transformers":
            states = model(input_ids=ids, attention_mask=mask).last_hidden_state
        else:
            (states,) = padding_free_hidden_states(model, ids, mask)
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


def test_encoder_uses_it_for_bert_on_cpu_and_matches_the_transformers_path(tiny_model_dir):
    encoder = SimCSEEncoder.from_pretrained(tiny_model_dir, pooler="avg_first_last", device="cpu").eval()
    assert encoder.padding_free
    batch = encoder.tokenize(["a man plays the guitar", "two", "the dog runs in the park and then it sleeps"])
    with torch.no_grad():
        packed = encoder(batch["input_ids"], batch["attention_mask"])
        encoder.padding_free = False
        reference = encoder(batch["input_ids"], batch["attention_mask"])
    assert torch.allclose(packed, reference, atol=1e-5)


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


def test_other_architectures_keep_the_transformers_forward():
    torch.manual_seed(0)
    roberta = RobertaModel(RobertaConfig(vocab_size=100, hidden_size=32, num_hidden_layers=1, num_attention_heads=4,
                                         intermediate_size=64, max_position_embeddings=40))
    assert not supports_padding_free(roberta)
    assert supports_padding_free(tiny_bert())
