"""Wrappers of the external programs the flows call (Tesseract, veraPDF): one module per tool.

Every subprocess goes through :func:`flows._exec.run.run`, which logs the command and the tool's
stderr and translates failures into :mod:`flows.errors`.
"""
