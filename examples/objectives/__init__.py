"""Three objectives with known optima for ``opro solve`` (``benchmarks/objectives.py`` runs
them against the random-sampling baseline): ``regex`` (a regular expression for a labelled
set of strings), ``knapsack`` (a small 0/1 knapsack, its optimum by dynamic programming) and
``feedback`` (a hidden word, where the function's feedback text says which letters are right).

Each module has ``score``, ``TASK``, ``SOLUTION_FORMAT``, ``INITIAL`` and ``OPTIMUM``, and its
docstring gives the ``opro solve`` command that runs it.
"""
