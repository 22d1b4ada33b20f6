"""Data: STS evaluation sets, SentEval's transfer sets, SimCSE's training files, NLI pairs and the local sentence corpora.

Every loader reads `data_dir`, defaulting to $SIMCSE_LAB_DATA (a folder in SentEval's layout), and
falls back to the Hugging Face hub where a copy exists there.
"""

from .corpus import write_unsup_training_file
from .nli import load_nli_pairs, write_nli_csv
from .sts import ALL7, STS_TASKS, TASK_DISPLAY_NAMES, load_sts
from .training_files import TrainingData, download_simcse_training_file, load_training_file, read_sentences

__all__ = ["ALL7", "STS_TASKS", "TASK_DISPLAY_NAMES", "TrainingData", "download_simcse_training_file", "load_nli_pairs",
           "load_sts", "load_training_file", "read_sentences", "write_nli_csv", "write_unsup_training_file"]
