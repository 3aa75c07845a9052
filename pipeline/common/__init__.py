"""Helpers shared by every stage: errors, atomic and private file writes, progress."""
