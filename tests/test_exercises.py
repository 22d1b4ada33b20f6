"""The exercise checkers (simcse_lab.apps.exercises) accept right answers and name the mistake in wrong ones.

Every answer here is written the way a learner would write it, in this file, independently of the
checkers' own catalogue of wrong formulas: the right ones as the library call, a per-row python loop and
another rewrite; the wrong ones each with one typical mistake. A test asserts on a phrase that names
that mistake in the checker's message.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from simcse_lab import geometry, losses
from simcse_lab.apps import exercises
from simcse_lab.apps.exercises import (check_alignment, check_mean_pooling, check_sup_loss, check_uniformity,
                                       check_unsup_loss)
from simcse_lab.errors import SimCSELabError
from simcse_lab.models.pooling import pool


def assert_names(result, phrase: str):
    assert not result.ok and not result, f"accepted a wrong answer; expected a message naming {phrase!r}"
    assert phrase in result.message, f"expected {phrase!r} in the message, got: {result.message}"
    assert result.hint, "a wrong answer should come with a hint"


def assert_correct(result):
    assert result.ok and result, result.text


# --- the unsupervised loss -----------------------------------------------------------------------------

def arange(z):
    return torch.arange(z.shape[0])


def unit(z):
    return z / z.norm(dim=1, keepdim=True)


def unsup_loop(z1, z2, t):
    """Per-row InfoNCE with an explicit loop over the batch (differentiable)."""
    rows = []
    for i in range(z1.shape[0]):
        sims = torch.stack([torch.dot(z1[i], z2[j]) / (z1[i].norm() * z2[j].norm()) for j in range(z2.shape[0])]) / t
        rows.append(torch.logsumexp(sims, 0) - sims[i])
    return torch.stack(rows).mean()


def unsup_log_softmax(z1, z2, t):
    return -torch.log_softmax(unit(z1) @ unit(z2).T / t, dim=1).diagonal().mean()


def unsup_naive_exp(z1, z2, t):
    logits = unit(z1) @ unit(z2).T / t
    return (-torch.log(torch.exp(logits).diagonal() / torch.exp(logits).sum(dim=1))).mean()


@pytest.mark.parametrize("fn", [losses.unsup_simcse_loss, unsup_loop, unsup_log_softmax, unsup_naive_exp])
def test_unsup_checker_accepts_right_answers(fn):
    assert_correct(check_unsup_loss(fn))


def ce(logits, labels=None, **kwargs):
    return F.cross_entropy(logits, arange(logits) if labels is None else labels, **kwargs)


UNSUP_WRONG = {
    "no normalisation": lambda z1, z2, t: ce(z1 @ z2.T / t),
    "temperature applied twice": lambda z1, z2, t: ce(F.normalize(z1, dim=1) / t @ F.normalize(z2, dim=1).T / t),
    "temperature multiplied instead of divided": lambda z1, z2, t: ce(unit(z1) @ unit(z2).T * t),
    "temperature missing": lambda z1, z2, t: ce(unit(z1) @ unit(z2).T),
    "temperature fixed at 0.05": lambda z1, z2, t: ce(unit(z1) @ unit(z2).T / 0.05),
    "z1 with itself": lambda z1, z2, t: ce(unit(z1) @ unit(z1).T / t),
    "all labels are 0": lambda z1, z2, t: ce(unit(z1) @ unit(z2).T / t, torch.zeros(len(z1), dtype=torch.long)),
    "sum instead of mean": lambda z1, z2, t: ce(unit(z1) @ unit(z2).T / t, reduction="sum"),
    "per-row losses": lambda z1, z2, t: ce(unit(z1) @ unit(z2).T / t, reduction="none"),
    "symmetric loss": lambda z1, z2, t: (ce(unit(z1) @ unit(z2).T / t) + ce(unit(z2) @ unit(z1).T / t)) / 2,
    "normalised along the wrong dimension": lambda z1, z2, t: ce(F.normalize(z1, dim=0) @ F.normalize(z2, dim=0).T / t),
    "sign flipped": lambda z1, z2, t: torch.log_softmax(unit(z1) @ unit(z2).T / t, dim=1).diagonal().mean(),
    "softmax runs over the columns": lambda z1, z2, t: -torch.log_softmax(unit(z1) @ unit(z2).T / t, dim=0).diagonal().mean(),
}


def simclr(z1, z2, t):
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    sims = z @ z.T / t - torch.eye(2 * len(z1)) * 1e9  # no self-pairs
    n = len(z1)
    return F.cross_entropy(sims, torch.cat([torch.arange(n, 2 * n), torch.arange(n)]))


UNSUP_WRONG["NT-Xent"] = simclr


@pytest.mark.parametrize("phrase", UNSUP_WRONG)
def test_unsup_checker_names_the_typical_mistakes(phrase):
    assert_names(check_unsup_loss(UNSUP_WRONG[phrase]), phrase)


def via_numpy(z1, z2, t):
    a, b = z1.detach().numpy(), z2.detach().numpy()
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    logits = a @ b.T / t
    log_p = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    return torch.tensor(-np.diag(log_p).mean())


def half_detached(z1, z2, t):
    return ce(unit(z1) @ unit(z2).detach().T / t)


@pytest.mark.parametrize("fn, phrase", [
    (lambda z1, z2, t: losses.unsup_simcse_loss(z1, z2, t).item(), "Python float"),
    (via_numpy, "no autograd graph"),
    (half_detached, "no gradient reaches `z2`"),
])
def test_unsup_checker_requires_a_gradient(fn, phrase):
    assert_names(check_unsup_loss(fn), phrase)


@pytest.mark.parametrize("fn, phrase", [
    (lambda z1, z2, t: 2 * losses.unsup_simcse_loss(z1, z2, t), "constant factor: your values are 2 ×"),
    (lambda z1, z2, t: losses.unsup_simcse_loss(z1, z2, 0.5 * t), "right up to the temperature"),
    (lambda z1, z2, t: losses.unsup_simcse_loss(z1, z2, 0.1), "0.1, whatever temperature is passed"),
    (lambda z1, z2, t: losses.unsup_simcse_loss(z1, z2, t) * torch.tensor(float("nan")), "NaN"),
    (lambda z1, z2, t: losses.unsup_simcse_loss(z1, z2, t).reshape(1), "shape (1,)"),
    (lambda z1, z2, t: ce(unit(z1) @ z2.T / t), "right when the embeddings have unit length"),
    (lambda z1, z2, t: losses.unsup_simcse_loss(z1, z2, t) + (0.1 if len(z1) == 2 else 0.0), "It is right on 5 of 6 inputs"),
    (lambda z1, z2, t: (losses.unsup_simcse_loss(z1, z2, t), None), "returns a tuple"),
])
def test_unsup_checker_generic_diagnoses(fn, phrase):
    assert_names(check_unsup_loss(fn), phrase)


def test_a_crash_is_reported_with_the_line_and_a_hint():
    def transposition_forgotten(z1, z2, temperature):
        logits = F.normalize(z1, dim=1) @ F.normalize(z2, dim=1) / temperature
        return F.cross_entropy(logits, torch.arange(len(z1)))

    result = check_unsup_loss(transposition_forgotten)
    assert_names(result, "raised RuntimeError")
    assert "logits = F.normalize(z1, dim=1) @ F.normalize(z2, dim=1) / temperature" in result.message
    assert "z1 @ z2.T" in result.hint


def stub_none(*args):
    """A notebook stub: the body is not written yet."""


def stub_raises(*args):
    raise NotImplementedError


CHECKERS = [check_unsup_loss, check_sup_loss, check_alignment, check_uniformity, check_mean_pooling]


@pytest.mark.parametrize("check", CHECKERS)
@pytest.mark.parametrize("stub", [stub_none, stub_raises])
def test_a_stub_is_not_written_yet(check, stub):
    result = check(stub)
    assert not result.ok
    assert "not written yet" in result.message and "not written yet" in result._repr_markdown_()


@pytest.mark.parametrize("check", CHECKERS)
def test_require_raises_on_anything_but_a_right_answer(check):
    with pytest.raises(SimCSELabError, match="not written yet"):
        check(stub_none, require=True)
    with pytest.raises(SimCSELabError, match="constant factor"):
        check(lambda *args: 3 * torch.as_tensor(RIGHT[check](*args)), require=True)
    assert check(RIGHT[check], require=True).ok


def test_passing_the_result_instead_of_the_function():
    z = torch.randn(4, 8)
    assert_names(check_unsup_loss(losses.unsup_simcse_loss(z, z, 0.05)), "needs your function itself")


def test_result_displays_in_jupyterlab():
    right, wrong = check_unsup_loss(losses.unsup_simcse_loss), check_unsup_loss(UNSUP_WRONG["no normalisation"])
    assert "color:#1a7f37" in right._repr_markdown_() and "correct" in right._repr_markdown_()
    markdown = wrong._repr_markdown_()
    assert "color:#cf222e" in markdown and "no normalisation" in markdown and "**Hint:**" in markdown
    assert str(wrong).startswith("✘") and str(right).startswith("✔")
    assert "\n" not in wrong.text  # require=True's SimCSELabError is one line


# --- the supervised loss ---------------------------------------------------------------------------------

def sup_loop(z1, z2, z3, t, w):
    rows = []
    for i in range(z1.shape[0]):
        pos = torch.stack([F.cosine_similarity(z1[i], z2[j], dim=0) for j in range(len(z2))]) / t
        hard = torch.stack([F.cosine_similarity(z1[i], z3[j], dim=0) / t + (w if i == j else 0.0) for j in range(len(z3))])
        row = torch.cat([pos, hard])
        rows.append(torch.logsumexp(row, 0) - row[i])
    return torch.stack(rows).mean()


def sup_hard_first_shifted(z1, z2, z3, t, w):
    """The hard block first is fine when the labels move with the positives."""
    n = len(z1)
    hard = unit(z1) @ unit(z3).T / t + w * torch.eye(n)
    return F.cross_entropy(torch.cat([hard, unit(z1) @ unit(z2).T / t], dim=1), torch.arange(n) + n)


def sup_with_alpha(z1, z2, z3, t, w):
    """exp(logit) multiplied by alpha = e^w in the denominator, written out with exponentials."""
    n = len(z1)
    pos, hard = torch.exp(unit(z1) @ unit(z2).T / t), torch.exp(unit(z1) @ unit(z3).T / t)
    hard = hard * (1 + (math.exp(w) - 1) * torch.eye(n))
    return -torch.log(pos.diagonal() / (pos.sum(1) + hard.sum(1))).mean()


@pytest.mark.parametrize("fn", [losses.sup_simcse_loss, sup_loop, sup_hard_first_shifted, sup_with_alpha])
def test_sup_checker_accepts_right_answers(fn):
    assert_correct(check_sup_loss(fn))


def blocks(z1, z2, z3, t):
    return unit(z1) @ unit(z2).T / t, unit(z1) @ unit(z3).T / t


def sup_wrong(combine):
    def fn(z1, z2, z3, t, w):
        pos, hard = blocks(z1, z2, z3, t)
        return combine(z1, z2, z3, t, w, pos, hard, torch.eye(len(z1)))
    return fn


SUP_WRONG = {
    "hard negatives left out": sup_wrong(lambda z1, z2, z3, t, w, pos, hard, eye: ce(pos)),
    "weight added to the whole hard-negative block": sup_wrong(
        lambda z1, z2, z3, t, w, pos, hard, eye: ce(torch.cat([pos, hard + w], 1))),
    "weight multiplied instead of added": sup_wrong(
        lambda z1, z2, z3, t, w, pos, hard, eye: ce(torch.cat([pos, hard * (eye * w + (1 - eye))], 1))),
    "weight used as alpha": sup_wrong(
        lambda z1, z2, z3, t, w, pos, hard, eye: ce(torch.cat([pos, hard * (eye * math.exp(w) + (1 - eye))], 1))),
    "weight exponentiated twice": sup_wrong(
        lambda z1, z2, z3, t, w, pos, hard, eye: ce(torch.cat([pos, hard + math.exp(w) * eye], 1))),
    "temperature not applied to the hard block": sup_wrong(
        lambda z1, z2, z3, t, w, pos, hard, eye: ce(torch.cat([pos, hard * t + w * eye], 1))),
    "placed before the positives with the labels unchanged": sup_wrong(
        lambda z1, z2, z3, t, w, pos, hard, eye: ce(torch.cat([hard + w * eye, pos], 1))),
    "weight added before dividing by the temperature": sup_wrong(
        lambda z1, z2, z3, t, w, pos, hard, eye: ce(torch.cat([pos, (hard * t + w * eye) / t], 1))),
    "hard-negative weight ignored": sup_wrong(lambda z1, z2, z3, t, w, pos, hard, eye: ce(torch.cat([pos, hard], 1))),
    "only each sentence's own hard negative": sup_wrong(
        lambda z1, z2, z3, t, w, pos, hard, eye: ce(torch.cat([pos, hard.diagonal()[:, None] + w], 1))),
    "no normalisation": lambda z1, z2, z3, t, w: ce(torch.cat([z1 @ z2.T / t, z1 @ z3.T / t + w * torch.eye(len(z1))], 1)),
    "temperature applied twice": sup_wrong(
        lambda z1, z2, z3, t, w, pos, hard, eye: ce(torch.cat([pos / t, hard / t + w * eye], 1))),
    "sum instead of mean": sup_wrong(
        lambda z1, z2, z3, t, w, pos, hard, eye: ce(torch.cat([pos, hard + w * eye], 1), reduction="sum")),
    "per-row losses": sup_wrong(
        lambda z1, z2, z3, t, w, pos, hard, eye: ce(torch.cat([pos, hard + w * eye], 1), reduction="none")),
    "z1 with itself": lambda z1, z2, z3, t, w: ce(torch.cat([unit(z1) @ unit(z1).T / t,
                                                             unit(z1) @ unit(z3).T / t + w * torch.eye(len(z1))], 1)),
}


@pytest.mark.parametrize("phrase", SUP_WRONG)
def test_sup_checker_names_the_typical_mistakes(phrase):
    assert_names(check_sup_loss(SUP_WRONG[phrase]), phrase)


# --- alignment and uniformity ------------------------------------------------------------------------------

def alignment_loop(x, y):
    total = 0.0
    for a, b in zip(x.tolist(), y.tolist()):
        na, nb = math.sqrt(sum(v * v for v in a)), math.sqrt(sum(v * v for v in b))
        total += sum((p / na - q / nb) ** 2 for p, q in zip(a, b))
    return total / len(x)


def alignment_from_cosine(x, y):
    return (2 - 2 * F.cosine_similarity(x, y, dim=1)).mean()


def alignment_in_place(x, y):
    x /= x.norm(dim=1, keepdim=True)  # changes the checker's copy only
    y /= y.norm(dim=1, keepdim=True)
    return ((x - y) ** 2).sum(1).mean()


@pytest.mark.parametrize("fn", [geometry.alignment, alignment_loop, alignment_from_cosine, alignment_in_place])
def test_alignment_checker_accepts_right_answers(fn):
    assert_correct(check_alignment(fn))
    assert_correct(check_alignment(geometry.alignment))  # the in-place answer changed no test input


ALIGNMENT_WRONG = {
    "no normalisation": lambda x, y: (x - y).norm(dim=1).pow(2).mean(),
    "distance not squared": lambda x, y: (unit(x) - unit(y)).norm(dim=1).mean(),
    "sign flipped": lambda x, y: -(unit(x) - unit(y)).norm(dim=1).pow(2).mean(),
    "averaged over the coordinates too": lambda x, y: ((unit(x) - unit(y)) ** 2).mean(),
    "sum instead of mean": lambda x, y: ((unit(x) - unit(y)) ** 2).sum(),
    "all pairs instead of positive pairs": lambda x, y: (torch.cdist(unit(x), unit(y)) ** 2).mean(),
    "1 - cos instead of the squared distance": lambda x, y: (1 - F.cosine_similarity(x, y)).mean(),
}


@pytest.mark.parametrize("phrase", ALIGNMENT_WRONG)
def test_alignment_checker_names_the_typical_mistakes(phrase):
    assert_names(check_alignment(ALIGNMENT_WRONG[phrase]), phrase)


def uniformity_loop(x):
    rows = [[v / math.sqrt(sum(u * u for u in row)) for v in row] for row in x.tolist()]
    terms = [math.exp(-2 * sum((p - q) ** 2 for p, q in zip(a, b))) for a, b in itertools.combinations(rows, 2)]
    return math.log(sum(terms) / len(terms))


def uniformity_ordered_pairs(x):
    d2 = torch.cdist(unit(x), unit(x)) ** 2
    off_diagonal = ~torch.eye(len(x), dtype=torch.bool)
    return torch.exp(-2 * d2[off_diagonal]).mean().log()


@pytest.mark.parametrize("fn", [geometry.uniformity, uniformity_loop, uniformity_ordered_pairs])
def test_uniformity_checker_accepts_right_answers(fn):
    assert_correct(check_uniformity(fn))


UNIFORMITY_WRONG = {
    "no normalisation": lambda x: torch.exp(-2 * torch.pdist(x) ** 2).mean().log(),
    "distance not squared": lambda x: torch.exp(-2 * torch.pdist(unit(x))).mean().log(),
    "mean of the log instead of the log of the mean": lambda x: (-2 * torch.pdist(unit(x)) ** 2).mean(),
    "self-pairs included": lambda x: torch.exp(-2 * torch.cdist(unit(x), unit(x)) ** 2).mean().log(),
    "t missing": lambda x: torch.exp(-torch.pdist(unit(x)) ** 2).mean().log(),
    "sign flipped": lambda x: -torch.exp(-2 * torch.pdist(unit(x)) ** 2).mean().log(),
    "log missing": lambda x: torch.exp(-2 * torch.pdist(unit(x)) ** 2).mean(),
}


@pytest.mark.parametrize("phrase", UNIFORMITY_WRONG)
def test_uniformity_checker_names_the_typical_mistakes(phrase):
    assert_names(check_uniformity(UNIFORMITY_WRONG[phrase]), phrase)


def test_geometry_checkers_take_floats_and_numpy():
    assert_correct(check_alignment(lambda x, y: float(alignment_from_cosine(x, y))))
    assert_correct(check_uniformity(lambda x: np.float64(geometry.uniformity(x.numpy()))))


# --- mean pooling ------------------------------------------------------------------------------------------

def pooling_loop(states, mask):
    return torch.stack([states[i, : int(mask[i].sum())].mean(0) for i in range(len(states))])


def pooling_einsum(states, mask):
    m = mask.to(states.dtype)
    return torch.einsum("bth,bt->bh", states, m) / m.sum(1, keepdim=True)


@pytest.mark.parametrize("fn", [lambda h, m: pool("avg", (h,), m), pooling_loop, pooling_einsum])
def test_pooling_checker_accepts_right_answers(fn):
    assert_correct(check_mean_pooling(fn))


POOLING_WRONG = {
    "padding included": lambda h, m: h.mean(1),
    "divided by T instead of the real length": lambda h, m: (h * m.unsqueeze(-1)).sum(1) / h.shape[1],
    "the [CLS] state": lambda h, m: h[:, 0],
    "summed, not averaged": lambda h, m: (h * m[..., None]).sum(1),
    "the mask is not broadcast": lambda h, m: (h * m).sum(1) / m.sum(1, keepdim=True),
    "divided by the batch's total number of tokens": lambda h, m: (h * m[..., None]).sum(1) / m.sum(),
    "max pooling": lambda h, m: h.masked_fill(m[..., None] == 0, -1e9).max(1).values,
}


@pytest.mark.parametrize("phrase", POOLING_WRONG)
def test_pooling_checker_names_the_typical_mistakes(phrase):
    assert_names(check_mean_pooling(POOLING_WRONG[phrase]), phrase)


@pytest.mark.parametrize("fn, phrase", [
    (lambda h, m: (h * m[..., None]).sum(1, keepdim=True) / m.sum(1)[:, None, None], "keepdim=True"),
    (lambda h, m: pooling_loop(h, m).detach(), "no autograd graph"),
])
def test_pooling_checker_shape_and_graph(fn, phrase):
    result = check_mean_pooling(fn)
    assert not result.ok and phrase in result.text, result.text


RIGHT = {check_unsup_loss: unsup_loop, check_sup_loss: sup_loop, check_alignment: alignment_loop,
         check_uniformity: uniformity_loop, check_mean_pooling: pooling_loop}


# --- the catalogue itself --------------------------------------------------------------------------------

@pytest.mark.parametrize("build, catalogue", [
    (exercises.unsup_exercise, exercises.UNSUP_MISTAKES), (exercises.sup_exercise, exercises.SUP_MISTAKES),
    (exercises.alignment_exercise, exercises.ALIGNMENT_MISTAKES), (exercises.uniformity_exercise, exercises.UNIFORMITY_MISTAKES),
    (exercises.pooling_exercise, exercises.POOLING_MISTAKES),
])
def test_every_catalogued_mistake_is_told_apart(build, catalogue):
    """No mistake in a catalogue equals the right answer or hides behind an earlier one on the test inputs."""
    names = build().arguments
    for mistake in catalogue:
        result = exercises.run_check(build, lambda *args, m=mistake: m.formula(**dict(zip(names, args))), require=False)
        assert result.message == mistake.message, f"{mistake.message!r} was reported as {result.message!r}"


def test_an_input_changed_in_place_is_named():
    def in_place(z1, z2, t):
        z1 /= z1.norm(dim=1, keepdim=True)
        z2 /= z2.norm(dim=1, keepdim=True)
        return ce(z1 @ z2.T / t)

    assert_names(check_unsup_loss(in_place), "changed in place")
