"""Loaders reproduce SentEval's pair counts; training files pick the official modes."""

import pytest

from simcse_lab.data import load_sts, load_training_file
from simcse_lab.errors import SimCSELabError

SENTEVAL_COUNTS = {
    ("sts12", "test"): 3108, ("sts13", "test"): 1500, ("sts14", "test"): 3750, ("sts15", "test"): 3000,
    ("sts16", "test"): 1186, ("stsb", "train"): 5749, ("stsb", "dev"): 1500, ("stsb", "test"): 1379,
    ("sickr", "train"): 4500, ("sickr", "dev"): 500, ("sickr", "test"): 4927,
}


@pytest.mark.parametrize("task,split", list(SENTEVAL_COUNTS))
def test_pair_counts_match_senteval(data_dir, task, split):
    pairs = load_sts(task, split, data_dir)
    assert len(pairs) == SENTEVAL_COUNTS[(task, split)]
    assert all(0.0 <= score <= 5.0 and s1 and s2 for s1, s2, score in pairs)


def test_first_stsb_dev_pair_is_read_from_the_right_columns(data_dir):
    s1, s2, score = load_sts("stsb", "dev", data_dir)[0]
    line = (data_dir / "sts/STSBenchmark/sts-dev.csv").read_text().splitlines()[0].split("\t")
    assert (s1, s2, score) == (" ".join(line[5].split()), " ".join(line[6].split()), float(line[4]))


def test_unknown_task_and_split_list_valid_ones(data_dir):
    with pytest.raises(SimCSELabError, match="valid STS tasks are: sts12, sts13"):
        load_sts("sts17", data_dir=data_dir)
    with pytest.raises(SimCSELabError, match="only a test split"):
        load_sts("sts12", "dev", data_dir)


def test_missing_files_name_the_file(tmp_path):
    with pytest.raises(SimCSELabError, match="sts-test.csv"):
        load_sts("stsb", "test", tmp_path)


def test_training_file_modes(tmp_path):
    text = tmp_path / "wiki.txt"
    text.write_text("first sentence\n\n  second one  \n")
    with pytest.warns(UserWarning, match="skipped 1 empty line"):
        data = load_training_file(text)
    assert (data.mode, data.rows) == ("unsup", [("first sentence",), ("second one",)])
    pairs = tmp_path / "pairs.csv"
    pairs.write_text('sent0,sent1\n"a, b",c\n')
    assert load_training_file(pairs).rows == [("a, b", "c")]
    triplets = tmp_path / "nli.csv"
    triplets.write_text("sent0,sent1,hard_neg\na,b,c\n")
    assert load_training_file(triplets).mode == "triplets"
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b,c,d\n1,2,3,4\n")
    with pytest.raises(SimCSELabError, match=r"sent0,sent1,hard_neg"):
        load_training_file(bad)


def test_unsupervised_corpora_hold_no_sentence_of_an_evaluation_split(data_dir):
    """Issue 24: many sentences repeat across the STS releases (STS-B is drawn from STS12-16; SICK and SNLI share
    image captions). Every source group, alone and all together, is compared here, sentence by sentence, with every
    sentence of STS-B dev/test, SICK trial/test and STS12-16, normalised independently of the library (lower case,
    runs of non-alphanumerics as one space)."""
    import re

    from simcse_lab.data.corpus import UNSUP_SOURCE_GROUPS, unsup_corpus

    def key(s):
        return re.sub(r"[^0-9a-z]+", " ", s.lower()).strip()

    evaluation = {key(s) for task, split in [("stsb", "dev"), ("stsb", "test"), ("sickr", "dev"), ("sickr", "test")]
                  + [(f"sts1{i}", "test") for i in range(2, 7)] for pair in load_sts(task, split, data_dir) for s in pair[:2]}
    for sources in [(group,) for group in UNSUP_SOURCE_GROUPS] + [tuple(UNSUP_SOURCE_GROUPS)]:
        sentences, report = unsup_corpus(data_dir, sources)
        leaked = [s for s in sentences if key(s) in evaluation]
        assert not leaked, (sources, leaked[:3])
        assert len(sentences) == len(set(sentences)) == report["totals"]["sentences"] > 500
    _, everything = unsup_corpus(data_dir, tuple(UNSUP_SOURCE_GROUPS))
    assert everything["removed_as_evaluation_sentences"] > 1000  # the filter is not idle: STS-B train alone shares thousands


def hf_json_rows(path, cache_dir):
    """The reference: how the official train.py reads a .json train_file, through Hugging Face datasets'
    json loader, then its columns by position (1 = unsupervised, 2 = pairs, 3 = pairs + hard negatives)."""
    datasets = pytest.importorskip("datasets")
    table = datasets.load_dataset("json", data_files={"train": str(path)}, cache_dir=str(cache_dir))["train"]
    return table.column_names, [tuple(row[c] for c in table.column_names) for row in table]


@pytest.mark.parametrize("layout", ["jsonl_triplets", "array_pairs", "jsonl_text"])
def test_a_json_training_file_is_read_as_the_official_code_reads_it(tmp_path, layout):
    """Regression: a .json train_file was read as text, one JSON line per unsupervised 'sentence'."""
    import json

    triplets = [{"sent0": "a man plays", "sent1": "someone plays music", "hard_neg": "nobody plays"},
                {"sent0": "a dog runs", "sent1": "an animal moves", "hard_neg": "a cat sleeps"}]
    if layout == "jsonl_triplets":
        text, mode = "\n".join(json.dumps(r) for r in triplets) + "\n", "triplets"
    elif layout == "array_pairs":  # columns by position, whatever they are called, in the order keys first appear
        text, mode = json.dumps([{"premise": r["sent0"], "hypothesis": r["sent1"]} for r in triplets]), "pairs"
    else:
        text, mode = "\n".join(json.dumps({"text": r["sent0"]}) for r in triplets) + "\n", "unsup"
    path = tmp_path / "train.json"
    path.write_text(text)
    columns, rows = hf_json_rows(path, tmp_path / "cache")
    data = load_training_file(path)
    assert data.mode == mode and len(columns) == {"triplets": 3, "pairs": 2, "unsup": 1}[mode]
    assert data.rows == rows


def test_json_training_file_errors_and_sbert_labels(tmp_path):
    import json

    labelled = tmp_path / "nli.jsonl"
    labelled.write_text("\n".join(json.dumps({"sent0": "a", "sent1": "b", "label": label}) for label in ("entailment", 2, "-")))
    with pytest.warns(UserWarning, match="skipped 1"):
        data = load_training_file(labelled)
    assert (data.mode, data.rows) == ("sbert", [("a", "b", 0), ("a", "b", 2)])
    broken = tmp_path / "broken.json"
    broken.write_text('{"sent0": "a", "sent1": "b"}\n{"sent0": "c"}\n')
    with pytest.raises(SimCSELabError, match=r"broken.json, line 2: expected 2 non-empty text fields"):
        load_training_file(broken)
    wide = tmp_path / "wide.jsonl"
    wide.write_text(json.dumps({"a": "x", "b": "y", "c": "z", "d": "w"}))
    with pytest.raises(SimCSELabError, match="found 4"):
        load_training_file(wide)
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(SimCSELabError, match="not JSON Lines or a JSON array"):
        load_training_file(tmp_path / "bad.json")
