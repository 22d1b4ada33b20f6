"""The HF TrainingArguments the official runs use, with their HF meaning: gradient accumulation, the last incomplete
batch, AdamW's settings and weight-decay exemptions, the schedules, warm-up steps; and the MLM / padding flags."""

import math

import numpy as np
import pytest
import torch

from simcse_lab.data.training_files import TrainingData
from simcse_lab.train import TrainConfig
from simcse_lab.training.distributed import DistributedContext
from simcse_lab.training.objectives import build_objective
from simcse_lab.training.sampling import StepPlan
from simcse_lab.training.schedule import schedule_factor
from simcse_lab.training.trainer import TrainingStep, build_optimizer, load_model_and_objective

SENTENCES = ["a man plays the guitar", "a woman reads a book", "the dog runs in the park", "two men are eating food",
             "a child sings", "the red car is on the road", "a cat sleeps on the chair", "people walk in the street"]
CPU = DistributedContext(torch.device("cpu"))


def tiny_setup(model_dir, **settings):
    config = TrainConfig(model_name_or_path=str(model_dir), train_file="unused.txt", pooler_type="avg", dropout=0.0,
                         max_grad_norm=0.0, **settings)
    encoder, objective = load_model_and_objective(config, TrainingData("unsup", [(s,) for s in SENTENCES]), None, CPU)
    return config, encoder, objective


def test_step_plan_cuts_epochs_as_hf_batches_do():
    order = np.array([5, 2, 9, 0, 7, 1, 8, 3, 6, 4])  # one epoch's shuffled order
    plan = StepPlan(10, per_device=4, world_size=1, rank=0, accumulation=1, drop_last=True)
    assert plan.steps_per_epoch == 2 and [r.tolist() for s in range(2) for r in plan.rows(order, s)] == [[5, 2, 9, 0], [7, 1, 8, 3]]
    plan = StepPlan(10, 4, 1, 0, accumulation=1, drop_last=False)  # HF's default: the last batch of 2 is kept
    assert plan.steps_per_epoch == 3 and plan.rows(order, 2)[0].tolist() == [6, 4]
    plan = StepPlan(10, 4, 1, 0, accumulation=2, drop_last=False)  # two batches per optimiser step, the last step has one
    assert plan.steps_per_epoch == 2
    assert [r.tolist() for r in plan.rows(order, 0)] == [[5, 2, 9, 0], [7, 1, 8, 3]] and [r.tolist() for r in plan.rows(order, 1)] == [[6, 4]]
    # two ranks of 2: the incomplete last global batch (3 rows) is shared out 2 + 2, filled up from the order's start
    ranks = [StepPlan(11, 2, 2, rank, 1, False) for rank in (0, 1)]
    order = np.arange(11)
    assert ranks[0].steps_per_epoch == 3
    assert [plan.rows(order, 0)[0].tolist() for plan in ranks] == [[0, 1], [2, 3]]
    assert [plan.rows(order, 2)[0].tolist() for plan in ranks] == [[8, 9], [10, 0]]


def test_gradient_accumulation_averages_the_batches_losses_without_adding_negatives(tiny_model_dir):
    # a learning rate too small to move float32 weights: the reference below sees the same weights
    config, encoder, objective = tiny_setup(tiny_model_dir, per_device_train_batch_size=4, gradient_accumulation_steps=2,
                                            learning_rate=1e-30)
    step = TrainingStep(config, encoder, objective, CPU, max_steps=10)
    captured, zero_grad = {}, step.optimizer.zero_grad

    def capture_then_zero(set_to_none=True):  # the step's gradients, read just before the trainer clears them
        captured.update({id(p): p.grad.clone() for p in step.parameters if p.grad is not None})
        zero_grad(set_to_none=set_to_none)

    step.optimizer.zero_grad = capture_then_zero
    first, second = np.arange(4), np.arange(4, 8)
    assert step.run([first, second])

    # the reference: the gradient of the mean of the two batches' losses, each with its own 3 negatives
    losses = [objective.loss(encoder, rows) for rows in (first, second)]
    ((losses[0] + losses[1]) / 2).backward()
    losses = [loss.detach() for loss in losses]
    assert captured and all(torch.allclose(captured[id(p)], p.grad, rtol=1e-4, atol=1e-6) for p in step.parameters if p.grad is not None)
    assert step.take_mean_loss() == pytest.approx(float(losses[0] + losses[1]) / 2, rel=1e-5)  # what is logged
    # ... which is not the loss of the batch of 8, where every sentence has 7 negatives
    with torch.no_grad():
        assert float(objective.loss(encoder, np.arange(8))) > float(losses[0] + losses[1]) / 2 + 0.1


def test_adamw_takes_the_hf_settings_and_exempts_biases_and_layernorm_from_weight_decay(tiny_model_dir):
    from transformers.trainer_pt_utils import get_parameter_names

    config, encoder, objective = tiny_setup(tiny_model_dir, weight_decay=0.01, adam_beta1=0.8, adam_beta2=0.99, adam_epsilon=1e-6)
    parameters = [p for p in encoder.parameters() if p.requires_grad]
    optimizer = build_optimizer(parameters, config, torch.device("cpu"), modules=(encoder, objective))
    names = {id(p): n for n, p in encoder.named_parameters()}
    # the HF Trainer's rule (create_optimizer): decay everything outside LayerNorm modules whose name has no "bias"
    hf_decay = {n for n in get_parameter_names(encoder, [torch.nn.LayerNorm]) if "bias" not in n}
    decayed = {names[id(p)] for group in optimizer.param_groups if group["weight_decay"] > 0 for p in group["params"]}
    assert decayed == hf_decay & {names[id(p)] for p in parameters}
    assert {g["weight_decay"] for g in optimizer.param_groups} == {0.01, 0.0}
    assert all(g["betas"] == (0.8, 0.99) and g["eps"] == 1e-6 for g in optimizer.param_groups)


@pytest.mark.parametrize("kind", ["linear", "constant", "constant_with_warmup", "cosine"])
def test_schedules_are_hf_schedules_of_the_same_names(kind):
    import transformers

    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    warmup, total = 3, 11
    reference = {"linear": lambda: transformers.get_linear_schedule_with_warmup(optimizer, warmup, total),
                 "constant": lambda: transformers.get_constant_schedule(optimizer),
                 "constant_with_warmup": lambda: transformers.get_constant_schedule_with_warmup(optimizer, warmup),
                 "cosine": lambda: transformers.get_cosine_schedule_with_warmup(optimizer, warmup, total)}[kind]().lr_lambdas[0]
    for step in range(total + 2):
        assert math.isclose(schedule_factor(kind, step, warmup, total), reference(step), abs_tol=1e-12), (kind, step)


def test_warmup_steps_override_the_ratio_and_reach_the_scheduler(tiny_model_dir):
    config, encoder, objective = tiny_setup(tiny_model_dir, warmup_steps=4, warmup_ratio=0.5, lr_scheduler_type="constant_with_warmup",
                                            learning_rate=1e-3)
    step = TrainingStep(config, encoder, objective, CPU, max_steps=100)
    assert step.scheduler.get_last_lr()[0] == 0.0
    lrs = []
    for _ in range(6):
        step.optimizer.step()
        step.scheduler.step()
        lrs.append(step.scheduler.get_last_lr()[0])
    np.testing.assert_allclose(lrs, [2.5e-4, 5e-4, 7.5e-4, 1e-3, 1e-3, 1e-3])


def test_pad_to_max_length_and_mlm_probability_reach_the_objective(tiny_model_dir):
    config, encoder, _ = tiny_setup(tiny_model_dir, max_seq_length=24, pad_to_max_length=True, do_mlm=True, mlm_probability=0.3)
    data = TrainingData("unsup", [(s,) for s in SENTENCES])
    objective = build_objective(config, data, encoder, torch.device("cpu"), CPU)
    ids, mask = objective.batch(np.arange(4))
    assert ids.shape == (8, 24) and int(mask.sum(1).max()) < 24  # padded beyond the longest sentence, to max_seq_length
    assert objective.mlm_head.mlm_probability == 0.3
    unpadded = build_objective(TrainConfig(**{**config.recipe(), "pad_to_max_length": False}), data, encoder, torch.device("cpu"), CPU)
    assert unpadded.batch(np.arange(4))[0].shape[1] == int(mask.sum(1).max())
