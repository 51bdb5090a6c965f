"""One emulator per vendor API, each delegating energy on the emulated chain."""
