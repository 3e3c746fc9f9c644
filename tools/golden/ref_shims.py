"""Minimal stand-ins that let the RAE reference models (src/stage2/models/*.py) import and run on
Debian's torch 1.13 without timm, einops, transformers or regex.

Each shim implements only what the reference code actually calls, and fails loudly on anything
else, so a change upstream that needs more cannot pass silently. What each replaces:

- `timm.models.vision_transformer.PatchEmbed`: Conv2d(k = stride = patch) → flatten → [B, N, D]
  (timm's default: no norm, flatten on, strict image size).
- `timm.models.vision_transformer.Mlp`: fc1 → act → fc2 (dropout 0, no norm), key names fc1/fc2.
- `timm.models.vision_transformer.Attention`: imported by model_utils but never used; a class
  that raises if constructed.
- `einops.rearrange` / `einops.repeat`: the three patterns the reference uses (RoPE's
  rotate_half and its frequency table); any other pattern raises.
- `transformers.SwinModel`, `regex.B`: imported by DDT.py but never used.
- `torch.nn.functional.scaled_dot_product_attention` (added in torch 2.0): written out as
  softmax(q·kᵀ/√d)·v, which is what the fused op computes without mask, dropout or causal flag.
"""
import math
import sys
import types

import torch
import torch.nn as nn
import torch.nn.functional as F


class PatchEmbed(nn.Module):
    def __init__(self, img_size=224, patch_size=16, in_chans=3, embed_dim=768, norm_layer=None, flatten=True, bias=True):
        super().__init__()
        if norm_layer is not None or not flatten:
            raise NotImplementedError("PatchEmbed shim: only norm_layer=None, flatten=True")
        self.img_size = (img_size, img_size)
        self.patch_size = (patch_size, patch_size)
        self.grid_size = (img_size // patch_size, img_size // patch_size)
        self.num_patches = self.grid_size[0] * self.grid_size[1]
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size, bias=bias)
        self.norm = nn.Identity()

    def forward(self, x):
        if tuple(x.shape[-2:]) != self.img_size:
            raise ValueError(f"PatchEmbed shim: input {tuple(x.shape[-2:])} != img_size {self.img_size}")
        return self.norm(self.proj(x).flatten(2).transpose(1, 2))


class Mlp(nn.Module):
    def __init__(self, in_features, hidden_features=None, out_features=None, act_layer=nn.GELU, norm_layer=None, bias=True, drop=0.0):
        super().__init__()
        if norm_layer is not None or drop != 0:
            raise NotImplementedError("Mlp shim: only norm_layer=None, drop=0")
        out_features = out_features or in_features
        hidden_features = hidden_features or in_features
        self.fc1 = nn.Linear(in_features, hidden_features, bias=bias)
        self.act = act_layer()
        self.fc2 = nn.Linear(hidden_features, out_features, bias=bias)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class _Unused:
    def __init__(self, *a, **k):
        raise NotImplementedError(f"{type(self).__name__} shim: not used by the reference models")


class Attention(_Unused):
    pass


class SwinModel(_Unused):
    pass


def rearrange(x, pattern, **sizes):
    if pattern == "... (d r) -> ... d r":
        return x.reshape(*x.shape[:-1], -1, sizes["r"])
    if pattern == "... d r -> ... (d r)":
        return x.flatten(-2)
    raise NotImplementedError(f"einops shim: rearrange pattern {pattern!r}")


def repeat(x, pattern, **sizes):
    if pattern == "... n -> ... (n r)":
        # (n r): r is the inner (faster) index, so each entry repeats r times in place.
        return x.repeat_interleave(sizes["r"], dim=-1)
    raise NotImplementedError(f"einops shim: repeat pattern {pattern!r}")


def scaled_dot_product_attention(q, k, v, attn_mask=None, dropout_p=0.0, is_causal=False):
    if attn_mask is not None or dropout_p != 0.0 or is_causal:
        raise NotImplementedError("scaled_dot_product_attention shim: no mask, dropout or causal")
    w = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(q.shape[-1]))
    return w.softmax(dim=-1) @ v


def install() -> list:
    """Registers the shims (only where the real package is missing); returns what was shimmed."""
    shimmed = []

    def add(name, **attrs):
        try:
            __import__(name)
            return
        except ImportError:
            pass
        parts = name.split(".")
        for i in range(1, len(parts) + 1):
            mod_name = ".".join(parts[:i])
            if mod_name not in sys.modules:
                sys.modules[mod_name] = types.ModuleType(mod_name)
                if i > 1:
                    setattr(sys.modules[".".join(parts[: i - 1])], parts[i - 1], sys.modules[mod_name])
        for k, v in attrs.items():
            setattr(sys.modules[name], k, v)
        shimmed.append(name)

    add("timm.models.vision_transformer", PatchEmbed=PatchEmbed, Mlp=Mlp, Attention=Attention)
    add("einops", rearrange=rearrange, repeat=repeat)
    add("transformers", SwinModel=SwinModel)
    add("regex", B=None)
    if not hasattr(F, "scaled_dot_product_attention"):
        F.scaled_dot_product_attention = scaled_dot_product_attention
        shimmed.append("torch.nn.functional.scaled_dot_product_attention")
    return shimmed
