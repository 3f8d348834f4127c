"""Causal, streamable PyTorch models. Every temporal layer takes the cached tail of its own past input and
returns the new tail, so a chunked run with carried caches equals one pass over the whole sequence."""

from __future__ import annotations

from copy import deepcopy

import torch
import torch.nn.functional as F
from torch import nn

from rtamt.constants import N_FAST, N_HARMONICS, N_HCQT_BINS, N_PITCHES


class CausalConv2d(nn.Module):
    """Conv over (freq, time): 'same' (or stride-3 pitch-centred) in frequency, causal in time.

    Training uses tensors (B, C, freq, time). :func:`time_major` turns a model into the (B, C, time, freq)
    layout used for streaming export, where onnxruntime's convolutions run two to three times faster on
    the few frames of one hop.
    """

    def __init__(self, cin: int, cout: int, kf: int, kt: int, dil_f: int = 1, stride_f: int = 1, bias: bool = True):
        super().__init__()
        if kt < 2:
            raise ValueError("a temporal layer needs kt >= 2 (use a plain conv otherwise)")
        span = dil_f * (kf - 1)
        # stride 1: 'same' in frequency; stride 3: output bin i centred on input bin 3i + 1 (the pitch's centre)
        pad_f = span // 2 if stride_f == 1 else span // 2 - stride_f // 2
        if stride_f == 1 and span % 2:
            raise ValueError("a 'same' frequency conv needs an even span dil_f * (kf - 1)")
        # frequency padding inside the conv (no Pad node in the exported graph); no time padding: the cache
        # provides the left context
        self.conv = nn.Conv2d(cin, cout, (kf, kt), stride=(stride_f, 1), dilation=(dil_f, 1), padding=(pad_f, 0), bias=bias)
        self.context = kt - 1
        self.cin = cin
        self.time_axis = 3

    def cache_shape(self, batch: int, bins: int) -> tuple[int, int, int, int]:
        if self.time_axis == 2:
            return (batch, self.cin, self.context, bins)
        return (batch, self.cin, bins, self.context)

    def forward(self, x: torch.Tensor, cache: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        full = torch.cat([cache, x], dim=self.time_axis)
        # constant indices: no shape arithmetic in the exported graph
        new_cache = full[:, :, -self.context :] if self.time_axis == 2 else full[:, :, :, -self.context :]
        return self.conv(full), new_cache

    def to_time_major(self) -> None:
        """Switch to (B, C, time, freq) tensors: the same function with the kernel's axes swapped."""
        old = self.conv
        conv = nn.Conv2d(old.in_channels, old.out_channels, old.kernel_size[::-1], stride=old.stride[::-1],
                         dilation=old.dilation[::-1], padding=old.padding[::-1], bias=old.bias is not None)  # fmt: skip
        with torch.no_grad():
            conv.weight.copy_(old.weight.transpose(2, 3))
            if old.bias is not None:
                conv.bias.copy_(old.bias)
        self.conv = conv
        self.time_axis = 2


def flux_conv(cin: int, cout: int) -> CausalConv2d:
    """A 3-bin, 2-frame causal conv started as relu-ready spectral flux: output channel c is x[t] - x[t-1]
    of input channel c (for the first min(cin, cout) channels; the others start at zero)."""
    layer = CausalConv2d(cin, cout, 3, 2)
    with torch.no_grad():
        layer.conv.weight.zero_()
        layer.conv.bias.zero_()
        for c in range(min(cin, cout)):
            layer.conv.weight[c, c, 1, 1] = 1.0
            layer.conv.weight[c, c, 1, 0] = -1.0
    return layer


class Backbone(nn.Module):
    """Causal BasicAMT: HCQT (B, 8, 252, T) -> onset and frame probabilities (B, 84, T).

    Same layers as the published model with every time kernel made causal, plus two options: a spectral-flux
    branch (``flux`` > 0 channels: a 3-bin, 2-frame causal conv of the input, started as the frame-to-frame
    increase of each harmonic channel) that feeds the onset branch, and a per-pitch GRU that carries note
    state across time (``gru_hidden`` > 0). With ``fast`` the input has N_FAST more channels after the 8,
    from a short-window CQT (rtamt.frontend.FastPathTap), and a flux conv of its own over them feeds
    the onset branch too; with ``fast_trunk`` as well, the first conv reads those channels beside the 8, so
    the frame branch sees the short windows too. ``onset_channels`` is the width of the onset branch (7 as
    published). ``context_hidden`` > 0 adds a second per-pitch GRU beside the first, which also reads
    ``context_channels`` features of the frame trunk pooled to each pitch (a 3-bin, 3-frame causal conv;
    with ``context_input`` that conv reads the HCQT's harmonics too, the energy the trunk summarises);
    its correction of the logits starts at zero, so a model grown this way starts as the same function.
    Outputs at frame t describe frame t - L for a model trained with look-ahead L (the runtime
    delays by L).
    """

    def __init__(self, gru_hidden: int = 0, flux: int = 0, fast: bool = False, fast_trunk: bool = False,
                 onset_channels: int = 7, context_hidden: int = 0, context_channels: int = 8,
                 context_input: bool = False) -> None:  # fmt: skip
        super().__init__()
        if fast_trunk and not fast:
            raise ValueError("fast_trunk needs the fast path (fast=True)")
        self.scale = nn.Parameter(torch.tensor(0.2))
        self.shift = nn.Parameter(torch.tensor(1.0))
        self.fast_trunk = fast_trunk
        self.conv1 = CausalConv2d(N_HARMONICS + (N_FAST if fast_trunk else 0), 16, 5, 5)
        self.bn1 = nn.BatchNorm2d(16)
        self.conv2 = CausalConv2d(16, N_HARMONICS, 25, 3, dil_f=3)
        self.bn2 = nn.BatchNorm2d(N_HARMONICS)
        self.conv3 = CausalConv2d(N_HARMONICS, 16, 5, 5)
        self.bn3 = nn.BatchNorm2d(16)
        self.frame_head = CausalConv2d(16, 1, 5, 5, stride_f=3)
        self.flux_channels = flux
        if flux:
            self.flux = flux_conv(N_HARMONICS, flux)
        self.fast = fast
        if fast:
            self.fast_flux = flux_conv(N_FAST, N_FAST)
        self.onset_conv = CausalConv2d(16 + flux + (N_FAST if fast else 0), onset_channels, 7, 3, stride_f=3)
        self.onset_bn = nn.BatchNorm2d(onset_channels)
        self.onset_head = CausalConv2d(onset_channels + 1, 1, 3, 5)
        with torch.no_grad():  # start both heads at a sparse prior (p ~ 1%) instead of 50%
            self.onset_head.conv.bias.fill_(-4.6)
            self.frame_head.conv.bias.fill_(-3.0)
        self.gru_hidden = gru_hidden
        if gru_hidden:
            self.gru = nn.GRU(onset_channels + 2, gru_hidden, batch_first=True)
            self.refine = nn.Linear(gru_hidden, 2)
            with torch.no_grad():  # starts as a no-op correction of the convolutional logits
                self.refine.weight.zero_()
                self.refine.bias.zero_()
        self.context_hidden = context_hidden
        if context_hidden:
            self.context_input = context_input
            self.context_conv = CausalConv2d(16 + (N_HARMONICS if context_input else 0), context_channels, 3, 3, stride_f=3)
            self.context_gru = nn.GRU(onset_channels + 2 + context_channels, context_hidden, batch_first=True)
            self.context_refine = nn.Linear(context_hidden, 2)
            with torch.no_grad():
                self.context_refine.weight.zero_()
                self.context_refine.bias.zero_()

    def temporal_layers(self) -> list[tuple[CausalConv2d, int]]:
        """Each causal conv with the number of frequency bins of its input."""
        return [
            (self.conv1, N_HCQT_BINS), (self.conv2, N_HCQT_BINS), (self.conv3, N_HCQT_BINS),
            (self.frame_head, N_HCQT_BINS), (self.onset_conv, N_HCQT_BINS), (self.onset_head, N_PITCHES),
        ] + ([(self.flux, N_HCQT_BINS)] if self.flux_channels else []) + (
            [(self.fast_flux, N_HCQT_BINS)] if self.fast else []) + (
            [(self.context_conv, N_HCQT_BINS)] if self.context_hidden else [])  # fmt: skip

    def initial_caches(self, batch: int = 1) -> list[torch.Tensor]:
        device = self.scale.device
        caches = [torch.zeros(layer.cache_shape(batch, bins), device=device) for layer, bins in self.temporal_layers()]
        if self.gru_hidden:
            caches.append(torch.zeros(1, batch * N_PITCHES, self.gru_hidden, device=device))
        if self.context_hidden:
            caches.append(torch.zeros(1, batch * N_PITCHES, self.context_hidden, device=device))
        return caches

    def forward(self, hcqt: torch.Tensor, *caches: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """(onset, frame, *new_caches); onset and frame are probabilities (B, 84, T)."""
        if not caches:
            caches = tuple(self.initial_caches(hcqt.shape[0]))
        new: list[torch.Tensor] = []
        x = hcqt[:, :N_HARMONICS] * self.scale + self.shift
        fast = hcqt[:, N_HARMONICS:] * self.scale + self.shift if self.fast else None
        h, c = self.conv1(torch.cat([x, fast], dim=1) if self.fast_trunk else x, caches[0])
        new.append(c)
        h = F.leaky_relu(self.bn1(h), 0.3)
        r, c = self.conv2(h, caches[1])
        new.append(c)
        h = F.relu(self.bn2(r) + x)
        h, c = self.conv3(h, caches[2])
        new.append(c)
        h = h_trunk = F.relu(self.bn3(h))
        frame_logit, c = self.frame_head(h, caches[3])
        new.append(c)
        flux_cache = []
        if self.flux_channels:
            flux, c = self.flux(x, caches[6])
            flux_cache.append(c)
            h = torch.cat([h, F.relu(flux)], dim=1)
        if self.fast:
            fast_flux, c = self.fast_flux(fast, caches[6 + bool(self.flux_channels)])
            flux_cache.append(c)
            h = torch.cat([h, F.relu(fast_flux)], dim=1)
        o, c = self.onset_conv(h, caches[4])
        new.append(c)
        o = F.relu(self.onset_bn(o))
        onset_logit, c = self.onset_head(torch.cat([o, torch.sigmoid(frame_logit)], dim=1), caches[5])
        new += [c, *flux_cache]
        n_temporal = len(self.temporal_layers())
        if self.context_hidden:  # the last temporal layer
            trunk = torch.cat([h_trunk, x], dim=1) if self.context_input else h_trunk
            context, c = self.context_conv(trunk, caches[n_temporal - 1])
            new.append(c)
        if not (self.gru_hidden or self.context_hidden):
            return (torch.sigmoid(onset_logit[:, 0]), torch.sigmoid(frame_logit[:, 0]), *new)
        features = torch.cat([o, frame_logit, onset_logit], dim=1)  # (B, onset channels + 2, 84, T)
        deltas = []
        if self.gru_hidden:
            delta, state = self._pitch_gru(self.gru, self.refine, features, caches[n_temporal])
            new.append(state)
            deltas.append(delta)
        if self.context_hidden:
            state_in = caches[n_temporal + bool(self.gru_hidden)]
            delta, state = self._pitch_gru(self.context_gru, self.context_refine,
                                           torch.cat([features, F.relu(context)], dim=1), state_in)  # fmt: skip
            new.append(state)
            deltas.append(delta)
        for delta in deltas:
            onset_logit = onset_logit + delta[:, 0:1]
            frame_logit = frame_logit + delta[:, 1:2]
        return (torch.sigmoid(onset_logit[:, 0]), torch.sigmoid(frame_logit[:, 0]), *new)

    def _pitch_gru(self, gru: nn.GRU, refine: nn.Linear, features: torch.Tensor,
                   state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
        """A GRU run along time for each pitch over ``features`` (B, C, 84, T) or, time-major, (B, C, T, 84):
        its correction of the (onset, frame) logits (B, 2, ...) in the same layout, and its new state."""
        time_major_layout = self.conv1.time_axis == 2
        if time_major_layout:
            features = features.transpose(2, 3)
        batch, _, pitches, frames = features.shape
        seq = features.permute(0, 2, 3, 1).reshape(batch * pitches, frames, features.shape[1])
        out, new_state = gru(seq, state)
        delta = refine(out).reshape(batch, pitches, frames, 2).permute(0, 3, 1, 2)
        if time_major_layout:
            delta = delta.transpose(2, 3)
        return delta, new_state


def time_major(model: nn.Module) -> nn.Module:
    """A copy of ``model`` that takes HCQT (B, 8, T, 252) and gives outputs with time before pitch:
    onset and frame (B, T, 84), embeddings (B, D, T, 84)."""
    copy = deepcopy(model)
    for layer in copy.modules():
        if isinstance(layer, CausalConv2d):
            layer.to_time_major()
    return copy


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


class TimbreEncoder(nn.Module):
    """Causal timbre encoder: HCQT (B, 8, 252, T) -> unit embeddings (B, D, 84, T), one per pitch and frame.
    With ``register_film`` the last features get a learned scale and shift per frequency bin (starting at
    none): the convolutions treat every register alike, and this lets the head map an instrument's
    register-dependent spectra to one timbre.

    The published encoder normalises with whole-clip statistics and looks 9 frames ahead; here every
    time kernel is causal and the only normalisations are batch norms (fixed at inference) and the final
    L2 norm over D, which involves one bin of one frame.
    """

    def __init__(self, dim: int = 12, width: int = 16, register_film: bool = False) -> None:
        super().__init__()
        self.dim = dim
        self.register_film = register_film
        if register_film:  # a per-bin scale and shift of the last features: the head may treat registers apart
            self.register_scale = nn.Parameter(torch.zeros(width, N_HCQT_BINS))
            self.register_shift = nn.Parameter(torch.zeros(width, N_HCQT_BINS))
        self.scale = nn.Parameter(torch.tensor(0.2))
        self.shift = nn.Parameter(torch.tensor(1.0))
        self.conv1 = CausalConv2d(N_HARMONICS, width, 5, 5)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = CausalConv2d(width, width, 25, 3, dil_f=3)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = CausalConv2d(width, width, 5, 5)
        self.bn3 = nn.BatchNorm2d(width)
        self.head = CausalConv2d(width, dim, 5, 3, stride_f=3)

    def temporal_layers(self) -> list[tuple[CausalConv2d, int]]:
        return [(self.conv1, N_HCQT_BINS), (self.conv2, N_HCQT_BINS), (self.conv3, N_HCQT_BINS), (self.head, N_HCQT_BINS)]

    def initial_caches(self, batch: int = 1) -> list[torch.Tensor]:
        return [torch.zeros(layer.cache_shape(batch, bins), device=self.scale.device) for layer, bins in self.temporal_layers()]

    def forward(self, hcqt: torch.Tensor, *caches: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """(embedding, *new_caches); embedding (B, D, 84, T) with unit norm over D."""
        if not caches:
            caches = tuple(self.initial_caches(hcqt.shape[0]))
        x = hcqt * self.scale + self.shift
        h, c1 = self.conv1(x, caches[0])
        h = F.relu(self.bn1(h))
        r, c2 = self.conv2(h, caches[1])
        h = F.relu(self.bn2(r) + h)
        h, c3 = self.conv3(h, caches[2])
        h = self.bn3(h)
        if self.register_film:  # (W, bins) against (B, W, bins, T), or (B, W, T, bins) time-major
            shape = (1, -1, 1, N_HCQT_BINS) if self.conv3.time_axis == 2 else (1, -1, N_HCQT_BINS, 1)
            h = h * (1.0 + self.register_scale.reshape(shape)) + self.register_shift.reshape(shape)
        h = F.relu(h)
        e, c4 = self.head(h, caches[3])
        return (F.normalize(e, dim=1, eps=1e-6), c1, c2, c3, c4)
