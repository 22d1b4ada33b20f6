"""The evaluation protocol: SentEval's three STS aggregates against a computation from the raw files, the pooler
guard, the saved max length, and dev results that cannot be read as test results."""

from __future__ import annotations

import json
import shutil
import zlib

import numpy as np
import pytest
from scipy.stats import spearmanr

from simcse_lab import SimCSEEncoder
from simcse_lab.commands.evaluation import evaluate_model, format_evaluation
from simcse_lab.evaluate import evaluate_sts
from simcse_lab.evaluation.sts import EVAL_BATCH_SIZE, sts_report

from test_evaluate import hashing_encoder


def exact_cosine_encoder(dim=48, active=4):
    """Each sentence: `active` entries of 1/2 among `dim` (chosen from its words), so every norm is exactly 1 and every
    cosine a multiple of 1/4 in any floating-point order: two implementations cannot break ties differently (a pair of
    identical sentences, common in STS12, has cosine exactly 1)."""
    def encode(sentences):
        out = np.zeros((len(sentences), dim))
        for i, s in enumerate(sentences):
            chosen = list(dict.fromkeys(zlib.crc32(w.lower().encode()) % dim for w in s.split()))
            chosen += [p for p in range(dim) if p not in chosen]  # short sentences: the first free positions
            out[i, chosen[:active]] = 0.5
        return out
    return encode


def read_subset_by_hand(folder, subset):
    """STS.input / STS.gs of one SentEval subset; a blank gold line means the pair is not scored."""
    inputs = (folder / f"STS.input.{subset}.txt").read_text(encoding="utf8").split("\n")
    golds = (folder / f"STS.gs.{subset}.txt").read_text(encoding="utf8").split("\n")
    pairs = []
    for line, gold in zip(inputs, golds):
        if gold.strip():
            a, b = line.split("\t")[:2]
            pairs.append((" ".join(a.split()), " ".join(b.split()), float(gold)))
    return pairs


@pytest.mark.parametrize("task,subsets", [("sts12", ["MSRpar", "MSRvid", "SMTeuroparl", "surprise.OnWN", "surprise.SMTnews"]),
                                          ("sts13", ["FNWN", "headlines", "OnWN"])])
def test_all_mean_and_wmean_equal_an_independent_computation(data_dir, task, subsets):
    encode = exact_cosine_encoder()
    folder = data_dir / "sts" / f"{task.upper()}-en-test"

    def cosines(pairs):
        a, b = encode([p[0] for p in pairs]), encode([p[1] for p in pairs])
        return (a * b).sum(1) / np.sqrt((a * a).sum(1) * (b * b).sum(1))

    per_subset, sizes, all_cos, all_gold = [], [], [], []
    for subset in subsets:
        pairs = read_subset_by_hand(folder, subset)
        c = cosines(pairs)
        per_subset.append(spearmanr(c, [p[2] for p in pairs]).correlation * 100)
        sizes.append(len(pairs))
        all_cos += list(c)
        all_gold += [p[2] for p in pairs]
    detail = sts_report(encode, [task], data_dir=data_dir)["detail"][task]
    assert list(detail["subsets"]) == subsets and [v["pairs"] for v in detail["subsets"].values()] == sizes
    assert detail["mean"] == pytest.approx(np.mean(per_subset), abs=1e-9)
    assert detail["wmean"] == pytest.approx(np.average(per_subset, weights=sizes), abs=1e-9)
    assert detail["all"] == pytest.approx(spearmanr(all_cos, all_gold).correlation * 100, abs=1e-9)
    # the three differ: reporting one as another is a real error
    assert min(abs(detail["all"] - detail["mean"]), abs(detail["mean"] - detail["wmean"])) > 0.01


def test_evaluate_sts_return_value_is_unchanged(data_dir):
    encode = hashing_encoder()
    scores = evaluate_sts(encode, ["sts13", "stsb"], data_dir=data_dir)
    assert list(scores) == ["sts13", "stsb", "avg"] and all(isinstance(v, float) for v in scores.values())
    assert scores == sts_report(encode, ["sts13", "stsb"], data_dir=data_dir)["scores"]


@pytest.fixture
def saved_cls_model(tiny_model_dir, tmp_path):
    """The tiny BERT saved as simcse_lab saves a trained model: cls pooler, MLP in training only, selected at length 12."""
    encoder = SimCSEEncoder.from_pretrained(tiny_model_dir, pooler="cls", mlp_only_train=True, device="cpu")
    return encoder.save_pretrained(tmp_path / "cls-model", max_seq_length=8, eval_max_length=12)


def test_saved_model_records_its_evaluation_protocol(saved_cls_model):
    saved = json.loads((saved_cls_model / "simcse_config.json").read_text())
    assert saved["evaluation"] == {"pooler": "cls", "mlp_only_train": True, "mlp_at_inference": False, "max_length": 12}
    assert json.loads((saved_cls_model / "sentence_bert_config.json").read_text())["max_seq_length"] == 12


def test_evaluate_uses_the_saved_pooler_and_max_length_by_default(saved_cls_model, data_dir):
    lines = []
    report = evaluate_model(saved_cls_model, mode="dev", tasks=["stsb"], data_dir=data_dir, show_progress=False, say=lines.append)
    assert lines == []
    assert (report["protocol"]["pooler"], report["protocol"]["max_length"]) == ("cls", 12)
    encoder = SimCSEEncoder.from_pretrained(saved_cls_model, pooler="cls", mlp_only_train=True)
    expected = evaluate_sts(lambda s: encoder.encode(s, max_length=12, batch_size=EVAL_BATCH_SIZE), ["stsb"], "dev", data_dir)["stsb"]
    longer = evaluate_sts(lambda s: encoder.encode(s, max_length=64, batch_size=EVAL_BATCH_SIZE), ["stsb"], "dev", data_dir)["stsb"]
    assert report["sts_dev"]["stsb_dev"] == pytest.approx(expected, abs=1e-9)
    assert abs(expected - longer) > 0.01  # the max length matters, so using the saved one is a real check


def test_overriding_the_pooler_prints_what_was_trained_and_what_each_gives(saved_cls_model, data_dir):
    lines = []
    report = evaluate_model(saved_cls_model, mode="dev", tasks=["stsb"], pooler="avg", data_dir=data_dir, show_progress=False,
                            say=lines.append)
    assert len(lines) == 1
    line = lines[0]
    trained = SimCSEEncoder.from_pretrained(saved_cls_model)
    asked = SimCSEEncoder.from_pretrained(saved_cls_model, pooler="avg")
    scores = {m.pooler: evaluate_sts(lambda s, m=m: m.encode(s, max_length=12, batch_size=EVAL_BATCH_SIZE), ["stsb"], "dev", data_dir)["stsb"] for m in (trained, asked)}
    assert "trained with cls without the MLP head" in line and "asked for avg" in line
    assert f"cls {scores['cls']:.2f} (trained)" in line and f"avg {scores['avg']:.2f} (asked)" in line
    assert report["protocol"]["pooler"] == "avg" and report["sts_dev"]["stsb_dev"] == pytest.approx(scores["avg"], abs=1e-9)
    lines.clear()
    evaluate_model(saved_cls_model, mode="dev", tasks=["stsb"], pooler="cls", data_dir=data_dir, show_progress=False, say=lines.append)
    assert lines == []  # the trained pooler, asked for explicitly: nothing to warn about
    same = evaluate_model(saved_cls_model, mode="dev", tasks=["stsb"], pooler="cls_before_pooler", data_dir=data_dir,
                          show_progress=False, say=lines.append)
    assert lines == []  # [CLS] with the MLP dropped at inference is cls_before_pooler: the same embeddings
    assert same["sts_dev"]["stsb_dev"] == pytest.approx(scores["cls"], abs=1e-9)


def test_official_unsup_checkpoint_with_cls_is_flagged(tiny_model_dir, tmp_path, data_dir):
    # an official unsupervised checkpoint is evaluated with cls_before_pooler; cls applies its pooler layer (MLP)
    official = tmp_path / "unsup-simcse-tiny"
    shutil.copytree(tiny_model_dir, official)
    lines = []
    evaluate_model(official, mode="dev", tasks=["stsb"], pooler="cls", data_dir=data_dir, show_progress=False, say=lines.append)
    assert len(lines) == 1 and "trained with cls_before_pooler" in lines[0] and "asked for cls with the MLP head" in lines[0]


def score_keys(report: dict) -> list[str]:
    keys = []
    for name, section in report.items():
        if name.startswith(("sts_", "transfer_")):
            keys += [name] + list(section)
    return keys


def test_dev_results_cannot_be_read_as_test(saved_cls_model, data_dir):
    dev = evaluate_model(saved_cls_model, mode="dev", data_dir=data_dir, show_progress=False, say=lambda _: None)
    keys = score_keys(dev)
    assert keys and all(k.endswith("_dev") or k.endswith("_dev_detail") for k in keys) and not any("test" in k for k in keys)
    printed = format_evaluation(dev)
    assert "NOT test" in printed and "STSBenchmark (dev)" in printed and "SICKRelatedness (dev)" in printed
    assert "Avg. (dev)" in printed
    test = evaluate_model(saved_cls_model, mode="test", tasks=["sts13", "stsb"], data_dir=data_dir, show_progress=False, say=lambda _: None)
    assert all("dev" not in k for k in score_keys(test)) and set(test["sts_test"]) == {"sts13_test", "stsb_test", "avg_test"}
    printed = format_evaluation(test)
    assert "mean (SentEval)" in printed and "wmean (SentEval)" in printed and "all (SimCSE)" in printed and "(dev)" not in printed
