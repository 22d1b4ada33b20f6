"""Models: the sentence encoder (a Hugging Face backbone + a SimCSE pooler), how it loads and saves,
its own BERT forward, tokenisation into batches, and the encode-time post-processing (whitening, flow)."""

from .encoder import BERT_FORWARDS, POOLERS, SimCSEEncoder
from .postprocess import fit_postprocess

__all__ = ["BERT_FORWARDS", "POOLERS", "SimCSEEncoder", "fit_postprocess"]
