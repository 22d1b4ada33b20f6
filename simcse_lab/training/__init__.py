"""Training: the config, the trainer loop, the objectives (SimCSE, SBERT, auxiliary MLM), the cached
loss, DDP and crash-safe checkpoints."""

from .config import TrainConfig
from .trainer import TrainResult, TrainState, train

__all__ = ["TrainConfig", "TrainResult", "TrainState", "train"]
