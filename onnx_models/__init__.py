"""Trained ONNX models of diffpy.deepstruc (one folder per model)."""
