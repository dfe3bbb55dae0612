"""Answer scoring, the scorer of instructions, and paired statistics."""
