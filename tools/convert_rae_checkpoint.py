#!/usr/bin/env python3
"""Convert an official RAE checkpoint (torch pickle) to safetensors with the same key names.

Usage:
    python3 tools/convert_rae_checkpoint.py CHECKPOINT.pt OUT.safetensors [--key ema|model] [--dtype f32|f16|bf16]

Training checkpoints hold the weights under "ema" (preferred, what the paper reports) or "model";
plain state dicts (decoder `model.pt`, `stage2_model.pt`) are taken as they are. Keys are kept
verbatim (e.g. `blocks.0.attn.qkv.weight`, `decoder_layers.0.attention.attention.query.weight`), so
the result loads with `Model.loadStateDict(loadSafetensors(path))` in rae-webgpu.

Needs: torch and safetensors (pip install torch safetensors).
"""
import argparse
import json
import sys


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint")
    ap.add_argument("out")
    ap.add_argument("--key", choices=["ema", "model"], help="which weights of a training checkpoint (default: ema if present)")
    ap.add_argument("--dtype", choices=["f32", "f16", "bf16"], default="f32")
    args = ap.parse_args()

    try:
        import torch
        from safetensors.torch import save_file
    except ImportError as e:  # pragma: no cover - depends on the user's environment
        print(f"convert_rae_checkpoint: {e}; install with: pip install torch safetensors", file=sys.stderr)
        return 2

    ckpt = torch.load(args.checkpoint, map_location="cpu", weights_only=False)
    source = "state dict"
    if isinstance(ckpt, dict) and any(k in ckpt for k in ("ema", "model")) and not all(torch.is_tensor(v) for v in ckpt.values()):
        key = args.key or ("ema" if "ema" in ckpt else "model")
        if key not in ckpt:
            print(f"convert_rae_checkpoint: no '{key}' entry; the checkpoint has {sorted(ckpt)}", file=sys.stderr)
            return 1
        ckpt, source = ckpt[key], key
    if not isinstance(ckpt, dict):
        print(f"convert_rae_checkpoint: expected a state dict, got {type(ckpt).__name__}", file=sys.stderr)
        return 1

    dtype = {"f32": torch.float32, "f16": torch.float16, "bf16": torch.bfloat16}[args.dtype]
    tensors = {}
    for name, value in ckpt.items():
        if not torch.is_tensor(value):
            continue
        # DDP / torch.compile prefixes are not part of the reference key names.
        for prefix in ("module.", "_orig_mod."):
            if name.startswith(prefix):
                name = name[len(prefix):]
        t = value.detach().contiguous()
        tensors[name] = t.to(dtype) if t.is_floating_point() else t
    meta = {"source": args.checkpoint, "weights": source, "format": "pt", "count": json.dumps(len(tensors))}
    save_file(tensors, args.out, metadata=meta)
    print(f"wrote {len(tensors)} tensors ({source}) to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
