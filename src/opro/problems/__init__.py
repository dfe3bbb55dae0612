"""Problems OPRO optimizes: each implements the small ``Problem`` contract of ``base``."""
