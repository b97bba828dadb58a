"""Learning-rate and loss-weight schedules as pure functions of the global step.

Nothing here keeps state: a run resumed at step k computes the same weights as
one that never stopped, which mutating a config or a scheduler object mid-run
cannot promise.
"""

from __future__ import annotations


def constant_then_linear_decay(step: int, total_steps: int, decay_start: float) -> float:
    """1.0 until `decay_start * total_steps`, then linearly down to 0 at `total_steps`.

    CycleGAN's schedule (100 epochs constant + 100 decaying is decay_start=0.5).
    """
    start = decay_start * total_steps
    if step < start or total_steps <= start:
        return 1.0
    return max(0.0, 1.0 - (step - start) / (total_steps - start))


def linear_warmup(step: int, warmup_steps: int) -> float:
    """0 -> 1 over `warmup_steps`, then 1 (KL / MMD warm-up of a VAE)."""
    if warmup_steps <= 0:
        return 1.0
    return min(1.0, step / warmup_steps)


def linear_decay(step: int, total_steps: int) -> float:
    """1 at step 0, falling linearly to 0 at `total_steps` (instance noise, annealing)."""
    if total_steps <= 0:
        return 0.0
    return max(0.0, 1.0 - step / total_steps)


def half_life(step: int, steps: float) -> float:
    """1 at step 0, halved every `steps` steps: deep-makeover's annealing temperature,
    which weighs its pixel loss, its instance noise and its learning rate."""
    return 0.5 ** (step / steps)
