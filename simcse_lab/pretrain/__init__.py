"""MLM pre-training of the small BERT that simcse_lab ships as its default encoder (`simcse-lab pretrain`)."""

from .config import PretrainConfig, PretrainResult, add_pretrain_arguments, config_from_args
from .run import masked_lm_loss, pretrain

__all__ = ["PretrainConfig", "PretrainResult", "add_pretrain_arguments", "config_from_args", "masked_lm_loss", "pretrain"]
