"""Exercise checkers for the notebooks: the learner writes a function, a checker runs it on seeded random
inputs, compares it with the library's own implementation and, when it is wrong, says what is wrong.

    from simcse_lab.apps.exercises import check_unsup_loss

    def my_loss(z1, z2, temperature):
        ...

    check_unsup_loss(my_loss)   # in JupyterLab: a green "correct" line, or a red line naming the mistake

The checkers: `check_unsup_loss` (notebook 02), `check_sup_loss` (03), `check_alignment`,
`check_uniformity` and `check_mean_pooling` (01). Each returns a `CheckResult` (truthy when correct).
A function that returns None or raises NotImplementedError is "not written yet", not an error.
`require=True` raises SimCSELabError on anything but a correct answer: the notebooks' solution cells use
it, so running the notebooks (CI does) checks the solutions.

How a mistake gets its name. The test inputs cover the edge cases (a batch of 2, embeddings that are not
unit length, float32 and float64, random temperatures and hard-negative weights). When the learner's
output is not the reference on every input, each checker tries its catalogue of typical wrong formulas
(no normalisation, the temperature applied twice, the wrong diagonal, ...), written here independently
of the library, and reports the first one the output matches on every input. Failing that, it reports a
generic diagnosis: wrong shape (with the expected one), NaN, right only on unit-length inputs, off by a
constant factor, right at another temperature, or the first input where the values differ. For what
feeds training (the losses, the pooler), a right value with no autograd graph (`.item()`, numpy,
`.detach()`) or with a wrong gradient is a mistake too.
"""

from __future__ import annotations

import functools
import math
import os
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F

from .. import geometry, losses
from ..errors import SimCSELabError
from ..models.pooling import masked_mean

RTOL, ATOL = 1e-4, 1e-5  # float32 arithmetic on logits up to 1/t stays far inside this; every mistake is far outside
GRAD_RTOL = 1e-3  # of the largest gradient entry


# --- the result ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class CheckResult:
    """What a checker found: `ok` (also the object's truth value), a one-line `message` and a `hint`."""

    exercise: str
    status: str  # "correct", "wrong" or "not written yet"
    message: str
    hint: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "correct"

    def __bool__(self) -> bool:
        return self.ok

    @property
    def text(self) -> str:
        return f"{self.message} Hint: {self.hint}" if self.hint else self.message

    def __str__(self) -> str:
        mark = {"correct": "✔", "wrong": "✘"}.get(self.status, "…")
        return f"{mark} {self.exercise}: {self.text}"

    __repr__ = __str__

    def _repr_markdown_(self) -> str:
        colour = {"correct": "#1a7f37", "wrong": "#cf222e"}.get(self.status, "#9a6700")
        mark = {"correct": "✔", "wrong": "✘"}.get(self.status, "…")
        line = f'<span style="color:{colour}">{mark} <b>{self.exercise}</b>: {self.message}</span>'
        return f"{line}<br>\n**Hint:** {self.hint}" if self.hint else line


# --- what a checker knows about its exercise ----------------------------------------------------------

@dataclass
class Trial:
    """One test input: the arguments (tensors are copied for each call, so the learner cannot change them)."""

    label: str  # says what is special about it, e.g. "a batch of 2, float64, temperature 0.031"
    inputs: dict[str, Any]

    def copies(self, differentiable: tuple[str, ...] = ()) -> dict[str, Any]:
        return {name: value.detach().clone().requires_grad_(name in differentiable) if isinstance(value, torch.Tensor) else value
                for name, value in self.inputs.items()}


@dataclass(frozen=True)
class Mistake:
    """A typical wrong answer: its formula (float64, from the trial's inputs), what to say, how to fix it."""

    message: str
    hint: str
    formula: Callable[..., torch.Tensor]


@dataclass
class Exercise:
    title: str  # "the unsupervised SimCSE loss"
    source: str  # where the library's own implementation lives, for the learner to read
    covers: str  # what the test inputs span, in words
    arguments: tuple[str, ...]  # the learner's function is called with these, in this order
    reference: Callable[..., torch.Tensor]  # the library, called with the same arguments as keywords
    trials: list[Trial]
    mistakes: list[Mistake]
    hint: str  # the formula, restated, for a wrong answer no diagnosis names
    returns: str  # "a scalar tensor", "a (B, H) tensor"
    differentiable: tuple[str, ...] = ()  # inputs whose gradient must flow (it feeds training)
    unit_invariant: tuple[str, ...] = ()  # inputs the answer does not depend on the length of (cosine-based)
    temperature: str | None = None  # the argument that is a temperature, if any
    shape_hint: Callable[[tuple, Trial], str] = lambda shape, trial: ""
    explain_error: Callable[[BaseException], tuple[str, str] | None] = lambda error: None  # (what it means, the fix)
    nan_hint: str = ""
    expected: list[torch.Tensor] = field(default_factory=list)

    def __post_init__(self):
        with torch.no_grad():
            self.expected = [torch.as_tensor(self.reference(**trial.inputs)).to("cpu", torch.float64) for trial in self.trials]


# --- the checking engine ------------------------------------------------------------------------------

@dataclass
class Answer:
    raw: Any  # what the learner's function returned
    inputs: dict[str, Any]  # the copies it was given (their .grad after the gradient check)
    value: torch.Tensor | None  # float64 CPU copy; None if it is not a number
    kind: str  # "tensor", or what else it is, in words


def as_answer(raw, inputs) -> Answer:
    if isinstance(raw, torch.Tensor):
        return Answer(raw, inputs, raw.detach().to("cpu", torch.float64), "tensor")
    if isinstance(raw, (int, float)) and not isinstance(raw, bool):
        return Answer(raw, inputs, torch.tensor(float(raw), dtype=torch.float64), "a Python float")
    if isinstance(raw, (np.ndarray, np.generic)) and np.issubdtype(np.asarray(raw).dtype, np.number):
        return Answer(raw, inputs, torch.from_numpy(np.asarray(raw, dtype=np.float64)), "a numpy value")
    return Answer(raw, inputs, None, f"a {type(raw).__name__}")


def close(value: torch.Tensor, expected: torch.Tensor, rtol: float = RTOL, atol: float = ATOL) -> bool:
    return tuple(value.shape) == tuple(expected.shape) and bool(torch.allclose(value.double(), expected.double(), rtol=rtol, atol=atol))


def finite(value: torch.Tensor) -> bool:
    return bool(torch.isfinite(value).all())


def shown(value: torch.Tensor) -> str:
    return f"{float(value):.6g}" if value.numel() == 1 else f"a tensor of shape {tuple(value.shape)}"


def where(error: BaseException) -> str:
    """' (line 7: `logits = z1 @ z2`)': the innermost frame of the learner's own code."""
    frames = [f for f in traceback.extract_tb(error.__traceback__)
              if f.filename != __file__ and f"{os.sep}site-packages{os.sep}" not in f.filename]
    if not frames or not frames[-1].line:
        return ""
    return f" (line {frames[-1].lineno}: `{frames[-1].line.strip()}`)"


def explain_common_error(error: BaseException) -> tuple[str, str]:
    if "in-place" in str(error):
        return ("an input is changed in place", "write z = z / z.norm(dim=-1, keepdim=True) rather than z /= ...: the inputs "
                                                "belong to the caller, and autograd needs them unchanged.")
    return ("", "run it on small inputs yourself and print the shapes of the intermediate tensors.")


def run_check(exercise: Callable[[], Exercise], fn, require: bool) -> CheckResult:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the inputs are tiny: more threads only wait on each other (20x slower on a busy CPU)
    try:
        exercise = exercise()
        result = diagnose(exercise, fn)
    finally:
        torch.set_num_threads(threads)
    if require and not result.ok:
        raise SimCSELabError(f"{exercise.title}: {result.text}")
    return result


def diagnose(ex: Exercise, fn) -> CheckResult:
    def wrong(message: str, hint: str = "") -> CheckResult:
        return CheckResult(ex.title, "wrong", message, hint)

    pending = CheckResult(ex.title, "not written yet", "not written yet.", "write the function's body (it returns None now), "
                          "run its cell, then run the check again.")
    if not callable(fn):
        return wrong(f"the checker needs your function itself, got {type(fn).__name__}.",
                     "pass the function's name without calling it: check(my_function), not check(my_function(...)).")
    answers = []
    for trial in ex.trials:
        inputs = trial.copies(ex.differentiable)
        try:
            raw = fn(*(inputs[name] for name in ex.arguments))
        except NotImplementedError:
            return pending
        except Exception as error:  # the learner's bug: say what it is instead of raising it
            first_line = (str(error).strip().splitlines() or [""])[0]
            meaning, fix = ex.explain_error(error) or explain_common_error(error)
            return wrong(f"{meaning + ': ' if meaning else ''}your function raised {type(error).__name__}: {first_line}{where(error)}, "
                         f"on {trial.label}.", fix)
        if raw is None:
            if not answers:
                return pending
            return wrong(f"your function returned None on {trial.label}.", "every path through the function must return the result.")
        answers.append(as_answer(raw, inputs))
        if answers[-1].value is None:
            return wrong(f"your function returns {answers[-1].kind}; expected {ex.returns}.",
                         "return the result itself, not a tuple or a list.")

    if all(close(a.value, e) for a, e in zip(answers, ex.expected)):
        problem = graph_problem(ex, answers, wrong)  # not `or`: a wrong CheckResult is falsy
        return problem if problem is not None else CheckResult(
            ex.title, "correct", f"correct: it matches `{ex.source}` on {len(ex.trials)} test inputs ({ex.covers})"
            + (", gradients included." if ex.differentiable else "."))
    return name_the_mistake(ex, fn, answers, wrong)


def graph_problem(ex: Exercise, answers: list[Answer], wrong) -> CheckResult | None:
    """A right value that cannot train: no graph, or a gradient that differs from the library's."""
    for answer, trial in zip(answers if ex.differentiable else [], ex.trials):
        if answer.kind != "tensor":
            return wrong(f"the value is right, but it is {answer.kind}, not a torch tensor: it carries no gradient, so "
                         "loss.backward() could not train the encoder.",
                         "keep every step a torch operation (no .item(), float(), .numpy() or math.*) and return the tensor.")
        if answer.raw.grad_fn is None:
            return wrong("the value is right, but the result has no autograd graph (it does not require grad): "
                         "loss.backward() could not train the encoder.",
                         "look for .detach(), .data, torch.no_grad(), torch.tensor(...) around an intermediate result, "
                         "or a numpy round trip.")
        upstream = torch.randn(answer.raw.shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
        reference_inputs = trial.copies(ex.differentiable)
        (ex.reference(**reference_inputs) * upstream.to(answer.raw.dtype)).sum().backward()
        try:
            (answer.raw * upstream.to(answer.raw.dtype)).sum().backward()
        except Exception as error:  # e.g. an in-place change of an input
            return wrong(f"the value is right, but backward() through it fails: {type(error).__name__}: {str(error).splitlines()[0]}.",
                         "do not modify the inputs in place (z /= ...); write z = z / ... instead.")
        for name in ex.differentiable:
            got, want = answer.inputs[name].grad, reference_inputs[name].grad
            if got is None:
                return wrong(f"the value is right, but no gradient reaches `{name}`: it is cut from the graph somewhere.",
                             "look for .detach(), .data, torch.no_grad() or a numpy round trip on the path from that input.")
            if not close(got, want, rtol=GRAD_RTOL, atol=GRAD_RTOL * float(want.abs().max())):
                return wrong(f"the value is right, but the gradient with respect to `{name}` is not (on {trial.label}): "
                             "part of the computation is cut from the graph.",
                             "look for .detach(), .data or torch.no_grad() on an intermediate result "
                             "(the normalised vectors, the logits).")
    return None


def name_the_mistake(ex: Exercise, fn, answers: list[Answer], wrong) -> CheckResult:
    trials, expected = ex.trials, ex.expected
    usable = [i for i, a in enumerate(answers) if finite(a.value)]  # an overflowing exp() is judged on the other inputs
    for mistake in ex.mistakes:
        with torch.no_grad():
            outputs = {i: mistake.formula(**trials[i].inputs) for i in usable}
        if (usable and all(close(answers[i].value, outputs[i]) for i in usable)
                and not all(close(outputs[i], expected[i]) for i in usable)):
            return wrong(mistake.message, mistake.hint)

    bad = next((i for i, a in enumerate(answers) if not finite(a.value)), None)
    if bad is not None:
        return wrong(f"your function returns NaN or inf on {trials[bad].label}.", ex.nan_hint)

    for answer, want, trial in zip(answers, expected, trials):
        if tuple(answer.value.shape) != tuple(want.shape):
            return wrong(f"your function returns shape {tuple(answer.value.shape)} on {trial.label}; expected {ex.returns} "
                         f"of shape {tuple(want.shape)}.", ex.shape_hint(tuple(answer.value.shape), trial) or ex.hint)

    if ex.unit_invariant and right_on_unit_inputs(ex, fn):
        return wrong("it is right when the embeddings have unit length, and wrong otherwise: the normalisation is missing "
                     "or wrong somewhere.",
                     "normalise every row of every input first: F.normalize(z, dim=-1), i.e. z / z.norm(dim=-1, keepdim=True).")

    factor = constant_factor(answers, expected)
    if factor is not None:
        return wrong(f"off by a constant factor: your values are {factor:.4g} × the right ones on every test input.",
                     "look for an extra or a missing constant: a sign, a factor 2 from adding two terms that should be averaged, "
                     "or a division by a dimension. " + ex.hint)

    if ex.temperature:
        found = equivalent_temperature(ex, answers)
        if found:
            return wrong(f"right up to the temperature: your values are the right ones at temperature {found}.",
                         "divide the cosines by the temperature argument exactly once (and nothing else by it).")

    misses = [i for i, (a, e) in enumerate(zip(answers, expected)) if not close(a.value, e)]
    i = misses[0]
    gap = (answers[i].value - expected[i]).abs().max()
    message = (f"wrong value on {trials[i].label}: yours is {shown(answers[i].value)}, the answer is {shown(expected[i])}"
               + ("." if expected[i].numel() == 1 else f" (they differ by up to {float(gap):.3g})."))
    right = [t.label for k, t in enumerate(trials) if k not in misses]
    if right:
        message += f" It is right on {len(right)} of {len(trials)} inputs, for instance {right[0]}: what differs between them?"
    return wrong(message, ex.hint)


def right_on_unit_inputs(ex: Exercise, fn) -> bool:
    for trial, want in zip(ex.trials, ex.expected):
        unit = Trial(trial.label, {name: F.normalize(value, dim=-1) if name in ex.unit_invariant else value
                                   for name, value in trial.inputs.items()})
        inputs = unit.copies()
        try:
            answer = as_answer(fn(*(inputs[name] for name in ex.arguments)), inputs)
        except Exception:  # noqa: BLE001 (only a diagnosis: any failure means "no")
            return False
        if answer.value is None or not close(answer.value, want):
            return False
    return True


def constant_factor(answers: list[Answer], expected: list[torch.Tensor]) -> float | None:
    """k if every answer is k × its expected value (the same k, not 1), else None."""
    factors = []
    for answer, want in zip(answers, expected):
        a, e = answer.value.flatten(), want.flatten()
        if a.shape != e.shape or float(e @ e) == 0.0:
            return None
        k = float(a @ e / (e @ e))
        if not close(answer.value, k * want):
            return None
        factors.append(k)
    if all(math.isclose(k, factors[0], rel_tol=1e-3) for k in factors) and not math.isclose(factors[0], 1.0, rel_tol=1e-3):
        return factors[0]
    return None


def reference_at(ex: Exercise, trial: Trial, temperature: float) -> float:
    with torch.no_grad():
        return float(ex.reference(**{**trial.inputs, ex.temperature: temperature}))


def temperatures_giving(ex: Exercise, trial: Trial, value: float) -> list[float]:
    """Temperatures t' in [1e-3, 1e2] at which the library's value on `trial` equals `value` (a grid, then bisection).

    The loss is not monotone in t (it often has one minimum), so two roots can share a grid cell: around each
    grid point where the gap has a local extremum, the extremum is located first and each side bisected.
    """
    def gap(log_t: float) -> float:
        return reference_at(ex, trial, math.exp(log_t)) - value

    def bisect(lo: float, hi: float, g_lo: float) -> float:
        for _ in range(30):
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if (gap(mid) < 0.0) == (g_lo < 0.0) else (lo, mid)
        return math.exp((lo + hi) / 2)

    def extremum(lo: float, hi: float, sign: float) -> float:  # ternary search; sign +1 for a minimum
        for _ in range(40):
            a, b = lo + (hi - lo) / 3, hi - (hi - lo) / 3
            lo, hi = (lo, b) if sign * gap(a) < sign * gap(b) else (a, hi)
        return (lo + hi) / 2

    grid = list(np.linspace(math.log(1e-3), math.log(1e2), 61))
    gaps = [gap(x) for x in grid]
    extrema = [extremum(grid[i - 1], grid[i + 1], 1.0 if gaps[i] < gaps[i - 1] else -1.0) for i in range(1, len(grid) - 1)
               if (gaps[i] - gaps[i - 1]) * (gaps[i + 1] - gaps[i]) < 0]
    points = sorted([*zip(grid, gaps), *((x, gap(x)) for x in extrema)])
    return [bisect(lo, hi, g_lo) for (lo, g_lo), (hi, g_hi) in zip(points[:-1], points[1:])
            if g_lo == 0.0 or (g_lo < 0.0) != (g_hi < 0.0)]


def equivalent_temperature(ex: Exercise, answers: list[Answer]) -> str | None:
    """'0.5 × t instead of t' or '0.1, whatever temperature is passed' when one rule maps every input's temperature
    to one at which the library gives the learner's value; None otherwise."""
    if any(a.value.numel() != 1 for a in answers):
        return None
    taus = [float(t.inputs[ex.temperature]) for t in ex.trials]

    def everywhere(rule) -> bool:
        return all(close(a.value, torch.tensor(reference_at(ex, trial, rule(tau)), dtype=torch.float64))
                   for trial, a, tau in zip(ex.trials, answers, taus))

    for r in temperatures_giving(ex, ex.trials[0], float(answers[0].value)):  # candidates from the first input, tried on all
        if everywhere(lambda tau, k=r / taus[0]: k * tau):
            return f"{r / taus[0]:.3g} × t instead of t"
        if everywhere(lambda tau, c=r: c):
            return f"{r:.3g}, whatever temperature is passed"
    return None


# --- shared pieces of the wrong formulas (float64) -----------------------------------------------------

def unit(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    return F.normalize(x.double(), dim=dim)


def cos(a: torch.Tensor, b: torch.Tensor, dim: int = -1) -> torch.Tensor:
    return unit(a, dim) @ unit(b, dim).T


def cross_entropy(logits: torch.Tensor, labels: torch.Tensor | None = None, reduction: str = "mean") -> torch.Tensor:
    labels = torch.arange(logits.shape[0]) if labels is None else labels
    return F.cross_entropy(logits, labels, reduction=reduction)


def scaled_norms(g: torch.Generator, x: torch.Tensor, low: float, high: float) -> torch.Tensor:
    """Rows rescaled to random lengths in [low, high] (log-uniform), so that forgetting to normalise shows."""
    lengths = torch.exp(torch.empty(x.shape[0], 1, dtype=torch.float64).uniform_(math.log(low), math.log(high), generator=g))
    return x / x.norm(dim=-1, keepdim=True) * lengths


def log_uniform(g: torch.Generator, low: float, high: float) -> float:
    return round(math.exp(float(torch.empty(1).uniform_(math.log(low), math.log(high), generator=g))), 4)


DTYPE = {"float32": torch.float32, "float64": torch.float64}


def embedding_views(g: torch.Generator, b: int, d: int, dtype: str, views: int, norms=(0.5, 2.0)) -> list[torch.Tensor]:
    """`views` embeddings of the same b sentences: the first, then noisier copies (positives, hard negatives).

    A shared direction makes them anisotropic like a real encoder's, and the noise keeps the losses away from 0,
    where every formula would look alike.
    """
    base = torch.randn(b, d, generator=g, dtype=torch.float64) + torch.randn(1, d, generator=g, dtype=torch.float64)
    out = [base] + [base + (1.5 + 0.3 * k) * torch.randn(b, d, generator=g, dtype=torch.float64) for k in range(views - 1)]
    return [scaled_norms(g, v, *norms).to(DTYPE[dtype]) for v in out]


def scalar_shape_hint(shape: tuple, trial: Trial) -> str:
    b = next(v for v in trial.inputs.values() if isinstance(v, torch.Tensor)).shape[0]
    if shape == (b,):
        return "that is one value per row: reduce them to one number (the mean over the rows)."
    if len(shape) == 2 and shape[0] == b:
        return "that looks like the logit (similarity) matrix: the loss is the cross-entropy of its rows against the labels."
    if shape == (1,):
        return "a one-element tensor: return a 0-d scalar (for example with .mean() or .squeeze())."
    return ""


def explain_loss_error(error: BaseException) -> tuple[str, str] | None:
    text = str(error)
    if "cannot be multiplied" in text:
        return ("shapes do not multiply",
                "z1 @ z2 needs the second matrix transposed: z1 @ z2.T is (B, B), every z1_i against every z2_j.")
    if "target" in text.lower() or "expected scalar type Long" in text:
        return ("wrong labels", "the labels of F.cross_entropy are class indices, integers of shape (B,): torch.arange(B).")
    return None


LOSS_NAN_HINT = ("exp() of logits as large as 1/t overflows float32; use torch.logsumexp or F.cross_entropy instead of "
                 "log(sum(exp(...))), and check for a division by a zero norm.")


# --- the unsupervised SimCSE loss (notebook 02) --------------------------------------------------------

def unsup_reference(z1, z2, temperature):
    return losses.unsup_simcse_loss(z1, z2, temperature=temperature)


def unsup_logits(z1, z2, temperature):
    return cos(z1, z2) / temperature


def nt_xent(z1, z2, temperature):
    """SimCLR's loss: 2B anchors (both views), every other embedding a candidate."""
    z = torch.cat([z1, z2]).double()
    logits = cos(z, z) / temperature
    logits.fill_diagonal_(float("-inf"))
    b = z1.shape[0]
    return cross_entropy(logits, torch.cat([torch.arange(b, 2 * b), torch.arange(b)]))


def positive_left_out(z1, z2, temperature):
    logits = unsup_logits(z1, z2, temperature)
    others = logits.masked_fill(torch.eye(logits.shape[0], dtype=torch.bool), float("-inf"))
    return (torch.logsumexp(others, dim=1) - logits.diagonal()).mean()


UNSUP_MISTAKES = [
    Mistake("no normalisation: your loss uses plain dot products z1 @ z2.T, not cosines.",
            "normalise every row first (F.normalize(z, dim=-1)); then the dot products are the cosines.",
            lambda z1, z2, temperature: cross_entropy(z1.double() @ z2.double().T / temperature)),
    Mistake("normalised along the wrong dimension: your cosines come from columns scaled to unit length (dim=0).",
            "each embedding is a row: F.normalize(z, dim=-1) (or dim=1).",
            lambda z1, z2, temperature: cross_entropy(cos(z1, z2, dim=0) / temperature)),
    Mistake("temperature applied twice: your loss is the cross-entropy of cos / t², not cos / t.",
            "divide the cosine matrix by the temperature once.",
            lambda z1, z2, temperature: cross_entropy(cos(z1, z2) / temperature**2)),
    Mistake("temperature multiplied instead of divided: your logits are cos × t.",
            "the logits are cos / t: with t = 0.05 that is 20 × cos, a sharp softmax.",
            lambda z1, z2, temperature: cross_entropy(cos(z1, z2) * temperature)),
    Mistake("temperature missing: your logits are the plain cosines (t = 1).",
            "divide the cosine matrix by the temperature argument.",
            lambda z1, z2, temperature: cross_entropy(cos(z1, z2))),
    Mistake("temperature fixed at 0.05: your loss ignores the temperature argument.",
            "use the temperature the function is given, not the paper's default.",
            lambda z1, z2, temperature: cross_entropy(cos(z1, z2) / 0.05)),
    Mistake("wrong diagonal: you compare z1 with itself (z1 @ z1.T), so every 'positive' is the trivial cos(z1_i, z1_i) = 1.",
            "the positives are the second view: the logits are cos(z1_i, z2_j), z1 against z2.",
            lambda z1, z2, temperature: cross_entropy(cos(z1, z1) / temperature)),
    Mistake("wrong diagonal: you compare z2 with itself (z2 @ z2.T), so every 'positive' is the trivial cos(z2_i, z2_i) = 1.",
            "the positives are the two views of the same sentence: the logits are cos(z1_i, z2_j), z1 against z2.",
            lambda z1, z2, temperature: cross_entropy(cos(z2, z2) / temperature)),
    Mistake("wrong labels: all labels are 0, so every row's 'positive' is the first sentence's z2.",
            "row i's positive is column i: labels = torch.arange(B).",
            lambda z1, z2, temperature: cross_entropy(unsup_logits(z1, z2, temperature), torch.zeros(z1.shape[0], dtype=torch.long))),
    Mistake("sum instead of mean: your loss is B times too large (the sum of the per-row losses).",
            "average over the rows (F.cross_entropy's default reduction='mean').",
            lambda z1, z2, temperature: cross_entropy(unsup_logits(z1, z2, temperature), reduction="sum")),
    Mistake("per-row losses: you return the B row losses (shape (B,)), not their mean.",
            "reduce them to one number: .mean() (F.cross_entropy does it by default).",
            lambda z1, z2, temperature: cross_entropy(unsup_logits(z1, z2, temperature), reduction="none")),
    Mistake("symmetric loss: you average both directions (z1 → z2 and z2 → z1); SimCSE's loss is one-directional.",
            "keep only the rows of cos(z1, z2) / t: anchors z1_i, candidates z2_j.",
            lambda z1, z2, temperature: (cross_entropy(unsup_logits(z1, z2, temperature))
                                         + cross_entropy(unsup_logits(z1, z2, temperature).T)) / 2),
    Mistake("symmetric loss, summed: you add both directions (z1 → z2 and z2 → z1); SimCSE's loss is one-directional.",
            "keep only the rows of cos(z1, z2) / t: anchors z1_i, candidates z2_j.",
            lambda z1, z2, temperature: cross_entropy(unsup_logits(z1, z2, temperature))
                                        + cross_entropy(unsup_logits(z1, z2, temperature).T)),
    Mistake("wrong direction: your softmax runs over the columns (z2_i as anchor against all z1_j), not the rows.",
            "anchors are the rows: cos(z1, z2) with z1 first, and the softmax / cross-entropy over dim=1.",
            lambda z1, z2, temperature: cross_entropy(unsup_logits(z1, z2, temperature).T)),
    Mistake("the positive is left out of the denominator: the sum in the denominator runs over every j, j = i included.",
            "the loss is the cross-entropy over the whole row i of cos(z1, z2) / t, positive included.",
            positive_left_out),
    Mistake("this is SimCLR's NT-Xent (2B × 2B, both views as anchors and as negatives), not SimCSE's loss.",
            "SimCSE uses the B × B matrix cos(z1_i, z2_j) / t, anchors z1 only, positives on the diagonal.",
            nt_xent),
    Mistake("sign flipped: your loss is log p(positive), the loss is -log p(positive).",
            "negate it: F.cross_entropy already includes the minus sign.",
            lambda z1, z2, temperature: -cross_entropy(unsup_logits(z1, z2, temperature))),
]


@functools.cache
def unsup_exercise() -> Exercise:
    g = torch.Generator().manual_seed(1702)
    cases = [(4, 8, "float32", 0.05, (0.5, 2.0)), (2, 6, "float32", None, (0.5, 2.0)), (8, 16, "float64", None, (0.5, 2.0)),
             (5, 3, "float64", None, (0.5, 2.0)), (16, 32, "float32", None, (0.5, 2.0)), (3, 10, "float32", None, (0.1, 10.0))]
    trials = []
    for b, d, dtype, t, norms in cases:
        t = t or log_uniform(g, 0.03, 0.5)
        z1, z2 = embedding_views(g, b, d, dtype, 2, norms)
        what = "a batch of 2" if b == 2 else f"a batch of {b}"
        trials.append(Trial(f"{what} (D = {d}, {dtype}, lengths {norms[0]:g} to {norms[1]:g}, temperature {t})",
                            {"z1": z1, "z2": z2, "temperature": t}))
    return Exercise(
        "the unsupervised SimCSE loss", "simcse_lab.losses.unsup_simcse_loss",
        "batches of 2 to 16, float32 and float64, rows of any length, temperatures from 0.03 to 0.5",
        ("z1", "z2", "temperature"), unsup_reference, trials, UNSUP_MISTAKES,
        hint="the loss is F.cross_entropy(cos(z1, z2) / t, torch.arange(B)): the cosine of every z1_i with every z2_j, "
             "divided by t once, the positives on the diagonal, the mean over the rows.",
        returns="a scalar tensor", differentiable=("z1", "z2"), unit_invariant=("z1", "z2"), temperature="temperature",
        shape_hint=scalar_shape_hint, explain_error=explain_loss_error, nan_hint=LOSS_NAN_HINT)


def check_unsup_loss(fn, *, require: bool = False) -> CheckResult:
    """Check `fn(z1, z2, temperature)`: the unsupervised SimCSE loss, a scalar (reference: losses.unsup_simcse_loss).

    z1, z2: (B, D) embeddings of the same B sentences under two dropout masks (any length, not normalised).
    loss = mean_i -log( exp(cos(z1_i, z2_i)/t) / sum_j exp(cos(z1_i, z2_j)/t) ).
    """
    return run_check(unsup_exercise, fn, require)


# --- the supervised SimCSE loss (notebook 03) ----------------------------------------------------------

def sup_reference(z1, z2, z3, temperature, hard_negative_weight):
    return losses.sup_simcse_loss(z1, z2, z3, temperature=temperature, hard_negative_weight=hard_negative_weight)


def sup_loss(positives: torch.Tensor, hard: torch.Tensor, labels=None, reduction="mean", hard_first=False):
    blocks = [hard, positives] if hard_first else [positives, hard]
    return cross_entropy(torch.cat(blocks, dim=1), labels, reduction)


def own_hard_negative(z1, z2, z3, temperature, hard_negative_weight):
    """(B, B+1): each sentence against every positive and only its own hard negative."""
    own = (unit(z1) * unit(z3)).sum(-1, keepdim=True) / temperature + hard_negative_weight
    return cross_entropy(torch.cat([cos(z1, z2) / temperature, own], dim=1))


def eye(z: torch.Tensor) -> torch.Tensor:
    return torch.eye(z.shape[0], dtype=torch.float64)


SUP_MISTAKES = [
    Mistake("hard negatives left out: your loss is the N × N unsupervised one; the contradictions z3 never enter it.",
            "append the N × N block cos(z1, z3) / t (plus the weight on its diagonal) to the right of cos(z1, z2) / t: N × 2N logits.",
            lambda z1, z2, z3, temperature, hard_negative_weight: cross_entropy(cos(z1, z2) / temperature)),
    Mistake("only each sentence's own hard negative: your logits are N × (N + 1); SimCSE uses every contradiction in the batch.",
            "the second block is the full N × N matrix cos(z1_i, z3_j) / t, so that every z3_j is a negative for every z1_i.",
            own_hard_negative),
    Mistake("hard-negative weight ignored: your loss is the one with weight 0.",
            "add hard_negative_weight to the diagonal of the hard-negative block (each sentence's own contradiction).",
            lambda z1, z2, z3, temperature, hard_negative_weight: sup_loss(cos(z1, z2) / temperature, cos(z1, z3) / temperature)),
    Mistake("weight added to the whole hard-negative block; it belongs on its diagonal only (sentence i's own contradiction).",
            "add hard_negative_weight * torch.eye(N) to the hard block, not the scalar to every entry.",
            lambda z1, z2, z3, temperature, hard_negative_weight: sup_loss(cos(z1, z2) / temperature,
                                                                           cos(z1, z3) / temperature + hard_negative_weight)),
    Mistake("weight added to the positives' diagonal; it belongs on the diagonal of the hard-negative block.",
            "the weight goes on cos(z1_i, z3_i) / t, sentence i's own contradiction.",
            lambda z1, z2, z3, temperature, hard_negative_weight: sup_loss(cos(z1, z2) / temperature + hard_negative_weight * eye(z1),
                                                                           cos(z1, z3) / temperature)),
    Mistake("weight added before dividing by the temperature: your hard logit is (cos + w) / t; it is cos / t + w.",
            "divide by t first, then add the weight (w = log alpha multiplies exp(logit) by alpha).",
            lambda z1, z2, z3, temperature, hard_negative_weight: sup_loss(cos(z1, z2) / temperature,
                                                                           (cos(z1, z3) + hard_negative_weight * eye(z1)) / temperature)),
    Mistake("weight multiplied instead of added: your hard logit is w × cos / t; the weight w = log alpha is added to it.",
            "add w to the logit: that multiplies exp(logit) by alpha = e^w.",
            lambda z1, z2, z3, temperature, hard_negative_weight: sup_loss(
                cos(z1, z2) / temperature, cos(z1, z3) / temperature * (1 + (hard_negative_weight - 1) * eye(z1)))),
    Mistake("weight used as alpha: your hard logit is e^w × cos / t (the logit multiplied by alpha); w = log alpha is added to it.",
            "add w to the logit, which multiplies exp(logit) by alpha = e^w.",
            lambda z1, z2, z3, temperature, hard_negative_weight: sup_loss(
                cos(z1, z2) / temperature, cos(z1, z3) / temperature * (1 + (math.exp(hard_negative_weight) - 1) * eye(z1)))),
    Mistake("weight exponentiated twice: you add e^w to the hard logit; w is already log alpha, add w itself.",
            "add hard_negative_weight as it is: adding w multiplies exp(logit) by e^w = alpha.",
            lambda z1, z2, z3, temperature, hard_negative_weight: sup_loss(
                cos(z1, z2) / temperature, cos(z1, z3) / temperature + math.exp(hard_negative_weight) * eye(z1))),
    Mistake("temperature not applied to the hard block: your hard-negative logits are cos(z1, z3) + w, not divided by t.",
            "divide both blocks by the temperature, then add the weight.",
            lambda z1, z2, z3, temperature, hard_negative_weight: sup_loss(cos(z1, z2) / temperature,
                                                                           cos(z1, z3) + hard_negative_weight * eye(z1))),
    Mistake("hard negatives placed before the positives with the labels unchanged: label i now points at sentence i's "
            "contradiction.",
            "put [positives | hard negatives] (torch.cat along dim=1, positives first), or shift the labels to N + i.",
            lambda z1, z2, z3, temperature, hard_negative_weight: sup_loss(
                cos(z1, z2) / temperature, cos(z1, z3) / temperature + hard_negative_weight * eye(z1), hard_first=True)),
    Mistake("no normalisation: your loss uses plain dot products, not cosines.",
            "normalise every row of z1, z2 and z3 first (F.normalize(z, dim=-1)).",
            lambda z1, z2, z3, temperature, hard_negative_weight: sup_loss(
                z1.double() @ z2.double().T / temperature, z1.double() @ z3.double().T / temperature + hard_negative_weight * eye(z1))),
    Mistake("normalised along the wrong dimension: your cosines come from columns scaled to unit length (dim=0).",
            "each embedding is a row: F.normalize(z, dim=-1).",
            lambda z1, z2, z3, temperature, hard_negative_weight: sup_loss(
                cos(z1, z2, 0) / temperature, cos(z1, z3, 0) / temperature + hard_negative_weight * eye(z1))),
    Mistake("temperature applied twice: your logits are cos / t², not cos / t.",
            "divide each cosine block by the temperature once, then add the weight.",
            lambda z1, z2, z3, temperature, hard_negative_weight: sup_loss(
                cos(z1, z2) / temperature**2, cos(z1, z3) / temperature**2 + hard_negative_weight * eye(z1))),
    Mistake("temperature multiplied instead of divided: your logits are cos × t.",
            "the logits are cos / t (20 × cos for t = 0.05), then the weight is added.",
            lambda z1, z2, z3, temperature, hard_negative_weight: sup_loss(
                cos(z1, z2) * temperature, cos(z1, z3) * temperature + hard_negative_weight * eye(z1))),
    Mistake("temperature missing: your logits are the plain cosines (t = 1).",
            "divide both cosine blocks by the temperature argument.",
            lambda z1, z2, z3, temperature, hard_negative_weight: sup_loss(
                cos(z1, z2), cos(z1, z3) + hard_negative_weight * eye(z1))),
    Mistake("temperature fixed at 0.05: your loss ignores the temperature argument.",
            "use the temperature the function is given, not the paper's default.",
            lambda z1, z2, z3, temperature, hard_negative_weight: sup_reference(z1, z2, z3, 0.05, hard_negative_weight)),
    Mistake("wrong diagonal: you compare z1 with itself (z1 @ z1.T) in the positive block, so every 'positive' is cos = 1.",
            "the positives are the entailments: the first block is cos(z1_i, z2_j), z1 against z2.",
            lambda z1, z2, z3, temperature, hard_negative_weight: sup_loss(
                cos(z1, z1) / temperature, cos(z1, z3) / temperature + hard_negative_weight * eye(z1))),
    Mistake("wrong labels: all labels are 0, so every row's 'positive' is the first sentence's entailment.",
            "row i's positive is column i: labels = torch.arange(N).",
            lambda z1, z2, z3, temperature, hard_negative_weight: sup_loss(
                cos(z1, z2) / temperature, cos(z1, z3) / temperature + hard_negative_weight * eye(z1),
                torch.zeros(z1.shape[0], dtype=torch.long))),
    Mistake("sum instead of mean: your loss is N times too large (the sum of the per-row losses).",
            "average over the rows (F.cross_entropy's default reduction='mean').",
            lambda z1, z2, z3, temperature, hard_negative_weight: sup_loss(
                cos(z1, z2) / temperature, cos(z1, z3) / temperature + hard_negative_weight * eye(z1), reduction="sum")),
    Mistake("per-row losses: you return the N row losses (shape (N,)), not their mean.",
            "reduce them to one number: .mean() (F.cross_entropy does it by default).",
            lambda z1, z2, z3, temperature, hard_negative_weight: sup_loss(
                cos(z1, z2) / temperature, cos(z1, z3) / temperature + hard_negative_weight * eye(z1), reduction="none")),
    Mistake("sign flipped: your loss is log p(positive), the loss is -log p(positive).",
            "negate it: F.cross_entropy already includes the minus sign.",
            lambda z1, z2, z3, temperature, hard_negative_weight: -sup_reference(z1, z2, z3, temperature, hard_negative_weight)),
]


@functools.cache
def sup_exercise() -> Exercise:
    g = torch.Generator().manual_seed(1703)
    cases = [(4, 8, "float32", 0.05, 0.0), (2, 6, "float32", None, 0.8), (8, 16, "float64", None, -0.6),
             (5, 3, "float64", None, None), (16, 32, "float32", None, None), (3, 10, "float32", None, None)]
    trials = []
    for b, d, dtype, t, w in cases:
        t = t or log_uniform(g, 0.03, 0.5)
        w = w if w is not None else round(float(torch.empty(1).uniform_(-1.5, 2.0, generator=g)), 3)
        z1, z2, z3 = embedding_views(g, b, d, dtype, 3)
        what = "a batch of 2" if b == 2 else f"a batch of {b}"
        trials.append(Trial(f"{what} (D = {d}, {dtype}, temperature {t}, hard_negative_weight {w})",
                            {"z1": z1, "z2": z2, "z3": z3, "temperature": t, "hard_negative_weight": w}))
    return Exercise(
        "the supervised SimCSE loss", "simcse_lab.losses.sup_simcse_loss",
        "batches of 2 to 16, float32 and float64, rows of any length, temperatures from 0.03 to 0.5, weights from -1.5 to 2",
        ("z1", "z2", "z3", "temperature", "hard_negative_weight"), sup_reference, trials,
        SUP_MISTAKES,
        hint="the logits are [cos(z1, z2) / t | cos(z1, z3) / t + w·I] (N × 2N, positives first, the weight on the hard "
             "block's diagonal); the loss is F.cross_entropy(logits, torch.arange(N)).",
        returns="a scalar tensor", differentiable=("z1", "z2", "z3"), unit_invariant=("z1", "z2", "z3"),
        temperature="temperature", shape_hint=scalar_shape_hint, explain_error=explain_loss_error, nan_hint=LOSS_NAN_HINT)


def check_sup_loss(fn, *, require: bool = False) -> CheckResult:
    """Check `fn(z1, z2, z3, temperature, hard_negative_weight)`: the supervised SimCSE loss, a scalar.

    z1: premises, z2: their entailments (positives), z3: their contradictions (hard negatives), each (N, D).
    Logits (N, 2N): [cos(z1_i, z2_j)/t | cos(z1_i, z3_j)/t + w·[i == j]]; labels i; mean cross-entropy.
    w = log(alpha) is added after dividing by t (reference: losses.sup_simcse_loss).
    """
    return run_check(sup_exercise, fn, require)


# --- alignment and uniformity (notebook 01) ------------------------------------------------------------

def squared_distances(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return torch.cdist(x.double(), y.double()).pow(2)


ALIGNMENT_MISTAKES = [
    Mistake("no normalisation: the distances are between the raw embeddings; alignment is measured on the unit sphere.",
            "L2-normalise x and y first (F.normalize(x, dim=-1)).",
            lambda x, y: (x.double() - y.double()).norm(dim=1).pow(2).mean()),
    Mistake("normalised along the wrong dimension: columns scaled to unit length (dim=0) instead of rows.",
            "each embedding is a row: F.normalize(x, dim=-1).",
            lambda x, y: (unit(x, 0) - unit(y, 0)).norm(dim=1).pow(2).mean()),
    Mistake("distance not squared: your value is E ||x - y||; alignment with alpha = 2 is E ||x - y||².",
            "square the distances (.pow(2)) before the mean.",
            lambda x, y: (unit(x) - unit(y)).norm(dim=1).mean()),
    Mistake("averaged over the coordinates too: you take the mean of (x - y)² over all entries, which divides by D.",
            "sum over the dimension (||x_i - y_i||² = ((x_i - y_i)**2).sum()), then take the mean over the pairs.",
            lambda x, y: (unit(x) - unit(y)).pow(2).mean()),
    Mistake("sum instead of mean: your value is the sum over the pairs, N times too large.",
            "take the mean over the N pairs.",
            lambda x, y: (unit(x) - unit(y)).norm(dim=1).pow(2).sum()),
    Mistake("all pairs instead of positive pairs: you average ||x_i - y_j||² over every i, j.",
            "alignment compares each x_i with its own partner y_i only: (x - y) row by row.",
            lambda x, y: squared_distances(unit(x), unit(y)).mean()),
    Mistake("1 - cos instead of the squared distance: on the unit sphere ||x - y||² = 2 - 2 cos, twice your value.",
            "compute ||x_i - y_i||² itself (or 2 - 2 cos).",
            lambda x, y: (1 - (unit(x) * unit(y)).sum(-1)).mean()),
    Mistake("cosine similarity instead of distance: alignment is the mean squared distance of the pairs (lower is better).",
            "compute ||x_i - y_i||² on the normalised embeddings and average it.",
            lambda x, y: (unit(x) * unit(y)).sum(-1).mean()),
    Mistake("sign flipped: alignment is a non-negative distance, E ||x - y||².",
            "drop the minus sign.",
            lambda x, y: -(unit(x) - unit(y)).norm(dim=1).pow(2).mean()),
]


def uniformity_of(d2: torch.Tensor, t: float = 2.0) -> torch.Tensor:
    return torch.logsumexp(-t * d2, dim=0) - math.log(d2.numel())


def pair_d2(x: torch.Tensor) -> torch.Tensor:
    return torch.pdist(unit(x)).pow(2)


UNIFORMITY_MISTAKES = [
    Mistake("no normalisation: the distances are between the raw embeddings; uniformity is measured on the unit sphere.",
            "L2-normalise x first (F.normalize(x, dim=-1)).",
            lambda x: uniformity_of(torch.pdist(x.double()).pow(2))),
    Mistake("normalised along the wrong dimension: columns scaled to unit length (dim=0) instead of rows.",
            "each embedding is a row: F.normalize(x, dim=-1).",
            lambda x: uniformity_of(torch.pdist(unit(x, 0)).pow(2))),
    Mistake("distance not squared: your value uses exp(-t ||x - y||); uniformity uses exp(-t ||x - y||²).",
            "square the pairwise distances (torch.pdist(x).pow(2)).",
            lambda x: uniformity_of(torch.pdist(unit(x)))),
    Mistake("mean of the log instead of the log of the mean: log E exp(-t d²) is not E log exp(-t d²) = -t E d².",
            "average exp(-t d²) over the pairs first, then take the log (torch.logsumexp(-t d², 0) - log(#pairs)).",
            lambda x: (-2.0 * pair_d2(x)).mean()),
    Mistake("self-pairs included: your mean runs over every (i, j), the N pairs i == j (distance 0) too.",
            "average over distinct pairs only: torch.pdist(x) gives the i < j distances.",
            lambda x: uniformity_of(squared_distances(unit(x), unit(x)).flatten())),
    Mistake("self-pairs included: your mean runs over i <= j, the N pairs i == j (distance 0) included.",
            "average over distinct pairs only (i < j): torch.pdist(x).",
            lambda x: uniformity_of(squared_distances(unit(x), unit(x))[torch.triu_indices(x.shape[0], x.shape[0]).unbind()])),
    Mistake("t missing: your value is log E exp(-d²); Wang & Isola's uniformity uses t = 2, log E exp(-2 d²).",
            "multiply the squared distances by t = 2 inside the exp.",
            lambda x: uniformity_of(pair_d2(x), t=1.0)),
    Mistake("sign flipped: uniformity is log E exp(-t d²), a negative number (lower is more uniform).",
            "drop the outer minus sign.",
            lambda x: -uniformity_of(pair_d2(x))),
    Mistake("sign flipped inside the exp: you use exp(+t d²); it is exp(-t d²), near pairs weigh most.",
            "exp(-2 * squared distance).",
            lambda x: uniformity_of(pair_d2(x), t=-2.0)),
    Mistake("log missing: your value is E exp(-t d²); uniformity is its log.",
            "take the log of the mean (or use torch.logsumexp(-t d², 0) - log(#pairs)).",
            lambda x: torch.exp(-2.0 * pair_d2(x)).mean()),
    Mistake("log of the sum instead of the log of the mean: you left out the division by the number of pairs.",
            "divide the sum of exp(-t d²) by the number of pairs before the log (or take .mean()).",
            lambda x: torch.logsumexp(-2.0 * pair_d2(x), dim=0)),
]


@functools.cache
def alignment_exercise() -> Exercise:
    g = torch.Generator().manual_seed(1701)
    trials = []
    for n, d, dtype in [(4, 8, "float32"), (2, 5, "float32"), (8, 16, "float64"), (16, 3, "float64"), (5, 32, "float32")]:
        x, y = embedding_views(g, n, d, dtype, 2)
        trials.append(Trial(f"{n} pairs (D = {d}, {dtype}, lengths 0.5 to 2)", {"x": x, "y": y}))
    return Exercise(
        "alignment", "simcse_lab.geometry.alignment", "2 to 16 pairs, float32 and float64, rows of any length",
        ("x", "y"), lambda x, y: torch.tensor(geometry.alignment(x, y)), trials, ALIGNMENT_MISTAKES,
        hint="alignment = mean over pairs of ||x_i - y_i||², with x and y L2-normalised row by row first.",
        returns="a scalar (a 0-d tensor or a float)", unit_invariant=("x", "y"), shape_hint=scalar_shape_hint,
        nan_hint="check for a division by a zero norm.")


@functools.cache
def uniformity_exercise() -> Exercise:
    g = torch.Generator().manual_seed(1704)
    trials = []
    for n, d, dtype in [(6, 8, "float32"), (2, 5, "float32"), (10, 16, "float64"), (16, 3, "float64"), (24, 32, "float32")]:
        (x,) = embedding_views(g, n, d, dtype, 1)
        trials.append(Trial(f"{n} embeddings (D = {d}, {dtype}, lengths 0.5 to 2)", {"x": x}))
    return Exercise(
        "uniformity", "simcse_lab.geometry.uniformity", "2 to 24 embeddings, float32 and float64, rows of any length",
        ("x",), lambda x: torch.tensor(geometry.uniformity(x)), trials, UNIFORMITY_MISTAKES,
        hint="uniformity = log of the mean over distinct pairs i < j of exp(-2 ||x_i - x_j||²), x L2-normalised row by row first.",
        returns="a scalar (a 0-d tensor or a float)", unit_invariant=("x",), shape_hint=scalar_shape_hint,
        nan_hint="log(0) is -inf: if every exp(-t d²) underflows, use torch.logsumexp(-t d², 0) - log(#pairs).")


def check_alignment(fn, *, require: bool = False) -> CheckResult:
    """Check `fn(x, y)`: Wang & Isola's alignment with alpha = 2 (reference: geometry.alignment).

    x, y: (N, D), x[i] and y[i] a positive pair. alignment = mean_i ||x_i - y_i||² on L2-normalised rows.
    """
    return run_check(alignment_exercise, fn, require)


def check_uniformity(fn, *, require: bool = False) -> CheckResult:
    """Check `fn(x)`: Wang & Isola's uniformity with t = 2 (reference: geometry.uniformity).

    x: (N, D). uniformity = log mean_{i<j} exp(-2 ||x_i - x_j||²) on L2-normalised rows.
    """
    return run_check(uniformity_exercise, fn, require)


# --- mean pooling (notebook 01) ------------------------------------------------------------------------

def on_states(formula: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> Callable[..., torch.Tensor]:
    """A pooling formula of s (B, T, H) and m (B, T, 1), both float64, as a mistake formula of the trial's inputs."""
    return lambda last_hidden_state, attention_mask: formula(last_hidden_state.double(), attention_mask.double().unsqueeze(-1))


def last_real_token(s: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    return s[torch.arange(s.shape[0]), m.sum((1, 2)).long() - 1]


POOLING_MISTAKES = [
    Mistake("padding included: you average over all T positions; the padded ones (attention_mask 0) are not words.",
            "multiply by the mask and divide by the number of real tokens: "
            "(h * m).sum(1) / m.sum(1), with m = attention_mask.unsqueeze(-1).",
            on_states(lambda s, m: s.mean(1))),
    Mistake("divided by T instead of the real length: the sum is masked, but the divisor counts the padding too.",
            "divide by the number of real tokens of each sentence: attention_mask.sum(1, keepdim=True).",
            on_states(lambda s, m: (s * m).sum(1) / s.shape[1])),
    Mistake("padding in the sum: you divide by the real length, but the sum also adds the padded positions.",
            "multiply the states by attention_mask.unsqueeze(-1) before summing over the tokens.",
            on_states(lambda s, m: s.sum(1) / m.sum(1))),
    Mistake("summed, not averaged: you return the sum over the real tokens.",
            "divide by the number of real tokens: attention_mask.sum(1, keepdim=True).",
            on_states(lambda s, m: (s * m).sum(1))),
    Mistake("divided by the batch's total number of tokens: attention_mask.sum() without dim=1.",
            "divide each sentence by its own length: attention_mask.sum(1, keepdim=True), shape (B, 1).",
            on_states(lambda s, m: (s * m).sum(1) / m.sum())),
    Mistake("the [CLS] state: you return position 0 (the `cls_before_pooler` pooler); `avg` is the mean over the real tokens.",
            "average the states over the tokens whose attention_mask is 1.",
            on_states(lambda s, m: s[:, 0])),
    Mistake("the last position: you return position T - 1, which is padding for every sentence shorter than the longest.",
            "average the states over the tokens whose attention_mask is 1.",
            on_states(lambda s, m: s[:, -1])),
    Mistake("the last real token: you return one token's state; `avg` averages all the real tokens.",
            "average the states over the tokens whose attention_mask is 1.",
            on_states(last_real_token)),
    Mistake("max pooling: you take the maximum over the real tokens; `avg` is their mean.",
            "sum the masked states and divide by the number of real tokens.",
            on_states(lambda s, m: s.masked_fill(m == 0, float("-inf")).amax(1))),
]


def pooling_shape_hint(shape: tuple, trial: Trial) -> str:
    b, t, h = trial.inputs["last_hidden_state"].shape
    if shape == (b, t):
        return "you reduced the hidden dimension: average over the tokens, dim=1, which leaves (B, H)."
    if shape == (b, 1, h):
        return "keepdim=True on the sum over the tokens left a length-1 axis: drop it, (B, H)."
    if shape == (b, t, h):
        return "nothing was reduced: sum the masked states over the tokens (dim=1), then divide by the lengths."
    if shape in ((h,), ()):
        return "you averaged over the batch too: reduce over dim=1 only (one vector per sentence)."
    return ""


def explain_pooling_error(error: BaseException) -> tuple[str, str] | None:
    if "must match the size" in str(error) or "size of tensor" in str(error):
        return ("the mask is not broadcast (a shape error)",
                "attention_mask is (B, T) and the states (B, T, H): multiply by attention_mask.unsqueeze(-1), shape (B, T, 1), "
                "and divide by attention_mask.sum(1, keepdim=True), shape (B, 1).")
    return None


@functools.cache
def pooling_exercise() -> Exercise:
    g = torch.Generator().manual_seed(1705)
    trials = []
    # B, T, H pairwise different, so that a mask that is not broadcast fails loudly instead of lining up by chance
    for b, t, h, dtype in [(3, 5, 4, "float32"), (2, 6, 8, "float32"), (4, 7, 6, "float64"), (5, 9, 3, "float64"), (6, 4, 10, "float32")]:
        states = torch.randn(b, t, h, generator=g, dtype=torch.float64).to(DTYPE[dtype])
        lengths = torch.randint(1, t, (b,), generator=g)
        lengths[0] = t  # the longest sentence fills the batch; at least one other is padded
        if b > 2:
            lengths[1] = 1  # only [CLS]
        mask = (torch.arange(t) < lengths[:, None]).long()  # right padding, as a Hugging Face tokenizer pads
        trials.append(Trial(f"last_hidden_state {tuple(states.shape)} {dtype}, lengths {lengths.tolist()}",
                            {"last_hidden_state": states, "attention_mask": mask}))
    return Exercise(
        "mean pooling (`avg`)", "simcse_lab.models.pooling.masked_mean",
        "batches of 2 to 6, float32 and float64, sentences from 1 token to the full length", ("last_hidden_state", "attention_mask"),
        lambda last_hidden_state, attention_mask: masked_mean(last_hidden_state, attention_mask), trials, POOLING_MISTAKES,
        hint="avg = (h * m).sum(1) / m.sum(1) with m = attention_mask.unsqueeze(-1): the mean over each sentence's real tokens.",
        returns="a (B, H) tensor", differentiable=("last_hidden_state",), shape_hint=pooling_shape_hint,
        explain_error=explain_pooling_error, nan_hint="a 0 / 0: divide by attention_mask.sum(1, keepdim=True), each sentence's length.")


def check_mean_pooling(fn, *, require: bool = False) -> CheckResult:
    """Check `fn(last_hidden_state, attention_mask)`: the `avg` pooler, (B, T, H), (B, T) -> (B, H).

    The mean of each sentence's last-layer states over its real tokens (attention_mask 1), padding excluded
    (reference: models.pooling.masked_mean, i.e. pool("avg", ...)).
    """
    return run_check(pooling_exercise, fn, require)


__all__ = ["CheckResult", "check_alignment", "check_mean_pooling", "check_sup_loss", "check_uniformity", "check_unsup_loss"]
