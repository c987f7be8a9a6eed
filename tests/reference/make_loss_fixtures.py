#!/usr/bin/env python3
"""make_loss_fixtures.py — PyTorch reference values for the chunked full-softmax cross-entropy
(src/nn/loss_ce.c), read by tests/nn/test_loss_reference.c. Torch is needed only to regenerate
them; the test suite reads the committed files.

Run with Debian's python (python3-torch):  /usr/bin/python3 tests/reference/make_loss_fixtures.py

Each fixture: N = 6 rows, C = 8, V = 37 items, row 2 masked (target -1), inputs drawn once from
a fixed seed and rounded to float32; the reference is computed in float64 from those float32
values:
    logits = h @ E[first:].T ;  loss = cross_entropy(logits, target - first), mean over the
    unmasked rows (ignore_index) ;  dh, dE by autograd (dE[:first] = 0).
  loss_ce_first0.bin: every item takes part (first_item = 0)
  loss_ce_first1.bin: item 0 is padding (first_item = 1): excluded from the softmax

File format (as tests/reference/make_fixtures.py): records of
    u32 name length, name bytes, u32 value count, that many float32 (little-endian).
Records: "meta" (N, C, V, first_item), "targets" (as floats), "h" [N, C], "E" [V, C],
"loss" [1], "dh" [N, C], "dE" [V, C].
"""
import os
import struct

import torch

N, C, V = 6, 8, 37
HERE = os.path.dirname(os.path.abspath(__file__))


def write(path, records):
    with open(path, "wb") as f:
        for name, t in records:
            a = [float(v) for v in t.detach().reshape(-1).to(torch.float32).tolist()]
            nb = name.encode()
            f.write(struct.pack("<I", len(nb)))
            f.write(nb)
            f.write(struct.pack("<I", len(a)))
            f.write(struct.pack("<%df" % len(a), *a))


def fixture(first):
    g = torch.Generator().manual_seed(20240 + first)
    h32 = (torch.randn(N, C, generator=g) * 0.8).to(torch.float32)
    E32 = torch.randn(V, C, generator=g).to(torch.float32)
    targets = torch.randint(first, V, (N,), generator=g)
    targets[2] = -1  # a masked row
    h = h32.to(torch.float64).requires_grad_(True)
    E = E32.to(torch.float64).requires_grad_(True)
    logits = h @ E[first:].T
    tgt = torch.where(targets >= 0, targets - first, torch.full_like(targets, -100))
    loss = torch.nn.functional.cross_entropy(logits, tgt, ignore_index=-100, reduction="mean")
    loss.backward()
    meta = torch.tensor([N, C, V, first], dtype=torch.float64)
    write(os.path.join(HERE, "fixtures", "loss_ce_first%d.bin" % first),
          [("meta", meta), ("targets", targets.to(torch.float64)), ("h", h32), ("E", E32),
           ("loss", loss.reshape(1)), ("dh", h.grad), ("dE", E.grad)])
    print("first_item %d: loss %.6f (torch %s)" % (first, loss.item(), torch.__version__))


if __name__ == "__main__":
    os.makedirs(os.path.join(HERE, "fixtures"), exist_ok=True)
    for first in (0, 1):
        fixture(first)
