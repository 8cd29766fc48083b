"""`make doctor`: is this laptop ready for every lesson? One line per item, ✓ or ✗ with its fix.

It runs on the standard library alone (before `make setup`, and with a Python too old for the lessons),
so a learner can run it the day before the workshop, and a host can collect the room's `--json`."""
