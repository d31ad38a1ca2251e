"""The run directory: its layout and state, atomic file writes, and listing many runs."""
