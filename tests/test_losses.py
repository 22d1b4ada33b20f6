"""The losses against the formula written another way (explicit per-row loops), gradients included,
and against sentence-transformers' MultipleNegativesRankingLoss (scale = 1 / temperature)."""

import math

import pytest
import torch

from simcse_lab.losses import simcse_logits, sup_simcse_loss, unsup_simcse_loss


def cosine(a, b):
    return float((a @ b) / (a.norm() * b.norm()))


def reference_loss(z1, z2, z3=None, t=0.05, w=0.0):
    """Per-row InfoNCE written with python floats and math.exp."""
    total = 0.0
    n = z1.shape[0]
    for i in range(n):
        logits = [cosine(z1[i], z2[j]) / t for j in range(n)]
        if z3 is not None:
            logits += [cosine(z1[i], z3[j]) / t + (w if i == j else 0.0) for j in range(n)]
        top = max(logits)
        log_denominator = top + math.log(sum(math.exp(x - top) for x in logits))
        total += log_denominator - logits[i]
    return total / n


def reference_loss_torch(z1, z2, z3=None, t=0.05, w=0.0):
    """The same per-row formula in torch (differentiable) via an explicit loop and logsumexp."""
    rows = []
    n = z1.shape[0]
    for i in range(n):
        sims = torch.stack([torch.dot(z1[i], z2[j]) / (z1[i].norm() * z2[j].norm()) for j in range(n)]) / t
        if z3 is not None:
            hard = torch.stack([torch.dot(z1[i], z3[j]) / (z1[i].norm() * z3[j].norm()) for j in range(n)]) / t
            hard = hard + w * (torch.arange(n) == i).double()
            sims = torch.cat([sims, hard])
        rows.append(torch.logsumexp(sims, 0) - sims[i])
    return torch.stack(rows).mean()


@pytest.mark.parametrize("t", [0.05, 0.1, 1.0])
def test_unsup_loss_matches_reference(t):
    g = torch.Generator().manual_seed(0)
    z1, z2 = torch.randn(6, 5, generator=g, dtype=torch.float64), torch.randn(6, 5, generator=g, dtype=torch.float64)
    assert unsup_simcse_loss(z1, z2, t).item() == pytest.approx(reference_loss(z1, z2, t=t), rel=1e-5)


@pytest.mark.parametrize("w", [0.0, 0.7, -1.0])
def test_sup_loss_matches_reference(w):
    g = torch.Generator().manual_seed(1)
    z1, z2, z3 = (torch.randn(5, 4, generator=g, dtype=torch.float64) for _ in range(3))
    assert sup_simcse_loss(z1, z2, z3, 0.05, w).item() == pytest.approx(reference_loss(z1, z2, z3, 0.05, w), rel=1e-5)


def test_gradients_match_reference():
    g = torch.Generator().manual_seed(2)
    inputs = [torch.randn(4, 3, generator=g, dtype=torch.float64, requires_grad=True) for _ in range(3)]
    copies = [x.detach().clone().requires_grad_(True) for x in inputs]
    sup_simcse_loss(*inputs, temperature=0.1, hard_negative_weight=0.3).backward()
    reference_loss_torch(*copies, t=0.1, w=0.3).backward()
    for ours, theirs in zip(inputs, copies):
        torch.testing.assert_close(ours.grad, theirs.grad, rtol=1e-4, atol=1e-7)


def test_hard_negative_weight_is_added_after_temperature():
    z = torch.eye(3, dtype=torch.float64)
    logits = simcse_logits(z, z, z, temperature=0.5, hard_negative_weight=2.0)
    # cos(z_i, z_i) = 1 -> 1/0.5 = 2, plus w = 2 on the hard-negative diagonal only
    assert logits[0, 3].item() == pytest.approx(4.0)
    assert logits[0, 0].item() == pytest.approx(2.0)
    assert logits[0, 4].item() == pytest.approx(0.0)


def test_invariant_to_embedding_scale():
    g = torch.Generator().manual_seed(3)
    z1, z2 = torch.randn(4, 8, generator=g), torch.randn(4, 8, generator=g)
    assert unsup_simcse_loss(z1, z2).item() == pytest.approx(unsup_simcse_loss(7 * z1, 0.1 * z2).item(), rel=1e-5)


def test_equals_sentence_transformers_mnrl_with_scale_one_over_temperature():
    losses = pytest.importorskip("sentence_transformers.losses")
    from sentence_transformers import util

    g = torch.Generator().manual_seed(4)
    z1, z2, z3 = (torch.randn(6, 8, generator=g) for _ in range(3))

    # MNRL's loss math is a function of embeddings only; build the module without a model around it.
    mnrl = losses.MultipleNegativesRankingLoss.__new__(losses.MultipleNegativesRankingLoss)
    torch.nn.Module.__init__(mnrl)
    mnrl.scale, mnrl.similarity_fct = 20.0, util.cos_sim
    for attribute, value in (("gather_across_devices", False), ("directions", ("query_to_doc",)), ("partition_mode", "joint"),
                             ("hardness_mode", None), ("hardness_strength", 0.0)):
        setattr(mnrl, attribute, value)
    if not hasattr(mnrl, "compute_loss_from_embeddings"):
        pytest.skip("this sentence-transformers version has no compute_loss_from_embeddings")
    try:
        theirs = mnrl.compute_loss_from_embeddings([z1, z2], labels=None)
        theirs_hard = mnrl.compute_loss_from_embeddings([z1, z2, z3], labels=None)
    except (AttributeError, TypeError) as error:
        pytest.skip(f"sentence-transformers internals differ: {error}")
    assert unsup_simcse_loss(z1, z2, temperature=0.05).item() == pytest.approx(theirs.item(), rel=1e-5)
    assert sup_simcse_loss(z1, z2, z3, temperature=0.05).item() == pytest.approx(theirs_hard.item(), rel=1e-5)


def test_logits_under_bf16_autocast_are_the_fp32_logits():
    """Regression: under bf16 autocast the cosine matmul ran in bf16 and the rounding was then multiplied by
    1/t = 20. Embeddings whose cosines differ in the third decimal (as a positive and a hard negative do) must
    give the logits of the formula in float64, within fp32 rounding."""
    generator = torch.Generator().manual_seed(0)
    base = torch.randn(16, 64, generator=generator)
    z1, z2 = base + 0.01 * torch.randn(16, 64, generator=generator), base + 0.01 * torch.randn(16, 64, generator=generator)
    expected = torch.tensor([[cosine(a.double(), b.double()) / 0.05 for b in z2] for a in z1], dtype=torch.float64)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = simcse_logits(z1, z2, temperature=0.05)
        loss = unsup_simcse_loss(z1, z2, temperature=0.05)
    assert logits.dtype == torch.float32
    torch.testing.assert_close(logits.double(), expected, atol=1e-4, rtol=0)
    assert loss.item() == pytest.approx(reference_loss(z1.double(), z2.double()), abs=1e-4)
