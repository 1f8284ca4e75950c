"""ONNX: exporting a model's parts and creating onnxruntime sessions (filled in below)."""
