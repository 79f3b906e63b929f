"""The eval stage."""
