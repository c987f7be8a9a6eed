#!/usr/bin/python3
"""Regenerates the PyTorch reference fixtures of tests/nn/test_reference.c.

Needs Debian's python3-torch (run with /usr/bin/python3, not a pyenv python):
    /usr/bin/python3 tests/reference/make_fixtures.py
The test suite itself never needs torch: it reads the committed files under fixtures/.

Writes, with fixed weights and inputs (seeded), forward outputs and every gradient of the probe
loss L = sum(w * y) (w random, fixed) for:
  sasrec_block.bin  one SASRec block exactly as the PyTorch peer's (../shared/peers/
                    sasrec_torch.py): q = LN1(x); x = q + Attn(q, x, x); x = LN2(x);
                    x = x + FFN(x) (ReLU); padded positions zeroed. B=2, T=5, C=8, 2 heads
                    (head size 4, scores scaled by 1/sqrt(4)), FFN 8 -> 8, eps 1e-8, dropout
                    off; batch 1 is left-padded by 2. Mask: causal AND (key not padded OR
                    key == query), as the peer.
  gru.bin           torch.nn.GRU over B=2, T=4, C=3, H=5 with a given h0: all hidden states,
                    gradients of x, h0 and the four weight tensors.
  lstm.bin          torch.nn.LSTM, same shapes, given h0 and c0.

File format (little-endian): records until EOF, each
    uint32 name_len, name bytes (no NUL), uint32 count, count float32 values.
Tensor names use seqrec's parameter names ("block0.attn.wqkv": rows Wq | Wk | Wv).
"""
import math
import os
import struct

import torch
import torch.nn.functional as F

torch.manual_seed(20261123)
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")


def write(path, records):
    with open(path, "wb") as f:
        for name, t in records:
            a = t.detach().to(torch.float32).contiguous().view(-1).tolist()
            nb = name.encode()
            f.write(struct.pack("<I", len(nb)))
            f.write(nb)
            f.write(struct.pack("<I", len(a)))
            f.write(struct.pack("<%df" % len(a), *a))
    print("wrote", path, os.path.getsize(path), "bytes")


def rnd(*shape, scale=1.0):
    return (torch.randn(*shape) * scale).requires_grad_(True)


def block_forward(x, pad, p, H, eps):
    """Our SASREC block layout in plain torch ops; returns (y, attention weights)."""
    B, T, C = x.shape
    D = C // H
    keep = (~pad).unsqueeze(-1).float()
    eye = torch.eye(T, dtype=torch.bool)
    causal = torch.tril(torch.ones(T, T, dtype=torch.bool))
    mask = causal.unsqueeze(0) & ((~pad).unsqueeze(1) | eye.unsqueeze(0))  # (B, Tq, Tk)

    wq, wk, wv = p["block0.attn.wqkv"].split(C, 0)
    bq, bk, bv = p["block0.attn.bqkv"].split(C, 0)
    qn = F.layer_norm(x, (C,), p["block0.ln1.g"], p["block0.ln1.b"], eps)
    q, k, v = F.linear(qn, wq, bq), F.linear(x, wk, bk), F.linear(x, wv, bv)
    heads = lambda t: t.view(B, T, H, D).transpose(1, 2)  # (B, H, T, D)
    s = heads(q) @ heads(k).transpose(-1, -2) / math.sqrt(D)
    s = s.masked_fill(~mask.unsqueeze(1), float("-inf"))
    a = torch.softmax(s, dim=-1)
    z = (a @ heads(v)).transpose(1, 2).reshape(B, T, C)
    att = F.linear(z, p["block0.attn.wo"], p["block0.attn.bo"])
    r = qn + att
    h = F.layer_norm(r, (C,), p["block0.ln2.g"], p["block0.ln2.b"], eps)
    f = F.linear(F.relu(F.linear(h, p["block0.ffn.fc1.w"], p["block0.ffn.fc1.b"])),
                 p["block0.ffn.fc2.w"], p["block0.ffn.fc2.b"])
    return (h + f) * keep, a


def check_against_peer(x, pad, p, eps):
    """With one head, block_forward must equal the peer's own Block (when the peer is here)."""
    peer = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "shared",
                        "peers")
    if not os.path.exists(os.path.join(peer, "sasrec_torch.py")):
        print("peer code not found: skipping the cross-check")
        return
    import sys
    sys.path.insert(0, peer)
    from sasrec_torch import Block
    B, T, C = x.shape
    blk = Block(C, 0.0).eval()
    wq, wk, wv = p["block0.attn.wqkv"].split(C, 0)
    bq, bk, bv = p["block0.attn.bqkv"].split(C, 0)
    with torch.no_grad():
        for mod, w, b in ((blk.q, wq, bq), (blk.k, wk, bk), (blk.v, wv, bv),
                          (blk.o, p["block0.attn.wo"], p["block0.attn.bo"]),
                          (blk.ff1, p["block0.ffn.fc1.w"], p["block0.ffn.fc1.b"]),
                          (blk.ff2, p["block0.ffn.fc2.w"], p["block0.ffn.fc2.b"]),
                          (blk.ln_att, p["block0.ln1.g"], p["block0.ln1.b"]),
                          (blk.ln_ffn, p["block0.ln2.g"], p["block0.ln2.b"])):
            mod.weight.copy_(w)
            mod.bias.copy_(b)
        blk.ln_att.eps = blk.ln_ffn.eps = eps
        eye = torch.eye(T, dtype=torch.bool)
        causal = torch.tril(torch.ones(T, T, dtype=torch.bool))
        mask = causal.unsqueeze(0) & ((~pad).unsqueeze(1) | eye.unsqueeze(0))
        keep = (~pad).unsqueeze(-1).float()
        want = blk(x, mask, keep)
        got, _ = block_forward(x, pad, p, 1, eps)
    err = (want - got).abs().max().item()
    assert err < 1e-5, "block_forward differs from the peer's Block by %g" % err
    print("one-head block matches the peer's Block (max diff %.2g)" % err)


def sasrec_block():
    B, T, C, H, eps = 2, 5, 8, 2, 1e-8
    D = C // H
    x = rnd(B, T, C)
    pad = torch.zeros(B, T, dtype=torch.bool)
    pad[1, :2] = True
    p = {
        "block0.ln1.g": (1 + 0.1 * torch.randn(C)).requires_grad_(True),
        "block0.ln1.b": rnd(C, scale=0.1),
        "block0.attn.wqkv": rnd(3 * C, C, scale=0.3),
        "block0.attn.bqkv": rnd(3 * C, scale=0.1),
        "block0.attn.wo": rnd(C, C, scale=0.3),
        "block0.attn.bo": rnd(C, scale=0.1),
        "block0.ln2.g": (1 + 0.1 * torch.randn(C)).requires_grad_(True),
        "block0.ln2.b": rnd(C, scale=0.1),
        "block0.ffn.fc1.w": rnd(C, C, scale=0.3),
        "block0.ffn.fc1.b": rnd(C, scale=0.1),
        "block0.ffn.fc2.w": rnd(C, C, scale=0.3),
        "block0.ffn.fc2.b": rnd(C, scale=0.1),
    }
    y, a = block_forward(x, pad, p, H, eps)
    check_against_peer(x, pad, p, eps)
    w = torch.randn(B, T, C)
    (y * w).sum().backward()
    recs = [("config", torch.tensor([B, T, C, H, eps], dtype=torch.float64)),
            ("pad", pad.float()), ("x", x), ("w", w)]
    recs += [(n, t) for n, t in p.items()]
    recs += [("y", y), ("att", a), ("grad.x", x.grad)]
    recs += [("grad." + n, t.grad) for n, t in p.items()]
    write(os.path.join(OUT, "sasrec_block.bin"), recs)


def rnn(kind):
    B, T, C, G = 2, 4, 3, 5
    mod = (torch.nn.GRU if kind == "gru" else torch.nn.LSTM)(C, G, batch_first=True)
    x = rnd(B, T, C)
    h0 = rnd(1, B, G, scale=0.5)
    if kind == "gru":
        y, _ = mod(x, h0)
        state = [("h0", h0)]
    else:
        c0 = rnd(1, B, G, scale=0.5)
        y, _ = mod(x, (h0, c0))
        state = [("h0", h0), ("c0", c0)]
    w = torch.randn(B, T, G)
    (y * w).sum().backward()
    params = [("rnn.wx", mod.weight_ih_l0), ("rnn.wh", mod.weight_hh_l0),
              ("rnn.bx", mod.bias_ih_l0), ("rnn.bh", mod.bias_hh_l0)]
    recs = [("config", torch.tensor([B, T, C, G], dtype=torch.float64)), ("x", x), ("w", w)]
    recs += state + params + [("y", y), ("grad.x", x.grad)]
    recs += [("grad." + n, t.grad) for n, t in state + params]
    write(os.path.join(OUT, kind + ".bin"), recs)


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    sasrec_block()
    rnn("gru")
    rnn("lstm")
