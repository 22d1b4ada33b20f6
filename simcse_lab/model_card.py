"""The README.md model card written beside every saved encoder."""

from __future__ import annotations

import json
from pathlib import Path

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


def write_model_card(directory: Path, simcse_config: dict, name: str | None = None) -> None:
    pooler = simcse_config["pooler"]
    if pooler == "cls" and simcse_config.get("mlp_at_inference"):
        mlp_note = " with the MLP head at inference (stored in `2_Dense/` and as the BERT pooler: `pooler_output`)"
    elif pooler == "cls":
        mlp_note = " (MLP head used in training only; inference uses the [CLS] state)"
    else:
        mlp_note = ""
    st_note = ("`SentenceTransformer(path)` also loads it with the right pooling."
               if (Path(directory) / "modules.json").exists()
               else "sentence-transformers has no layer-averaging pooling, so use simcse_lab for this pooler.")
    card = CARD.format(
        title=f"SimCSE encoder ({Path(directory).name})", pooler=pooler, mlp_note=mlp_note, path=str(directory),
        st_note=st_note, training=json.dumps(simcse_config.get("training", {}), indent=2) or "{}",
    )
    existing = Path(directory) / "README.md"
    if existing.exists() and "simcse_lab: keep" in existing.read_text():
        return  # a hand-written card (the embedded default's) is kept
    existing.write_text(card)
