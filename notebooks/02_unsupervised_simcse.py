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
# 02 · Unsupervised SimCSE — parameters (`simcse-lab course` sets the mode through the environment)
import os
from pathlib import Path

import simcse_lab
from simcse_lab.data.corpus import DEFAULT_UNSUP_SOURCES, IN_DOMAIN_SOURCES

SMOKE = os.environ.get("SIMCSE_LAB_SMOKE") == "1"  # tiny sizes: checks that every cell runs (CI)
QUICK = os.environ.get("SIMCSE_LAB_QUICK") == "1"  # small sizes: minutes on a laptop CPU
MEDIUM = os.environ.get("SIMCSE_LAB_MEDIUM") == "1"  # BERT-base, 2,000 steps of wiki1m: minutes on a GPU (hub needed)
MODE = "smoke" if SMOKE else "quick" if QUICK else "medium" if MEDIUM else "full"  # full: the paper's recipe (GPU + hub)
BERT_BASE = MODE in ("medium", "full")
# The embedded 4-layer BERT works offline; medium and full modes use the paper's "bert-base-uncased" (needs the hub).
MODEL = os.environ.get("SIMCSE_LAB_MODEL") or ("bert-base-uncased" if BERT_BASE else simcse_lab.DEFAULT_MODEL)
DATA_DIR = os.environ.get("SIMCSE_LAB_DATA")  # local SentEval-layout data; None = download from the hub
OUTPUTS = Path(os.environ.get("SIMCSE_LAB_OUTPUT", "outputs"))  # trained models go to OUTPUTS / "unsup-simcse", ...
# Two training corpora, the same budget: the paper's kind of text (Wikipedia sentences: wiki1m from the hub with
# BERT-base; offline its local subset plus WordNet's example sentences) and unlabelled text from the domains the STS
# sets come from (simcse_lab.data.corpus.IN_DOMAIN_SOURCES: SNLI captions, SICK train, review sentences, ...; every
# sentence that also occurs in an evaluation split left out). Needs the local data folder.
WIKI_SOURCES = DEFAULT_UNSUP_SOURCES
IN_DOMAIN = IN_DOMAIN_SOURCES if DATA_DIR else None
# The paper's BERT-base setting: [CLS] with the MLP in training only, learning rate 3e-5. The small default encoder's
# recipe (recipes/README.md) trains mean pooling ("avg") with a larger learning rate.
POOLER = "cls" if BERT_BASE else "avg"
LEARNING_RATE = 3e-5 if BERT_BASE else 1e-4
BATCH_SIZE = {"smoke": 8, "quick": 64, "medium": 64, "full": 64}[MODE]  # paper: 64 (BERT-base, Table D.1)
MAX_STEPS = {"smoke": 6, "quick": 300, "medium": 2000, "full": -1}[MODE]  # -1 = one epoch over the training file (paper: 1 epoch)
MAX_TRAIN_SAMPLES = {"smoke": 64, "quick": None, "medium": None, "full": None}[MODE]  # None = the whole file
EVAL_STEPS = {"smoke": 3, "quick": 30, "medium": 250, "full": 250}[MODE]  # STS-B dev every N steps (paper: 250)
STS_PAIRS = {"smoke": 50, "quick": None, "medium": None, "full": None}[MODE]  # None = every STS pair; smoke: the first 50
ABLATION_STEPS = {"smoke": 2, "quick": 60, "medium": 500, "full": 500}[MODE]  # steps per ablation run (the paper: 1 epoch each)
ABLATION_EVAL = {"smoke": 1, "quick": 10, "medium": 50, "full": 50}[MODE]  # evaluations along the Figure-2 runs
ABLATION_BATCH = {"smoke": 8, "quick": 32, "medium": 64, "full": 64}[MODE]
DROPOUT_SWEEP = {"smoke": (0.5,), "quick": (0.05, 0.2, 0.5), "medium": (0.01, 0.05, 0.2, 0.5), "full": (0.01, 0.05, 0.15, 0.2, 0.5)}[MODE]
TEMPERATURE_SWEEP = {"smoke": (1.0,), "quick": (0.01, 0.1, 1.0), "medium": (0.001, 0.01, 0.1, 1.0), "full": (0.001, 0.01, 0.1, 1.0)}[MODE]
DEMO_SENTENCES = {"smoke": 32, "quick": 256, "medium": 1024, "full": 1024}[MODE]  # sentences for the dropout demo

# %% [markdown]
# # 02 · Unsupervised SimCSE: dropout is all the augmentation you need
#
# **You will learn** how SimCSE makes positive pairs from dropout alone, what its loss computes and how the
# temperature shapes it, what training does to the geometry of notebook 01, and — the measured lesson of this
# notebook — what the *training text* has to do with whether STS improves.
# **You need** notebook 01 (average cosine, alignment, uniformity, STS scoring) and PyTorch tensors.
# **You will write** the unsupervised InfoNCE loss (checked against the library).

# %%
from simcse_lab.commands.course import measured_times
from IPython.display import Markdown, display

display(Markdown(measured_times("02")))

# %% [markdown]
# Notebook 01 showed that raw BERT embeddings live in a narrow cone. **SimCSE** (Gao, Yao & Chen, 2021)
# trains them with *contrastive learning* on raw sentences, no labels:
#
# 1. feed a batch of sentences through the encoder **twice**; dropout is on, so the two passes use
#    different random masks and give two slightly different vectors $h_i$ and $h_i^+$ of each sentence;
# 2. ask the model to pick, for every $h_i$, its own twin $h_i^+$ among all the $h_j^+$ of the batch:
#
# $$\ell_i = -\log \frac{e^{\cos(h_i, h_i^+)/\tau}}{\sum_{j=1}^{N} e^{\cos(h_i, h_j^+)/\tau}} \qquad \text{(paper, Eq. 4)}$$
#
# The other sentences of the batch are the negatives; $\tau$ is a temperature (0.05). That is the whole method.

# %% [markdown]
# ### What you will see
#
# The paper's result and this course's, side by side, before you run anything. The course's numbers are the
# reference run recorded with the embedded encoder's model card (the quick-mode recipes); this notebook's own
# run follows in §3-§4, and the takeaways at the end are written from it.

# %%
from simcse_lab.apps.paper import PAPER_TABLE5, default_encoder_reference

reference = default_encoder_reference()
paper = {name: row[-1] for name, row in PAPER_TABLE5.items()}
lines = [f"- **The paper** (BERT-base, Table 5, average of the seven STS tasks): first-last avg. "
         f"{paper['BERT-base (first-last avg.)']:.2f} → unsupervised SimCSE {paper['unsup. SimCSE-BERT-base']:.2f} "
         f"(+{paper['unsup. SimCSE-BERT-base'] - paper['BERT-base (first-last avg.)']:.1f})."]
if reference:
    r = reference["sts_avg"]
    lines.append(f"- **This course's encoder** (4 layers, {reference['pretraining_tokens'] / 1e6:.0f}M pre-training tokens; reference "
                 f"run): raw avg {r['raw avg']:.2f} → unsupervised SimCSE on Wikipedia + WordNet {r['unsup, wiki + WordNet']:.2f} → on "
                 f"in-domain text {r['unsup, in-domain']:.2f}.")
display(Markdown("\n".join(lines)))

# %% [markdown]
# **Why they can differ.** The paper explains its own gain (§3.2): training mostly improves *uniformity*, while
# the *alignment* of positives stays where the pre-trained checkpoint put it — "a pre-trained checkpoint provides
# good initial alignment". BERT-base was pre-trained for 40 epochs over 3.3 billion words; the embedded encoder
# saw a few hundred to a thousand times fewer tokens, so there is less alignment to keep. And the paper's
# Wikipedia sentences are the kind of text BERT-base was pre-trained on, while the STS sets are captions, news,
# forum and review sentences. Notebook 01 already met the first half of the lesson: **uniformity is
# necessary, not sufficient**. This notebook trains on two corpora with the same budget to test the second half.

# %%
import dataclasses
import math

import plotly.graph_objects as go
import torch
from ipywidgets import FloatLogSlider, interact

from simcse_lab import SimCSEEncoder, geometry, losses
from simcse_lab.apps import viz
from simcse_lab.apps.exercises import check_unsup_loss
from simcse_lab.apps.narrative import ablation_reading, change, compared
from simcse_lab.apps.paper import measure_paper_rows, table_rows
from simcse_lab.apps.widgets import EmbeddingCache, TrainingDashboard, example_sentences
from simcse_lab.augment import dropout_task_difficulty, dropout_views
from simcse_lab.data import ALL7, load_sts, read_sentences
from simcse_lab.data.corpus import write_unsup_training_file
from simcse_lab.errors import SimCSELabError
from simcse_lab.evaluate import evaluate_similarity, evaluate_sts, format_comparison_table, pair_cosine_scores
from simcse_lab.evaluation.baselines import word_overlap
from simcse_lab.evaluation.report import encoder_report
from simcse_lab.train import TrainConfig, train

if BERT_BASE or not DATA_DIR:
    wiki_file = simcse_lab.data.download_simcse_training_file("wiki1m_for_simcse.txt")
else:
    wiki_file = write_unsup_training_file(OUTPUTS / "data" / "wiki_wordnet.txt", sources=WIKI_SOURCES)
in_domain_file = write_unsup_training_file(OUTPUTS / "data" / "in_domain.txt", sources=IN_DOMAIN) if IN_DOMAIN else None
wiki, _ = read_sentences(wiki_file)
model_name = Path(MODEL).name
ours = f"ours, {model_name}, {MODE} mode"  # how our numbers are labelled next to the paper's
print(f"mode: {MODE} · model: {MODEL} · Wikipedia-style file: {wiki_file} ({len(wiki):,} sentences)"
      + (f" · in-domain file: {in_domain_file} ({sum(1 for _ in open(in_domain_file)):,} sentences)" if in_domain_file else ""))

# %% [markdown]
# ## 1. Dropout as data augmentation
#
# In training mode every Transformer layer drops 10% of its activations (and attention weights) at
# random. Encode the same batch twice — `dropout_views` does it in one pass over $[x; x]$, the
# official code's trick — and the two copies of each sentence come out different. In evaluation mode
# dropout is off and the two copies are identical.

# %%
encoder = SimCSEEncoder.from_pretrained(MODEL, pooler="cls_before_pooler")
demo = wiki[:DEMO_SENTENCES]
torch.manual_seed(0)
with torch.no_grad():
    encoder.train()
    z1, z2 = dropout_views(encoder, demo)  # two dropout masks
    encoder.eval()
    e1, e2 = dropout_views(encoder, demo)  # no dropout
print(f"train mode: max |z1 - z2| = {(z1 - z2).abs().max():.3e}   mean cos(z1, z2) = {geometry.pair_cosines(z1, z2).mean():.4f}")
print(f"eval mode:  max |e1 - e2| = {(e1 - e2).abs().max():.3e}   (identical up to round-off)")

# %% [markdown]
# How different are the two views? Compare the cosine between the two dropout views of the *same*
# sentence with the cosine between *different* sentences. **What to look for:** whether the positives
# sit clearly above the different-sentence cosines, or inside their range.

# %%
viz.cosine_histogram({"same sentence, two dropout masks": geometry.pair_cosines(z1, z2),
                      "different sentences (eval mode)": e1}, bins=100,
                     title="Dropout views vs random pairs, before training")

# %% [markdown]
# **How much is there to learn?** `dropout_task_difficulty` asks, before any training, how hard the
# "find my twin" task is: batches of `BATCH_SIZE` sentences, two dropout views each, the cosine of each
# sentence's two views, of the other sentences and of the closest other sentence, and the loss at
# $\tau = 0.05$. If the positives beat even the hardest negatives by several temperatures, the loss starts
# near zero: the task is solved at step 0, and what training can still do is push sentences apart.

# %%
difficulty = {pooler: dropout_task_difficulty(SimCSEEncoder.from_pretrained(MODEL, pooler=pooler), demo, batch_size=BATCH_SIZE)
              for pooler in dict.fromkeys((POOLER, "cls_before_pooler"))}
display(Markdown("| pooler | cos(two views) | cos(other sentences) | cos(closest other) | initial loss (τ = 0.05) |\n|---|---|---|---|---|\n"
                 + "\n".join(f"| {pooler} | {r['positive_cosine']:.3f} | {r['negative_cosine']:.3f} | {r['hardest_negative_cosine']:.3f} "
                              f"| {r['initial_loss']:.3f} |" for pooler, r in difficulty.items())))
easy = difficulty[POOLER]
margin = (easy["positive_cosine"] - easy["hardest_negative_cosine"]) / 0.05
twin_share = math.exp(-easy["initial_loss"])  # the geometric mean of the softmax probability each row gives its own twin
display(Markdown(f"With `{POOLER}` pooling the two views lead the closest other sentence by {margin:.1f} temperatures on average and "
                 f"the loss starts at {easy['initial_loss']:.3f}, against log {BATCH_SIZE} = {math.log(BATCH_SIZE):.2f} for a random guess: "
                 f"each row already gives its twin {twin_share:.0%} of its softmax (geometric mean, $e^{{-\\ell}}$), so the task is "
                 f"{'mostly solved before training' if twin_share >= 0.5 else 'far from solved before training'}."))

# %% [markdown]
# ## 2. The loss, step by step, on a tiny batch
#
# Take 6 sentences, two dropout views each. `losses.simcse_logits(z1, z2, τ)` is the matrix
# $\cos(z1_i, z2_j)/\tau$: row $i$ is one sentence's scores against every candidate, and the
# **diagonal holds the positives**. The loss is the cross-entropy of each row with the diagonal as
# the label — a $N$-way classification "which of these is my twin?".

# %%
tiny = wiki[:6]
labels = [viz.shorten(s, 28) for s in tiny]
torch.manual_seed(0)
encoder.train()
with torch.no_grad():
    t1, t2 = dropout_views(encoder, tiny)
encoder.eval()
cosines = losses.simcse_logits(t1, t2, temperature=1.0)  # τ = 1: the plain cosines
go.Figure(go.Heatmap(z=cosines.numpy(), x=labels, y=labels, zmin=-1, zmax=1, colorscale="RdBu_r", texttemplate="%{z:.3f}"),
          layout=dict(title="cos(z1_i, z2_j): rows = first view, columns = second view; diagonal = positives",
                      yaxis=dict(autorange="reversed"), height=480, template="plotly_white"))

# %% [markdown]
# The **temperature** decides how much the margins between cells matter. Dividing by $\tau = 0.05$ multiplies
# the differences by 20 before the softmax. Move the slider: with a large $\tau$ each row's softmax is nearly
# uniform (the loss is about $\log N$ and the gradient says little); with a small one it becomes a hard
# arg-max that focuses on the hardest negative. (In a static export the slider shows its starting value.)

# %%
def show_softmax(temperature=0.05):
    probabilities = torch.softmax(losses.simcse_logits(t1, t2, temperature=temperature), dim=1)
    loss = losses.unsup_simcse_loss(t1, t2, temperature=temperature)
    go.Figure(go.Heatmap(z=probabilities.numpy(), x=labels, y=labels, zmin=0, zmax=1, colorscale="Blues", texttemplate="%{z:.2f}"),
              layout=dict(title=f"softmax over each row at τ = {temperature:.3g} · loss = {loss:.3f} (log N = {torch.log(torch.tensor(len(tiny))):.3f})",
                          yaxis=dict(autorange="reversed"), height=480, template="plotly_white")).show()


interact(show_softmax, temperature=FloatLogSlider(value=0.05, base=10, min=-3, max=0, step=0.1, description="τ"));

# %% [markdown]
# ### Exercise 02 · Write the loss
#
# The unsupervised SimCSE loss of a batch (paper, Eq. 4): row $i$ of the $B \times B$ matrix
# $\cos(z^1_i, z^2_j)/\tau$ must pick its own twin $j = i$.
#
# $$\mathcal{L} = \frac{1}{B}\sum_{i=1}^{B} -\log \frac{e^{\cos(z^1_i, z^2_i)/\tau}}{\sum_{j=1}^{B} e^{\cos(z^1_i, z^2_j)/\tau}}$$
#
# The check runs your function on random batches (a batch of 2, embeddings that are not unit length,
# float32 and float64, random temperatures) and names the usual mistakes.

# %%
import torch.nn.functional as F


def my_unsup_loss(z1, z2, temperature):
    """z1, z2: (B, D), the same B sentences encoded twice (two dropout masks), rows of any length.
    temperature: t, a float (paper: 0.05). Returns a scalar tensor that backpropagates.

    loss = mean over i of -log( exp(cos(z1_i, z2_i)/t) / sum_j exp(cos(z1_i, z2_j)/t) )
    Steps: L2-normalise the rows (F.normalize), the (B, B) cosine matrix, divided by t once; row i's positive is
    column i, so the labels are torch.arange(B); F.cross_entropy(logits, labels) takes the mean over the rows.
    """
    return None  # your code here


check_unsup_loss(my_unsup_loss)

# %% jupyter={"source_hidden": true}
# Solution (expand to read). Running it checks it: require=True raises if it were wrong.
def my_unsup_loss(z1, z2, temperature):
    logits = F.normalize(z1, dim=-1) @ F.normalize(z2, dim=-1).T / temperature  # (B, B): cos(z1_i, z2_j) / t
    labels = torch.arange(z1.shape[0], device=z1.device)  # row i's positive is column i
    return F.cross_entropy(logits, labels)


check_unsup_loss(my_unsup_loss, require=True)

# %% [markdown]
# ## 3. Training, on two corpora with the same budget
#
# `simcse_lab.train` runs exactly this objective: temperature 0.05, max length 32, STS-B dev scored before
# the first step (the raw encoder, the dashed line on each panel) and every `EVAL_STEPS` steps, the best
# checkpoint kept. With BERT-base (medium and full modes) this is the paper's recipe: $10^6$ Wikipedia
# sentences, [CLS] pooling with an MLP head used **only during training** (`pooler_type="cls",
# mlp_only_train=True`, Table 6), batch 64, learning rate 3e-5. With the small default encoder the pooler
# is the mean of the tokens and the learning rate 1e-4 (see the parameters cell).
#
# The first run trains on the Wikipedia-style file, the second on in-domain text; everything else is equal.
# **What to look for:** uniformity falls in both; watch STS-B dev against its dashed start line.

# %%
def unsup_config(train_file, output_dir, **changes):
    base = TrainConfig(
        model_name_or_path=MODEL, train_file=str(train_file), output_dir=str(output_dir), pooler_type=POOLER,
        mlp_only_train=POOLER == "cls", temp=0.05, max_seq_length=32, per_device_train_batch_size=BATCH_SIZE,
        learning_rate=LEARNING_RATE, num_train_epochs=1, max_steps=MAX_STEPS, max_train_samples=MAX_TRAIN_SAMPLES,
        eval_steps=EVAL_STEPS, eval_max_pairs=STS_PAIRS, bf16=torch.cuda.is_available(), overwrite_output_dir=True,
        show_progress=False)
    return dataclasses.replace(base, **changes)


corpora = {"Wikipedia + WordNet" if not BERT_BASE else "wiki1m": wiki_file}
if in_domain_file:
    corpora["in-domain text"] = in_domain_file
runs = {}
for (corpus, path), folder in zip(corpora.items(), ("unsup-simcse", "unsup-simcse-in-domain")):
    dashboard = TrainingDashboard(title=f"Unsupervised SimCSE on {corpus} · {model_name} · {MODE} mode")
    display(dashboard)
    runs[corpus] = train(unsup_config(path, OUTPUTS / folder), callbacks=[dashboard])
    r = runs[corpus]
    print(f"{corpus}: {r.steps} steps in {r.seconds:.0f}s · STS-B dev {r.history[0]['stsb_dev']:.2f} at step 0, best "
          f"{r.best_score:.2f} at step {r.best_step} · saved to {r.output_dir}")

# %% [markdown]
# The same curves as static figures (the dashboards are live widgets; these copies survive export). The loss
# panel is on a log scale: InfoNCE falls by orders of magnitude when the task is easy.

# %%
for corpus, r in runs.items():
    viz.training_curves(r.history, title=f"Unsupervised SimCSE on {corpus}: training curves").show()

# %% [markdown]
# ## 4. Before and after
#
# The trained models are reloaded from disk, as a user would: each `simcse_config.json` says which pooler
# to use at inference (for the paper's setting: [CLS] without the MLP). The seven STS tasks of the paper
# (test sets, Spearman × 100, SentEval's "all" setting), beside the raw encoder and the word-overlap floor
# of notebook 01. Test scores are reported here; the checkpoints were chosen on STS-B dev only.

# %%
trained = {corpus: SimCSEEncoder.from_pretrained(r.output_dir) for corpus, r in runs.items()}
raw = {"raw [CLS]": SimCSEEncoder.from_pretrained(MODEL, pooler="cls_before_pooler"),
       "raw avg": SimCSEEncoder.from_pretrained(MODEL, pooler="avg")}
caches = {name: EmbeddingCache(model) for name, model in {**raw, **{f"unsup SimCSE, {c}": m for c, m in trained.items()}}.items()}
scores = {"word overlap (no model)": evaluate_similarity(word_overlap, ALL7, max_pairs=STS_PAIRS)}
scores.update({name: evaluate_sts(cache, ALL7, max_pairs=STS_PAIRS) for name, cache in caches.items()})
display(Markdown(f"**{ours}**" + (f" · smoke mode: first {STS_PAIRS} pairs per task only" if STS_PAIRS else "")))
display(Markdown(format_comparison_table(scores)))

# %% [markdown]
# For reference, **the paper's numbers** (BERT-base, Table 5; not ours):
#
# | paper, BERT-base | STS12 | STS13 | STS14 | STS15 | STS16 | STS-B | SICK-R | Avg. |
# |---|---|---|---|---|---|---|---|---|
# | BERT-base (first-last avg.) | 39.70 | 59.38 | 49.67 | 66.03 | 66.19 | 53.87 | 62.06 | 56.70 |
# | unsup. SimCSE-BERT-base | 68.40 | 82.41 | 74.38 | 80.91 | 78.56 | 76.85 | 72.23 | 76.25 |
#
# What this run measured:

# %%
start = "raw avg" if POOLER == "avg" else "raw [CLS]"
verdicts = []
for corpus in runs:
    after = scores[f"unsup SimCSE, {corpus}"]
    verdicts.append(f"- Trained on **{corpus}**: STS-B test {change(scores[start]['stsb'], after['stsb'], 1)}, the seven-task "
                    f"average {change(scores[start]['avg'], after['avg'], 1)} ({compared(after['avg'], scores[start]['avg'])} the raw "
                    f"encoder, {compared(after['avg'], scores['word overlap (no model)']['avg'])} word overlap).")
display(Markdown("\n".join(verdicts)))

# %% [markdown]
# ### The geometry after training
#
# SimCSE §5: the contrastive loss lowers the top singular values, so the spectrum should flatten, random
# sentences drift apart, and the sphere fill up. Gold-score violins before and after show whether the
# spreading kept the order of similar and dissimilar pairs.

# %%
stsb_test = list(dict.fromkeys(s for pair in load_sts("stsb", "test")[:STS_PAIRS] for s in pair[:2]))
viz.spectrum_figure({name: cache(stsb_test) for name, cache in caches.items()},
                    title="Singular values of STS-B test sentences, before and after training")

# %%
viz.cosine_histogram({name: cache(stsb_test) for name, cache in caches.items() if name != "raw [CLS]"},
                     title="Cosine of random STS-B test sentence pairs")

# %%
stsb_dev = load_sts("stsb", "dev")[:STS_PAIRS]
dev_gold = [p[2] for p in stsb_dev]
viz.gold_bin_figure({name: pair_cosine_scores(cache, stsb_dev)[0] for name, cache in caches.items() if name != "raw [CLS]"},
                    dev_gold, title="STS-B dev: cosine by gold-score bin, before and after")

# %%
examples, topics = example_sentences(), example_sentences(groups=True)
for corpus, model in trained.items():
    viz.sphere_figure(model.encode(examples), examples, topics,
                      title=f"After unsupervised SimCSE on {corpus} · average cosine {geometry.average_cosine(model.encode(examples)):.2f}").show()

# %% [markdown]
# ## 5. Alignment and uniformity during training (the paper's Figure 2)
#
# The paper's Figure 2 follows alignment and uniformity every 10 steps for several ways of making the positive
# pair. Here: dropout 0.1 (SimCSE), no dropout (`p = 0`: both views identical), **the same dropout mask for both
# views** (`augmentation="same_mask"`, the paper's "fixed 0.1": the encoder still drops units, but the positive
# is the same vector) and delete-one-word (a text edit). Each trains `ABLATION_STEPS` steps on the
# Wikipedia-style file and is scored every `ABLATION_EVAL` steps from step 0, so every line starts at the raw
# encoder. The paper reads its figure (§3.2): all four greatly improve uniformity; the alignment of "no dropout"
# and "fixed 0.1" degrades drastically while SimCSE's stays steady, thanks to the dropout noise; delete-one-word
# improves alignment but gains less uniformity. Lower-left is better. Compare the lines below with that reading.

# %%
ablation = unsup_config(wiki_file, OUTPUTS / "ablation", dropout=0.1, per_device_train_batch_size=ABLATION_BATCH,
                        max_steps=ABLATION_STEPS, eval_steps=ABLATION_STEPS, save_steps=ABLATION_STEPS, eval_at_start=False)
figure2_settings = {"dropout 0.1 (SimCSE)": {}, "no dropout (p = 0)": {"dropout": 0.0},
                    "same mask for both views": {"augmentation": "same_mask"}, "delete one word": {"augmentation": "delete_one_word"}}
figure2 = {name: train(dataclasses.replace(ablation, eval_steps=ABLATION_EVAL, eval_at_start=True, **setting))
           for name, setting in figure2_settings.items()}
raw_dev = figure2["dropout 0.1 (SimCSE)"].history[0]["stsb_dev"]
viz.alignment_uniformity_figure(None, trajectories={name: r.history for name, r in figure2.items()},
                                title=f"Alignment vs uniformity during training, every {ABLATION_EVAL} steps from the raw encoder")

# %%
ends = {name: r.history[-1] for name, r in figure2.items()}
display(Markdown("\n".join(f"- {name}: uniformity {change(r.history[0]['uniformity'], ends[name]['uniformity'])}, alignment "
                           f"{change(r.history[0]['alignment'], ends[name]['alignment'], 3)}, best STS-B dev {r.best_score:.1f} "
                           f"(raw {raw_dev:.1f})" for name, r in figure2.items())))

# %% [markdown]
# ## 6. Ablations, reduced
#
# The paper's ablations train BERT-base for a full epoch on $10^6$ sentences per setting. Here each
# setting trains for `ABLATION_STEPS` steps from the same starting point, and is scored on STS-B dev
# (the paper's ablations use STS-B dev too). Short runs are noisy: read the *ordering*, and re-run with
# more steps before believing a difference of a point or two. The grey bar on every chart is the raw encoder:
# where all these runs started. Paper numbers are BERT-base, labelled as such.

# %%
baseline = figure2["dropout 0.1 (SimCSE)"].best_score  # dropout 0.1, τ = 0.05, POOLER, no text augmentation
raw_bar = ("raw encoder", raw_dev)
print(f"baseline ({ABLATION_STEPS} steps): STS-B dev {baseline:.2f}; raw encoder {raw_dev:.2f}")

# %% [markdown]
# ### 6a. Dropout rate (Table 3)
#
# The dropout probability *is* the strength of the augmentation. $p = 0$ makes the two views identical, so
# the positive pair carries no information: the negatives still push sentences apart (uniformity improves at
# $p = 0$ too, Figure 2), and what degrades is alignment. Too much dropout destroys the sentence. The paper's
# "fixed 0.1" row is the same-mask run of §5.

# %%
PAPER_DROPOUT = {"p=0.0": 71.1, "p=0.01": 72.6, "p=0.05": 81.1, "p=0.1": 82.5, "p=0.15": 81.4, "p=0.2": 80.5, "p=0.5": 71.0,
                 "fixed 0.1": 43.6}
ours_dropout = {f"p={p}": train(dataclasses.replace(ablation, dropout=p)).best_score for p in DROPOUT_SWEEP}
ours_dropout.update({"p=0.1": baseline, "p=0.0": figure2["no dropout (p = 0)"].best_score,
                     "fixed 0.1": figure2["same mask for both views"].best_score})
ours_dropout = {k: ours_dropout[k] for k in PAPER_DROPOUT if k in ours_dropout}
results = {"paper, BERT-base (Table 3)": PAPER_DROPOUT, ours: ours_dropout}
display(Markdown(format_comparison_table(results)))
display(Markdown(ablation_reading(results[ours], raw_dev, next(iter(results.values())))))
viz.ablation_figure(results, title="Dropout rate vs STS-B dev", baseline=raw_bar)

# %% [markdown]
# ### 6b. Temperature (Table D.1)
#
# The temperature scales the cosines before the softmax (§2). The paper's Table D.1 (BERT-base,
# STS-B dev) has τ = 0.001: 84.9, 0.01: 85.4, **0.05: 86.2**, 0.1: 82.0, 1: 64.0, and 85.9 for a dot
# product instead of the cosine. Its 86.2 at τ = 0.05 is the *supervised* model's STS-B dev score
# (Tables 4 and 7), so these numbers appear to come from supervised runs: compare the shape of the
# curve, not its level, with our unsupervised runs.

# %%
PAPER_TEMPERATURE = {"τ=0.001": 84.9, "τ=0.01": 85.4, "τ=0.05": 86.2, "τ=0.1": 82.0, "τ=1": 64.0}
ours_temperature = {f"τ={t:g}": train(dataclasses.replace(ablation, temp=t)).best_score for t in TEMPERATURE_SWEEP}
ours_temperature["τ=0.05"] = baseline
ours_temperature = {k: ours_temperature[k] for k in PAPER_TEMPERATURE if k in ours_temperature}
results = {"paper, BERT-base (Table D.1, see note)": PAPER_TEMPERATURE, ours: ours_temperature}
display(Markdown(format_comparison_table(results)))
display(Markdown(ablation_reading(results[ours], raw_dev, next(iter(results.values())))))
viz.ablation_figure(results, title="Temperature vs STS-B dev", baseline=raw_bar)

# %% [markdown]
# ### 6c. The MLP head: train only, always, or never (Table 6)
#
# SimCSE puts an MLP (Linear + tanh) over [CLS] while training. For unsupervised SimCSE the paper finds
# it best to **drop it at test time** (`mlp_only_train=True`). A common explanation, a hypothesis rather than
# something the paper measures, is that the head absorbs part of the contrastive pressure, so the
# representation below it keeps more of what the pre-trained encoder knew. We add plain mean pooling ("avg",
# not in the table), the default encoder's choice.

# %%
PAPER_POOLING = {"w/ MLP": 81.7, "w/ MLP (train)": 82.5, "w/o MLP": 80.9, "first-last avg.": 81.2}
ours_pooling = {
    "w/ MLP": train(dataclasses.replace(ablation, pooler_type="cls", mlp_only_train=False)).best_score,
    "w/ MLP (train)": train(dataclasses.replace(ablation, pooler_type="cls", mlp_only_train=True)).best_score,
    "w/o MLP": train(dataclasses.replace(ablation, pooler_type="cls_before_pooler", mlp_only_train=False)).best_score,
    "first-last avg.": train(dataclasses.replace(ablation, pooler_type="avg_first_last", mlp_only_train=False)).best_score,
    "avg": train(dataclasses.replace(ablation, pooler_type="avg", mlp_only_train=False)).best_score,
}
results = {"paper, BERT-base, unsup. (Table 6)": PAPER_POOLING, ours: ours_pooling}
display(Markdown(format_comparison_table(results)))
display(Markdown(ablation_reading(results[ours], raw_dev, next(iter(results.values())))))
viz.ablation_figure(results, title="Pooler / MLP head vs STS-B dev", baseline=raw_bar)

# %% [markdown]
# ### 6d. Dropout versus discrete augmentations (Table 1)
#
# The obvious alternative to dropout noise is to edit the text: crop it, delete words. Here the second
# view is an edited copy of the sentence (dropout stays on, as in the paper). Paper, BERT-base, STS-B
# dev: none (dropout only) 82.5; crop 10 / 20 / 30%: 77.8 / 71.4 / 63.6; word deletion 10 / 20 / 30%:
# 75.9 / 72.2 / 68.2; delete one word 75.9 (74.2 without dropout); synonym replacement 77.4; MLM 15%
# 62.2. In the paper every discrete augmentation *hurts*.

# %%
PAPER_AUGMENTATION = {"none (dropout)": 82.5, "crop 10%": 77.8, "word deletion 10%": 75.9, "delete one word": 75.9}
ours_augmentation = {
    "none (dropout)": baseline,
    "crop 10%": train(dataclasses.replace(ablation, augmentation="crop", augmentation_ratio=0.1)).best_score,
    "word deletion 10%": train(dataclasses.replace(ablation, augmentation="word_deletion", augmentation_ratio=0.1)).best_score,
    "delete one word": figure2["delete one word"].best_score,
}
results = {"paper, BERT-base (Table 1)": PAPER_AUGMENTATION, ours: ours_augmentation}
display(Markdown(format_comparison_table(results)))
display(Markdown(ablation_reading(results[ours], raw_dev, next(iter(results.values())))))
viz.ablation_figure(results, title="Positive pairs from dropout vs text edits (STS-B dev)", baseline=raw_bar)

# %% [markdown]
# ## 7. The paper's rows, with this code
#
# The authors published their checkpoints, so the paper's two rows can be measured here without training:
# `measure_paper_rows` loads bert-base-uncased (first-last avg.) and princeton-nlp's unsupervised SimCSE
# checkpoint and scores them with the same `evaluate_sts` as everything above (about 1.3 GB to download once,
# minutes on a CPU). Offline it says in one line what it would do. The BERT-base row is shown twice: with this
# code's first-last average (`hidden_states[1]`) and with the paper's original one (the embedding layer).

# %%
from simcse_lab.apps.paper import PAPER_CHECKPOINTS

unsup_rows = {name: PAPER_CHECKPOINTS[name] for name in ("BERT-base (first-last avg.)", "unsup. SimCSE-BERT-base")}
try:
    measured = measure_paper_rows(unsup_rows, max_pairs=STS_PAIRS)
    display(Markdown(format_comparison_table(table_rows(measured))))
except SimCSELabError as error:
    print(f"skipped: {error}")

# %% [markdown]
# **More pre-training, smaller fall.** The model card records how unsupervised SimCSE changed STS-B at three
# stages of the default encoder's MLM pre-training (measured when each stage was the shipped encoder; not run
# here):

# %%
if reference:
    stages = reference["mlm_stages"]
    display(Markdown("| pre-training | tokens | raw STS-B | after unsup SimCSE (wiki + WordNet) | change |\n|---|---:|---:|---:|---:|\n"
                     + "\n".join(f"| {s['stage']} | {s['tokens'] / 1e6:.0f}M | {s['raw']:.2f} ({s['split']}) | {s['after']:.2f} | "
                                 f"{s['after'] - s['raw']:+.2f} |" for s in stages)))

# %% [markdown]
# ## Takeaways (from this run's numbers)

# %%
wiki_name, wiki_run = next(iter(runs.items()))
lines = [
    f"- Unsupervised SimCSE needs no labels and no text edits: two dropout masks make the positive pair, the rest of the "
    f"batch the negatives. On this encoder the task starts {'mostly solved' if twin_share >= 0.5 else 'far from solved'}: "
    f"before training each row gives its twin {twin_share:.0%} of its softmax (initial loss {easy['initial_loss']:.3f} with `{POOLER}` pooling).",
]
for corpus, r in runs.items():
    name = f"unsup SimCSE, {corpus}"
    cache = caches[name]
    lines.append(f"- Trained on {corpus}: the average cosine of STS-B test sentences "
                 f"{change(geometry.average_cosine(caches[start](stsb_test)), geometry.average_cosine(cache(stsb_test)))}, and STS-B test "
                 f"{change(scores[start]['stsb'], scores[name]['stsb'], 1)} (seven-task average "
                 f"{change(scores[start]['avg'], scores[name]['avg'], 1)}).")
if len(runs) == 2:
    names = [f"unsup SimCSE, {c}" for c in runs]
    high, low = max(names, key=lambda n: scores[n]["avg"]), min(names, key=lambda n: scores[n]["avg"])
    gap = compared(scores[high]["avg"], scores[low]["avg"])
    if gap == "level with":
        lines.append("- Same encoder, same budget, different text: the two runs are level on the seven-task average here.")
    else:
        lines.append(f"- Same encoder, same budget, different text: the {high.removeprefix('unsup SimCSE, ')} run is {gap} the other "
                     "on the seven-task average"
                     + (", and only it is above the raw encoder: uniformity improved in both runs, STS only with that text."
                        if scores[high]["avg"] > scores[start]["avg"] > scores[low]["avg"] else "."))
last = [c for c, r in runs.items() if r.best_step == r.steps]
lines.append("- Best dev checkpoints: " + ", ".join(f"{c} at step {r.best_step} of {r.steps}" for c, r in runs.items()) + "."
             + (f" {' and '.join(last)} peaked at the last evaluation: still improving, a longer run may help." if last else ""))
lines.append("- The trained models are saved in Hugging Face format in `OUTPUTS/unsup-simcse*`; notebooks 03 and 04 pick them up.")
display(Markdown("\n".join(lines)))

# %% [markdown]
# ## Try this
#
# 1. Double `MAX_STEPS` and watch whether STS-B dev keeps rising or the best checkpoint comes early. The
#    paper evaluates every 250 steps and keeps the best (the official script's default is 125).
# 2. Change `BATCH_SIZE` to 16 and 128. The paper (Appendix D) finds SimCSE not very sensitive to the
#    batch size once the learning rate is tuned; is that true for a short run?
# 3. In §2, set `tiny = wiki[:6] + wiki[:1]` (a duplicate sentence in the batch). What happens to its
#    row of the softmax, and why is that a "false negative"?
# 4. Try other corpora: `write_unsup_training_file(path, sources=("wiki", "wordnet", "snli"))` (the source groups are
#    in `simcse_lab.data.corpus.UNSUP_SOURCE_GROUPS`). Which source moves STS most?
# 5. Train with `do_mlm=True` (an auxiliary MLM loss, the paper's Appendix): the paper finds it helps
#    transfer tasks but not STS.
