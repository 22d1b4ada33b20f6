"""Public entry point of training (`from simcse_lab.train import TrainConfig, train`); the code is in
`simcse_lab.training`."""

from .training.config import TrainConfig
from .training.trainer import TrainResult, TrainState, freeze_unused_backbone_pooler, train

__all__ = ["TrainConfig", "TrainResult", "TrainState", "freeze_unused_backbone_pooler", "train"]
