from __future__ import annotations

from collectors.base.topk import top_k_interleaved


def test_small_inputs_are_kept_whole() -> None:
    kept, rest = top_k_interleaved([3, 1, 2], 5, float)
    assert (kept, rest) == ([3, 1, 2], [])


def test_takes_turns_between_rankings_and_bounds_at_k() -> None:
    rows = [("big", 100, 0), ("busy", 1, 900), ("mid", 50, 50), ("idle", 2, 0), ("warm", 3, 100)]
    kept, rest = top_k_interleaved(rows, 3, lambda r: r[1], lambda r: r[2])
    assert [r[0] for r in kept] == ["big", "busy", "mid"]
    assert sorted(r[0] for r in rest) == ["idle", "warm"]
    assert len(kept) + len(rest) == len(rows)
