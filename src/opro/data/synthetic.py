"""Tasks opro generates itself, so that something runs with no benchmark file and no network.

``synthetic:adjective_order``: the kind of question BIG-Bench Hard's hyperbaton asks —
"Which sentence has the correct adjective order", two options with the same adjectives in
different orders — drawn from opro's own word lists. English puts adjectives in the order
opinion, size, age, shape, colour, origin, material, purpose; the right option follows it,
the other is another order of the same words. The set is the same everywhere (250 questions
from a fixed seed, half answered (A), half (B)); the split is BBH's (20 % train).

It is not hyperbaton (other words, other lengths): numbers on it are not the benchmark's.
Leaves out: reading files (``opro.data.formats``) and splitting (``opro.data.loaders``).
"""

from __future__ import annotations

import numpy as np

from opro.data.formats import Example

#: Each category's words, in the order English puts the categories.
ORDER: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("opinion", ("lovely", "ugly", "nice", "terrible", "wonderful", "silly", "awful", "good")),
    ("size", ("big", "small", "tiny", "enormous", "huge", "little", "large", "midsize")),
    ("age", ("old", "new", "ancient", "brand-new", "archaic", "young")),
    ("shape", ("square", "circular", "round", "triangular", "rectangular", "spherical")),
    ("colour", ("red", "blue", "green", "grey", "black", "white", "pink", "yellow", "brown")),
    ("origin", ("Mexican", "Japanese", "Brazilian", "Indian", "German", "Russian", "Egyptian")),
    ("material", ("wool", "glass", "paper", "plastic", "steel", "leather", "rubber", "cloth")),
    ("purpose", ("walking", "drinking", "hiking", "eating", "typing", "exercise", "smoking")),
)
NOUNS = ("shoe", "ship", "knife", "car", "box", "sweater", "bowl", "dog", "chair", "watch")
SIZE = 250
SEED = 0
QUESTION = "Which sentence has the correct adjective order:\nOptions:\n(A) {a}\n(B) {b}"


def adjective_order(size: int = SIZE, seed: int = SEED) -> list[Example]:
    """``size`` questions (choice, answered "(A)" or "(B)", as many of each as can be)."""
    rng = np.random.RandomState(seed)  # frozen by NumPy: the same draws in every version
    right_is_a = [i < size // 2 for i in range(size)]
    rng.shuffle(right_is_a)
    examples = []
    for i, a_first in enumerate(right_is_a):
        count = int(rng.randint(2, 6))  # 2 to 5 adjectives, each from its own category
        categories = sorted(rng.choice(len(ORDER), size=count, replace=False))
        words = [str(rng.choice(ORDER[c][1])) for c in categories]
        wrong = list(words)
        while wrong == words:  # another order of the same words
            wrong = [words[j] for j in rng.permutation(count)]
        noun = str(rng.choice(NOUNS))
        right_text, wrong_text = " ".join([*words, noun]), " ".join([*wrong, noun])
        a, b = (right_text, wrong_text) if a_first else (wrong_text, right_text)
        answer = "(A)" if a_first else "(B)"
        examples.append(Example(QUESTION.format(a=a, b=b), answer, "choice", i))
    return examples
