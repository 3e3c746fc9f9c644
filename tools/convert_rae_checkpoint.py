#!/usr/bin/env python3
"""Convert an official RAE checkpoint (torch pickle) to safetensors with the same key names.

Usage:
    python3 tools/convert_rae_checkpoint.py CHECKPOINT.pt OUT.safetensors [--key ema|model] [--dtype f32|f16|bf16]

Training checkpoints hold the weights under "ema" (preferred, what the paper reports) or "model";
plain state dicts (decoder `model.pt`, `stage2_model.pt`) are taken as they are. Keys are kept
verbatim (e.g. `blocks.0.attn.qkv.weight`, `decoder_layers.0.attention.attention.query.weight`), so
the result loads with `Model.loadStateDict(loadSafetensors(path))` in rae-webgpu.

Needs: torch (>= 1.13; Debian's python3-torch works). The safetensors file is written here, so
the `safetensors` package is not needed.
"""
import argparse
import json
import os
import struct
import sys

# torch dtype name → safetensors dtype tag.
_ST_DTYPES = {
    "float32": "F32", "float16": "F16", "bfloat16": "BF16", "float64": "F64",
    "int64": "I64", "int32": "I32", "int16": "I16", "int8": "I8", "uint8": "U8", "bool": "BOOL",
}


def write_safetensors(tensors, path, metadata=None):
    """Writes {name: torch.Tensor} as safetensors: u64 LE header length, JSON header (names sorted,
    data_offsets relative to the data section, padded with spaces to 8 bytes), raw little-endian data."""
    import torch

    header, chunks, offset = {}, [], 0
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        tag = _ST_DTYPES.get(str(t.dtype).replace("torch.", ""))
        if tag is None:
            raise TypeError(f"{name}: dtype {t.dtype} has no safetensors equivalent")
        # numpy has no bfloat16: write its bits through a same-size integer view.
        raw = (t.view(torch.int16) if t.dtype == torch.bfloat16 else t).numpy().tobytes()
        header[name] = {"dtype": tag, "shape": list(t.shape), "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    blob = json.dumps(header, separators=(",", ":")).encode("utf-8")
    blob += b" " * (-len(blob) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(blob)))
        f.write(blob)
        for c in chunks:
            f.write(c)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint")
    ap.add_argument("out")
    ap.add_argument("--key", choices=["ema", "model"], help="which weights of a training checkpoint (default: ema if present)")
    ap.add_argument("--dtype", choices=["f32", "f16", "bf16"], default="f32")
    args = ap.parse_args()

    try:
        import torch
    except ImportError as e:  # pragma: no cover - depends on the user's environment
        print(f"convert_rae_checkpoint: {e}; install torch (pip install torch, or Debian's python3-torch)", file=sys.stderr)
        return 2

    if not os.path.isfile(args.checkpoint):
        print(f"convert_rae_checkpoint: {args.checkpoint}: no such file", file=sys.stderr)
        return 1
    # weights_only=False: training checkpoints also pickle optimizer and scheduler state.
    ckpt = torch.load(args.checkpoint, map_location="cpu", weights_only=False)
    source = "state dict"
    if isinstance(ckpt, dict) and any(k in ckpt for k in ("ema", "model")) and not all(torch.is_tensor(v) for v in ckpt.values()):
        key = args.key or ("ema" if "ema" in ckpt else "model")
        if key not in ckpt:
            print(f"convert_rae_checkpoint: no '{key}' entry; the checkpoint has {sorted(ckpt)}", file=sys.stderr)
            return 1
        ckpt, source = ckpt[key], key
    elif args.key:
        print(f"convert_rae_checkpoint: --key {args.key} given, but the checkpoint is a plain state dict", file=sys.stderr)
        return 1
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
        if name in tensors:
            print(f"convert_rae_checkpoint: two entries map to {name} once prefixes are stripped", file=sys.stderr)
            return 1
        t = value.detach().contiguous()
        tensors[name] = t.to(dtype) if t.is_floating_point() else t
    if not tensors:
        print("convert_rae_checkpoint: the state dict holds no tensors", file=sys.stderr)
        return 1
    meta = {"source": args.checkpoint, "weights": source, "format": "pt", "count": json.dumps(len(tensors))}
    write_safetensors(tensors, args.out, metadata=meta)
    print(f"wrote {len(tensors)} tensors ({source}) to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
