"""Multi-process training against one process on the concatenated batch (CPU, gloo, 2 ranks).

Each rank embeds its half of the batch through DDP, `DistributedContext.gather` all-gathers the
embeddings with gradients, and the loss uses the global batch's negatives. The reference is the
same objective in one process over both halves. Dropout is off so both sides are deterministic;
losses and DDP-averaged gradients must agree to ~1e-6.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp

from simcse_lab.data import TrainingData
from simcse_lab.models.encoder import SimCSEEncoder
from simcse_lab.training.distributed import DistributedContext
from simcse_lab.training.objectives import build_objective
from simcse_lab.train import TrainConfig, freeze_unused_backbone_pooler

from conftest import WORDS

WORLD = 2
PER_RANK = 6
SENTENCES = [" ".join(WORDS[(5 * i + j * 7) % len(WORDS)] for j in range(2 + (3 * i) % 9)) for i in range(PER_RANK * WORLD)]
CASES = {  # name: (training rows, pooler, gradient_cache_chunk_size)
    "unsup": ([(s,) for s in SENTENCES], "cls", 0),
    "triplets": ([(s, SENTENCES[(i + 3) % len(SENTENCES)], SENTENCES[(i + 7) % len(SENTENCES)]) for i, s in enumerate(SENTENCES)], "avg", 0),
    "unsup_cached": ([(s,) for s in SENTENCES], "cls", 4),
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def loss_and_grads(model_dir: str, case: str, dist: DistributedContext, rows: np.ndarray):
    """One training step's loss and gradients, through the trainer's own objective and DDP wrapper."""
    data_rows, pooler, chunk_size = CASES[case]
    data = TrainingData("unsup" if len(data_rows[0]) == 1 else "triplets", data_rows)
    config = TrainConfig(train_file="unused.txt", pooler_type=pooler, temp=0.05, dropout=0.0,
                         hard_negative_weight=0.2 if data.mode == "triplets" else 0.0,
                         gradient_cache_chunk_size=chunk_size, show_progress=False)
    torch.manual_seed(0)  # the same MLP head initialisation on every rank
    encoder = SimCSEEncoder.from_pretrained(model_dir, pooler=pooler, device="cpu", dropout=0.0)
    freeze_unused_backbone_pooler(encoder)
    encoder.train()
    objective = build_objective(config, data, encoder, torch.device("cpu"), dist)
    model = dist.wrap(encoder)
    loss = objective.loss(model, rows)
    objective.backward(loss)
    grads = {name: p.grad.clone() for name, p in encoder.named_parameters() if p.grad is not None}
    return float(loss.detach()), grads


def worker(rank: int, model_dir: str, case: str, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), TOKENIZERS_PARALLELISM="false")
    torch.set_num_threads(1)
    torch.distributed.init_process_group("gloo", rank=rank, world_size=WORLD)
    try:
        dist = DistributedContext(torch.device("cpu"), rank, WORLD)
        rows = np.arange(rank * PER_RANK, (rank + 1) * PER_RANK)  # the trainer's slice of the global batch
        loss, grads = loss_and_grads(model_dir, case, dist, rows)
        torch.save({"loss": loss, "grads": grads}, Path(out) / f"rank{rank}.pt")
        torch.distributed.barrier()  # neither rank tears gloo down while the other still talks to it
    finally:
        torch.distributed.destroy_process_group()


@pytest.mark.parametrize("case", sorted(CASES))
def test_two_ranks_equal_one_process_on_the_concatenated_batch(tiny_model_dir, tmp_path, case):
    mp.spawn(worker, args=(str(tiny_model_dir), case, free_port(), str(tmp_path)), nprocs=WORLD, join=True)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(WORLD)]
    loss, grads = loss_and_grads(str(tiny_model_dir), case, DistributedContext(torch.device("cpu")), np.arange(WORLD * PER_RANK))

    for result in ranks:  # every rank computes the loss of the global batch
        assert result["loss"] == pytest.approx(loss, abs=1e-6)
    assert grads.keys() == ranks[0]["grads"].keys() and len(grads) > 10
    for name, expected in grads.items():
        for result in ranks:  # DDP leaves the same averaged gradients on every rank
            torch.testing.assert_close(result["grads"][name], expected, atol=1e-7, rtol=1e-4, msg=f"{case}: {name}")
    assert loss > 0.5 and max(float(g.abs().max()) for g in grads.values()) > 1e-4  # a real step, not a degenerate one


def run_train(args: list[str], command: list[str], cwd: Path) -> list[float]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    done = subprocess.run([*command, "-m", "simcse_lab", "train", *args], cwd=cwd, env=env, timeout=300,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert done.returncode == 0, f"{' '.join(command[:6])} ... exited with {done.returncode}:\n{done.stdout[-4000:]}"
    output_dir = Path(args[args.index("--output_dir") + 1])
    return [record["loss"] for record in json.loads((output_dir / "history.json").read_text())]


def test_torchrun_two_ranks_follow_one_process(tiny_model_dir, tmp_path):
    """End to end: `torchrun --nproc_per_node 2 -m simcse_lab train` at batch 4 per rank logs the same
    losses, step by step, as one process at batch 8 (dropout off, the same data order)."""
    train_file = tmp_path / "sentences.txt"
    train_file.write_text("\n".join(SENTENCES * 3) + "\n")
    common = ["--train_file", str(train_file), "--model_name_or_path", str(tiny_model_dir), "--pooler_type", "avg",
              "--max_steps", "4", "--eval_steps", "0", "--logging_steps", "1", "--dropout", "0.0", "--learning_rate", "1e-3",
              "--no_progress"]
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(WORLD)]
    distributed = run_train([*common, "--per_device_train_batch_size", "4", "--output_dir", str(tmp_path / "ddp")], torchrun, tmp_path)
    single = run_train([*common, "--per_device_train_batch_size", "8", "--output_dir", str(tmp_path / "one")], [sys.executable], tmp_path)
    assert len(single) == 4
    assert distributed == pytest.approx(single, rel=1e-4)
    assert (tmp_path / "ddp" / "model.safetensors").is_file()


def test_torchrun_with_an_indexed_cuda_device_trains_on_the_gpu_of_each_rank(monkeypatch):
    """Regression: `--device cuda:0` under torchrun fell through to the CPU and gloo, silently (only "auto" and "cuda"
    were recognised). Each rank now takes its own GPU (LOCAL_RANK) with NCCL, as the HF Trainer does. No GPU here:
    torch's CUDA and process-group calls are replaced by recorders."""
    import torch.distributed as torch_dist

    calls = []
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "set_device", lambda device: calls.append(("set_device", str(device))))
    monkeypatch.setattr(torch_dist, "is_initialized", lambda: False)
    monkeypatch.setattr(torch_dist, "init_process_group", lambda backend: calls.append(("init", backend)))
    monkeypatch.setattr(torch_dist, "get_rank", lambda: 1)
    for name in ("cuda:0", "cuda", "auto"):
        calls.clear()
        context = DistributedContext.from_environment(name)
        assert (str(context.device), context.rank, context.world_size) == ("cuda:1", 1, 2), name
        assert calls == [("set_device", "cuda:1"), ("init", "nccl")], name
    calls.clear()
    assert str(DistributedContext.from_environment("cpu").device) == "cpu" and calls == [("init", "gloo")]


def skip_worker(rank: int, model_dir: str, port: int, out: str) -> None:
    """One training step under DDP with on_nonfinite=skip, where only rank 0's loss is NaN."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), TOKENIZERS_PARALLELISM="false")
    torch.set_num_threads(1)
    torch.distributed.init_process_group("gloo", rank=rank, world_size=WORLD)
    try:
        from simcse_lab.training.trainer import TrainingStep

        dist = DistributedContext(torch.device("cpu"), rank, WORLD)
        data = TrainingData("unsup", [(s,) for s in SENTENCES])
        config = TrainConfig(train_file="unused.txt", pooler_type="avg", on_nonfinite="skip", dropout=0.0, show_progress=False)
        encoder = SimCSEEncoder.from_pretrained(model_dir, pooler="avg", device="cpu", dropout=0.0)
        freeze_unused_backbone_pooler(encoder)
        objective = build_objective(config, data, encoder, torch.device("cpu"), dist)
        real_loss = objective.loss
        objective.loss = lambda model, rows: real_loss(model, rows) * (float("nan") if rank == 0 else 1.0)
        step = TrainingStep(config, encoder, objective, dist, max_steps=4)
        before = {name: p.detach().clone() for name, p in encoder.named_parameters()}
        took = step.run(np.arange(rank * PER_RANK, (rank + 1) * PER_RANK))
        moved = any(not torch.equal(before[name], p) for name, p in encoder.named_parameters())
        (Path(out) / f"rank{rank}.json").write_text(json.dumps({"took": took, "moved": moved}))
        torch.distributed.barrier()
    finally:
        torch.distributed.destroy_process_group()


def test_ranks_agree_to_skip_a_step_that_is_nan_on_one_of_them(tiny_model_dir, tmp_path):
    """Regression: with --on_nonfinite skip each rank decided alone, so the rank with the NaN skipped its backward
    while the other waited in DDP's gradient all-reduce (a hang, or mismatched collectives). Both must skip."""
    context = mp.start_processes(skip_worker, args=(str(tiny_model_dir), free_port(), str(tmp_path)), nprocs=WORLD, join=False,
                                 start_method="spawn")
    deadline = time.monotonic() + 240
    while not context.join(timeout=5):
        if time.monotonic() > deadline:
            for process in context.processes:
                process.kill()
            pytest.fail("the ranks did not finish the step within 240 s: they disagreed about skipping it")
    results = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(WORLD)]
    assert results == [{"took": False, "moved": False}] * WORLD


@pytest.mark.slow
def test_torchrun_accumulation_and_the_last_incomplete_batch_follow_one_process(tiny_model_dir, tmp_path):
    """Two ranks of 2 with 2 accumulated batches per step and HF's last incomplete batch kept: the batches' losses and
    all-reduced gradients (once per step, the other batches under no_sync) follow one process of 4 with the same
    accumulation. 22 rows: 6 batches of 4 (the last of 2, one row per rank), in 3 steps per epoch."""
    train_file = tmp_path / "sentences.txt"
    train_file.write_text("\n".join((SENTENCES * 3)[:22]) + "\n")
    common = ["--train_file", str(train_file), "--model_name_or_path", str(tiny_model_dir), "--pooler_type", "avg",
              "--num_train_epochs", "2", "--eval_steps", "0", "--logging_steps", "1", "--dropout", "0.0", "--learning_rate", "1e-3",
              "--gradient_accumulation_steps", "2", "--dataloader_drop_last", "False", "--no_progress"]
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(WORLD)]
    distributed = run_train([*common, "--per_device_train_batch_size", "2", "--output_dir", str(tmp_path / "ddp")], torchrun, tmp_path)
    single = run_train([*common, "--per_device_train_batch_size", "4", "--output_dir", str(tmp_path / "one")], [sys.executable], tmp_path)
    assert len(single) == 6
    assert distributed == pytest.approx(single, rel=1e-4)
