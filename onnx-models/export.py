#!/usr/bin/env python3
"""Export a trained ByteGRU checkpoint to the ONNX file nc embeds.

    python3 onnx-models/export.py onnx-models/checkpoint.pt onnx-models/nc-gru256.onnx --name gru256

Why the graph is this small: float results of tract differ between instruction sets (kernel
choice changes summation order and FMA use). So the ONNX graph holds exactly one computation,
the recurrent matmul and the output layer fused into one matmul of *integer-valued* operands:

    mm[L, 3H+256] = MatMul(h_q[L, H], W_q[H, 3H+256])     h_q, W_q integers in [-127, 127]

stored as f32. Every product and every partial sum is then an integer of magnitude at most
H * 127 * 127 < 2^24 (for H <= 1040), which f32 represents exactly: no rounding ever happens,
so any summation order, with or without FMA, on any kernel, gives the same exact result.
(tract's int8 `MatMulInteger` is exact too, but on AVX2 machines without VNNI its i32 kernel
was far slower than the f32 kernels.)

Everything else the Rust side needs travels as constant outputs (`Identity` of an
initializer, which tract returns bit for bit):

    input_table[256, 3H] f32   embedding @ W_ih^T + b_ih: the input half of the GRU per byte
    hidden_bias[3H]      f32   b_hh
    col_scale[3H+256]    f32   per-column weight scale: W ~= W_q * col_scale
    out_bias[256]        f32   output layer bias

The hidden state is quantised as h_q = round(h * 127) (|h| <= 1 in a GRU). The Rust expert
(src/experts/neural.rs) computes the gates from these with deterministic f32 arithmetic.

A reference file (<out>.ref.txt) records, for REFERENCE_TEXT, the logits this quantised model
gives in numpy float64, one line per byte; tests/neural.rs checks the Rust expert against it.
"""
import argparse
import hashlib
import os
import sys

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from train import ByteGRU  # noqa: E402

REFERENCE_TEXT = b"The quick brown fox jumps.\n"


def quantise_columns(w):
    """w: [in, out] float -> (int8 [in, out], scale [out]) with w ~= q * scale."""
    scale = np.abs(w).max(axis=0) / 127.0
    scale[scale == 0] = 1.0
    q = np.clip(np.round(w / scale), -127, 127).astype(np.int8)
    return q, scale.astype(np.float32)


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def reference_logits(tables, hidden, data):
    """Runs the quantised model exactly as the Rust expert does, in float64."""
    input_table, hidden_bias, w_q, col_scale, out_bias = tables
    h = np.zeros(hidden)
    out = []
    for byte in data:
        h_q = np.clip(np.round(h * 127.0), -127, 127)
        mm = (h_q @ w_q.astype(np.float64)) * (col_scale / 127.0)
        out.append((mm[3 * hidden :] + out_bias).tolist())
        gi = input_table[byte]
        gh = mm[: 3 * hidden] + hidden_bias
        r = sigmoid(gi[:hidden] + gh[:hidden])
        z = sigmoid(gi[hidden : 2 * hidden] + gh[hidden : 2 * hidden])
        n = np.tanh(gi[2 * hidden :] + r * gh[2 * hidden :])
        h = (1.0 - z) * n + z * h
    return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("checkpoint")
    p.add_argument("output")
    p.add_argument("--name", required=True, help="model name stored in .nc headers (<= 16 ASCII bytes)")
    args = p.parse_args()
    assert len(args.name.encode()) <= 16
    # Exactness bound of the integer-valued f32 matmul (see above).

    ck = torch.load(args.checkpoint, weights_only=False, map_location="cpu")
    model = ByteGRU(ck["hidden"], ck["embed"])
    model.load_state_dict(ck["model"])
    H = ck["hidden"]
    assert H * 127 * 127 < 2**24, "hidden size too large for an exact f32 matmul"
    with torch.no_grad():
        emb = model.embed.weight.numpy().astype(np.float64)
        w_ih = model.gru.weight_ih_l0.numpy().astype(np.float64)
        b_ih = model.gru.bias_ih_l0.numpy().astype(np.float64)
        w_hh = model.gru.weight_hh_l0.numpy().astype(np.float64)
        b_hh = model.gru.bias_hh_l0.numpy().astype(np.float64)
        w_out = model.out.weight.numpy().astype(np.float64)
        b_out = model.out.bias.numpy().astype(np.float64)

    input_table = (emb @ w_ih.T + b_ih).astype(np.float32)  # [256, 3H]
    w = np.concatenate([w_hh.T, w_out.T], axis=1)  # [H, 3H + 256]
    w_q, col_scale = quantise_columns(w)
    hidden_bias = b_hh.astype(np.float32)
    out_bias = b_out.astype(np.float32)

    inits = [
        numpy_helper.from_array(w_q.astype(np.float32), "w_q"),
        numpy_helper.from_array(input_table, "input_table_init"),
        numpy_helper.from_array(hidden_bias, "hidden_bias_init"),
        numpy_helper.from_array(col_scale, "col_scale_init"),
        numpy_helper.from_array(out_bias, "out_bias_init"),
    ]
    nodes = [
        helper.make_node("MatMul", ["h_q", "w_q"], ["mm"]),
        helper.make_node("Identity", ["input_table_init"], ["input_table"]),
        helper.make_node("Identity", ["hidden_bias_init"], ["hidden_bias"]),
        helper.make_node("Identity", ["col_scale_init"], ["col_scale"]),
        helper.make_node("Identity", ["out_bias_init"], ["out_bias"]),
    ]
    graph = helper.make_graph(
        nodes,
        "nc_byte_gru",
        [helper.make_tensor_value_info("h_q", TensorProto.FLOAT, ["lanes", H])],
        [
            helper.make_tensor_value_info("mm", TensorProto.FLOAT, ["lanes", 3 * H + 256]),
            helper.make_tensor_value_info("input_table", TensorProto.FLOAT, [256, 3 * H]),
            helper.make_tensor_value_info("hidden_bias", TensorProto.FLOAT, [3 * H]),
            helper.make_tensor_value_info("col_scale", TensorProto.FLOAT, [3 * H + 256]),
            helper.make_tensor_value_info("out_bias", TensorProto.FLOAT, [256]),
        ],
        initializer=inits,
    )
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="nc-codec export.py")
    m.ir_version = 8
    helper.set_model_props(m, {"nc.name": args.name, "nc.hidden": str(H), "nc.bytes_trained": str(ck["state"]["bytes"])})
    onnx.checker.check_model(m)
    onnx.save(m, args.output)

    tables = (input_table.astype(np.float64), hidden_bias.astype(np.float64), w_q,
              col_scale.astype(np.float64), out_bias.astype(np.float64))
    # One line per position of REFERENCE_TEXT: the 256 logits predicting that byte.
    with open(args.output + ".ref.txt", "w") as f:
        for row in reference_logits(tables, H, REFERENCE_TEXT):
            f.write(" ".join(f"{v:.4f}" for v in row) + "\n")
    data = open(args.output, "rb").read()
    print(f"{args.output}: {len(data)} bytes, sha256 {hashlib.sha256(data).hexdigest()}")


if __name__ == "__main__":
    main()
