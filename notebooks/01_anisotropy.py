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
# 01 · Anisotropy — parameters (`simcse-lab course` sets the mode through the environment)
import os
from pathlib import Path

import simcse_lab

SMOKE = os.environ.get("SIMCSE_LAB_SMOKE") == "1"  # tiny sizes: checks that every cell runs (CI)
QUICK = os.environ.get("SIMCSE_LAB_QUICK") == "1"  # small sizes: minutes on a laptop CPU
MODE = "smoke" if SMOKE else "quick" if QUICK else "full"  # full: paper scale (GPU + internet)
# The embedded 4-layer BERT works offline; full mode uses the paper's "bert-base-uncased" (needs the hub).
MODEL = os.environ.get("SIMCSE_LAB_MODEL") or (simcse_lab.DEFAULT_MODEL if SMOKE or QUICK else "bert-base-uncased")
POOLER = "avg"  # how token states become one vector for the raw encoder (the strongest raw pooler, see §4)
DATA_DIR = os.environ.get("SIMCSE_LAB_DATA")  # local SentEval-layout data; None = download from the hub
OUTPUTS = Path(os.environ.get("SIMCSE_LAB_OUTPUT", "outputs"))  # where results are written
NUM_SENTENCES = {"smoke": 200, "quick": 2000, "full": 10000}[MODE]  # Wikipedia sentences for the statistics and the fits
FLOW_EPOCHS = {"smoke": 1, "quick": 5, "full": 10}[MODE]  # BERT-flow training passes
STS_PAIRS = {"smoke": 50, "quick": None, "full": None}[MODE]  # None = every STS pair; smoke reads the first 50 only

# %% [markdown]
# # 01 · Anisotropy: why raw BERT sentence embeddings need fixing
#
# **You will learn** what makes raw pre-trained sentence embeddings poor for similarity (anisotropy),
# how to measure it (average cosine, singular spectrum, alignment and uniformity), how STS is scored,
# and what the post-hoc fixes SimCSE compares against (BERT-whitening, BERT-flow) do and do not fix.
# **You need** Python and basic linear algebra (cosine, SVD); no deep learning beyond "BERT maps tokens to vectors".
# **You will write** mean pooling, alignment and uniformity yourself (three short exercises, checked).

# %%
from simcse_lab.commands.course import measured_times
from IPython.display import Markdown, display

display(Markdown(measured_times("01")))

# %% [markdown]
# A **sentence embedding** maps a sentence to one vector so that the cosine of two vectors says how
# similar the sentences are in meaning. One model then serves many jobs:
#
# - **semantic textual similarity (STS)** — score a pair of sentences from 0 (unrelated) to 5 (same meaning);
#   this is how the SimCSE paper (Gao, Yao & Chen, EMNLP 2021) measures quality: the Spearman correlation
#   between cosines and human scores on seven STS sets;
# - **retrieval** — embed a corpus once, then find the nearest neighbours of a query;
# - **clustering** and deduplication — group sentences whose vectors point the same way.
#
# The obvious recipe — take a pre-trained BERT and average its token states — works poorly, and part of
# the reason is geometric: the embeddings are **anisotropic**. They occupy a narrow cone, so *every* pair
# has a high cosine and the differences that carry meaning are small. Ethayarajh (2019) measured this for
# BERT's token vectors, Li et al. (2020) for its sentence vectors; SimCSE §5 connects it to the contrastive
# objective. This notebook measures it on the raw encoder, then tries the two post-processing fixes SimCSE
# compares against: **BERT-whitening** and **BERT-flow**.
#
# Everything here calls `simcse_lab`; the notebook holds the story, the parameters and the plots.
# The parameters cell above picks the size: *smoke* (seconds), *quick* (minutes on a CPU) or *full*.
#
# **How STS is scored here.** Each pair's cosine is compared with the human scores by Spearman's rank
# correlation (× 100); nothing is trained on STS (no regressor on top, as SentEval's unsupervised STS
# setting). For STS12-16 the subsets are concatenated and one correlation computed: SentEval's **"all"**
# setting, the one SimCSE reports. SentEval also prints "mean" and "wmean" (per-subset correlations,
# averaged or weighted); BERT-flow and BERT-whitening papers report those, which is why their numbers and
# SimCSE's tables of the same methods disagree.

# %%
from scipy.stats import spearmanr

from simcse_lab import SimCSEEncoder, geometry
from simcse_lab.apps import viz
from simcse_lab.apps.narrative import all_or_some, change, compared, how_closely
from simcse_lab.apps.exercises import check_alignment, check_mean_pooling, check_uniformity
from simcse_lab.apps.widgets import EmbeddingCache, example_sentences
from simcse_lab.data import load_sts, read_sentences
from simcse_lab.evaluate import evaluate_similarity, evaluate_sts, format_comparison_table, pair_cosine_scores
from simcse_lab.evaluation.baselines import word_overlap
from simcse_lab.evaluation.report import encoder_report
from simcse_lab.models.postprocess import fit_postprocess

encoder = SimCSEEncoder.from_pretrained(MODEL, pooler=POOLER)
wiki_file = (Path(DATA_DIR) / "wiki" / "wiki1m_head.txt" if DATA_DIR
             else simcse_lab.data.download_simcse_training_file("wiki1m_for_simcse.txt"))
wiki, _ = read_sentences(wiki_file)
wiki = wiki[:NUM_SENTENCES]
print(f"mode: {MODE} · model: {MODEL} · pooler: {encoder.pooler} · {encoder.output_dim} dimensions · {len(wiki)} Wikipedia sentences")

# %% [markdown]
# ## 1. Random sentences look alike: the average cosine
#
# Take sentences that have nothing to do with each other — random Wikipedia lines — and compute the
# cosine between random pairs. For vectors spread evenly over the sphere (**isotropic**) the average
# is about 0. For raw BERT it is far above 0: all sentences share one dominant direction.
#
# **What to look for:** where the histogram's mass sits. A peak near 1 means cosine cannot tell
# related from unrelated sentences; a peak around 0 with some spread is what we want.

# %%
wiki_embeddings = encoder.encode(wiki)
raw_cosine = geometry.average_cosine(wiki_embeddings)
raw_spectrum = geometry.singular_spectrum(wiki_embeddings)
print(f"average cosine of random pairs: {raw_cosine:.3f}  (0 = isotropic, 1 = one direction)")
viz.cosine_histogram({f"raw {POOLER}": wiki_embeddings}, title="Cosine of random Wikipedia sentence pairs (raw encoder)")

# %% [markdown]
# ## 2. A few directions dominate: the singular spectrum
#
# Stack the embeddings into a matrix and take its singular values, divided by the largest (SimCSE,
# Appendix F; computed uncentred, as there). If one value dwarfs the rest, one direction carries most
# of every vector: that shared offset is exactly what makes unrelated sentences look similar.
# SimCSE §5 argues that the contrastive objective pushes the top singular values down and *flattens*
# this curve; notebook 02 measures whether it does here.
#
# **What to look for:** how fast the curve falls after index 1 (log scale).

# %%
viz.spectrum_figure({f"raw {POOLER}": wiki_embeddings}, title="Normalised singular values (raw encoder)")

# %% [markdown]
# ## 3. Do cosines still rank pairs like people do? Cosine by gold score (STS-B)
#
# Anisotropy squeezes cosines into a narrow band, but the *order* could still be right — and STS
# is scored with Spearman's rank correlation, which only looks at the order. The STS Benchmark gives
# every sentence pair a human score from 0 to 5. Group the pairs by score and look at their cosines
# (SimCSE, Appendix G). We use the **dev** split: an evaluation split we look at, never train on.
#
# **What to look for:** the violins should climb from left to right and overlap little.

# %%
stsb_dev = load_sts("stsb", "dev")[:STS_PAIRS]
cosines, gold = pair_cosine_scores(encoder.encode, stsb_dev)
stsb_dev_raw = evaluate_sts(encoder.encode, tasks=("stsb",), split="dev", max_pairs=STS_PAIRS)["stsb"]
print(f"STS-B dev Spearman × 100: {stsb_dev_raw:.2f}   cosines from {cosines.min():.2f} to {cosines.max():.2f}")
viz.gold_bin_figure(cosines, gold, title=f"STS-B dev: cosine by gold-score bin (raw {POOLER})")

# %% [markdown]
# **A scorer with no model at all.** How many words do the two sentences share? The Jaccard overlap of
# their lower-cased word sets (`simcse_lab.evaluation.baselines.word_overlap`) is scored by the same
# protocol. It is the floor any sentence encoder should clear, and a probe of what the encoder's cosine
# follows: below, its Spearman correlation with the word overlap of the same pairs.

# %%
overlap = word_overlap([p[0] for p in stsb_dev], [p[1] for p in stsb_dev])
overlap_dev = evaluate_similarity(word_overlap, tasks=("stsb",), split="dev", max_pairs=STS_PAIRS)["stsb"]
follows_overlap = spearmanr(cosines, overlap).correlation
display(Markdown(
    f"On STS-B dev the word overlap alone scores **{overlap_dev:.1f}**; the raw encoder, **{stsb_dev_raw:.1f}**, is "
    f"{compared(stsb_dev_raw, overlap_dev)} word counting. Its cosines rank the pairs {how_closely(follows_overlap)} as word "
    f"overlap does (Spearman {follows_overlap:.2f} between the two)."))

# %% [markdown]
# ## 4. Which pooler? [CLS] versus averaging
#
# A pooler turns the per-token states into one vector (`simcse_lab.models.pooling`):
#
# | pooler | what it takes |
# |---|---|
# | `cls` | the [CLS] state + an MLP head; on this MLM-only encoder, which has no trained pooler, the head is randomly initialised (as the paper's raw `cls` rows, footnote 9) |
# | `cls_before_pooler` | the [CLS] state of the last layer, nothing else |
# | `avg` | the mean of the last layer over real tokens |
# | `avg_top2` | the mean of the last two layers' average |
# | `avg_first_last` | the mean of the first and last layers' average. "First" is `hidden_states[1]`, the first Transformer layer, as in the official code since its fix; the paper's "BERT (first-last avg.)" row, 56.70, averaged `hidden_states[0]`, the embedding layer (notebook 02 measures both on BERT-base when online) |
#
# The default encoder was pre-trained with masked-language modelling only, without BERT's
# next-sentence prediction, so its final [CLS] state never received a training signal of its own.
# (BERT-base's [CLS] was trained for next-sentence prediction, which is not similarity either;
# Reimers & Gurevych, 2019, found averaging better.) SimCSE *trains* the [CLS] state, which is why it can
# use it (Table 6 compares poolers after training).

# %%
pooler_scores = {f"pooler={pooler}": evaluate_sts(SimCSEEncoder.from_pretrained(MODEL, pooler=pooler).encode, tasks=("stsb",),
                                                  split="dev", max_pairs=STS_PAIRS)["stsb"]
                 for pooler in simcse_lab.POOLERS}
best_pooler = max(pooler_scores, key=pooler_scores.get)
display(Markdown(format_comparison_table({f"raw encoder, STS-B dev ({MODE} mode)": pooler_scores})))
viz.ablation_figure({f"raw encoder ({MODE} mode)": pooler_scores}, baseline=("word overlap", overlap_dev),
                    title="STS-B dev Spearman by pooler (no training)")

# %% [markdown]
# ### Exercise 01-a · Mean pooling, by hand
#
# The `avg` pooler averages the last layer's token states over each sentence's **real** tokens: a batch is
# padded to its longest sentence, and `attention_mask` is 1 on real tokens, 0 on padding.
#
# $$h_b = \frac{\sum_t m_{bt}\, H_{bt}}{\sum_t m_{bt}}$$
#
# Write it, run the cell: the check says what is right or wrong. The solution is in the next (collapsed) cell.

# %%
import torch


def my_mean_pooling(last_hidden_state, attention_mask):
    """The `avg` pooler: last_hidden_state (B, T, H) float, attention_mask (B, T) of 0/1 -> (B, H).

    h_b = sum_t m_bt * H_bt / sum_t m_bt: the mean over sentence b's real tokens (mask 1), padding (mask 0) left out.
    The mask has no H axis: give it one (attention_mask.unsqueeze(-1), shape (B, T, 1)) before multiplying.
    """
    return None  # your code here


check_mean_pooling(my_mean_pooling)

# %% jupyter={"source_hidden": true}
# Solution (expand to read). Running it checks it: require=True raises if it were wrong.
def my_mean_pooling(last_hidden_state, attention_mask):
    mask = attention_mask.unsqueeze(-1).to(last_hidden_state.dtype)  # (B, T, 1): broadcasts over H
    return (last_hidden_state * mask).sum(1) / mask.sum(1).clamp_min(1.0)  # (B, H) / (B, 1)


check_mean_pooling(my_mean_pooling, require=True)

# %% [markdown]
# ## 5. Fix it afterwards: BERT-whitening and BERT-flow
#
# Both keep the encoder frozen and transform its outputs, fitted on unlabelled sentences (here the
# Wikipedia sentences above; the paper fits them on NLI sentences, Table C.1, and notebook 03 does too):
#
# - **BERT-whitening** (Su et al., 2021) subtracts the mean and multiplies by $W = U S^{-1/2}$ from
#   the SVD of the covariance: the result has zero mean and identity covariance. Closed form, linear.
# - **BERT-flow** (Li et al., 2020) trains an invertible network that maps the embeddings to a
#   standard Gaussian by maximum likelihood — the non-linear cousin (whitening is its linear special case).
#
# `fit_postprocess` attaches the fitted transform to an encoder; `encode` then applies it. Every encoder
# below is wrapped in an `EmbeddingCache`, so the cells that follow reuse its embeddings.

# %%
whitened = SimCSEEncoder.from_pretrained(MODEL, pooler=POOLER)
fit_postprocess(whitened, wiki, kind="whitening")
flowed = SimCSEEncoder.from_pretrained(MODEL, pooler=POOLER)
flow = fit_postprocess(flowed, wiki, kind="flow", epochs=FLOW_EPOCHS)
variants = {f"raw {POOLER}": EmbeddingCache(encoder), "+ whitening": EmbeddingCache(whitened), "+ flow": EmbeddingCache(flowed)}
reports = {name: encoder_report(cache, max_pairs=STS_PAIRS) for name, cache in variants.items()}
display(Markdown(format_comparison_table({
    name: {"average cosine": r["average_cosine"], "STS-B dev": r["stsb_dev_spearman"], "alignment": r["alignment"],
           "uniformity": r["uniformity"]} for name, r in reports.items()})))

# %% [markdown]
# The table is measured on STS-B (average cosine and spectrum on the test sentences, unlabelled;
# Spearman, alignment and uniformity on dev) — sentences the transforms were *not* fitted on. What this
# run shows:

# %%
raw_report, white_report, flow_report = (reports[name] for name in variants)
fixed = {"whitening": white_report, "flow": flow_report}
spread = [r["uniformity"] < raw_report["uniformity"] for r in fixed.values()]  # more uniform than the raw encoder
helped = [r["stsb_dev_spearman"] > raw_report["stsb_dev_spearman"] for r in fixed.values()]
display(Markdown(
    "\n".join(f"- With {name} the average cosine {change(raw_report['average_cosine'], r['average_cosine'])}, uniformity "
              f"{change(raw_report['uniformity'], r['uniformity'])} and STS-B dev {change(raw_report['stsb_dev_spearman'], r['stsb_dev_spearman'], 1)}."
              for name, r in fixed.items())
    + "\n- The paper, for contrast: BERT-base from 56.70 (first-last avg.) to 66.28 (whitening) and 66.55 (flow) average STS, "
    "fitted on NLI sentences (Table 5)."))

# %%
if all(spread) and not any(helped):
    lesson = ("Here both transforms made the space more uniform and both lowered STS-B dev. A more isotropic space is not "
              "by itself a better one for STS: the transforms spread the sentences out by rescaling every direction, "
              "including directions that carry no meaning, and a transform fitted on one kind of text (Wikipedia here) "
              "need not suit another (STS-B's captions, news and forum sentences). **Uniformity is necessary, not "
              "sufficient**: notebook 02 meets the same lesson in unsupervised SimCSE.")
else:
    lesson = (f"Here {all_or_some(spread, some_word='one')} of the transforms made the space more uniform and "
              f"{all_or_some(helped, some_word='one')} raised "
              "STS-B dev. Where the two go together, spreading the cone helped; where they part, uniformity alone did not "
              "make cosines rank pairs better. (Smoke mode fits on a few hundred sentences and scores 50 pairs: expect noise.)")
display(Markdown(lesson))

# %% [markdown]
# The spectra: on the sentences it was fitted on, whitening makes the covariance the identity, so the
# centred spectrum is exactly flat; on these held-out sentences (and uncentred, as in Appendix F) both
# transforms leave a much flatter curve than the raw encoder's.

# %%
viz.spectrum_figure({name: r["spectrum"] for name, r in reports.items()},
                    title="Singular values of STS-B test sentences: raw, whitened, flow")

# %%
stsb_test_sentences = list(dict.fromkeys(s for pair in load_sts("stsb", "test")[:STS_PAIRS] for s in pair[:2]))
viz.cosine_histogram({name: cache(stsb_test_sentences) for name, cache in variants.items()},
                     title="Cosine of random STS-B test sentence pairs")

# %% [markdown]
# ## 6. Alignment and uniformity
#
# Wang & Isola (2020) split a good embedding space into two properties, both *lower is better*:
#
# - **alignment** $\ell_{align} = \mathbb{E}\,\|f(x) - f(x^+)\|^2$ over positive pairs (here STS-B dev
#   pairs with gold score ≥ 4): paraphrases should be close;
# - **uniformity** $\ell_{uniform} = \log \mathbb{E}\, e^{-2\|f(x)-f(y)\|^2}$ over all pairs: everything
#   else should be spread over the sphere.
#
# SimCSE uses them in §2 and §3 (Figure 2) and to compare models in §7.1 (Figure 3). Its reading of
# BERT-base: pre-trained embeddings align well but are far from uniform; post-processing improves
# uniformity and degrades alignment.

# %% [markdown]
# ### Exercise 01-b · Alignment and uniformity, by hand
#
# Wang & Isola's two measures, on L2-normalised embeddings ($\hat x = x / \|x\|$), the conventions of
# `simcse_lab.geometry`:
#
# $$\ell_{align} = \frac{1}{N}\sum_i \|\hat x_i - \hat y_i\|^2 \qquad
#   \ell_{uniform} = \log \frac{1}{N(N-1)/2} \sum_{i<j} e^{-2\|\hat x_i - \hat x_j\|^2}$$
#
# Alignment averages over the $N$ positive pairs $(x_i, y_i)$; uniformity over every pair of *distinct*
# embeddings ($i < j$, no $i = j$), with $t = 2$. Lower is better for both.

# %%
import torch.nn.functional as F


def my_alignment(x, y):
    """x, y: (N, D), x[i] and y[i] a positive pair, rows of any length. Returns a scalar (tensor or float).

    alignment = mean over i of ||x_i - y_i||^2, with every row L2-normalised first (alpha = 2: squared distances).
    """
    return None  # your code here


def my_uniformity(x):
    """x: (N, D), rows of any length. Returns a scalar (tensor or float).

    uniformity = log( mean over pairs i < j of exp(-2 * ||x_i - x_j||^2) ), rows L2-normalised first (t = 2).
    torch.pdist(x) gives the N(N-1)/2 distances ||x_i - x_j|| with i < j.
    """
    return None  # your code here


display(check_alignment(my_alignment))
display(check_uniformity(my_uniformity))

# %% jupyter={"source_hidden": true}
# Solution (expand to read). Running it checks it: require=True raises if it were wrong.
def my_alignment(x, y):
    x, y = F.normalize(x, dim=-1), F.normalize(y, dim=-1)
    return (x - y).norm(dim=1).pow(2).mean()


def my_uniformity(x):
    squared_distances = torch.pdist(F.normalize(x, dim=-1)).pow(2)  # the N(N-1)/2 pairs i < j
    return squared_distances.mul(-2).exp().mean().log()


display(check_alignment(my_alignment, require=True))
display(check_uniformity(my_uniformity, require=True))

# %% [markdown]
# Now the three encoders in that plane. **What to look for:** which way each transform moves the raw
# point: left is more uniform, down is better aligned.

# %%
viz.alignment_uniformity_figure({name: (r["alignment"], r["uniformity"]) for name, r in reports.items()},
                                color_by={name: r["stsb_dev_spearman"] for name, r in reports.items()}, color_title="STS-B dev",
                                title="Alignment vs uniformity (colour: STS-B dev Spearman)")

# %%
display(Markdown("\n".join(
    f"- {name}: uniformity {change(raw_report['uniformity'], r['uniformity'])} "
    f"({'more' if r['uniformity'] < raw_report['uniformity'] else 'less'} uniform), alignment "
    f"{change(raw_report['alignment'], r['alignment'], 3)} ({'better' if r['alignment'] < raw_report['alignment'] else 'worse'} aligned)"
    for name, r in fixed.items())))

# %% [markdown]
# ## 7. The cone on a sphere
#
# Forty sentences from eight topics, L2-normalised and projected to 3-D with an **uncentred** PCA,
# so a shared direction shows up as a tight cap. The projection keeps only part of each vector (the
# title says how much), and each point is then rescaled onto the sphere: read the picture as a shadow of
# the real geometry. Rotate the sphere and hover the points. Then compare with the whitened encoder.

# %%
examples, topics = example_sentences(), example_sentences(groups=True)
viz.sphere_figure(encoder.encode(examples), examples, topics,
                  title=f"Raw encoder · average cosine {geometry.average_cosine(encoder.encode(examples)):.2f}")

# %%
viz.sphere_figure(whitened.encode(examples), examples, topics,
                  title=f"Whitened · average cosine {geometry.average_cosine(whitened.encode(examples)):.2f}")

# %% [markdown]
# ## Takeaways (from this run's numbers)

# %%
display(Markdown(
    f"- Random Wikipedia sentences have an average cosine of {raw_cosine:.2f} under the raw encoder "
    f"({'anisotropic: far from the 0 of an isotropic cloud' if raw_cosine > 0.2 else 'close to isotropic'}); the second "
    f"singular value is {float(raw_spectrum[1]):.2f} of the first.\n"
    f"- Without training, pooling matters: {best_pooler.removeprefix('pooler=')} is the best raw pooler here "
    f"({pooler_scores[best_pooler]:.1f} on STS-B dev); the [CLS] state alone scores {pooler_scores['pooler=cls_before_pooler']:.1f}.\n"
    f"- Word overlap alone scores {overlap_dev:.1f} on STS-B dev, the raw encoder {stsb_dev_raw:.1f}, and the encoder's "
    f"cosines follow word overlap {how_closely(follows_overlap)} (Spearman {follows_overlap:.2f}).\n"
    f"- Whitening and flow: uniformity {raw_report['uniformity']:.2f} → {white_report['uniformity']:.2f} / "
    f"{flow_report['uniformity']:.2f}, STS-B dev {raw_report['stsb_dev_spearman']:.1f} → {white_report['stsb_dev_spearman']:.1f} / "
    f"{flow_report['stsb_dev_spearman']:.1f}. {lesson.split('. ')[0]}.\n"
    "- Notebook **02** trains the encoder instead: SimCSE's contrastive objective, and what it does on this encoder."))

# %% [markdown]
# ## Try this
#
# 1. Set `POOLER = "avg_first_last"` (the pooler the BERT-whitening paper uses) and re-run: does
#    whitening help more or less?
# 2. Whitening can also *reduce* dimensions: `fit_postprocess(whitened, wiki, kind="whitening", k=64)`.
#    Su et al. (2021) report that keeping fewer dimensions can even help STS. Try k = 32, 64, 128.
# 3. Fit the whitening on 50 sentences instead of `NUM_SENTENCES`: what happens to STS-B dev, and why
#    (how many sentences does a D×D covariance need)?
# 4. Fit the whitening on STS-B *train* sentences (`load_sts("stsb", "train")`) instead of Wikipedia: does
#    text from the evaluated domain change the outcome of §5?
# 5. Open `flow.history` (`FlowHistory`): is the held-out log-likelihood still improving at the last epoch?
