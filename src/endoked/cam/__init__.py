"""The cam stage."""
