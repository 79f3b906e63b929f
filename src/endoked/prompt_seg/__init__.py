"""The prompt_seg stage."""
