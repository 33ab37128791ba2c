"""Hybrid fusion: the vectorised fuse() ranks exactly as the rule it states, written plainly
here as the oracle (min-max per side, convex combination, then more sides, then lower pk)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from dataloft.search.service import fuse


def _normalised(hits: list[tuple[int, float]]) -> dict[int, float]:
    if not hits:
        return {}
    scores = [s for _, s in hits]
    lo, hi = min(scores), max(scores)
    span = hi - lo
    return {pk: (s - lo) / span if span > 0 else 1.0 for pk, s in hits}


def oracle(lexical: list[tuple[int, float]], semantic: list[tuple[int, float]],
           weight: float) -> list[tuple[int, float]]:
    lex, sem = _normalised(lexical), _normalised(semantic)
    if weight >= 1:
        sem = {}
    elif weight <= 0:
        lex = {}
    ranked = sorted((-(weight * lex.get(pk, 0.0) + (1 - weight) * sem.get(pk, 0.0)),
                     -((pk in lex) + (pk in sem)), pk) for pk in lex.keys() | sem.keys())
    return [(pk, -neg) for neg, _, pk in ranked]


# Few distinct pks and scores, so that overlaps and ties are common.
_SCORE = st.sampled_from([0.0, 0.25, 0.5, 1.0, 3.5]) | st.floats(-5, 50, allow_nan=False)
_SIDE = st.lists(st.tuples(st.integers(1, 40), _SCORE), max_size=30)


@given(_SIDE, _SIDE, st.sampled_from([0.0, 0.3, 0.7, 1.0]) | st.floats(-0.5, 1.5))
def test_fuse_ranks_as_the_stated_rule(lexical: list[tuple[int, float]],
                                       semantic: list[tuple[int, float]],
                                       weight: float) -> None:
    assert fuse(lexical, semantic, weight) == oracle(lexical, semantic, weight)


def test_fuse_prefers_the_candidate_both_sides_found() -> None:
    # pk 2 is each side's weakest (0 after min-max) but found by both: above pk 3.
    lexical, semantic = [(1, 9.0), (2, 1.0)], [(3, 0.9), (2, 0.1), (4, 0.1)]
    assert [pk for pk, _ in fuse(lexical, semantic, 1.0)] == [1, 2]
    assert [pk for pk, _ in fuse(lexical, semantic, 0.5)][:2] == [1, 3]
    assert fuse([], [], 0.7) == []
