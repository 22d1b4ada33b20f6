"""Post-processing transforms applied at encode time: BERT-whitening and BERT-flow.

Both fix anisotropy after the fact, on a frozen encoder: whitening in closed form (linear), flow by
maximum likelihood (non-linear, invertible). Either one composes with any encoder:

    encoder = SimCSEEncoder.from_pretrained(simcse_lab.DEFAULT_MODEL)
    fit_postprocess(encoder, sentences, kind="whitening")   # attaches encoder.postprocess
    encoder.encode(["a sentence"])                            # whitened
    encoder.save_pretrained("out")                            # saved in out/postprocess/, reloaded by from_pretrained

A transform is a callable (N, D) -> (N, K) with `save(directory)`; `load_postprocess` reads it back.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

from safetensors.torch import load_file, save_file

from ..errors import SimCSELabError, unknown_choice
from ..geometry import Whitening
from .files import check_input_dim, read_model_json, safetensors_problem

POSTPROCESS_DIR = "postprocess"
POSTPROCESS_KINDS = ("whitening", "flow")


class WhiteningTransform(Whitening):
    """BERT-whitening as an encode-time transform that saves beside the encoder."""

    kind = "whitening"

    @property
    def output_dim(self) -> int:
        return int(self.kernel.shape[1])

    def save(self, directory) -> Path:
        target = Path(directory) / POSTPROCESS_DIR
        target.mkdir(parents=True, exist_ok=True)
        save_file({k: v.float().contiguous() for k, v in self.state_dict().items()}, str(target / "whitening.safetensors"))
        (target / "config.json").write_text(json.dumps({"kind": "whitening", "k": int(self.kernel.shape[1])}, indent=2) + "\n")
        return target

    @classmethod
    def load(cls, directory, input_dim: int | None = None) -> "WhiteningTransform":
        path = Path(directory) / POSTPROCESS_DIR / "whitening.safetensors"
        if (problem := safetensors_problem(path)) is not None:
            raise SimCSELabError(f"{Path(directory) / POSTPROCESS_DIR}: {problem}; fit and save the whitening again")
        state = load_file(str(path))
        mean, kernel = state.get("mean"), state.get("kernel")
        if mean is None or kernel is None or mean.dim() != 1 or kernel.dim() != 2 or kernel.shape[0] != mean.shape[0]:
            raise SimCSELabError(f"{path} does not hold a whitening (a mean (D,) and a kernel (D, k)); fit and save it again")
        check_input_dim("whitening", int(mean.shape[0]), input_dim, path)
        return cls(mean=mean.double(), kernel=kernel.double())


def load_postprocess(directory, input_dim: int | None = None):
    """The transform saved in directory/postprocess, or None if there is none; input_dim: the encoder's hidden size."""
    config_path = Path(directory) / POSTPROCESS_DIR / "config.json"
    if not config_path.is_file():
        return None
    kind = read_model_json(config_path, "post-processing config").get("kind")
    if kind == "whitening":
        return WhiteningTransform.load(directory, input_dim)
    if kind == "flow":
        from .flow import FlowTransform  # noqa: PLC0415

        return FlowTransform.load(directory, input_dim)
    raise SimCSELabError(f"{config_path}: unknown post-processing kind {kind!r}; valid kinds are: {', '.join(POSTPROCESS_KINDS)}")


def fit_postprocess(encoder, sentences: Sequence[str], kind: str = "whitening", batch_size: int = 64, max_length: int = 128, **options):
    """Encode `sentences` with the bare encoder, fit a transform on them, attach it and return it.

    options: whitening takes k (dimensions kept); flow takes its training options (see simcse_lab.flow).
    """
    if kind not in POSTPROCESS_KINDS:
        raise unknown_choice("post-processing kind", kind, POSTPROCESS_KINDS)
    encoder.postprocess = None
    embeddings = encoder.encode(list(sentences), batch_size=batch_size, max_length=max_length)
    if kind == "whitening":
        base = Whitening.fit(embeddings, k=options.pop("k", None))
        transform = WhiteningTransform(mean=base.mean, kernel=base.kernel)
    else:
        from .flow import FlowTransform  # noqa: PLC0415

        transform = FlowTransform.fit(embeddings, **options)
    encoder.postprocess = transform
    return transform
