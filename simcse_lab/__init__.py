"""simcse_lab: SimCSE (Gao, Yao & Chen, EMNLP 2021), faithfully implemented, tested and visualised.

The layers, from the bottom: `losses`, `geometry`, `augment` and `errors` (pure functions); `data`
(STS sets, training files, corpora); `models` (the encoder); `evaluation` (STS scoring); `training`
(the trainer); `pretrain` (the default encoder's MLM recipe); `apps` (search tool, figures, widgets);
`commands` (the CLI). `simcse_lab.train` and `simcse_lab.evaluate` are the public entry points of
training and evaluation.
"""

from .paths import DEFAULT_MODEL
from .models import POOLERS, SimCSEEncoder
from .apps.search import SimCSE
from . import losses, geometry

__all__ = ["DEFAULT_MODEL", "POOLERS", "SimCSE", "SimCSEEncoder", "losses", "geometry"]
__version__ = "0.1.0"
