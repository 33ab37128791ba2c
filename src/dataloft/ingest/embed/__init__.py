"""Embedders: text -> unit-length float32 vectors. See base.py for the port."""
