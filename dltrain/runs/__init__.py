"""The run directory: its file names (names.py) and typed records (records.py), layout and
state, atomic writes, the lock, and listing many runs."""
