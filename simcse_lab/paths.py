"""Where things are: the embedded default encoder and the data directory."""

from __future__ import annotations

import os
from pathlib import Path

DATA_ENV_VAR = "SIMCSE_LAB_DATA"

_REPO_DEFAULT_MODEL = Path(__file__).resolve().parent.parent / "data" / "models" / "bert-mini-mlm"


def _default_model_path() -> str:
    """The checked-out repo's data/models/bert-mini-mlm, or the copy shipped inside the wheel."""
    if (_REPO_DEFAULT_MODEL / "config.json").exists():
        return str(_REPO_DEFAULT_MODEL)
    return str(Path(__file__).resolve().parent / "default_model")  # the wheel maps data/models/bert-mini-mlm here


#: Path of the small BERT that simcse_lab pre-trains with MLM and ships (4 layers, hidden 256).
#: `SimCSEEncoder.from_pretrained(DEFAULT_MODEL)` works offline.
DEFAULT_MODEL: str = _default_model_path()


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> Path | None:
    """The local data directory: the argument, else $SIMCSE_LAB_DATA, else None (download)."""
    chosen = data_dir if data_dir is not None else os.environ.get(DATA_ENV_VAR) or None
    return Path(chosen).expanduser() if chosen else None
