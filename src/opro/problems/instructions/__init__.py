"""The main application, instruction optimization (OPRO §4): ``spec`` (what defines a
run), ``problem`` (proposals, scoring, exemplars, the held-out evaluation) and ``kind`` (how
a run is built and reported)."""
