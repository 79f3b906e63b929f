"""The mil stage."""
