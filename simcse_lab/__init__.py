"""simcse_lab: SimCSE (Gao, Yao & Chen, EMNLP 2021), faithfully implemented, tested and visualised."""

from .paths import DEFAULT_MODEL
from .encoder import POOLERS, SimCSEEncoder
from .search import SimCSE
from . import losses, geometry

__all__ = ["DEFAULT_MODEL", "POOLERS", "SimCSE", "SimCSEEncoder", "losses", "geometry"]
__version__ = "0.1.0"
