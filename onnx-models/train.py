#!/usr/bin/env python3
"""Train nc's byte-level neural expert: a 1-layer GRU that predicts the next byte.

One command retrains from scratch or resumes from the committed checkpoint:

    python3 onnx-models/train.py --minutes 120            # resumes onnx-models/checkpoint.pt if present
    python3 onnx-models/train.py --fresh --minutes 120    # starts over (seeded)

Data: the archives in ../shared/corpus/train only (never the bench corpus). Files whose path
hashes into the 1% validation bucket are held out and used for the bits-per-byte figures.

Block starts are part of training: every stream in the batch starts from a zero state at a
random file offset, is carried across chunks (truncated back-propagation), and is reset
again with probability 1/--reset-every per chunk, so the model is good both cold (the first
bytes of a checkpoint block, where the codec resets the lane) and warm.

The checkpoint keeps the weights, the optimiser state, the random state, the bytes trained
on and the wall-clock seconds spent, so training can continue across sessions.
"""
import argparse
import hashlib
import io
import json
import math
import os
import tarfile
import time
import zlib

import numpy as np
import torch
import torch.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_DATA = os.path.join(HERE, "..", "..", "shared", "corpus", "train")
SKIP_DIRS = ("_licenses/", "npm_licenses/", "debian_copyright_files/")


class ByteGRU(nn.Module):
    """Embedding -> GRU -> linear logits over the 256 next bytes."""

    def __init__(self, hidden=256, embed=64):
        super().__init__()
        self.hidden = hidden
        self.embed = nn.Embedding(256, embed)
        self.gru = nn.GRU(embed, hidden, batch_first=True)
        self.out = nn.Linear(hidden, 256)

    def forward(self, x, h=None):
        y, h = self.gru(self.embed(x), h)
        return self.out(y), h


def load_corpus(data_dir, cache):
    """Returns (train, valid) as uint8 arrays, files in sorted order; cached as .npy."""
    if os.path.exists(cache + ".train.npy"):
        return np.load(cache + ".train.npy"), np.load(cache + ".valid.npy")
    train, valid = [], []
    for name in sorted(os.listdir(data_dir)):
        if not name.endswith(".tar.xz"):
            continue
        with tarfile.open(os.path.join(data_dir, name), "r:xz") as tar:
            members = sorted((m for m in tar.getmembers() if m.isfile()), key=lambda m: m.name)
            for m in members:
                if any(s in m.name for s in SKIP_DIRS):
                    continue
                data = tar.extractfile(m).read()
                bucket = zlib.crc32(m.name.encode()) % 100
                (valid if bucket == 0 else train).append(data)
    tr = np.frombuffer(b"".join(train), dtype=np.uint8).copy()
    va = np.frombuffer(b"".join(valid), dtype=np.uint8).copy()
    np.save(cache + ".train.npy", tr)
    np.save(cache + ".valid.npy", va)
    return tr, va


@torch.no_grad()
def evaluate(model, data, nbytes=200_000, seg=4096):
    """Bits per byte on the first `nbytes` of the validation data, in segments that each
    start from a zero state (as checkpoint blocks do)."""
    model.eval()
    n = min(nbytes, len(data) - 1)
    segs = n // seg
    x = torch.from_numpy(data[: segs * seg].astype(np.int64)).view(segs, seg)
    y = torch.from_numpy(data[1 : segs * seg + 1].astype(np.int64)).view(segs, seg)
    device = next(model.parameters()).device
    logits, _ = model(x.to(device))
    loss = nn.functional.cross_entropy(logits.reshape(-1, 256), y.to(device).reshape(-1))
    model.train()
    return loss.item() / math.log(2)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=DEFAULT_DATA)
    p.add_argument("--checkpoint", default=os.path.join(HERE, "checkpoint.pt"))
    p.add_argument("--cache", default="/tmp/nc-train-corpus")
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--embed", type=int, default=64)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--chunk", type=int, default=128)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument(
        "--lr-final",
        type=float,
        default=None,
        help="learning rate at the end of this run (cosine over --minutes); default: constant --lr",
    )
    p.add_argument("--reset-every", type=float, default=16.0, help="mean chunks between lane resets")
    p.add_argument("--eval-bytes", type=int, default=200_000)
    p.add_argument("--minutes", type=float, default=60.0)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--save-every", type=float, default=5.0, help="minutes between checkpoints")
    p.add_argument("--fresh", action="store_true")
    args = p.parse_args()

    torch.set_num_threads(args.threads)
    train, valid = load_corpus(args.data, args.cache)
    print(f"corpus: {len(train)} train bytes, {len(valid)} validation bytes", flush=True)

    # On the training device before the optimiser state is loaded, so that state follows it.
    model = ByteGRU(args.hidden, args.embed).to(args.device)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    state = {"bytes": 0, "seconds": 0.0, "steps": 0, "log": []}
    rng = np.random.default_rng(args.seed)
    torch.manual_seed(args.seed)
    if os.path.exists(args.checkpoint) and not args.fresh:
        ck = torch.load(args.checkpoint, weights_only=False)
        assert ck["hidden"] == args.hidden and ck["embed"] == args.embed, "architecture differs"
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        state = ck["state"]
        rng.bit_generator.state = ck["rng"]
        print(f"resumed: {state['bytes']} bytes, {state['seconds']/3600:.2f} h so far", flush=True)

    def save():
        ck = {
            "hidden": args.hidden,
            "embed": args.embed,
            "model": {k: v.cpu() for k, v in model.state_dict().items()},
            "optimizer": opt.state_dict(),
            "state": state,
            "rng": rng.bit_generator.state,
        }
        tmp = args.checkpoint + ".tmp"
        torch.save(ck, tmp)
        os.replace(tmp, args.checkpoint)

    # The corpus lives on the training device, so a step's batch is gathered there
    # (on a GPU, copying 2048 x 257 bytes from the host every step would cost more than the step).
    train_t = torch.from_numpy(train).to(args.device)
    lr_final = args.lr if args.lr_final is None else args.lr_final
    B, T = args.batch, args.chunk
    offsets = torch.arange(T + 1, device=args.device)[None, :]
    pos = rng.integers(0, len(train) - T - 1, size=B)
    h = torch.zeros(1, B, args.hidden, device=args.device)
    start = time.time()
    last_save = start
    seconds0 = state["seconds"]
    window_loss, window_n = 0.0, 0
    bytes_at_start = state["bytes"]
    while time.time() - start < args.minutes * 60:
        frac = min(1.0, (time.time() - start) / (args.minutes * 60))
        lr = lr_final + (args.lr - lr_final) * 0.5 * (1.0 + math.cos(math.pi * frac))
        for group in opt.param_groups:
            group["lr"] = lr
        # Reset some streams: zero state at a fresh random offset, as at a block start.
        reset = rng.random(B) < 1.0 / args.reset_every
        reset |= pos + T + 1 >= len(train)
        if reset.any():
            pos[reset] = rng.integers(0, len(train) - T - 1, size=int(reset.sum()))
            mask = torch.from_numpy(~reset).to(args.device, torch.float32).view(1, B, 1)
            h = h * mask
        idx = torch.from_numpy(pos).to(args.device)[:, None] + offsets
        batch = train_t[idx].long()
        logits, h = model(batch[:, :-1], h.detach())
        loss = nn.functional.cross_entropy(logits.reshape(-1, 256), batch[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        pos += T
        state["bytes"] += B * T
        state["steps"] += 1
        window_loss += loss.item()
        window_n += 1
        now = time.time()
        state["seconds"] = seconds0 + (now - start)
        if now - last_save > args.save_every * 60:
            vb = evaluate(model, valid, args.eval_bytes)
            entry = {
                "hours": round(state["seconds"] / 3600, 3),
                "bytes": state["bytes"],
                "bytes_per_s": round((state["bytes"] - bytes_at_start) / (now - start)),
                "lr": round(lr, 6),
                "train_bpb": round(window_loss / window_n / math.log(2), 4),
                "valid_bpb": round(vb, 4),
            }
            state["log"].append(entry)
            print(json.dumps(entry), flush=True)
            window_loss, window_n = 0.0, 0
            save()
            last_save = now
    vb = evaluate(model, valid, args.eval_bytes)
    entry = {
        "hours": round(state["seconds"] / 3600, 3),
        "bytes": state["bytes"],
        "device": args.device,
        "valid_bpb": round(vb, 4),
    }
    state["log"].append(entry)
    print(json.dumps(entry), flush=True)
    save()
    with open(args.checkpoint, "rb") as f:
        print("checkpoint sha256", hashlib.sha256(f.read()).hexdigest(), flush=True)


if __name__ == "__main__":
    main()
