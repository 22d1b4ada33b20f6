"""The route to the paper's Table 5: checkpoints in the official layout load with their row's pooler and are
scored by the course's own evaluate_sts; offline, the route says in one line what it would do."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from simcse_lab.apps.paper import PAPER_TABLE5, first_last_with_embeddings, measure_paper_rows, table_rows
from simcse_lab.data.sts import load_sts
from simcse_lab.evaluate import evaluate_sts
from simcse_lab.models.encoder import SimCSEEncoder

from conftest import build_tiny_bert


def official_layout(directory: Path, seed: int) -> Path:
    """A pytorch_model.bin-era BERT as princeton-nlp published theirs: BertModel weights, the SimCSE MLP as `pooler`."""
    from transformers import BertModel

    build_tiny_bert(directory, seed=seed)
    model = BertModel.from_pretrained(directory)
    (directory / "model.safetensors").unlink()
    torch.save(model.state_dict(), directory / "pytorch_model.bin")  # transformers 5 writes safetensors only
    return directory


@pytest.mark.slow
def test_official_layout_checkpoints_load_with_their_rows_pooler_and_are_scored(tmp_path, data_dir):
    from transformers import AutoModel

    sup = official_layout(tmp_path / "sup-simcse-tiny", seed=1)
    unsup = official_layout(tmp_path / "unsup-simcse-tiny", seed=2)
    raw = build_tiny_bert(tmp_path / "bert-tiny", seed=3)
    checkpoints = {"BERT-base (first-last avg.)": (str(raw), "avg_first_last"), "unsup. SimCSE-BERT-base": (str(unsup), "cls_before_pooler"),
                   "sup. SimCSE-BERT-base": (str(sup), "cls")}
    rows = measure_paper_rows(checkpoints, data_dir=data_dir, max_pairs=40, device="cpu")
    assert [rows[n]["pooler"] for n in checkpoints] == ["avg_first_last", "cls_before_pooler", "cls"]
    # the sup row is the checkpoint's own pooler_output, scored as evaluate_sts scores any encoder
    model = AutoModel.from_pretrained(sup).eval()
    encoder = SimCSEEncoder.from_pretrained(sup, device="cpu")

    def pooler_output(sentences):
        batch = encoder.tokenizer(sentences, padding=True, truncation=True, max_length=encoder.max_tokens, return_tensors="pt")
        with torch.no_grad():
            return model(**batch).pooler_output

    sentences = [sentence for pair in load_sts("sts12", data_dir=data_dir)[:40] for sentence in pair[:2]]
    torch.testing.assert_close(encoder.encode(sentences).float(), pooler_output(sentences).float(), atol=1e-5, rtol=1e-4)
    # and scored alike: a tiny random model's cosines lie close together, so the last-digit differences between the
    # encoder's own forward and transformers' swap a few ranks (seen: 0.06 on STS12); a wrong pooler moves points
    expected = evaluate_sts(pooler_output, data_dir=data_dir, max_pairs=40)
    assert rows["sup. SimCSE-BERT-base"]["sts"] == pytest.approx(expected, abs=0.2)
    assert set(rows["BERT-base (first-last avg.)"]) >= {"sts", "sts_with_embeddings", "report"}
    table = table_rows(rows)
    assert table["sup. SimCSE-BERT-base (paper)"]["avg"] == PAPER_TABLE5["sup. SimCSE-BERT-base"][-1] == 81.57


def test_first_last_with_embeddings_averages_the_embedding_layer_and_the_last(tiny_model_dir):
    from transformers import AutoModel

    encoder = SimCSEEncoder.from_pretrained(tiny_model_dir, device="cpu")
    sentences = ["a man plays the guitar", "two"]
    batch = encoder.tokenizer(sentences, padding=True, return_tensors="pt")
    with torch.no_grad():
        states = AutoModel.from_pretrained(tiny_model_dir).eval()(**batch, output_hidden_states=True).hidden_states
    expected = []
    for row in range(2):  # a hand loop over each sentence's real tokens
        n = int(batch["attention_mask"][row].sum())
        expected.append(sum((states[0][row, t] + states[-1][row, t]) / 2 for t in range(n)) / n)
    torch.testing.assert_close(first_last_with_embeddings(encoder)(sentences), torch.stack(expected), rtol=1e-4, atol=1e-5)


def test_offline_the_route_says_in_one_line_what_it_would_do(tmp_path):
    script = ("import json\nfrom simcse_lab.apps.paper import measure_paper_rows\nfrom simcse_lab.errors import SimCSELabError\n"
              "try:\n    measure_paper_rows()\nexcept SimCSELabError as error:\n    print(json.dumps(str(error)))\n")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf"), "PYTHONWARNINGS": "ignore",
           "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parent.parent), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300)
    message = json.loads(done.stdout.strip().splitlines()[-1])
    assert "\n" not in message and "published checkpoints" in message and "princeton-nlp/sup-simcse-bert-base-uncased" in message
    assert "cannot be reached" in message and "run this with internet once" in message


def test_the_default_encoders_reference_figures_hold_what_the_notebooks_read():
    """notebooks 02 and 03 format their 'What you will see' boxes from these keys; a missing one fails the smoke run
    much later and less clearly."""
    from simcse_lab.apps.paper import default_encoder_reference

    reference = default_encoder_reference()
    assert reference is not None, "data/models/bert-mini-mlm/measurements.json is missing"
    assert set(reference["sts_avg"]) >= {"raw avg", "raw [CLS]", "unsup, wiki + WordNet", "unsup, in-domain", "sup"}
    assert reference["pretraining_tokens"] > 0
    for stage in reference["mlm_stages"]:
        assert set(stage) == {"stage", "tokens", "raw", "split", "after"}
