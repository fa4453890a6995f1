# Extends the full-size goldens with PyTorch float64 activations (the shipped dumps hold fp32 ones, whose own
# rounding error after 48 self-attention layers is ~4e-5: too coarse to test a float64-accumulating port tightly).
# Run from the repository root after the full-size checkpoint exists (npx vitest run test/golden-full.test.ts makes it):
#   python3 -m venv .venv && .venv/bin/pip install torch transformers safetensors
#   .venv/bin/python scripts/make_f64_goldens.py
# Writes test/fixtures/full/golden_f64.safetensors: self_attend_5.call7_f64 [1, 512, 1024] (item 0 of
# full/golden.safetensors' pixel_values, model in float64, values stored as f32).
import numpy as np
import torch
from safetensors.torch import load_file, save_file
from transformers import PerceiverForImageClassificationConvProcessing

torch.set_num_threads(1)
m = PerceiverForImageClassificationConvProcessing.from_pretrained("weights/full-synthetic").eval().double()
g = load_file("test/fixtures/full/golden.safetensors")
px = g["pixel_values"][:1].double()
with torch.no_grad():
    out = m(inputs=px, output_hidden_states=True)
last = out.hidden_states[-1].float().contiguous()  # the latents after all 8 x 6 self-attention applications
fp32 = g["self_attend_5.call7"]
print("torch fp32 golden vs torch f64: max |diff|", (fp32 - last).abs().max().item())
save_file({"self_attend_5.call7_f64": last}, "test/fixtures/full/golden_f64.safetensors", metadata={"torch": torch.__version__})
