"""Indirect Object Identification (IOI) prompt generator, independent of any tokenizer.

A prompt names two people (IO and S) in its first clause, repeats S, and ends right before the
indirect object: "When Mary and John went to the store, John gave a drink to" -> " Mary".

To stop small models from solving the task by position (see NOTES-TL4), prompts vary:
15 templates, 48 names, 20 places, 20 objects, a random-length filler prefix (0-3 sentences),
and both name orders (ABBA: IO first; BABA: S first).

Corruptions (`corruption=`, `CORRUPTIONS`), each keeping every name one token so a pair stays
aligned token for token:

- "s2" (the default, and the only one before): the second mention of S becomes a third name C,
  so the prompt holds no duplicated name and IO and S are symmetric: a model that solves IOI by
  duplicate detection scores a logit difference near 0 on it. Tokens before S2 are unchanged,
  so nothing upstream of S2 can show up in a patching experiment.
- "s1s2": both mentions of S become C ("When Mary and Ellie ..., Ellie gave ... to"): still a
  well-formed IOI prompt whose answer is still IO; only the subject's identity changes, from S1
  on.
- "abc": IO, S1 and S2 become three distinct names X, Y, Z drawn from all names except IO and
  S (the ABC distribution of Wang et al. 2022): no name of the clean prompt is left, from the
  first name on.

The clean prompts (and, for "s2" and "s1s2", C) are the same for every corruption at a given
seed: the extra names of "abc" come from a second generator seeded from `seed`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

CORRUPTIONS = ("s2", "s1s2", "abc")
"""IOI corruptions (module docstring); "s2" is the default."""

NAMES = [
    "Mary",
    "John",
    "Alice",
    "Bob",
    "Tom",
    "James",
    "Sarah",
    "Emma",
    "David",
    "Michael",
    "Laura",
    "Kevin",
    "Anna",
    "Paul",
    "Lisa",
    "Mark",
    "Jessica",
    "Daniel",
    "Rachel",
    "Peter",
    "Amy",
    "Steven",
    "Jennifer",
    "Chris",
    "Kate",
    "Brian",
    "Helen",
    "Eric",
    "Linda",
    "Jack",
    "Susan",
    "Ryan",
    "Karen",
    "Adam",
    "Maria",
    "Scott",
    "Nancy",
    "Frank",
    "Julia",
    "Henry",
    "Grace",
    "Robert",
    "Emily",
    "Victor",
    "Claire",
    "Martin",
    "Sophie",
    "George",
]

PLACES = [
    "store",
    "garden",
    "school",
    "park",
    "office",
    "station",
    "restaurant",
    "hospital",
    "library",
    "market",
    "beach",
    "house",
    "church",
    "museum",
    "river",
    "forest",
    "kitchen",
    "hotel",
    "farm",
    "theater",
]

OBJECTS = [
    "drink",
    "book",
    "ring",
    "bone",
    "kiss",
    "computer",
    "snack",
    "basketball",
    "necklace",
    "letter",
    "ball",
    "bottle",
    "hat",
    "apple",
    "pen",
    "key",
    "phone",
    "bag",
    "cake",
    "flower",
]

FILLERS = (
    "It was a sunny day.",
    "The week had been long.",
    "Everyone was tired.",
    "It had rained all morning.",
    "The town was quiet.",
    "Nobody expected much.",
    "The sky was grey.",
    "It was late in the evening.",
    "Music played somewhere.",
    "The day started early.",
)

# {A} and {B} are the first-clause names (IO and S in either order), {S} the repeated subject.
TEMPLATES = (
    "When {A} and {B} went to the {PLACE}, {S} gave a {OBJECT} to",
    "When {A} and {B} got a {OBJECT} at the {PLACE}, {S} decided to give it to",
    "Then, {A} and {B} went to the {PLACE}. {S} gave a {OBJECT} to",
    "Then, {A} and {B} had a long argument, and afterwards {S} said to",
    "After {A} and {B} went to the {PLACE}, {S} gave a {OBJECT} to",
    "While {A} and {B} were working at the {PLACE}, {S} gave a {OBJECT} to",
    "Friends {A} and {B} found a {OBJECT} at the {PLACE}. {S} gave it to",
    "{A} and {B} were at the {PLACE}. {S} handed the {OBJECT} to",
    "The {PLACE} was busy when {A} and {B} arrived. {S} passed the {OBJECT} to",
    "When {A} and {B} arrived at the {PLACE}, {S} threw a {OBJECT} to",
    "After the lunch, {A} and {B} went to the {PLACE}. {S} brought a {OBJECT} to",
    "{A} and {B} had a lot of fun at the {PLACE}. {S} gave a {OBJECT} to",
    "Then, {A} and {B} were thinking about going to the {PLACE}. {S} wanted to give a {OBJECT} to",
    "Once {A} and {B} met at the {PLACE}, {S} sent a {OBJECT} to",
    "When {A} and {B} left the {PLACE}, {S} showed a {OBJECT} to",
)


@dataclass(frozen=True)
class IOIPrompt:
    """One clean/corrupted IOI pair. `text` ends right before the answer `io`."""

    text: str
    corrupted_text: str
    io: str
    s: str
    c: str
    order: str  # "ABBA" (IO named first) or "BABA" (S named first)
    template: int
    n_fillers: int
    corruption: str = "s2"
    corrupted_names: tuple[str, str, str] = ()  # (IO, S1, S2) positions' names when corrupted


def generate_ioi_prompts(
    n: int,
    *,
    seed: int = 0,
    names: tuple[str, ...] | list[str] = NAMES,
    templates: tuple[str, ...] | list[str] = TEMPLATES,
    max_fillers: int = 3,
    corruption: str = "s2",
) -> list[IOIPrompt]:
    """`n` random IOI prompts, reproducible from `seed`, corrupted by `corruption`.

    Raises `ValueError` for n < 1, fewer than 3 names (5 for "abc"), no templates, or an
    unknown corruption.
    """
    if corruption not in CORRUPTIONS:
        raise ValueError(
            f"corruption: unknown corruption {corruption!r}; choose from {CORRUPTIONS}"
        )
    if n < 1:
        raise ValueError(f"n: need at least one prompt, got {n}")
    need = 5 if corruption == "abc" else 3
    if len(set(names)) < need:
        raise ValueError(
            f"names: need at least {need} distinct names for corruption {corruption!r}, "
            f"got {len(set(names))}"
        )
    if not templates:
        raise ValueError("templates: need at least one template")
    rng = random.Random(seed)
    extra = random.Random(f"ioi-abc-{seed}")  # "abc" names; leaves `rng`'s stream as it was
    names = sorted(set(names))
    prompts = []
    for _ in range(n):
        io, s, c = rng.sample(names, 3)
        order = rng.choice(("ABBA", "BABA"))
        t = rng.randrange(len(templates))
        place, obj = rng.choice(PLACES), rng.choice(OBJECTS)
        n_fillers = rng.randint(0, max_fillers)
        prefix = " ".join(rng.sample(FILLERS, n_fillers))
        body = templates[t].format(A="{A}", B="{B}", S="{S}", PLACE=place, OBJECT=obj)
        text = f"{prefix} {body}".strip()
        if corruption == "s2":
            swapped = (io, s, c)
        elif corruption == "s1s2":
            swapped = (io, c, c)
        else:
            swapped = tuple(extra.sample([x for x in names if x not in (io, s)], 3))
        prompts.append(
            IOIPrompt(
                text=_fill(text, order, io, s, s),
                corrupted_text=_fill(text, order, *swapped),
                io=io,
                s=s,
                c=c,
                order=order,
                template=t,
                n_fillers=n_fillers,
                corruption=corruption,
                corrupted_names=swapped,
            )
        )
    return prompts


def _fill(text: str, order: str, io: str, s1: str, s2: str) -> str:
    """`text` with its name slots filled: {A}/{B} the first clause in `order`, {S} the
    second mention of the subject."""
    a, b = (io, s1) if order == "ABBA" else (s1, io)
    return text.replace("{A}", a).replace("{B}", b).replace("{S}", s2)


def ioi_vocabulary() -> list[str]:
    """Every word and punctuation mark the generator can emit (for word-level tokenizers)."""
    words: set[str] = set(NAMES) | set(PLACES) | set(OBJECTS)
    for text in (*TEMPLATES, *FILLERS):
        for piece in text.replace(",", " , ").replace(".", " . ").split():
            if not piece.startswith("{"):
                words.add(piece)
    return sorted(words)
