"""BERT-flow: exact log-determinant, exact inverse, maximum-likelihood training, save/load, encode-time use.

References: torch.autograd.functional.jacobian for log|det J|; torch.distributions.MultivariateNormal
for Gaussian log-likelihoods; simcse_lab.geometry.Whitening for what the whitened start must equal.
"""

from __future__ import annotations

import json
import math

import pytest
import torch

from simcse_lab.errors import SimCSELabError
from simcse_lab.models.flow import Flow, FlowConfig, FlowTransform, log_likelihood, train_flow, split_heldout
from simcse_lab.geometry import Whitening, average_cosine, cosine_matrix


@pytest.fixture(autouse=True)
def one_thread():
    """These tensors are tiny: on a busy machine extra intra-op threads make training ~10x slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def perturbed_flow(dim: int, num_layers: int = 3, hidden: int = 16, seed: int = 0) -> Flow:
    """A float64 flow with every parameter moved off its (identity-like) init, so no layer is trivial."""
    flow = Flow(dim, num_layers, hidden, seed=seed).double()
    g = torch.Generator().manual_seed(seed + 1)
    flow.initialize(3 * torch.randn(64, dim, generator=g, dtype=torch.float64) + 1)
    with torch.no_grad():
        for p in flow.parameters():
            p.add_(0.2 * torch.randn(p.shape, generator=g, dtype=torch.float64))
    return flow


def banana(n: int, dim: int = 8, seed: int = 0) -> torch.Tensor:
    """A curved, anisotropic cloud: a parabola in a random plane, plus noise, far from the origin."""
    g = torch.Generator().manual_seed(seed)
    t = torch.randn(n, generator=g, dtype=torch.float64)
    x = 0.2 * torch.randn(n, dim, generator=g, dtype=torch.float64)
    x[:, 0] += 2 * t
    x[:, 1] += t**2
    rotation, _ = torch.linalg.qr(torch.randn(dim, dim, generator=g, dtype=torch.float64))
    return x @ rotation + 5.0


def gaussian_mle(x: torch.Tensor) -> torch.distributions.MultivariateNormal:
    return torch.distributions.MultivariateNormal(x.mean(0), covariance_matrix=torch.cov(x.T))


# ---------------------------------------------------------------------- exactness
@pytest.mark.parametrize("dim", [6, 7])
def test_logdet_matches_autograd_jacobian(dim):
    flow = perturbed_flow(dim)
    x = torch.randn(5, dim, dtype=torch.float64)
    with torch.no_grad():
        _, logdet = flow(x)
    for i in range(len(x)):
        jacobian = torch.autograd.functional.jacobian(lambda row: flow(row[None])[0][0], x[i])  # (D, D)
        sign, reference = torch.linalg.slogdet(jacobian)
        assert sign != 0
        assert float(logdet[i]) == pytest.approx(float(reference), abs=1e-9)


@pytest.mark.parametrize("dim", [7, 8])
def test_inverse_undoes_forward_both_ways(dim):
    flow = perturbed_flow(dim, num_layers=4)
    with torch.no_grad():
        x = 4 * torch.randn(50, dim, dtype=torch.float64) - 2
        assert torch.allclose(flow.inverse(flow(x)[0]), x, atol=1e-6, rtol=0)
        y = torch.randn(50, dim, dtype=torch.float64)
        assert torch.allclose(flow(flow.inverse(y))[0], y, atol=1e-6, rtol=0)
        assert not torch.allclose(flow(x)[0], x, atol=1e-2)  # the flow is not the identity


def test_linear_flow_log_likelihood_is_a_gaussian_density():
    # Fresh couplings are the identity, so this flow is y = A x + c: x ~ N(-A^-1 c, (A^T A)^-1).
    flow = Flow(6, num_layers=2, hidden_size=8, seed=3).double()
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, p in flow.named_parameters():
            if ".net." not in name and not name.endswith(".scale"):
                p.add_(0.3 * torch.randn(p.shape, generator=g, dtype=torch.float64))
    x = torch.randn(20, 6, generator=g, dtype=torch.float64)
    eye = torch.eye(6, dtype=torch.float64)
    with torch.no_grad():
        c = flow(torch.zeros(1, 6, dtype=torch.float64))[0][0]
        a = (flow(eye)[0] - c).T  # column j = A e_j
    reference = torch.distributions.MultivariateNormal(-torch.linalg.solve(a, c), precision_matrix=a.T @ a)
    with torch.no_grad():
        assert torch.allclose(log_likelihood(flow, x), reference.log_prob(x), atol=1e-9)


def test_whitened_start_is_bert_whitening():
    x = banana(500, dim=6)
    flow = Flow(6, num_layers=2, hidden_size=8).double()
    flow.initialize(x, whiten=True)
    with torch.no_grad():
        y = flow(x)[0]
        # The Gaussian maximum-likelihood fit (unbiased covariance, as in torch.cov) ...
        assert torch.allclose(log_likelihood(flow, x), gaussian_mle(x).log_prob(x), atol=1e-8)
    # ... and the same cosines as BERT-whitening: whitenings differ by a rotation only.
    assert torch.allclose(cosine_matrix(y), cosine_matrix(Whitening.fit(x)(x).double()), atol=1e-5)
    assert torch.allclose(torch.cov(y.T), torch.eye(6, dtype=torch.float64), atol=1e-6)


# ---------------------------------------------------------------------- training
def test_training_raises_heldout_likelihood_and_removes_anisotropy():
    x = banana(2000)
    config = FlowConfig(num_layers=4, hidden_size=32, epochs=8, batch_size=128, whiten_init=False, seed=0)
    flow, history = train_flow(x, config)
    assert len(history.train) == len(history.heldout) == config.epochs + 1
    assert history.heldout[-1] > history.heldout[0] + 2.0  # nats per sample
    assert history.heldout[history.best_epoch] == max(history.heldout)
    # The fitted flow beats the best Gaussian (what whitening assumes) on held-out data: the cloud is curved.
    train_idx, heldout_idx = split_heldout(len(x), config.heldout_fraction, torch.Generator().manual_seed(config.seed))
    gaussian = float(gaussian_mle(x[train_idx]).log_prob(x[heldout_idx]).mean())
    assert max(history.heldout) > gaussian + 0.3
    transform = FlowTransform(flow, config, history)
    before, after = average_cosine(x), average_cosine(transform(x))
    assert before > 0.9
    assert abs(after) < 0.1


def test_keep_best_restores_the_best_heldout_epoch():
    # On a Gaussian cloud the whitened start is already the best model there is: training can only
    # overfit, so the best held-out epoch comes before the last, and its weights must come back.
    g = torch.Generator().manual_seed(1)
    x = torch.randn(200, 6, generator=g, dtype=torch.float64) @ torch.randn(6, 6, generator=g, dtype=torch.float64) + 3
    config = FlowConfig(num_layers=2, hidden_size=16, epochs=4, batch_size=50, whiten_init=True)
    flow, history = train_flow(x, config)
    assert history.best_epoch == max(range(len(history.heldout)), key=history.heldout.__getitem__)
    assert history.best_epoch < config.epochs
    _, heldout_idx = split_heldout(len(x), config.heldout_fraction, torch.Generator().manual_seed(config.seed))
    with torch.no_grad():
        recomputed = float(log_likelihood(flow, x[heldout_idx].float()).mean())
    assert recomputed == pytest.approx(history.heldout[history.best_epoch], abs=1e-4)


def test_config_rejects_unknown_and_bad_options():
    with pytest.raises(SimCSELabError, match="valid flow options are: num_layers, hidden_size"):
        FlowConfig.from_options(layers=3)
    with pytest.raises(SimCSELabError, match="heldout_fraction"):
        FlowConfig.from_options(heldout_fraction=1.0)
    with pytest.raises(SimCSELabError, match="NaN or inf"):
        train_flow(torch.full((10, 4), float("nan")), FlowConfig(epochs=1))


# ---------------------------------------------------------------------- save / load / encode
def test_flow_transform_save_load_round_trip(tmp_path):
    x = banana(300, dim=6)
    transform = FlowTransform.fit(x, num_layers=2, hidden_size=8, epochs=2, batch_size=64)
    transform.save(tmp_path)
    files = sorted(p.name for p in (tmp_path / "postprocess").iterdir())
    assert files == ["config.json", "flow.safetensors"]  # weights as safetensors, nothing pickled
    saved = json.loads((tmp_path / "postprocess" / "config.json").read_text())
    assert saved["kind"] == "flow" and saved["dim"] == 6 and saved["flow_config"]["num_layers"] == 2
    loaded = FlowTransform.load(tmp_path)
    assert torch.equal(loaded(x), transform(x))
    assert loaded(x).dtype == torch.float32 and loaded(x).shape == (300, 6)
    assert loaded.history.heldout == pytest.approx(transform.history.heldout)
    with pytest.raises(SimCSELabError, match="fitted on 6-dimensional"):
        loaded(torch.zeros(2, 5))
    # Nothing held out: the history's NaNs are written as JSON null and read back as NaN.
    FlowTransform.fit(x, num_layers=1, hidden_size=4, epochs=1, heldout_fraction=0.0).save(tmp_path / "all")
    assert "NaN" not in (tmp_path / "all" / "postprocess" / "config.json").read_text()
    assert math.isnan(FlowTransform.load(tmp_path / "all").history.heldout[-1])


def test_flow_composes_with_encoder_and_survives_save(tiny_model_dir, tmp_path):
    from simcse_lab.models.encoder import SimCSEEncoder
    from simcse_lab.models.postprocess import fit_postprocess

    # Varied words and lengths, so that the 32-d embeddings of 40 sentences are not a degenerate cloud.
    words = "the man plays a guitar while a woman sings on the big red table in the park".split()
    sentences = [" ".join((words[i % 7 :] + words)[: i % 13 + 2]) for i in range(40)]
    assert len(set(sentences)) == len(sentences)
    encoder = SimCSEEncoder.from_pretrained(tiny_model_dir, pooler="avg")
    raw = encoder.encode(sentences)
    transform = fit_postprocess(encoder, sentences, kind="flow", num_layers=2, hidden_size=16, epochs=2, batch_size=16)
    assert isinstance(transform, FlowTransform) and encoder.postprocess is transform
    flowed = encoder.encode(sentences)
    assert torch.allclose(flowed, transform(raw), atol=1e-6)
    assert not torch.allclose(flowed, raw, atol=1e-3)

    encoder.save_pretrained(tmp_path / "saved")
    reloaded = SimCSEEncoder.from_pretrained(tmp_path / "saved")
    assert isinstance(reloaded.postprocess, FlowTransform)
    assert torch.allclose(reloaded.encode(sentences), flowed, atol=1e-6)
    assert math.isclose(average_cosine(flowed), average_cosine(reloaded.encode(sentences)), abs_tol=1e-6)
