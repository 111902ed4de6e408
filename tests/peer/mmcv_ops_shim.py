"""Test-only stand-ins for the two compiled `mmcv.ops` kernels mmdetection's CentripetalNet needs.

`mmcv-lite` (the PyPI build without C++/CUDA extensions) ships every Python wrapper of `mmcv.ops` but not the compiled
module `mmcv._ext` they load at import time. `install()` registers a pure-PyTorch `mmcv._ext` that implements:

- `deform_conv_forward`: deformable convolution v1, through `torchvision.ops.deform_conv2d` (the same bilinear
  sampling, zero outside the map, and the same offset layout: (dy, dx) per kernel tap, row-major taps);
- `deform_conv_backward_input` and `deform_conv_backward_parameters`: its gradients, through torchvision's backward
  kernel (`torch.autograd.grad` of the same `deform_conv2d`), written into mmcv's preallocated buffers the way mmcv's
  kernels write them (input and offset gradients set, the weight gradient accumulated with `scale`);
- `{top,bottom,left,right}_pool_forward`: corner pooling, through a cumulative max (mmcv's Python `CornerPool` already
  uses `torch.cummax` on torch >= 1.5, so these are only a fallback).

Any other compiled op raises a NotImplementedError naming it, so a test can never silently use a stub.
Training works: mmcv's `DeformConv2dFunction.backward` calls the two backward ops one after the other with the same
tensors; torchvision's backward computes all three gradients at once, so the first call keeps the weight gradient for
the second (one forward recomputation and one backward kernel per layer and step, as mmcv's CPU kernels, which redo
their im2col in each call, cost about the same).
"""
import importlib
import sys
import types

import torch
import torchvision

_CUMMAX = {"top": (2, True), "bottom": (2, False), "left": (3, True), "right": (3, False)}


def deform_conv_forward(input, weight, offset, output, columns, ones, *, kW, kH, dW, dH, padW, padH,
                        dilationW, dilationH, group, deformable_group, im2col_step):
    "mmcv's `deform_conv_forward(...)`: writes the deformable conv of `input` into the preallocated `output`."
    if weight.shape[-2:] != (kH, kW):
        raise ValueError(f"deform_conv_forward: weight kernel {tuple(weight.shape[-2:])} != (kH, kW) = {(kH, kW)}")
    if offset.shape[1] != 2 * deformable_group * kH * kW:
        raise ValueError(f"deform_conv_forward: offset has {offset.shape[1]} channels, expected "
                         f"2*deformable_group*kH*kW = {2 * deformable_group * kH * kW}")
    # torchvision infers the offset groups from offset's channels and the conv groups from weight's in-channels
    out = torchvision.ops.deform_conv2d(input, offset, weight, None, stride=(dH, dW), padding=(padH, padW),
                                        dilation=(dilationH, dilationW))
    output.copy_(out)
    return output


def _check_deform_args(weight, offset, kH, kW, deformable_group, who):
    if weight.shape[-2:] != (kH, kW):
        raise ValueError(f"{who}: weight kernel {tuple(weight.shape[-2:])} != (kH, kW) = {(kH, kW)}")
    if offset.shape[1] != 2 * deformable_group * kH * kW:
        raise ValueError(f"{who}: offset has {offset.shape[1]} channels, expected "
                         f"2*deformable_group*kH*kW = {2 * deformable_group * kH * kW}")


# the weight gradient computed by the last deform_conv_backward_input, for the deform_conv_backward_parameters call
# that mmcv makes right after it with the same tensors: (input, offset, grad_output, grad_weight) or None
_PENDING = [None]


def _deform_grads(input, offset, weight, grad_output, kW, kH, dW, dH, padW, padH, dilationW, dilationH):
    "(d input, d offset, d weight) of torchvision's deform_conv2d at these tensors, for the output gradient given."
    with torch.enable_grad():                      # autograd.Function.backward runs with grad mode off
        x, off, w = (t.detach().requires_grad_(True) for t in (input, offset, weight))
        out = torchvision.ops.deform_conv2d(x, off, w, None, stride=(dH, dW), padding=(padH, padW),
                                            dilation=(dilationH, dilationW))
        return torch.autograd.grad(out, (x, off, w), grad_output)


def deform_conv_backward_input(input, offset, gradOutput, gradInput, gradOffset, weight, columns, *, kW, kH, dW, dH,
                               padW, padH, dilationW, dilationH, group, deformable_group, im2col_step):
    "mmcv's `deform_conv_backward_input(...)`: writes d loss / d input and d loss / d offset into the given buffers."
    _check_deform_args(weight, offset, kH, kW, deformable_group, "deform_conv_backward_input")
    gi, go, gw = _deform_grads(input, offset, weight, gradOutput, kW, kH, dW, dH, padW, padH, dilationW, dilationH)
    gradInput.copy_(gi)
    gradOffset.copy_(go)
    _PENDING[0] = (input, offset, gradOutput, gw)
    return gradInput, gradOffset


def deform_conv_backward_parameters(input, offset, gradOutput, gradWeight, columns, ones, *, kW, kH, dW, dH, padW,
                                    padH, dilationW, dilationH, group, deformable_group, scale, im2col_step):
    "mmcv's `deform_conv_backward_parameters(...)`: adds scale · d loss / d weight to `gradWeight`."
    _check_deform_args(gradWeight, offset, kH, kW, deformable_group, "deform_conv_backward_parameters")
    pending, _PENDING[0] = _PENDING[0], None
    same = pending is not None and all(a is b for a, b in zip(pending[:3], (input, offset, gradOutput)))
    if same: gw = pending[3]
    else:                                          # not right after backward_input on the same tensors: compute it
        # mmcv passes the zero-filled gradWeight buffer, not the weight: the gradient does not depend on the weight
        _, _, gw = _deform_grads(input, offset, torch.zeros_like(gradWeight), gradOutput, kW, kH, dW, dH, padW, padH,
                                 dilationW, dilationH)
    gradWeight.add_(gw, alpha=scale)
    return gradWeight


def _pool(mode):
    dim, flip = _CUMMAX[mode]

    def forward(x):
        y = x.flip(dim) if flip else x
        y = torch.cummax(y, dim=dim).values
        return y.flip(dim) if flip else y
    forward.__name__ = f"{mode}_pool_forward"
    return forward


def _missing(name):
    def op(*args, **kwargs):
        raise NotImplementedError(f"mmcv op {name!r} is not provided by tests/peer/mmcv_ops_shim.py (mmcv-lite has no "
                                  "compiled ops); install full mmcv or add a pure-PyTorch version of it to the shim")
    op.__name__ = name
    return op


def _make_ext():
    ext = types.ModuleType("mmcv._ext")
    ext.__doc__ = "pure-PyTorch stand-in for mmcv's compiled ops (tests/peer/mmcv_ops_shim.py)"
    ext.deform_conv_forward = deform_conv_forward
    ext.deform_conv_backward_input = deform_conv_backward_input
    ext.deform_conv_backward_parameters = deform_conv_backward_parameters
    for mode in _CUMMAX: setattr(ext, f"{mode}_pool_forward", _pool(mode))
    # mmcv checks every op name with hasattr at import time: answer each with a stub that fails loudly when called
    ext.__getattr__ = lambda name: _missing(name) if not name.startswith("__") else (_ for _ in ()).throw(AttributeError(name))
    ext.SHIM = True
    return ext


def install() -> bool:
    "Register the stand-in `mmcv._ext` unless a compiled one is importable. Returns True when the shim is in use."
    if "mmcv._ext" in sys.modules: return bool(getattr(sys.modules["mmcv._ext"], "SHIM", False))
    try:
        importlib.import_module("mmcv._ext")
        return False
    except ImportError:
        sys.modules["mmcv._ext"] = _make_ext()
        return True
