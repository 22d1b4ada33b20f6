"""The losses of SimCSE's follow-ups, as pure functions of embeddings (the SimCSE ones are in simcse_lab.losses).

Each is the unsupervised SimCSE loss with one thing changed, in the same parameterisation (cosine logits
divided by a temperature t, fp32 inside, labels on the diagonal; simcse_lab.losses explains why):

    SimCSE    l_i = -log e^{cos(h_i, h_i+)/t} / sum_j e^{cos(h_i, h_j+)/t}
    ESimCSE   + sum_m e^{cos(h_i, q_m)/t} in the denominator: q_m are momentum-encoded earlier sentences
    MixCSE    + hard negatives SG(l h_i+ + (1 - l) h_j+) mixed from a positive and a negative
    ArcCSE    cos(theta_ii + m) instead of cos(theta_ii) for the positive: an angular margin m

With nothing added (an empty queue, margin 0) each gives the SimCSE loss; tests/test_followups.py checks
that, and each loss against its formula written out by hand. What trains them (the momentum encoder and
its queue, the word repetition, the prompt pooler) is in simcse_lab.training.followup_objectives.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .losses import cosine_logits


def diagonal_cross_entropy(logits: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of each row i with label i: the positives sit in the first B columns' diagonal."""
    labels = torch.arange(logits.shape[0], device=logits.device)
    return F.cross_entropy(logits.float(), labels)


# ---------------------------------------------------------------------- ESimCSE
def esimcse_loss(z1: torch.Tensor, z2: torch.Tensor, queue: torch.Tensor, temperature: float = 0.05) -> torch.Tensor:
    """ESimCSE's loss (Wu et al., COLING 2022, Sec. 3.2): InfoNCE with M extra negatives from a queue.

        l_i = -log e^{cos(h_i, h_i+)/t} / ( sum_j e^{cos(h_i, h_j+)/t} + sum_m e^{cos(h_i, q_m)/t} )

    z1: (B, D) the sentences, z2: (B, D) their positives (word-repeated copies), queue: (M, D) the momentum
    encoder's embeddings of earlier batches' sentences, used as constants (no gradient reaches them or the
    momentum encoder; M may be 0). The official code (caskcsg/sentemb, ESimCSE/esimcse/models.py) builds
    the same logits: [cos(z1, z2) | cos(z1, queue)] / t.
    """
    logits = cosine_logits(z1, z2, temperature)  # (B, B)
    if queue.shape[0]:
        logits = torch.cat([logits, cosine_logits(z1, queue.detach(), temperature)], dim=1)  # (B, B + M)
    return diagonal_cross_entropy(logits)


# ---------------------------------------------------------------------- MixCSE
def mixed_negatives(z: torch.Tensor, mix_lambda: float) -> torch.Tensor:
    """MixCSE's hard negatives: SG(l z_j + (1 - l) z_{j+1}) for every j (indices mod B), (B, D) -> (B, D).

    Each mixes one sentence's embedding (weight l) with the next one's (1 - l), and the stop-gradient SG
    (`detach`) makes it a constant: it is a negative to push away from, not a point to move."""
    return (mix_lambda * z + (1.0 - mix_lambda) * z.roll(-1, dims=0)).detach()


def mixcse_logits(z1: torch.Tensor, z2: torch.Tensor, mix_lambda: float = 0.2, temperature: float = 0.05) -> torch.Tensor:
    """MixCSE's logits (Zhang et al., AAAI 2022), (B, 3B): SimCSE's (B, B) and two blocks of mixed hard negatives.

        [ cos(z1_i, z2_j) | cos(z1_i, n2_j) | cos(n1_i, z2_j) ] / t,
        n2_j = SG(l z2_j + (1 - l) z2_{j+1}),  n1_i = SG(l z1_i + (1 - l) z1_{i+1})

    Row i's hard negative n2_i holds l of its own positive z2_i: close to it, but a negative. n2_{i-1} holds
    1 - l of z2_i (mostly the positive itself), so that entry is masked, as is its mirror n1_i vs z2_{i+1}.
    Written after the official code (BDBC-KG-NLP/MixCSE_AAAI2022, mixcse/models_mix.py, cl_forward), the
    reference read for this function, including two of its choices: mixing the raw (un-normalised)
    embeddings, and masking a logit by setting it to 0, which still adds e^0 = 1 to row i's denominator.
    l = 0.2 for BERT-base (the official run_unsup_example.sh, --lambdas 0.2).
    """
    batch = z1.shape[0]
    in_batch = cosine_logits(z1, z2, temperature)  # (B, B), the positives on the diagonal
    shifted = torch.eye(batch, dtype=torch.bool, device=z1.device).roll(1, dims=1)  # [i, i+1]
    anchor_block = cosine_logits(z1, mixed_negatives(z2, mix_lambda), temperature).masked_fill(shifted.T, 0.0)  # [i, i-1] masked
    positive_block = cosine_logits(mixed_negatives(z1, mix_lambda), z2, temperature).masked_fill(shifted, 0.0)  # [i, i+1] masked
    return torch.cat([in_batch, anchor_block, positive_block], dim=1)


def mixcse_loss(z1: torch.Tensor, z2: torch.Tensor, mix_lambda: float = 0.2, temperature: float = 0.05) -> torch.Tensor:
    """MixCSE's loss: cross-entropy of `mixcse_logits` with the positive on the diagonal. z1, z2: (B, D), B >= 2."""
    return diagonal_cross_entropy(mixcse_logits(z1, z2, mix_lambda, temperature))


# ---------------------------------------------------------------------- ArcCSE
def arccon_logits(z1: torch.Tensor, z2: torch.Tensor, margin_degrees: float = 10.0, temperature: float = 0.05) -> torch.Tensor:
    """ArcCSE's ArcCon logits (Zhang et al., ACL 2022), (B, B): an additive angular margin on the positive.

        logits[i, j] = cos(theta_ij) / t for j != i,   logits[i, i] = cos(theta_ii + m) / t,
        theta_ij = arccos cos(z1_i, z2_j)

    The positive must then win by an angle m, not just win. cos(theta + m) is written cos(theta) cos(m) -
    sin(theta) sin(m), with sin(theta) = sqrt(1 - cos^2) >= 0 (theta in [0, pi]): the same value, without
    arccos's infinite slope at cos = 1. At m = 0 this is cos(theta) * 1 - sin(theta) * 0: SimCSE's logits,
    bit for bit. The margin is in degrees; 10 (pi/18) is the value of the ArcCSE implementation read for this
    function (TensorFlow, `margin_angle = math.pi / 18`, with the temperature 1/20 = 0.05).
    """
    cosines = cosine_logits(z1, z2, 1.0)  # (B, B) in fp32
    margin = math.radians(margin_degrees)
    diagonal = cosines.diagonal()
    sine = (1.0 - diagonal.square()).clamp_min(1e-12).sqrt()  # the floor keeps the gradient finite at cos = 1
    with_margin = diagonal * math.cos(margin) - sine * math.sin(margin)  # cos(theta_ii + m)
    eye = torch.eye(cosines.shape[0], dtype=torch.bool, device=cosines.device)
    return torch.where(eye, with_margin.unsqueeze(1).expand_as(cosines), cosines) / temperature


def arccse_loss(z1: torch.Tensor, z2: torch.Tensor, margin_degrees: float = 10.0, temperature: float = 0.05) -> torch.Tensor:
    """ArcCSE's pairwise loss ArcCon: cross-entropy of `arccon_logits` with the positive on the diagonal.

        l_i = -log e^{cos(theta_ii + m)/t} / ( e^{cos(theta_ii + m)/t} + sum_{j != i} e^{cos(theta_ij)/t} )
    """
    return diagonal_cross_entropy(arccon_logits(z1, z2, margin_degrees, temperature))
