"""What `SimCSEEncoder.save_pretrained` writes, so that three loaders read it without converters.

- Hugging Face format (safetensors + config + tokenizer): `transformers.AutoModel` loads it as is.
- `simcse_config.json`: the pooler, whether the MLP head is used at inference, the training max length,
  the prompt template of the mask pooler (PromptBERT), the training settings, and under "evaluation" the
  protocol the model is to be evaluated with (its pooler and the max length STS-B dev was scored at when the
  checkpoint was selected); `from_pretrained` reads the pooler back and `simcse-lab evaluate` uses the protocol.
- sentence-transformers module files (`modules.json`, `1_Pooling/`, `2_Dense/`), so that
  `SentenceTransformer(dir)` loads it with the right pooling.
- The MLP head, when there is one, in `2_Dense/` and mirrored into the BERT pooler weights (the
  official layout), so AutoModel's `pooler_output` equals the `cls` embedding.
- A model card (README.md).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import save_file

from .loading import DENSE_DIR, SIMCSE_CONFIG, quiet_transformers
from .pooling import MLPHead


def save_encoder(encoder, save_directory, training: dict | None = None, max_seq_length: int = 128, final_path=None,
                 eval_max_length: int | None = None) -> Path:
    """Write every file above for `encoder` (a SimCSEEncoder) into save_directory; see the module docstring.

    max_seq_length: the training truncation; eval_max_length: the one it is evaluated at (None: not recorded,
    evaluate's default applies). sentence-transformers' config gets the evaluation length, so that
    `SentenceTransformer(dir)` embeds as `simcse-lab evaluate` does."""
    out = Path(save_directory)
    out.mkdir(parents=True, exist_ok=True)
    pooler_module = getattr(encoder.backbone, "pooler", None)
    if encoder.mlp is not None and pooler_module is not None and hasattr(pooler_module, "dense"):
        with torch.no_grad():  # official layout: the MLP lives in the BERT pooler
            pooler_module.dense.weight.copy_(encoder.mlp.dense.weight)
            pooler_module.dense.bias.copy_(encoder.mlp.dense.bias)
    with quiet_transformers():
        encoder.backbone.save_pretrained(out, safe_serialization=True)
    encoder.tokenizer.save_pretrained(out)
    if encoder.mlp is not None:
        save_mlp(encoder.mlp, out / DENSE_DIR)
    simcse_config = {
        "pooler": encoder.pooler,
        "mlp_only_train": encoder.mlp_only_train,
        "has_mlp": encoder.mlp is not None,
        "mlp_at_inference": encoder.pooler == "cls" and encoder.mlp is not None and not encoder.mlp_only_train,
        "max_seq_length": max_seq_length,
        **({"prompt_template": encoder.prompt.text} if encoder.prompt is not None else {}),
        "training": training or encoder.training_config or {},
        "simcse_lab_version": __import__("simcse_lab").__version__,
    }
    simcse_config["evaluation"] = {"pooler": encoder.pooler, "mlp_only_train": encoder.mlp_only_train,
                                   "mlp_at_inference": simcse_config["mlp_at_inference"], "max_length": eval_max_length}
    write_json(out / SIMCSE_CONFIG, simcse_config)
    write_sentence_transformers_files(out, encoder.pooler, encoder.hidden_size, simcse_config["mlp_at_inference"],
                                      eval_max_length or max_seq_length)
    write_model_card(out, simcse_config, Path(final_path) if final_path is not None else out)
    if encoder.postprocess is not None and hasattr(encoder.postprocess, "save"):
        encoder.postprocess.save(out)
    return out


def write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")


def save_mlp(mlp: MLPHead, directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    size = mlp.dense.weight.shape[0]
    save_file({"linear.weight": mlp.dense.weight.detach().cpu().contiguous(), "linear.bias": mlp.dense.bias.detach().cpu().contiguous()},
              str(directory / "model.safetensors"))
    write_json(directory / "config.json", {"in_features": size, "out_features": size, "bias": True,
                                           "activation_function": "torch.nn.modules.activation.Tanh"})


ST_POOLING_MODES = {"cls": "cls", "cls_before_pooler": "cls", "avg": "mean"}


def write_sentence_transformers_files(out: Path, pooler: str, hidden_size: int, dense_at_inference: bool, max_seq_length: int) -> None:
    """modules.json + 1_Pooling so that sentence-transformers loads the model without converters.

    sentence-transformers' Pooling has no layer-averaging mode and no prompt template, so for avg_top2 /
    avg_first_last / mask the files are not written (simcse_lab and AutoModel still load the directory).
    """
    mode = ST_POOLING_MODES.get(pooler)
    if mode is None:
        return
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
    ]
    if dense_at_inference:
        modules.append({"idx": 2, "name": "2", "path": DENSE_DIR, "type": "sentence_transformers.models.Dense"})
    (out / "modules.json").write_text(json.dumps(modules, indent=2) + "\n")
    write_json(out / "sentence_bert_config.json", {"max_seq_length": max_seq_length, "do_lower_case": False})
    write_json(out / "1_Pooling" / "config.json", {
        "word_embedding_dimension": hidden_size,
        "pooling_mode_cls_token": mode == "cls",
        "pooling_mode_mean_tokens": mode == "mean",
        "pooling_mode_max_tokens": False,
        "pooling_mode_mean_sqrt_len_tokens": False,
        "pooling_mode_weightedmean_tokens": False,
        "pooling_mode_lasttoken": False,
        "include_prompt": True,
    })


CARD = """---
library_name: simcse_lab
tags: [sentence-embeddings, simcse, sentence-transformers]
---
# {title}

A sentence encoder saved by [simcse_lab](https://github.com/simcse-lab/simcse_lab) (SimCSE, Gao et al., EMNLP 2021).

- pooler: `{pooler}`{mlp_note}
- embedding size: see `config.json` (`hidden_size`)

## Use

```python
from simcse_lab import SimCSEEncoder
encoder = SimCSEEncoder.from_pretrained("{path}")
embeddings = encoder.encode(["A man is playing a guitar.", "Someone plays an instrument."])
```

With plain transformers (`AutoModel`), the same weights load without a converter; apply the pooler
above yourself. {st_note}

## Training

```json
{training}
```
"""


def write_model_card(directory: Path, simcse_config: dict, final_path: Path) -> None:
    """README.md in directory, naming final_path (where the directory lives once it is moved into place)."""
    pooler = simcse_config["pooler"]
    if pooler == "cls" and simcse_config.get("mlp_at_inference"):
        mlp_note = " with the MLP head at inference (stored in `2_Dense/` and as the BERT pooler: `pooler_output`)"
    elif pooler == "cls":
        mlp_note = " (MLP head used in training only; inference uses the [CLS] state)"
    elif pooler == "mask":
        mlp_note = f" (PromptBERT: the [MASK] state of the template `{simcse_config.get('prompt_template')}`)"
    else:
        mlp_note = ""
    st_note = ("`SentenceTransformer(path)` also loads it with the right pooling."
               if (Path(directory) / "modules.json").exists()
               else "sentence-transformers has no pooling for this pooler (a layer average or a prompt template), so use simcse_lab.")
    card = CARD.format(
        title=f"SimCSE encoder ({final_path.name})", pooler=pooler, mlp_note=mlp_note, path=str(final_path),
        st_note=st_note, training=json.dumps(simcse_config.get("training", {}), indent=2) or "{}",
    )
    existing = Path(directory) / "README.md"
    if existing.exists() and "simcse_lab: keep" in existing.read_text():
        return  # a hand-written card (the embedded default's) is kept
    existing.write_text(card)
