"""Goldens for training a classification head (issue #22), from PyTorch autograd and transformers.

Run from the repository root with the project's Python (torch + transformers + safetensors + pillow):
    python scripts/make_train_goldens.py grads      # test/fixtures/train/grads.safetensors
    python scripts/make_train_goldens.py dataset    # test/fixtures/train/data/{train,test}/<class>/*.png
    python scripts/make_train_goldens.py head       # runs `perceiver train-head` (node + tsx), loads the result in
                                                    # transformers, trains the same recipe in torch on the same
                                                    # cached latents: test/fixtures/train/head/*, recipe.json
Everything is seeded; float64 where a value is a reference for gradients.
"""
import json, os, subprocess, sys, glob, shutil
import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import save_file, load_file

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIX = os.path.join(ROOT, "test", "fixtures", "train")
os.makedirs(FIX, exist_ok=True)

from transformers import PerceiverConfig
from transformers.models.perceiver.modeling_perceiver import PerceiverAttention, PerceiverClassificationDecoder


def f32(t):
    return t.detach().to(torch.float32).contiguous()


def randomize(module, gen, scale=0.3):
    """Every parameter random (LayerNorm weights around 1), drawn in float32 so both sides use the same values."""
    for name, p in module.named_parameters():
        with torch.no_grad():
            r = torch.randn(p.shape, generator=gen, dtype=torch.float32) * scale
            if "layernorm" in name and name.endswith("weight"):
                r = r + 1.0
            p.copy_(r)


def decoder_grads(out):
    """A tiny HF PerceiverClassificationDecoder: loss = mean cross-entropy; gradients of every parameter (float64)."""
    D, N, L, B = 8, 5, 3, 4
    cfg = PerceiverConfig(d_latents=D, num_latents=N, num_labels=L, attention_probs_dropout_prob=0.0)
    dec = PerceiverClassificationDecoder(cfg, num_channels=D, trainable_position_encoding_kwargs=dict(num_channels=D, index_dims=1), use_query_residual=True)
    gen = torch.Generator().manual_seed(22)
    randomize(dec, gen)
    z = torch.randn((B, N, D), generator=gen, dtype=torch.float32) * 2 + 0.5
    labels = torch.tensor([0, 2, 1, 2])
    dec = dec.double().eval()
    names = [n for n, _ in dec.named_parameters()]

    def loss_at():
        dec.zero_grad()
        query = dec.decoder_query(z.double())
        logits = dec(query, z.double()).logits
        loss = F.cross_entropy(logits, labels)
        loss.backward()
        return logits, loss

    out["dec.z"] = f32(z)
    out["dec.labels"] = labels.to(torch.int64)
    for n, p in dec.named_parameters():
        out[f"dec.param.{n.removeprefix('decoder.')}"] = f32(p)
    logits, loss = loss_at()
    out["dec.logits"] = f32(logits)
    out["dec.loss"] = f32(loss.reshape(1))
    for n, p in dec.named_parameters():
        out[f"dec.grad.{n.removeprefix('decoder.')}"] = f32(p.grad)
    # AdamW: two steps (decay on the Linear weights only, as the TypeScript recipe), from the gradients above and
    # the gradients at the first step's parameters
    decay = [p for n, p in dec.named_parameters() if n.endswith(".weight") and "layernorm" not in n and "position" not in n]
    rest = [p for n, p in dec.named_parameters() if not (n.endswith(".weight") and "layernorm" not in n and "position" not in n)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": rest, "weight_decay": 0.0}], lr=0.01)
    opt.step()
    for n, p in dec.named_parameters():
        out[f"dec.step1.{n.removeprefix('decoder.')}"] = f32(p)
    loss_at()
    for n, p in dec.named_parameters():
        out[f"dec.grad1.{n.removeprefix('decoder.')}"] = f32(p.grad)
    opt.step()
    for n, p in dec.named_parameters():
        out[f"dec.step2.{n.removeprefix('decoder.')}"] = f32(p)


def attention_grads(out):
    """HF PerceiverAttention, cross, 2 heads, qk 8 / v 6 channels, q_dim 7, kv_dim 5, query residual:
    loss = Σ out ⊙ R; gradients of every parameter and of both inputs (float64)."""
    B, Tq, Tkv = 2, 3, 4
    cfg = PerceiverConfig(attention_probs_dropout_prob=0.0)
    att = PerceiverAttention(cfg, is_cross_attention=True, qk_channels=8, v_channels=6, num_heads=2, q_dim=7, kv_dim=5, use_query_residual=True)
    gen = torch.Generator().manual_seed(23)
    randomize(att, gen)
    hidden = torch.randn((B, Tq, 7), generator=gen, dtype=torch.float32)
    inputs = torch.randn((B, Tkv, 5), generator=gen, dtype=torch.float32) * 1.5
    R = torch.randn((B, Tq, 7), generator=gen, dtype=torch.float32)
    att = att.double().eval()
    h = hidden.double().requires_grad_(True)
    x = inputs.double().requires_grad_(True)
    o = att(h, inputs=x)[0]
    (o * R.double()).sum().backward()
    out["att.hidden"], out["att.inputs"], out["att.R"], out["att.out"] = f32(hidden), f32(inputs), f32(R), f32(o)
    out["att.grad.hidden"], out["att.grad.inputs"] = f32(h.grad), f32(x.grad)
    for n, p in att.named_parameters():
        out[f"att.param.{n}"] = f32(p)
        out[f"att.grad.{n}"] = f32(p.grad)


def grads():
    out = {}
    decoder_grads(out)
    attention_grads(out)
    save_file(out, os.path.join(FIX, "grads.safetensors"), metadata={"torch": torch.__version__})
    print("wrote grads.safetensors", len(out), "tensors")


DATA = os.path.join(FIX, "data")
CLASSES = ["blue", "green", "red"]


def dataset(root=None):
    """3 classes of 32x32 noisy images, a dominant colour each, made hard enough that a head on a random tiny model
    does not reach 100%: per-image colour jitter that overlaps between classes, random brightness, noise and a
    random stripe pattern. 12 training and 8 test images per class."""
    from PIL import Image
    root = root or DATA
    rng = np.random.default_rng(2022)
    shutil.rmtree(root, ignore_errors=True)
    base = {"red": (150, 95, 95), "green": (95, 150, 95), "blue": (95, 95, 150)}
    for split, n in (("train", 12), ("test", 8)):
        for c in CLASSES:
            d = os.path.join(root, split, c)
            os.makedirs(d)
            for i in range(n):
                col = (np.array(base[c], dtype=np.float64) + rng.normal(0, 15, 3)) * rng.uniform(0.7, 1.3)
                img = np.tile(col, (32, 32, 1))
                period = rng.integers(4, 12)
                stripes = ((np.arange(32) // period) % 2).astype(np.float64)
                img *= (0.6 + 0.4 * (stripes[None, :, None] if rng.random() < 0.5 else stripes[:, None, None]))
                img += rng.normal(0, 25, img.shape)
                Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(os.path.join(d, f"{c}_{i:02d}.png"))
    print("wrote", root)


HEAD = os.path.join(FIX, "head")
TINY = os.path.join(ROOT, "test", "fixtures", "tiny-conv")


def load_latents(path):
    return load_file(path)["latents"]


def head():
    """Train a head with our CLI on the synthetic dataset (tiny-conv), load OUTDIR in transformers, record its
    logits on the held-out images; then train the same recipe in PyTorch on the same cached latents."""
    from PIL import Image
    from transformers import PerceiverForImageClassificationConvProcessing, PerceiverImageProcessor
    import tempfile
    out_dir = tempfile.mkdtemp(prefix="train-head-")
    cmd = ["node", "--import", "tsx", os.path.join(ROOT, "src", "cli", "main.ts"), "train-head", os.path.join(DATA, "train"),
           "--model", TINY, "--out", out_dir, "--seed", "0", "--quiet"]
    print(" ".join(cmd))
    subprocess.run(cmd, check=True, cwd=ROOT)
    tlog = json.load(open(os.path.join(out_dir, "train_log.json")))
    opts = tlog["options"]

    # 1. transformers loads OUTDIR; logits on the held-out images (HF's own image processor)
    model = PerceiverForImageClassificationConvProcessing.from_pretrained(out_dir).eval()
    proc = PerceiverImageProcessor()
    files = sorted(glob.glob(os.path.join(DATA, "test", "*", "*.png")))
    labels = torch.tensor([CLASSES.index(os.path.basename(os.path.dirname(f))) for f in files])
    with torch.no_grad():
        pix = proc([Image.open(f).convert("RGB") for f in files], return_tensors="pt").pixel_values
        hf = model(pixel_values=pix, output_hidden_states=True)
    logits = hf.logits
    test_latents = model.perceiver(inputs=pix).last_hidden_state.detach()
    ours_acc = (logits.argmax(-1) == labels).float().mean().item()

    os.makedirs(HEAD, exist_ok=True)
    shutil.copy(os.path.join(out_dir, "config.json"), os.path.join(HEAD, "config.json"))
    sd = load_file(os.path.join(out_dir, "model.safetensors"))
    base = load_file(os.path.join(TINY, "model.safetensors"))
    enc_same = all(torch.equal(sd[k], base[k]) for k in base if not k.startswith("perceiver.decoder."))
    assert enc_same and set(k for k in base if not k.startswith("perceiver.decoder.")) == set(k for k in sd if not k.startswith("perceiver.decoder."))
    save_file({k: v for k, v in sd.items() if k.startswith("perceiver.decoder.")}, os.path.join(HEAD, "decoder.safetensors"))
    save_file({"logits": f32(logits), "labels": labels}, os.path.join(HEAD, "hf_logits.safetensors"),
              metadata={"files": json.dumps([os.path.relpath(f, DATA) for f in files])})

    # 2. the same recipe in PyTorch, on the same cached latents and split: HF init (torch's generator, so other
    #    values), AdamW with decay on the Linear weights, constant lr, shuffled mini-batches, best epoch by val acc
    torch.manual_seed(opts["seed"])
    cfg = model.config
    fresh = PerceiverForImageClassificationConvProcessing(cfg).eval()  # HF _init_weights
    dec = fresh.perceiver.decoder
    def stack(entries):
        return torch.stack([load_latents(e["cache"]) for e in entries]), torch.tensor([e["label"] for e in entries])
    ztr, ytr = stack(tlog["train"])
    zva, yva = stack(tlog["val"])
    decay = [p for n, p in dec.named_parameters() if n.endswith(".weight") and "layernorm" not in n and "position" not in n]
    rest = [p for n, p in dec.named_parameters() if not (n.endswith(".weight") and "layernorm" not in n and "position" not in n)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": opts["weight_decay"]}, {"params": rest, "weight_decay": 0.0}], lr=opts["lr"])
    def run(z):
        return dec(dec.decoder_query(z), z).logits
    best, best_key, history = None, None, []
    for epoch in range(1, opts["epochs"] + 1):
        perm = torch.randperm(len(ztr))
        tot = 0.0
        for i in range(0, len(perm), opts["batch_size"]):
            idx = perm[i:i + opts["batch_size"]]
            opt.zero_grad()
            loss = F.cross_entropy(run(ztr[idx]), ytr[idx])
            loss.backward()
            opt.step()
            tot += loss.item() * len(idx)
        with torch.no_grad():
            lv = run(zva)
            vloss = F.cross_entropy(lv, yva).item()
            vacc = (lv.argmax(-1) == yva).float().mean().item()
        history.append({"epoch": epoch, "train_loss": tot / len(ztr), "val_loss": vloss, "val_acc": vacc})
        key = (vacc, -vloss)
        if best_key is None or key > best_key:
            best_key, best = key, {k: v.detach().clone() for k, v in dec.state_dict().items()}
    dec.load_state_dict(best)
    with torch.no_grad():
        lt = run(test_latents)
        torch_acc = (lt.argmax(-1) == labels).float().mean().item()
        torch_loss = F.cross_entropy(lt, labels).item()
    recipe = {
        "options": opts,
        "ours": {"test_acc_in_transformers": ours_acc, "test_loss_in_transformers": F.cross_entropy(logits, labels).item(),
                 "best_epoch": tlog["best_epoch"], "history": [{k: h[k] for k in ("epoch", "trainLoss", "valLoss", "valAccuracy")} for h in tlog["history"]]},
        "torch": {"test_acc": torch_acc, "test_loss": torch_loss, "history": history},
        "torch_version": torch.__version__,
    }
    json.dump(recipe, open(os.path.join(HEAD, "recipe.json"), "w"), indent=1)
    print(json.dumps({"ours_test_acc": ours_acc, "torch_test_acc": torch_acc, "ours_final": tlog["history"][-1], "torch_final": history[-1]}, indent=1))
    shutil.rmtree(out_dir)


if __name__ == "__main__":
    what = sys.argv[1:] or ["grads"]
    for w in what:
        {"grads": grads, "dataset": dataset, "head": head}.get(w, lambda: sys.exit(f"unknown section {w}"))()
