"""The cached loss (simcse_lab.training.gradcache) against the plain loss, written without the cache.

The reference embeds the same chunks with a graph, one after the other, and backprops the loss once:
the memory-hungry computation the cache replaces. With dropout ON both see the same masks only if
the cache replays the RNG state, so these tests check the replay (a control shows that without it
the gradients differ).
"""

from __future__ import annotations

import contextlib
import json

import pytest
import torch

from simcse_lab.training import gradcache
from simcse_lab.models.encoder import SimCSEEncoder
from simcse_lab.training.gradcache import cached_backward, split_batch
from simcse_lab.losses import sup_simcse_loss, unsup_simcse_loss

from conftest import WORDS

SENTENCES = [" ".join(WORDS[(7 * i + j * 3) % len(WORDS)] for j in range(3 + i % 6)) for i in range(12)]


def encoder_from(model_dir, pooler="cls", dropout=None) -> SimCSEEncoder:
    torch.manual_seed(1)  # the MLP head's initialisation
    encoder = SimCSEEncoder.from_pretrained(model_dir, pooler=pooler, device="cpu", dropout=dropout)
    encoder.train()
    return encoder


def batch(encoder, groups):
    """k groups of sentences stacked into one padded (k*B, T) batch, as the trainer builds it."""
    encoded = encoder.tokenize([s for group in groups for s in group], max_length=32)
    return encoded["input_ids"], encoded["attention_mask"]


def grads(module) -> dict[str, torch.Tensor]:
    return {name: p.grad.clone() for name, p in module.named_parameters() if p.grad is not None}


def reference_backward(model, chunks, loss_fn) -> torch.Tensor:
    """The plain loss over the same chunks, embedded with a graph in the same order."""
    z = torch.cat([model(*chunk) for chunk in chunks])
    loss = loss_fn(z)
    loss.backward()
    return loss.detach()


def unsup_loss(z):
    return unsup_simcse_loss(*z.chunk(2), temperature=0.05)


def triplet_loss(z):
    return sup_simcse_loss(*z.chunk(3), temperature=0.05, hard_negative_weight=0.3)


def run_both(encoder, chunks, loss_fn, seed=123):
    torch.manual_seed(seed)
    expected_loss = reference_backward(encoder, chunks, loss_fn)
    expected, rng_after_reference = grads(encoder), torch.get_rng_state()
    encoder.zero_grad(set_to_none=True)
    torch.manual_seed(seed)
    loss = cached_backward(encoder, chunks, loss_fn)
    return expected_loss, expected, rng_after_reference, loss, grads(encoder)


def assert_same_grads(actual, expected, atol=1e-6):
    assert actual.keys() == expected.keys()
    for name in expected:
        torch.testing.assert_close(actual[name], expected[name], atol=atol, rtol=1e-4, msg=name)


@pytest.mark.parametrize("chunk_size", [3, 5, 24])
def test_unsup_cached_gradients_equal_plain_with_dropout(tiny_model_dir, chunk_size):
    encoder = encoder_from(tiny_model_dir, "cls")
    ids, mask = batch(encoder, [SENTENCES, SENTENCES])  # (24, T): the duplicate-in-batch trick
    chunks = split_batch(ids, mask, chunk_size)
    expected_loss, expected, rng_after_reference, loss, actual = run_both(encoder, chunks, unsup_loss)
    torch.testing.assert_close(loss, expected_loss, atol=1e-6, rtol=1e-6)
    assert_same_grads(actual, expected)
    assert torch.equal(torch.get_rng_state(), rng_after_reference)  # the global RNG ends where a plain step leaves it
    assert loss > 0.1  # dropout makes the two views differ: a real loss, not a trivial one


def test_triplet_cached_gradients_equal_plain_with_dropout(tiny_model_dir):
    encoder = encoder_from(tiny_model_dir, "avg")
    premises, entailments, contradictions = SENTENCES[:8], SENTENCES[2:10], SENTENCES[4:12]
    ids, mask = batch(encoder, [premises, entailments, contradictions])
    chunks = split_batch(ids, mask, 5)  # chunks straddle the premise / hypothesis boundaries
    expected_loss, expected, _, loss, actual = run_both(encoder, chunks, triplet_loss)
    torch.testing.assert_close(loss, expected_loss, atol=1e-6, rtol=1e-6)
    assert_same_grads(actual, expected)


def test_without_rng_replay_the_gradients_differ(tiny_model_dir, monkeypatch):
    """Control: the comparison above can fail. Skip the replay and the second pass sees new masks."""
    monkeypatch.setattr(gradcache.RNGState, "replay", lambda self: contextlib.nullcontext())
    encoder = encoder_from(tiny_model_dir, "cls")
    ids, mask = batch(encoder, [SENTENCES, SENTENCES])
    _, expected, _, _, actual = run_both(encoder, split_batch(ids, mask, 6), unsup_loss)
    assert not all(torch.allclose(actual[name], expected[name], atol=1e-6) for name in expected)


class StaticOutputModel(torch.nn.Module):
    """Returns its output in one reused buffer under no_grad, as a CUDA-graph replay does (torch.compile's
    reduce-overhead): each call overwrites what the previous one returned."""

    def __init__(self, encoder):
        super().__init__()
        self.encoder, self.buffer = encoder, None

    def forward(self, *chunk):
        out = self.encoder(*chunk)
        if torch.is_grad_enabled():
            return out
        if self.buffer is None or self.buffer.shape != out.shape:
            self.buffer = torch.empty_like(out)
        return self.buffer.copy_(out)


def test_cached_loss_keeps_its_embeddings_when_the_model_reuses_its_output_buffer(tiny_model_dir):
    encoder = encoder_from(tiny_model_dir, "avg", dropout=0.0)
    ids, mask = batch(encoder, [SENTENCES, SENTENCES])
    chunks = split_batch(ids, mask, 6)  # four chunks of one width: the same buffer each time
    expected_loss = cached_backward(encoder, chunks, unsup_loss)
    loss = cached_backward(StaticOutputModel(encoder), chunks, unsup_loss)
    torch.testing.assert_close(loss, expected_loss, atol=1e-6, rtol=1e-6)


def test_cached_equals_one_unchunked_pass_without_dropout(tiny_model_dir):
    """With dropout off the cache must also match the trainer's plain step: one forward over the batch."""
    encoder = encoder_from(tiny_model_dir, "avg", dropout=0.0)
    ids, mask = batch(encoder, [SENTENCES, SENTENCES])
    expected_loss = unsup_loss(encoder(ids, mask))
    expected_loss.backward()
    expected = grads(encoder)
    encoder.zero_grad(set_to_none=True)
    loss = cached_backward(encoder, split_batch(ids, mask, 7), unsup_loss)
    torch.testing.assert_close(loss, expected_loss.detach(), atol=1e-6, rtol=1e-6)
    assert_same_grads(actual=grads(encoder), expected=expected, atol=1e-6)


def test_scale_loss_scales_every_gradient(tiny_model_dir):
    """GradScaler.scale is applied before the backward, so chunk gradients carry the loss scale."""
    encoder = encoder_from(tiny_model_dir, "avg", dropout=0.0)
    ids, mask = batch(encoder, [SENTENCES, SENTENCES])
    chunks = split_batch(ids, mask, 8)
    cached_backward(encoder, chunks, unsup_loss)
    plain = grads(encoder)
    encoder.zero_grad(set_to_none=True)
    cached_backward(encoder, chunks, unsup_loss, scale_loss=lambda loss: loss * 8.0)
    assert_same_grads(grads(encoder), {name: 8.0 * g for name, g in plain.items()}, atol=1e-5)


def test_split_batch_cuts_each_chunk_at_its_longest_sentence():
    mask = torch.tensor([[1, 1, 1, 1, 0], [1, 1, 0, 0, 0], [1, 1, 1, 0, 0], [1, 0, 0, 0, 0], [1, 1, 0, 0, 0]])
    ids = torch.arange(25).view(5, 5)
    chunks = split_batch(ids, mask, 2)
    assert [tuple(c[0].shape) for c in chunks] == [(2, 4), (2, 3), (1, 2)]
    assert torch.equal(torch.cat([c[0][:, :2] for c in chunks]), ids[:, :2])
    assert [c[0].shape[1] for c in split_batch(ids, mask, 2, multiple=4)] == [4, 4, 4]


def test_trainer_with_cached_loss_follows_the_plain_trainer(tiny_model_dir, tmp_path):
    """End to end, dropout off: the cached trainer logs the same losses as the plain one, step by step."""
    from simcse_lab.train import TrainConfig, train

    train_file = tmp_path / "sentences.txt"
    train_file.write_text("\n".join(SENTENCES * 4) + "\n")
    histories = {}
    for chunk_size in (0, 5):
        config = TrainConfig(model_name_or_path=str(tiny_model_dir), train_file=str(train_file), output_dir=str(tmp_path / f"out{chunk_size}"),
                             pooler_type="cls", per_device_train_batch_size=12, max_steps=4, eval_steps=0, logging_steps=1,
                             dropout=0.0, learning_rate=1e-3, gradient_cache_chunk_size=chunk_size, show_progress=False)
        train(config)
        histories[chunk_size] = [record["loss"] for record in json.loads((tmp_path / f"out{chunk_size}" / "history.json").read_text())]
    assert len(histories[0]) == 4
    assert histories[5] == pytest.approx(histories[0], rel=1e-4)
    assert histories[0][-1] < histories[0][0]  # it learns: the weights changed between steps


def test_devices_whose_dropout_masks_cannot_be_replayed_are_refused():
    """Regression: the cached loss replayed the CPU and CUDA generators only, while the trainer picks Apple's MPS when
    there is one: there its second pass drew new dropout masks and the gradients silently differed from a plain
    step's. It refuses such a device with one line instead."""
    from simcse_lab.errors import SimCSELabError

    gradcache.RNGState(torch.device("cpu"))  # replayable
    with pytest.raises(SimCSELabError, match="replays dropout masks on cpu and cuda only, not mps"):
        gradcache.RNGState(torch.device("mps"))
