"""ONNX blocks on onnxruntime: the SD parts exported by ``orchestrator export-onnx`` and any
single-input image model (``onnx.run``). CUDA/TensorRT execution providers on a GPU (with
I/O binding), the CPU provider otherwise.
"""

from __future__ import annotations

from orchestrator import hookimpl
from plugins.onnx import generic, sd

BLOCKS = [*sd.BLOCKS, *generic.BLOCKS]


@hookimpl
def register_blocks() -> list:
    return list(BLOCKS)
