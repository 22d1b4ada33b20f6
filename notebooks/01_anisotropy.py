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
POOLER = "avg"  # how token states become one vector for the raw encoder (the strongest raw pooler, see §5)
DATA_DIR = os.environ.get("SIMCSE_LAB_DATA")  # local SentEval-layout data; None = download from the hub
OUTPUTS = Path(os.environ.get("SIMCSE_LAB_OUTPUT", "outputs"))  # where results are written
NUM_SENTENCES = {"smoke": 200, "quick": 2000, "full": 10000}[MODE]  # Wikipedia sentences for the statistics and the fits
FLOW_EPOCHS = {"smoke": 1, "quick": 10, "full": 10}[MODE]  # BERT-flow training passes
STS_PAIRS = {"smoke": 50, "quick": None, "full": None}[MODE]  # None = every STS pair; smoke reads the first 50 only

# %% [markdown]
# # 01 · Anisotropy: why raw BERT sentence embeddings need fixing
#
# A **sentence embedding** maps a sentence to one vector so that the cosine of two vectors says how
# similar the sentences are in meaning. One model then serves many jobs:
#
# - **semantic textual similarity (STS)** — score a pair of sentences from 0 (unrelated) to 5 (same meaning);
#   this is how the SimCSE paper (Gao, Yao & Chen, EMNLP 2021) measures quality: the Spearman correlation
#   between cosines and human scores on seven STS sets;
# - **retrieval** — embed a corpus once, then find the nearest neighbours of a query;
# - **clustering** and deduplication — group sentences whose vectors point the same way.
#
# The obvious recipe — take a pre-trained BERT and average its token states — works poorly. The
# reason is geometric: the embeddings are **anisotropic**. They occupy a narrow cone, so *every* pair
# has a high cosine and the small differences that carry meaning drown (Ethayarajh, 2019; Li et al.,
# 2020; SimCSE §5). This notebook measures that on the raw encoder, then tries the two
# post-processing fixes SimCSE compares against: **BERT-whitening** and **BERT-flow**.
#
# Everything here calls `simcse_lab`; the notebook holds the story, the parameters and the plots.
# The parameters cell above picks the size: *smoke* (seconds), *quick* (minutes on a CPU) or *full*.

# %%
from IPython.display import Markdown, display

from simcse_lab import SimCSEEncoder, geometry
from simcse_lab.apps import viz
from simcse_lab.data import load_sts, read_sentences
from simcse_lab.evaluation.report import encoder_report
from simcse_lab.evaluate import evaluate_sts, format_comparison_table, pair_cosine_scores
from simcse_lab.models.postprocess import fit_postprocess
from simcse_lab.apps.widgets import example_sentences

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
print(f"average cosine of random pairs: {geometry.average_cosine(wiki_embeddings):.3f}  (0 = isotropic, 1 = one direction)")
viz.cosine_histogram({f"raw {POOLER}": wiki_embeddings}, title="Cosine of random Wikipedia sentence pairs (raw encoder)")

# %% [markdown]
# ## 2. A few directions dominate: the singular spectrum
#
# Stack the embeddings into a matrix and take its singular values, divided by the largest (SimCSE,
# Appendix F; computed uncentred, as there). If one value dwarfs the rest, one direction carries most
# of every vector: that shared offset is exactly what makes unrelated sentences look similar.
# SimCSE §5 shows that the contrastive objective pushes the top singular values down and *flattens*
# this curve; notebook 02 checks that.
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
# (SimCSE, Appendix G, Figure G.1). We use the **dev** split: an evaluation split we look at, never train on.
#
# **What to look for:** the violins should climb from left to right and overlap little. Raw BERT
# keeps the climb but squeezes everything into a narrow, high band — the bins overlap heavily.

# %%
stsb_dev = load_sts("stsb", "dev")[:STS_PAIRS]
cosines, gold = pair_cosine_scores(encoder.encode, stsb_dev)
stsb_dev_raw = evaluate_sts(encoder.encode, tasks=("stsb",), split="dev", max_pairs=STS_PAIRS)["stsb"]
print(f"STS-B dev Spearman × 100: {stsb_dev_raw:.2f}")
viz.gold_bin_figure(cosines, gold, title=f"STS-B dev: cosine by gold-score bin (raw {POOLER})")

# %% [markdown]
# ## 4. Which pooler? [CLS] versus averaging
#
# A pooler turns the per-token states into one vector (`simcse_lab.models.pooling`):
#
# | pooler | what it takes |
# |---|---|
# | `cls` | the [CLS] state + an MLP head (for a raw encoder that head is **untrained**, randomly initialised — as in the paper, footnote 9) |
# | `cls_before_pooler` | the [CLS] state of the last layer, nothing else |
# | `avg` | the mean of the last layer over real tokens |
# | `avg_top2` | the mean of the last two layers' average |
# | `avg_first_last` | the mean of the first and last layers' average (used by BERT-flow/whitening and the paper's "BERT (first-last avg.)" row) |
#
# Without training, averaging tokens is far better than [CLS]: BERT's [CLS] was trained for next-sentence
# prediction, not similarity (Reimers & Gurevych, 2019). SimCSE *trains* the [CLS] state, which is
# why it can use it (Table 6 compares poolers after training).

# %%
pooler_scores = {f"pooler={pooler}": evaluate_sts(SimCSEEncoder.from_pretrained(MODEL, pooler=pooler).encode, tasks=("stsb",),
                                                  split="dev", max_pairs=STS_PAIRS)["stsb"]
                 for pooler in simcse_lab.POOLERS}
display(Markdown(format_comparison_table({f"raw encoder, STS-B dev ({MODE} mode)": pooler_scores})))
viz.ablation_figure({f"raw encoder ({MODE} mode)": pooler_scores}, title="STS-B dev Spearman by pooler (no training)")

# %% [markdown]
# ## 5. Fix it afterwards: BERT-whitening and BERT-flow
#
# Both keep the encoder frozen and transform its outputs, fitted on unlabelled sentences (here the
# Wikipedia sentences above; the paper fits them on NLI sentences, Table C.1):
#
# - **BERT-whitening** (Su et al., 2021) subtracts the mean and multiplies by $W = U S^{-1/2}$ from
#   the SVD of the covariance: the result has zero mean and identity covariance. Closed form, linear.
# - **BERT-flow** (Li et al., 2020) trains an invertible network that maps the embeddings to a
#   standard Gaussian by maximum likelihood — the non-linear cousin (whitening is its linear special case).
#
# `fit_postprocess` attaches the fitted transform to an encoder; `encode` then applies it.

# %%
whitened = SimCSEEncoder.from_pretrained(MODEL, pooler=POOLER)
fit_postprocess(whitened, wiki, kind="whitening")
flowed = SimCSEEncoder.from_pretrained(MODEL, pooler=POOLER)
flow = fit_postprocess(flowed, wiki, kind="flow", epochs=FLOW_EPOCHS)
variants = {f"raw {POOLER}": encoder, "+ whitening": whitened, "+ flow": flowed}
reports = {name: encoder_report(model.encode, max_pairs=STS_PAIRS) for name, model in variants.items()}
display(Markdown(format_comparison_table({
    name: {"average cosine": r["average_cosine"], "STS-B dev": r["stsb_dev_spearman"], "alignment": r["alignment"],
           "uniformity": r["uniformity"]} for name, r in reports.items()})))

# %% [markdown]
# The table is measured on STS-B (the spectrum and average cosine on the test sentences, unlabelled;
# Spearman, alignment and uniformity on dev) — sentences the transforms were *not* fitted on.
# **What to look for:** the average cosine drops close to 0 after either fix — the cone is gone.
# Whether STS goes up is another matter: isotropy alone does not put paraphrases next to each other,
# and a transform fitted on one kind of text (Wikipedia) need not suit another (STS). The paper reports BERT-base going from 56.70 (first-last
# avg.) to 66.28 (whitening) and 66.55 (flow) average STS (Table 5, NLI-fitted) — real gains, yet well
# below unsupervised SimCSE's 76.25.
#
# The spectra tell the same story. On the sentences it was fitted on, whitening makes the covariance
# the identity, so the centred spectrum is exactly flat; on these held-out sentences (and uncentred,
# as in Appendix F) both transforms leave a much flatter curve than the raw encoder's.

# %%
viz.spectrum_figure({name: r["spectrum"] for name, r in reports.items()},
                    title="Singular values of STS-B test sentences: raw, whitened, flow")

# %%
stsb_test_sentences = list(dict.fromkeys(s for pair in load_sts("stsb", "test")[:STS_PAIRS] for s in pair[:2]))
viz.cosine_histogram({name: model.encode(stsb_test_sentences) for name, model in variants.items()},
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
# SimCSE §7 and Figure 3: pre-trained embeddings have good alignment but poor uniformity;
# post-processing improves uniformity **but degrades alignment**; SimCSE improves uniformity while
# keeping alignment. **What to look for:** the raw point far right (poor uniformity); whitening and
# flow moving left but up.

# %%
viz.alignment_uniformity_figure({name: (r["alignment"], r["uniformity"]) for name, r in reports.items()},
                                color_by={name: r["stsb_dev_spearman"] for name, r in reports.items()}, color_title="STS-B dev",
                                title="Alignment vs uniformity (colour: STS-B dev Spearman)")

# %% [markdown]
# ## 7. The cone on a sphere
#
# Forty sentences from eight topics, L2-normalised and projected to 3-D with an **uncentred** PCA,
# so a shared direction shows up as a tight cap. Rotate the sphere and hover the points. Then compare
# with the whitened encoder, whose points spread over the whole sphere.

# %%
examples, topics = example_sentences(), example_sentences(groups=True)
viz.sphere_figure(encoder.encode(examples), examples, topics,
                  title=f"Raw encoder · average cosine {geometry.average_cosine(encoder.encode(examples)):.2f}")

# %%
viz.sphere_figure(whitened.encode(examples), examples, topics,
                  title=f"Whitened · average cosine {geometry.average_cosine(whitened.encode(examples)):.2f}")

# %% [markdown]
# ## Takeaways
#
# - Raw pre-trained embeddings are anisotropic: random sentences have a high cosine, and a few
#   singular directions dominate.
# - Averaging tokens beats [CLS] for an untrained encoder; neither is good.
# - Post-processing (whitening, flow) removes the cone — uniformity improves — but cannot teach the
#   encoder which sentences mean the same: alignment gets worse and STS gains are modest.
# - SimCSE attacks both at once with a contrastive objective: notebook **02**.
#
# ## Try this
#
# 1. Set `POOLER = "avg_first_last"` (the pooler the BERT-whitening paper uses) and re-run: does
#    whitening help more or less?
# 2. Whitening can also *reduce* dimensions: `fit_postprocess(whitened, wiki, kind="whitening", k=64)`.
#    Su et al. (2021) report that keeping fewer dimensions can even help STS. Try k = 32, 64, 128.
# 3. Fit the whitening on 50 sentences instead of `NUM_SENTENCES`: what happens to STS-B dev, and why
#    (how many sentences does a D×D covariance need)?
# 4. Open `flow.history` (`FlowHistory`): is the held-out log-likelihood still improving at the last epoch?
