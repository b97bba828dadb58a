"""Building blocks shared by the model families.

CycleGAN's ResNet generator and PatchGAN discriminator live here because the
other families (trVAE, the feature autoencoders, the makeover GAN) reuse their
parts: the conv-norm-activation unit, the residual block, the weight init and
the image pool.

Images are (B, 3, H, W) in [-1, 1] everywhere.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Literal

import torch
from torch import Tensor, nn

from facefilter.errors import UserError

NormKind = Literal["instance", "batch", "none"]
NORM_KINDS: tuple[str, ...] = ("instance", "batch", "none")
Activation = Literal["relu", "lrelu", "tanh", "none"]
PaddingMode = Literal["reflect", "replicate", "zeros"]
InitKind = Literal["normal", "xavier", "kaiming", "orthogonal"]


def norm_layer(kind: NormKind) -> Callable[[int], nn.Module]:
    """A factory `channels -> normalisation module`.

    Instance norm has no affine parameters and no running statistics, as in
    CycleGAN: a translator normalises each image on its own, in training and at
    inference alike.
    """
    if kind == "instance":
        return lambda channels: nn.InstanceNorm2d(channels, affine=False)
    if kind == "batch":
        return lambda channels: nn.BatchNorm2d(channels)
    if kind == "none":
        return lambda channels: nn.Identity()
    raise UserError(f"unknown norm {kind!r}; choose instance, batch or none")


def activation(kind: Activation) -> nn.Module:
    if kind == "relu":
        return nn.ReLU(inplace=True)
    if kind == "lrelu":
        return nn.LeakyReLU(0.2, inplace=True)  # 0.2: the DCGAN / PatchGAN slope
    if kind == "tanh":
        return nn.Tanh()
    return nn.Identity()


def conv_norm_act(
    in_ch: int,
    out_ch: int,
    kernel: int,
    stride: int = 1,
    norm: NormKind = "instance",
    act: Activation = "relu",
    padding_mode: PaddingMode = "reflect",
    dilation: int = 1,
) -> nn.Sequential:
    """Pad, convolve, normalise, activate; "same" size when stride is 1 and kernel odd.

    The conv has a bias only without a norm: a per-channel constant is exactly
    removed by the mean subtraction of instance or batch norm.
    """
    pad = dilation * (kernel // 2)
    layers: list[nn.Module] = []
    if padding_mode != "zeros" and pad > 0:
        pad_cls = nn.ReflectionPad2d if padding_mode == "reflect" else nn.ReplicationPad2d
        layers.append(pad_cls(pad))
        pad = 0
    layers.append(
        nn.Conv2d(in_ch, out_ch, kernel, stride, pad, dilation=dilation, bias=norm == "none")
    )
    layers += [norm_layer(norm)(out_ch), activation(act)]
    return nn.Sequential(*layers)


def upsample_conv(in_ch: int, out_ch: int, norm: NormKind = "instance") -> nn.Sequential:
    """x2 upsampling by a 3x3 stride-2 transposed conv: (B, in, H, W) -> (B, out, 2H, 2W).

    Chosen over resize-conv (nearest x2, then a 3x3 conv) for two reasons:
    it is the CycleGAN paper's layer, which both seed write-ups train, and
    it runs its conv at the input resolution, so it costs a quarter of the
    multiply-adds of resize-conv. The lite generator at 128 px needs 1.36 GMAC
    per frame with it against 1.81 with resize-conv (measured, one CPU thread:
    56 vs 80 ms), and that model has to run in real time. The price is a risk of
    checkerboard artifacts (Odena et al., 2016), which the identity loss
    penalises directly (any pattern added to a target-domain image costs L1).
    """
    conv = nn.ConvTranspose2d(in_ch, out_ch, 3, 2, 1, output_padding=1, bias=norm == "none")
    return nn.Sequential(conv, norm_layer(norm)(out_ch), activation("relu"))


class ResnetBlock(nn.Module):
    """x + F(x), F = pad-conv3-norm-relu-(dropout)-pad-conv3-norm; shape kept (B, C, H, W)."""

    def __init__(
        self,
        channels: int,
        norm: NormKind = "instance",
        padding: PaddingMode = "reflect",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = [conv_norm_act(channels, channels, 3, 1, norm, "relu", padding)]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        layers.append(conv_norm_act(channels, channels, 3, 1, norm, "none", padding))
        self.body = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class ResnetGenerator(nn.Module):
    """Johnson et al.'s ResNet translator, as CycleGAN uses it.

    (B, in_ch, H, W) -> 7x7 stem (ngf) -> `n_down` stride-2 convs (x2 channels
    each) -> `n_blocks` residual blocks at (H / 2**n_down) -> `n_down` transposed-conv
    upsamplings -> 7x7 conv -> tanh: (B, out_ch, H, W) in [-1, 1].
    H and W must be divisible by 2**n_down.
    """

    def __init__(
        self,
        in_ch: int = 3,
        out_ch: int = 3,
        ngf: int = 64,
        n_blocks: int = 9,
        n_down: int = 2,
        norm: NormKind = "instance",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.n_down = n_down
        layers: list[nn.Module] = [conv_norm_act(in_ch, ngf, 7, 1, norm)]
        channels = ngf
        for _ in range(n_down):
            layers.append(conv_norm_act(channels, channels * 2, 3, 2, norm, padding_mode="zeros"))
            channels *= 2
        layers += [ResnetBlock(channels, norm, dropout=dropout) for _ in range(n_blocks)]
        for _ in range(n_down):
            layers.append(upsample_conv(channels, channels // 2, norm))
            channels //= 2
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(channels, out_ch, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, images: Tensor) -> Tensor:
        factor = 2**self.n_down
        if images.shape[-2] % factor or images.shape[-1] % factor:
            raise UserError(
                f"image size {tuple(images.shape[-2:])} must be divisible by {factor}; "
                "resize or crop the input"
            )
        return self.model(images)


def strided_stem(
    in_ch: int, ndf: int, n_layers: int, norm: NormKind
) -> tuple[list[nn.Module], int]:
    """The discriminators' stem: `n_layers` 4x4 stride-2 convs, LeakyReLU 0.2, widths
    ndf, 2ndf, 4ndf, ... (8ndf at most), no norm on the first. Returns (layers, channels)."""
    make_norm = norm_layer(norm)
    use_bias = norm == "none"  # a norm right after removes any bias anyway
    layers: list[nn.Module] = [nn.Conv2d(in_ch, ndf, 4, 2, 1), activation("lrelu")]
    channels = ndf
    for i in range(1, n_layers):
        out = ndf * min(2**i, 8)
        layers += [nn.Conv2d(channels, out, 4, 2, 1, bias=use_bias), make_norm(out)]
        layers.append(activation("lrelu"))
        channels = out
    return layers, channels


class PatchDiscriminator(nn.Module):
    """PatchGAN: a map of real/fake scores, one per overlapping 70x70 patch (n_layers=3).

    4x4 convs, LeakyReLU 0.2: `n_layers` stride-2 convs (ndf, 2ndf, 4ndf, ... up
    to 8ndf; no norm on the first), then a stride-1 conv (8ndf at most) and a
    stride-1 conv to one channel.

    Map size. With `same_padding=True` (the default) the two stride-1 convs pad
    "same" (1 before, 2 after, as Keras does), so the map is H / 2**n_layers:
    128 px with n_layers=3 -> 64 -> 32 -> 16 -> 16 -> 16, the 16x16 map of the
    seed-002 write-up (256 px -> 32x32). With `same_padding=False` every conv
    pads 1 as in pix2pix, so each stride-1 conv loses a pixel: 256 px -> 30x30,
    128 px -> 14x14. Padding does not change the receptive field: worked back
    from one output pixel through the two stride-1 convs (r + 3) and the three
    stride-2 convs (2(r - 1) + 4), r = 1 -> 4 -> 7 -> 16 -> 34 -> 70 for n_layers=3.
    """

    def __init__(
        self,
        in_ch: int = 3,
        ndf: int = 64,
        n_layers: int = 3,
        norm: NormKind = "instance",
        same_padding: bool = True,
    ) -> None:
        super().__init__()
        make_norm = norm_layer(norm)
        use_bias = norm == "none"  # a norm right after removes any bias anyway
        layers, channels = strided_stem(in_ch, ndf, n_layers, norm)
        out = ndf * min(2**n_layers, 8)
        pad = 0 if same_padding else 1
        layers += self._pad(same_padding)
        layers += [nn.Conv2d(channels, out, 4, 1, pad, bias=use_bias), make_norm(out)]
        layers.append(activation("lrelu"))
        layers += [*self._pad(same_padding), nn.Conv2d(out, 1, 4, 1, pad)]
        self.model = nn.Sequential(*layers)

    @staticmethod
    def _pad(same_padding: bool) -> list[nn.Module]:
        # A 4x4 kernel keeps the size only with uneven padding: 1 left/top, 2 right/bottom.
        return [nn.ZeroPad2d((1, 2, 1, 2))] if same_padding else []

    def forward(self, images: Tensor) -> Tensor:
        return self.model(images)  # (B, 1, H / 2**n_layers, W / 2**n_layers) when same_padding


def init_weights(module: nn.Module, kind: InitKind = "normal", gain: float = 0.02) -> None:
    """CycleGAN's init: conv / linear weights N(0, gain), norm weights N(1, gain), biases 0.

    `kind` picks the conv / linear rule: "normal" (the default above), "xavier"
    and "orthogonal" (scaled by `gain`), "kaiming" (fan-in, gain ignored).
    """
    for layer in module.modules():
        if isinstance(layer, nn.Conv2d | nn.ConvTranspose2d | nn.Linear):
            if kind == "normal":
                nn.init.normal_(layer.weight, 0.0, gain)
            elif kind == "xavier":
                nn.init.xavier_normal_(layer.weight, gain=gain)
            elif kind == "kaiming":
                nn.init.kaiming_normal_(layer.weight, a=0, mode="fan_in")
            elif kind == "orthogonal":
                nn.init.orthogonal_(layer.weight, gain=gain)
            else:
                raise UserError(
                    f"unknown init {kind!r}; choose normal, xavier, kaiming or orthogonal"
                )
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
        elif isinstance(layer, nn.BatchNorm2d | nn.InstanceNorm2d | nn.GroupNorm):
            if layer.weight is not None:
                nn.init.normal_(layer.weight, 1.0, gain)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)


class ImagePool:
    """A buffer of past fakes for the discriminator (Shrivastava et al. 2017, CycleGAN).

    `query` takes a batch (B, C, H, W) and returns one of the same shape. While
    the pool is not full, each image is stored and returned as is; once full,
    each image is, with probability 1/2, swapped for a random stored one (which
    it replaces) and otherwise returned as is. Size 0 returns the batch untouched.

    Randomness comes from the global torch RNG only, so a run reseeded per step
    replays exactly; `state_dict` / `load_state_dict` carry the buffer for resume.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self.images: Tensor | None = None  # (size, C, H, W), allocated on first use
        self.count = 0  # how many slots are filled

    def query(self, images: Tensor) -> Tensor:
        if self.size == 0:
            return images
        images = images.detach()
        if self.images is None:
            self.images = images.new_zeros((self.size, *images.shape[1:]))
        if self.images.device != images.device:
            self.images = self.images.to(images.device)
        # Drawn for the whole batch up front (CPU generator: no device sync).
        coins = torch.rand(images.shape[0]).tolist()
        slots = torch.randint(self.size, (images.shape[0],)).tolist()
        out = []
        for image, coin, slot in zip(images, coins, slots, strict=True):
            if self.count < self.size:
                self.images[self.count] = image
                self.count += 1
                out.append(image)
            elif coin < 0.5:
                out.append(self.images[slot].clone())
                self.images[slot] = image
            else:
                out.append(image)
        return torch.stack(out)

    def state_dict(self) -> dict[str, Tensor]:
        """The filled part of the buffer and the fill count (tensors, for safetensors)."""
        state = {"count": torch.tensor([self.count], dtype=torch.int64)}
        if self.images is not None and self.count > 0:
            state["images"] = self.images[: self.count].detach().clone().contiguous()
        return state

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        self.count = int(state["count"].item())
        if self.count > self.size:
            raise UserError(
                f"saved image pool holds {self.count} images but pool_size is {self.size}; "
                "resume with the pool_size the run was started with"
            )
        if self.count == 0:
            self.images = None
            return
        saved = state["images"]
        self.images = saved.new_zeros((self.size, *saved.shape[1:]))
        self.images[: self.count] = saved


def instance_noise(images: Tensor, std: float) -> Tensor:
    """`images` plus N(0, std^2) per pixel, for a discriminator's inputs (Sonderby et al. 2017).

    Noise on real and fake alike blurs the two distributions into each other, so the
    discriminator cannot win on details the generator cannot yet draw; `std` is decayed
    to 0 by the caller's schedule. Uses the global RNG, which the engine reseeds from
    (seed, step), so a resumed run draws the same noise.
    """
    if std <= 0:
        return images
    return images + std * torch.randn_like(images)


FROZEN = "facefilter_frozen"  # set on a layer that keeps the weights it was given
WEIGHT_LAYERS = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)


def freeze_first_layers(net: nn.Module, count: int) -> int:
    """Freeze the first `count` weight layers of `net` (each conv or linear layer with the
    norm that follows it): FreezeD (Mo et al. 2020), which keeps a discriminator's
    low-level filters as a filter trained on plenty of data left them when a few hundred
    new images would overfit them. Returns how many weight layers `net` has. (A frozen
    batch norm still updates its running statistics, which a discriminator, never run in
    eval mode, does not use.)"""
    layers = [m for m in net.modules() if not list(m.children())]  # leaves, in order
    seen = 0
    for layer in layers:
        if isinstance(layer, WEIGHT_LAYERS):
            seen += 1
        if 0 < seen <= count and any(True for _ in layer.parameters(recurse=False)):
            setattr(layer, FROZEN, True)
            layer.requires_grad_(False)
    return seen


def set_requires_grad(nets: Iterable[nn.Module], flag: bool) -> None:
    """Switch the gradients of `nets` on or off, leaving frozen layers off."""
    for net in nets:
        for layer in net.modules():
            if not getattr(layer, FROZEN, False):
                for param in layer.parameters(recurse=False):
                    param.requires_grad_(flag)
