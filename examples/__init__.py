"""Examples that go with opro (run them from the repository root)."""
