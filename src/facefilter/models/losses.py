"""Pure loss functions: tensors in, `(loss, logs)` out.

Every function returns the scalar to optimise and a dict of detached 0-d tensors to
log, so a family's `train_step` reads as a sum of named terms, the logs stay generic,
and nothing waits for the device until the engine logs (`.item()` only there).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from facefilter.models.base import StepLogs

Logs = StepLogs  # losses as detached 0-d tensors


def lsgan_generator(fake_logits: Tensor, name: str = "g_gan") -> tuple[Tensor, Logs]:
    """Least-squares GAN loss for the generator: push D(fake) towards 1."""
    loss = F.mse_loss(fake_logits, torch.ones_like(fake_logits))
    return loss, {name: loss.detach()}


def lsgan_discriminator(
    real_logits: Tensor, fake_logits: Tensor, name: str = "d"
) -> tuple[Tensor, Logs]:
    """Least-squares GAN loss for the discriminator, halved as in CycleGAN."""
    real = F.mse_loss(real_logits, torch.ones_like(real_logits))
    fake = F.mse_loss(fake_logits, torch.zeros_like(fake_logits))
    loss = 0.5 * (real + fake)
    return loss, {name: loss.detach(), f"{name}_real": real.detach(), f"{name}_fake": fake.detach()}


def l1(prediction: Tensor, target: Tensor, name: str) -> tuple[Tensor, Logs]:
    loss = F.l1_loss(prediction, target)
    return loss, {name: loss.detach()}


def mse(prediction: Tensor, target: Tensor, name: str) -> tuple[Tensor, Logs]:
    loss = F.mse_loss(prediction, target)
    return loss, {name: loss.detach()}


def gaussian_kl(mean: Tensor, logvar: Tensor, name: str = "kl") -> tuple[Tensor, Logs]:
    """KL(N(mean, exp(logvar)) || N(0, 1)), summed over latent dims, mean over batch."""
    kl = -0.5 * (1 + logvar - mean.pow(2) - logvar.exp())  # (B, D)
    loss = kl.flatten(1).sum(1).mean()
    return loss, {name: loss.detach()}


MMD_SCALES = (1e-2, 1e-1, 1.0, 10.0, 100.0)  # kernel bandwidths, relative to the feature width


def rbf_kernel(points: Tensor, scales: tuple[float, ...] = MMD_SCALES) -> Tensor:
    """(N, D) points -> (N, N): a sum of Gaussian kernels exp(-||a - b||^2 / (2 s D))."""
    sq_dist = torch.cdist(points, points).pow(2)
    kernel = sum(torch.exp(-sq_dist / (2 * s * points.shape[1])) for s in scales)
    assert isinstance(kernel, Tensor)
    return kernel


def multiscale_rbf_mmd(x: Tensor, y: Tensor, scales: tuple[float, ...] = MMD_SCALES) -> Tensor:
    """Squared maximum mean discrepancy between samples `x` (N, D) and `y` (M, D).

    A sum of Gaussian kernels exp(-||a - b||^2 / (2 * s * D)) over several
    bandwidths `s` (relative to the feature dimension D), so the term stays
    informative whatever the scale of the activations: trVAE's MMD layer.
    """
    x, y = x.flatten(1), y.flatten(1)
    kernel = rbf_kernel(torch.cat([x, y]), scales)  # (N+M, N+M)
    n = x.shape[0]
    k_xx, k_yy, k_xy = kernel[:n, :n], kernel[n:, n:], kernel[:n, n:]
    return k_xx.mean() + k_yy.mean() - 2 * k_xy.mean()


def mmd_across_classes(
    features: Tensor, labels: Tensor, classes: int, name: str = "mmd"
) -> tuple[Tensor, Logs]:
    """Mean MMD between each pair of classes (of `classes`) present in the batch.

    trVAE pulls the first decoder layer's activations of different classes
    together, which forces the encoder to strip the class out of the code.
    Classes with fewer than two samples in the batch are skipped. Every pair is read off
    one kernel matrix through per-class weights, with no look at which labels are
    present, so the step never waits on the device: MMD(a, b) = w_a K w_a + w_b K w_b -
    2 w_a K w_b with w_c the mean over class c's samples (`multiscale_rbf_mmd` per pair).
    """
    kernel = rbf_kernel(features.flatten(1))  # (B, B)
    members = F.one_hot(labels, classes).to(kernel.dtype)  # (B, C)
    counts = members.sum(0)  # (C,)
    weights = members / counts.clamp(min=1)  # each class's mean
    between = weights.T @ kernel @ weights  # (C, C): mean kernel between two classes
    within = between.diagonal()
    mmd = within[:, None] + within[None, :] - 2 * between  # (C, C)
    present = counts >= 2
    pairs = (present[:, None] & present[None, :]).triu(diagonal=1).to(kernel.dtype)
    loss = (mmd * pairs).sum() / pairs.sum().clamp(min=1)  # 0 (with a gradient) for none
    return loss, {name: loss.detach()}


def feature_mse(
    predicted: Sequence[Tensor], target: Sequence[Tensor], name: str = "dfc"
) -> tuple[Tensor, Logs]:
    """Deep-feature-consistent loss (Hou et al. 2016): the MSE between the activations of
    a fixed network (VGG19) for the output and for the target, summed over layers."""
    terms = [F.mse_loss(p, t) for p, t in zip(predicted, target, strict=True)]
    loss = torch.stack(terms).sum()
    return loss, {name: loss.detach()}


def wgan_critic(real_scores: Tensor, fake_scores: Tensor, name: str = "d") -> tuple[Tensor, Logs]:
    """Wasserstein critic loss (Arjovsky et al. 2017): score real images up, fakes down.
    `name`_distance is the critic's estimate of the distance between the two sets."""
    distance = real_scores.mean() - fake_scores.mean()
    return -distance, {name: -distance.detach(), f"{name}_distance": distance.detach()}


def wgan_generator(fake_scores: Tensor, name: str = "g_gan") -> tuple[Tensor, Logs]:
    loss = -fake_scores.mean()
    return loss, {name: loss.detach()}


def gradient_penalty(
    scores: Tensor, inputs: Tensor, name: str = "d_penalty"
) -> tuple[Tensor, Logs]:
    """WGAN-GP (Gulrajani et al. 2017): mean (||d score / d input|| - 1)^2 per image, for
    `scores` (B,) computed from `inputs` (B, ...), which must require grad."""
    (grads,) = torch.autograd.grad(scores.sum(), inputs, create_graph=True)
    penalty = (grads.flatten(1).norm(dim=1) - 1).pow(2).mean()
    return penalty, {name: penalty.detach()}


def r1_penalty(real_scores: Tensor, real: Tensor, name: str = "d_r1") -> tuple[Tensor, Logs]:
    """R1 (Mescheder et al. 2018): mean ||d score / d real||^2 on the real images alone,
    for `real_scores` (B,) computed from `real`, which must require grad. Weighted by
    gamma / 2 it keeps a GAN discriminator from growing steep where the data lie."""
    (grads,) = torch.autograd.grad(real_scores.sum(), real, create_graph=True)
    penalty = grads.flatten(1).pow(2).sum(dim=1).mean()
    return penalty, {name: penalty.detach()}


def misjudged(real_scores: Tensor, fake_scores: Tensor, gan_loss: str) -> Tensor:
    """The share of images the critic puts on the wrong side: a reading of how well it
    tells the sets apart, where a Wasserstein loss has no scale. The line is 0 for the
    GAN loss's logits, halfway between the two mean scores for a critic."""
    line = 0.0 if gan_loss == "gan" else (real_scores.mean() + fake_scores.mean()) / 2
    wrong = (real_scores < line).float().mean() + (fake_scores > line).float().mean()
    return wrong / 2  # a tensor: read when logged, not now


def bce_discriminator(
    real_logits: Tensor, fake_logits: Tensor, name: str = "d"
) -> tuple[Tensor, Logs]:
    """The original GAN's discriminator loss (DCGAN): -log D(real) - log(1 - D(fake))."""
    real, fake = F.softplus(-real_logits).mean(), F.softplus(fake_logits).mean()
    loss = real + fake
    return loss, {name: loss.detach(), f"{name}_real": real.detach(), f"{name}_fake": fake.detach()}


def bce_generator(fake_logits: Tensor, name: str = "g_gan") -> tuple[Tensor, Logs]:
    """The non-saturating generator loss, -log D(fake) (Goodfellow et al. 2014)."""
    loss = F.softplus(-fake_logits).mean()
    return loss, {name: loss.detach()}


def multilabel_bce(
    logits: Tensor, labels: Tensor, name: str = "attrs", rows: Tensor | None = None
) -> tuple[Tensor, Logs]:
    """Binary cross-entropy of (B, A) logits against (B, A) labels in {0, 1}, with the
    share of verdicts (logit > 0) that match: one independent yes/no per attribute.
    `rows` ((B,) of 0/1) counts only some rows: a weight, not an index, so the step never
    asks the device how many there are."""
    weight = torch.ones_like(logits) if rows is None else rows.to(logits)[:, None].expand_as(logits)
    total = weight.sum().clamp(min=1)
    loss = (F.binary_cross_entropy_with_logits(logits, labels, reduction="none") * weight).sum()
    accuracy = (((logits > 0).float() == labels).float() * weight).sum() / total
    return loss / total, {name: (loss / total).detach(), f"{name}_acc": accuracy.detach()}


def cross_entropy(logits: Tensor, labels: Tensor, name: str = "style") -> tuple[Tensor, Logs]:
    """Cross-entropy of (B, C) logits against (B,) class indices, with the accuracy."""
    loss = F.cross_entropy(logits, labels)
    accuracy = (logits.argmax(1) == labels).float().mean()
    return loss, {name: loss.detach(), f"{name}_acc": accuracy.detach()}
