#!/usr/bin/env python3
"""Golden fixtures for plain DiT (LightningDiT) and DiT^DH settings, from the official RAE code.

Reference: https://github.com/bytetriper/RAE, files src/stage2/models/{__init__,DDT,lightningDiT,
model_utils}.py (fixtures in test/fixtures/golden were made at commit a4d18c4d, recorded in each
file's metadata). The reference is not part of this repository: point --rae at a checkout
(or at a bare git directory, read with `git show REV:path`):

    git clone https://github.com/bytetriper/RAE /tmp/RAE
    /usr/bin/python3 tools/golden/make_dit_fixtures.py --rae /tmp/RAE [--out test/fixtures/golden]

Runs on Debian 12's python3-torch 1.13 (CPU; the fixtures were made with 1.13.0a0, package
1.13.1+dfsg-4) with numpy; timm, einops, transformers and regex are not needed:
tools/golden/ref_shims.py stands in for the few pieces the reference imports (and writes out
scaled_dot_product_attention, which torch 1.13 lacks). Adjustments to the reference, each also
listed in the fixtures' meta.shims:
- DiTwDDTHead(use_rope=False) sets `feat_rope` but forward reads `enc_feat_rope`/`dec_feat_rope`
  (an AttributeError upstream), so those are set to None after construction, which is what
  use_rope=False means;
- RMSNorm normalises in x.float(); for the float64 run only f16/bf16 are upcast, so float64
  stays float64 (float32 runs are unchanged).

Each fixture (format: test/fixtures/golden/README.md):
- weights: the reference's init with fixed seeds, then every trainable tensor re-randomised
  (N(0, 0.08²); norm weights 1 + N(0, 0.08²)) because the reference zero-initialises adaLN,
  the final layer and all Linear biases, which would leave those paths untested; with the GELU
  MLP, larger MLP weights so the fixture tells the tanh GELU from the erf one (widen_gelu_inputs);
- inputs x ~ N(0, 1) [3, C, H, W], t = [0.1, 0.5, 0.93], y = [0, 9, 10] (10 = the null class),
  loss_weights ~ N(0, 1);
- outputs and gradients computed in float64 from exactly the stored float32 weights and inputs
  (then rounded to float32), so the fixture carries no float32 reference noise; `meta.ref_f32_err`
  records how far the reference's own float32 run is from it (relative-by-max).

The DiT^DH checkpoint case (ditdh_ckpt_tiny.pt + ditdh_ckpt_tiny.safetensors) is a training
checkpoint laid out like src/train.py's save_checkpoint ({step, epoch, model, ema, optimizer,
scheduler}, torch.save with this torch), with different "model" and "ema" weights; the
safetensors holds its inputs and both models' velocities for test/tools/convert.test.ts.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))
import ref_shims  # noqa: E402
from convert_rae_checkpoint import write_safetensors  # noqa: E402

REF_FILES = ["__init__.py", "DDT.py", "lightningDiT.py", "model_utils.py"]
REF_DIR = "src/stage2/models"

# Small configurations: the reference constructors' own arguments.
CASES = {
    # LightningDiT with the RAE defaults (SwiGLU, RMSNorm, RoPE). mlp_ratio 2 so that the SwiGLU
    # width int(2/3 · int(h · mlp_ratio)) is checked at a ratio other than the default 4.
    "dit_small": dict(
        cls="LightningDiT", seed=11,
        config=dict(input_size=4, patch_size=1, in_channels=32, hidden_size=64, depth=2, num_heads=4,
                    mlp_ratio=2.0, num_classes=10, use_swiglu=True, use_rmsnorm=True, use_rope=True, use_qknorm=False),
    ),
    # Classic DiT settings: tanh-GELU MLP, LayerNorm (no affine), no RoPE; patch 2 so that
    # patchify/unpatchify with p > 1 is checked.
    "dit_gelu_ln_p2": dict(
        cls="LightningDiT", seed=12,
        config=dict(input_size=8, patch_size=2, in_channels=8, hidden_size=64, depth=2, num_heads=4,
                    mlp_ratio=4.0, num_classes=10, use_swiglu=False, use_rmsnorm=False, use_rope=False, use_qknorm=False),
    ),
    # DiT^DH with the non-default block settings: tanh-GELU MLP, LayerNorm, no RoPE (widths a
    # little under ditdh_small's to keep the file under 2 MB; the head is still wider).
    "ditdh_gelu_ln_norope": dict(
        cls="DiTwDDTHead", seed=13,
        config=dict(input_size=4, patch_size=1, in_channels=32, hidden_size=[48, 64], depth=[2, 1], num_heads=[4, 4],
                    mlp_ratio=4.0, num_classes=10, use_swiglu=False, use_rmsnorm=False, use_rope=False, use_qknorm=False),
    ),
}

# The checkpoint for the converter check: small, so the committed .pt stays under 1 MB.
CKPT_CASE = dict(
    cls="DiTwDDTHead", seed=21,
    config=dict(input_size=4, patch_size=1, in_channels=16, hidden_size=[32, 48], depth=[1, 1], num_heads=[2, 2],
                mlp_ratio=4.0, num_classes=10, use_swiglu=True, use_rmsnorm=True, use_rope=True, use_qknorm=False),
)

NOTE = ("weights re-randomised (N(0,0.08^2); norm weights 1+N(0,0.08^2)); outputs and grads computed in float64 from the "
        "stored float32 weights/inputs; grad.* are d(sum(v*input.loss_weights))/d(.); grad.input.x w.r.t. input.x; "
        "ref_f32_err = relative-by-max error of the reference's own float32 run")


def extract_reference(rae: str, rev: str, dest: str) -> str:
    """Copies the reference model files into dest/rae_ref_models (a package); returns the commit."""
    pkg = os.path.join(dest, "rae_ref_models")
    os.makedirs(pkg)
    src_dir = os.path.join(rae, REF_DIR)
    if os.path.isdir(src_dir):
        for f in REF_FILES:
            shutil.copy(os.path.join(src_dir, f), pkg)
        git = ["git", "-C", rae]
    else:  # a bare git directory (e.g. a mirror)
        git = ["git", f"--git-dir={rae}"]
        for f in REF_FILES:
            blob = subprocess.run(git + ["show", f"{rev}:{REF_DIR}/{f}"], check=True, capture_output=True).stdout
            with open(os.path.join(pkg, f), "wb") as out:
                out.write(blob)
    try:
        return subprocess.run(git + ["rev-parse", rev], check=True, capture_output=True, text=True).stdout.strip()
    except (subprocess.CalledProcessError, FileNotFoundError):
        return "unknown"


def build(ref, case):
    torch.manual_seed(case["seed"])
    cls = getattr(ref, case["cls"])
    model = cls(**case["config"], class_dropout_prob=0.1)
    if case["cls"] == "DiTwDDTHead" and not case["config"]["use_rope"]:
        model.enc_feat_rope = None  # see the header: the reference only sets feat_rope
        model.dec_feat_rope = None
    with torch.no_grad():
        for name, p in model.named_parameters():
            if not p.requires_grad:  # frozen: t_embedder.W, pos_embed
                continue
            noise = 0.08 * torch.randn_like(p)
            is_norm_weight = name.endswith("weight") and p.dim() == 1 and "norm" in name.split(".")[-2]
            p.copy_(1.0 + noise if is_norm_weight else noise)
        if not case["config"]["use_swiglu"]:
            widen_gelu_inputs(model)
    return model.eval()


def widen_gelu_inputs(model):
    """The tanh GELU is within ~5e-4 of the erf GELU, and at N(0, 0.08²) weights its inputs stay
    in |x| < 1 where the two agree to ~1e-5: a model using the wrong GELU would still match at
    1e-4. Larger fc1/fc2 weights (N(0, 0.25²), N(0, 0.3²)) and gate_mlp biases +1 spread the GELU's
    inputs over ±3 and let the MLP branch weigh in; meta.erf_gelu_v_err records the effect."""
    for block in model.blocks:
        block.mlp.fc1.weight.normal_(0, 0.25)
        block.mlp.fc2.weight.normal_(0, 0.3)
        bias = block.adaLN_modulation[-1].bias  # chunks: shift, scale, gate (msa), shift, scale, gate (mlp)
        bias[5 * bias.shape[0] // 6:] += 1.0


def inputs_for(case, gen):
    c = case["config"]
    x = torch.randn(3, c["in_channels"], c["input_size"], c["input_size"], generator=gen)
    return dict(
        x=x,
        t=torch.tensor([0.1, 0.5, 0.93]),
        y=torch.tensor([0, 9, c["num_classes"]], dtype=torch.int32),
        loss_weights=torch.randn(x.shape, generator=gen),
    )


def run(model, inp, dtype):
    """v and the gradients of sum(v · loss_weights) w.r.t. the trainable weights and x."""
    model = model.to(dtype)
    model.zero_grad(set_to_none=True)
    x = inp["x"].detach().to(dtype).clone().requires_grad_(True)  # a fresh leaf, never inp["x"] itself
    v = model(x, inp["t"].to(dtype), inp["y"].long())
    (v * inp["loss_weights"].to(dtype)).sum().backward()
    grads = {k: p.grad.detach().clone() for k, p in model.named_parameters() if p.grad is not None}
    grads["input.x"] = x.grad.detach().clone()
    return v.detach(), grads


def rel_by_max(a, e):
    d = (a.double() - e.double()).abs().max().item()
    m = e.double().abs().max().item()
    return d / m if m > 0 else d


def make_case(ref, name, case, meta_base, out_dir):
    model = build(ref, case)
    gen = torch.Generator().manual_seed(case["seed"] + 1000)
    inp = inputs_for(case, gen)
    params = {k: v.detach().clone().float() for k, v in model.state_dict().items()}
    v64, g64 = run(model, inp, torch.float64)
    v32, g32 = run(model, inp, torch.float32)
    ref_err = {"v": rel_by_max(v32, v64), "grad_max": max(rel_by_max(g32[k], g64[k]) for k in g64 if g64[k].abs().max() > 0)}
    extra = {}
    if not case["config"]["use_swiglu"]:
        for block in model.blocks:
            block.mlp.act = torch.nn.GELU()  # erf GELU: how far a model with the wrong GELU lands
        v_erf, g_erf = run(model, inp, torch.float64)
        extra["erf_gelu_v_err"] = rel_by_max(v_erf, v64)
        extra["erf_gelu_grad_err"] = max(rel_by_max(g_erf[k], g64[k]) for k in g64 if g64[k].abs().max() > 0)
    tensors = {f"param.{k}": v for k, v in params.items()}
    tensors.update({f"input.{k}": v for k, v in inp.items()})
    tensors["output.v"] = v64.float()
    tensors.update({f"grad.{k}": v.float() for k, v in g64.items()})
    meta = dict(meta_base, model=f"RAE {case['cls']}", config=case["config"], seed=case["seed"], ref_f32_err=ref_err, **extra, note=NOTE)
    path = os.path.join(out_dir, f"{name}.safetensors")
    write_safetensors(tensors, path, {"meta": json.dumps(meta)})
    print(f"{name}: {os.path.getsize(path)} bytes, {len(params)} params, ref f32 err v {ref_err['v']:.2e} grads {ref_err['grad_max']:.2e}", extra)


def make_checkpoint(ref, meta_base, out_dir):
    """A training checkpoint like src/train.py's, with distinct "model" and "ema" weights."""
    case = CKPT_CASE
    model = build(ref, case)
    ema = build(ref, dict(case, seed=case["seed"] + 1))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    ckpt = {"step": 7, "epoch": 0, "model": model.state_dict(), "ema": ema.state_dict(), "optimizer": opt.state_dict(), "scheduler": None}
    pt = os.path.join(out_dir, "ditdh_ckpt_tiny.pt")
    torch.save(ckpt, pt)
    gen = torch.Generator().manual_seed(case["seed"] + 1000)
    inp = inputs_for(case, gen)
    tensors = {f"input.{k}": v for k, v in inp.items() if k != "loss_weights"}
    for label, m in (("model", model), ("ema", ema)):
        with torch.no_grad():
            tensors[f"output.v_{label}"] = m.double()(inp["x"].double(), inp["t"].double(), inp["y"].long()).float()
    meta = dict(meta_base, model=f"RAE {case['cls']}", config=case["config"], seed=case["seed"],
                note="inputs and velocities (float64, rounded to float32) of ditdh_ckpt_tiny.pt's model and ema weights")
    path = os.path.join(out_dir, "ditdh_ckpt_tiny.safetensors")
    write_safetensors(tensors, path, {"meta": json.dumps(meta)})
    print(f"ditdh_ckpt_tiny: .pt {os.path.getsize(pt)} bytes, .safetensors {os.path.getsize(path)} bytes")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rae", required=True, help="checkout (or bare git dir) of github.com/bytetriper/RAE")
    ap.add_argument("--rev", default="HEAD", help="revision to read from a bare git dir (default HEAD)")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.dirname(HERE)), "test", "fixtures", "golden"))
    args = ap.parse_args()

    shims = ref_shims.install()
    torch.set_num_threads(1)  # deterministic reductions
    with tempfile.TemporaryDirectory() as tmp:
        commit = extract_reference(args.rae, args.rev, tmp)
        sys.path.insert(0, tmp)
        import importlib

        ddt = importlib.import_module("rae_ref_models.DDT")
        lightning = importlib.import_module("rae_ref_models.lightningDiT")
        keep_float64_in_rmsnorm(importlib.import_module("rae_ref_models.model_utils").RMSNorm)
        ref = argparse.Namespace(DiTwDDTHead=ddt.DiTwDDTHead, LightningDiT=lightning.LightningDiT)
        meta_base = {
            "torch": torch.__version__, "dtype": "float32", "reference": f"github.com/bytetriper/RAE@{commit} {REF_DIR}",
            "shims": shims + ["DiTwDDTHead(use_rope=False): enc_feat_rope/dec_feat_rope set to None",
                              "RMSNorm upcasts only f16/bf16 (not f64) to f32"],
        }
        os.makedirs(args.out, exist_ok=True)
        for name, case in CASES.items():
            make_case(ref, name, case, meta_base, args.out)
        make_checkpoint(ref, meta_base, args.out)
    return 0


def keep_float64_in_rmsnorm(rmsnorm_cls):
    """The reference RMSNorm normalises in x.float(), meant to upcast f16/bf16; in the float64 run
    that would round to float32, so only half-precision inputs are upcast (f32 runs unchanged)."""
    def forward(self, x):
        xf = x.float() if x.dtype in (torch.float16, torch.bfloat16) else x
        return self._norm(xf).type_as(x) * self.weight
    rmsnorm_cls.forward = forward


if __name__ == "__main__":
    sys.exit(main())
