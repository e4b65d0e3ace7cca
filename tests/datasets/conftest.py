"""The dataset tests' fixtures ``tiny_dataset`` and ``tiny_copy`` live in tests/conftest.py
(the training tests use them too)."""
