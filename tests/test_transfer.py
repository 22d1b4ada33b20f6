"""SentEval's transfer protocol: the probe and the fold arrangement against a transliteration of SentEval's code.

`SentEvalLogReg` below is SentEval's `tools/classifier.py` PyTorchClassifier/MLP (nhid=0) written out one fit at a
time on the CPU, and `senteval_inner_kfold`, `senteval_kfold`, `senteval_split` its `tools/validation.py`
classifiers. simcse_lab trains many fits at once (stacked weights, gradients written out); the tests check that
it gives SentEval's numbers on small fixtures: the same chosen penalties, the same accuracies.
"""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch
from sklearn.metrics import f1_score
from sklearn.model_selection import StratifiedKFold
from torch import nn

from simcse_lab.data.transfer import Split, TransferTask, load_transfer_task
from simcse_lab.evaluation import transfer
from simcse_lab.evaluation.probe import Fit, ProbeSettings, fit_probes

# SentEval's two optimisers with small budgets (the official ones, in test_official_settings, train far longer):
# tenacity 1-2 makes the fixtures stop early, so early stopping is compared too
SETTINGS = [ProbeSettings("rmsprop", 32, 1, 2, max_epoch=16), ProbeSettings("adam", 32, 2, 2, max_epoch=12)]
REGS = [10.0**t for t in range(-5, -1)]


class SentEvalLogReg:
    """SentEval's PyTorchClassifier + MLP(nhid=0), transliterated (CPU instead of .cuda())."""

    def __init__(self, inputdim, nclasses, l2reg, settings: ProbeSettings, seed=1111):
        np.random.seed(seed)
        torch.manual_seed(seed)
        self.s = settings
        self.model = nn.Sequential(nn.Linear(inputdim, nclasses))
        self.loss_fn = nn.CrossEntropyLoss()
        self.optimizer = {"adam": torch.optim.Adam, "rmsprop": torch.optim.RMSprop}[settings.optim](self.model.parameters())
        self.optimizer.param_groups[0]["weight_decay"] = l2reg

    def fit(self, X, y, validation_data=None, validation_split=None):
        if validation_data is not None:
            trainX, trainy, (devX, devy) = X, y, validation_data
        else:
            permutation = np.random.permutation(len(X))
            cut = int(validation_split * len(X))
            trainX, trainy, devX, devy = X[permutation[cut:]], y[permutation[cut:]], X[permutation[:cut]], y[permutation[:cut]]
        trainX, trainy = torch.from_numpy(trainX).float(), torch.from_numpy(trainy).long()
        self.nepoch, best, stop, count = 0, -1, False, 0
        while not stop and self.nepoch <= self.s.max_epoch:
            self.model.train()
            for _ in range(self.nepoch, self.nepoch + self.s.epoch_size):
                permutation = np.random.permutation(len(trainX))
                for i in range(0, len(trainX), self.s.batch_size):
                    idx = torch.from_numpy(permutation[i:i + self.s.batch_size]).long()
                    loss = self.loss_fn(self.model(trainX[idx]), trainy[idx])
                    self.optimizer.zero_grad()
                    loss.backward()
                    self.optimizer.step()
            self.nepoch += self.s.epoch_size
            accuracy = self.score(devX, devy)
            if accuracy > best:
                best, bestmodel = accuracy, copy.deepcopy(self.model)
            else:
                if count >= self.s.tenacity:
                    stop = True
                count += 1
        self.model = bestmodel
        return best

    def predict(self, X):
        self.model.eval()
        with torch.no_grad():
            return self.model(torch.as_tensor(X).float()).argmax(1).numpy()

    def score(self, X, y):
        return float((self.predict(X) == np.asarray(y)).sum()) / len(X)


def senteval_reg_search(X, y, folds, nclasses, settings):
    """The search both of validation.py's classifiers run: each L2 strength's mean validation accuracy over the
    folds (rounded as SentEval rounds it), and the strength that won."""
    scores = []
    for reg in REGS:
        fold = []
        for a, b in folds.split(X, y):
            clf = SentEvalLogReg(X.shape[1], nclasses, reg, settings)
            clf.fit(X[a], y[a], validation_data=(X[b], y[b]))
            fold.append(clf.score(X[b], y[b]))
        scores.append(round(100 * np.mean(fold), 2))
    return scores, REGS[np.argmax(scores)]


def senteval_inner_kfold(X, y, nclasses, k, settings):
    """validation.py's InnerKFoldClassifier.run (usepytorch=True)."""
    skf, inner = (StratifiedKFold(n_splits=k, shuffle=True, random_state=1111) for _ in range(2))
    dev, test = [], []
    for train_idx, test_idx in skf.split(X, y):
        X_train, X_test, y_train, y_test = X[train_idx], X[test_idx], y[train_idx], y[test_idx]
        scores, optreg = senteval_reg_search(X_train, y_train, inner, nclasses, settings)
        dev.append(np.max(scores))
        clf = SentEvalLogReg(X.shape[1], nclasses, optreg, settings)
        clf.fit(X_train, y_train, validation_split=0.05)
        test.append(round(100 * clf.score(X_test, y_test), 2))
    return round(np.mean(dev), 2), round(np.mean(test), 2)


def senteval_kfold(train_X, train_y, test_X, test_y, nclasses, k, settings):
    """validation.py's KFoldClassifier.run (usepytorch=True)."""
    skf = StratifiedKFold(n_splits=k, shuffle=True, random_state=1111)
    scores, optreg = senteval_reg_search(train_X, train_y, skf, nclasses, settings)
    clf = SentEvalLogReg(train_X.shape[1], nclasses, optreg, settings)
    clf.fit(train_X, train_y, validation_split=0.05)
    return np.max(scores), round(100 * clf.score(test_X, test_y), 2), clf.predict(test_X)


def senteval_split(X, y, nclasses, settings):
    """validation.py's SplitClassifier.run (usepytorch=True), with its refit of the chosen penalty."""
    scores = []
    for reg in REGS:
        clf = SentEvalLogReg(X["train"].shape[1], nclasses, reg, settings)
        clf.fit(X["train"], y["train"], validation_data=(X["valid"], y["valid"]))
        scores.append(round(100 * clf.score(X["valid"], y["valid"]), 2))
    optreg = REGS[np.argmax(scores)]
    clf = SentEvalLogReg(X["train"].shape[1], nclasses, optreg, settings)
    clf.fit(X["train"], y["train"], validation_data=(X["valid"], y["valid"]))
    return np.max(scores), round(100 * clf.score(X["test"], y["test"]), 2)


def blobs(n, dim=6, classes=2, noise=1.6, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(classes, dim))
    y = rng.integers(0, classes, n)
    return (centres[y] + noise * rng.normal(size=(n, dim))).astype(np.float32), y.astype(np.int64)


@pytest.mark.parametrize("settings", SETTINGS, ids=["rmsprop", "adam"])
def test_stacked_probe_fits_equal_senteval_classifier_one_by_one(settings):
    x, y = blobs(200, classes=3)
    # two penalties on one row set, another row set of another size, a 5% hold-out: each way fits are grouped
    fits = [Fit(np.arange(0, 120), 1e-5, valid=np.arange(120, 200)), Fit(np.arange(0, 121), 1e-2, valid=np.arange(121, 200)),
            Fit(np.arange(0, 120), 1e-2, valid=np.arange(120, 200)), Fit(np.arange(40, 180), 1e-3)]
    for fit, probe in zip(fits, fit_probes(x, y, fits, 3, settings)):
        reference = SentEvalLogReg(6, 3, fit.l2reg, settings)
        if fit.valid is None:
            best = reference.fit(x[fit.train], y[fit.train], validation_split=0.05)
        else:
            best = reference.fit(x[fit.train], y[fit.train], validation_data=(x[fit.valid], y[fit.valid]))
        assert probe.valid_accuracy == best
        torch.testing.assert_close(probe.weight, reference.model[0].weight.detach().T, atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(probe.bias, reference.model[0].bias.detach(), atol=1e-5, rtol=1e-4)
        np.testing.assert_array_equal(probe.predict(torch.as_tensor(x)), reference.predict(x))


def test_inner_kfold_equals_senteval_inner_kfold_classifier():
    x, y = blobs(90, noise=2.0, seed=1)
    settings = SETTINGS[0]
    expected_dev, expected_acc = senteval_inner_kfold(x, y, 2, 3, settings)
    result = transfer.inner_kfold(x, y, 2, 3, settings)
    assert (result["devacc"], result["acc"]) == (expected_dev, expected_acc)
    assert transfer.inner_kfold(x, y, 2, 3, settings, with_test=False) == {k: v for k, v in result.items() if k not in ("acc", "fold_acc")}


def encoder_of(vectors: dict[str, np.ndarray]):
    return lambda sentences: np.stack([vectors[s] for s in sentences])


def test_kfold_classifier_and_mrpc_pair_features_equal_senteval(monkeypatch):
    settings = SETTINGS[1]
    xa, y = blobs(100, dim=4, seed=2)
    xb = xa + 0.5 * np.random.default_rng(3).normal(size=xa.shape).astype(np.float32)
    text_a, text_b = [f"a{i}" for i in range(100)], [f"b{i}" for i in range(100)]
    vectors = {**dict(zip(text_a, xa)), **dict(zip(text_b, xb))}
    task = TransferTask("mrpc", {"train": Split(text_a[:70], y[:70], text_b[:70]), "test": Split(text_a[70:], y[70:], text_b[70:])}, 2, ())
    result = transfer.kfold_classifier(task, encoder_of(vectors), 3, settings)
    features = np.c_[np.abs(xa - xb), xa * xb]  # SentEval's mrpc.py, written its way
    dev, acc, predicted = senteval_kfold(features[:70], y[:70], features[70:], y[70:], 2, 3, settings)
    assert (result["devacc"], result["acc"]) == (dev, acc)
    assert result["f1"] == round(100 * f1_score(y[70:], predicted), 2)


def test_split_classifier_equals_senteval():
    settings = SETTINGS[0]
    x, y = blobs(160, classes=2, seed=4)
    text = [f"s{i}" for i in range(160)]
    task = TransferTask("sst2", {"train": Split(text[:100], y[:100]), "dev": Split(text[100:130], y[100:130]),
                                 "test": Split(text[130:], y[130:])}, 2, ())
    result = transfer.split_classifier(task, encoder_of(dict(zip(text, x))), settings)
    dev, acc = senteval_split({"train": x[:100], "valid": x[100:130], "test": x[130:]},
                              {"train": y[:100], "valid": y[100:130], "test": y[130:]}, 2, settings)
    assert (result["devacc"], result["acc"]) == (dev, acc)
    assert "acc" not in transfer.split_classifier(task, encoder_of(dict(zip(text, x))), settings, with_test=False)


def test_official_settings():
    assert transfer.transfer_settings("test")["kfold"] == 10 and transfer.FULL == ProbeSettings("adam", 64, 5, 4)
    assert transfer.transfer_settings("fasttest")["kfold"] == 5 and transfer.FAST == ProbeSettings("rmsprop", 128, 3, 2)
    assert transfer.L2_REGS == (1e-5, 1e-4, 1e-3, 1e-2)


def test_loader_keeps_senteval_order_and_blank_lines(tmp_path):
    folder = tmp_path / "transfer" / "CR"
    folder.mkdir(parents=True)
    (folder / "custrev.pos").write_text("a  good one\n\nfine\n", encoding="latin-1")
    (folder / "custrev.neg").write_text("bad\nnot  good at all\n", encoding="latin-1")
    split = load_transfer_task("cr", tmp_path).splits["all"]
    # SentEval: sorted(zip(pos + neg, [1]*pos + [0]*neg), key=(word count, label)), a stable sort; blank lines kept
    assert split.text == ["", "bad", "fine", "a good one", "not good at all"]
    assert split.labels.tolist() == [1, 0, 1, 1, 0]


def test_sizes_match_senteval(data_dir):
    sizes = {t: {k: len(v) for k, v in load_transfer_task(t, data_dir).splits.items()} for t in transfer.TRANSFER_TASKS}
    # the ndev / ntest SentEval reports for these files
    assert sizes == {"mr": {"all": 10662}, "cr": {"all": 3775}, "subj": {"all": 10000}, "mpqa": {"all": 10606},
                     "sst2": {"train": 67349, "dev": 872, "test": 1821}, "trec": {"train": 5452, "test": 500},
                     "mrpc": {"train": 4076, "test": 1725}}


def test_pretraining_overlap_is_found_through_the_training_chain(tmp_path, tiny_model_dir):
    from simcse_lab import DEFAULT_MODEL

    log = json.loads((__import__("pathlib").Path(DEFAULT_MODEL) / "pretrain_log.json").read_text())
    expected = sorted({f.split("/")[1] for f in (s["file"] for s in log["corpus"]["sources"].values()) if f.startswith("transfer/")})
    assert sorted(transfer.pretraining_overlap(DEFAULT_MODEL)["tasks"]) == expected == ["CR", "MPQA", "MR", "SUBJ"]
    trained = tmp_path / "trained"
    trained.mkdir()
    (trained / "simcse_config.json").write_text(json.dumps({"training": {"recipe": {"model_name_or_path": DEFAULT_MODEL}}}))
    assert transfer.pretraining_overlap(trained)["tasks"] == transfer.pretraining_overlap(DEFAULT_MODEL)["tasks"]
    assert transfer.pretraining_overlap(tiny_model_dir) is None
