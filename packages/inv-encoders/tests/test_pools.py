"""e4e's history pools (inv_encoders.pools.LatentPool): fill, then hand on an old code or the new one."""

import pytest
import torch

from inv_encoders.pools import LatentPool


def test_pool_fills_then_swaps_half_the_time():
    pool = LatentPool(4, 2, seed=3)
    first = torch.arange(6.0).reshape(3, 2)
    assert torch.equal(pool.query(first), first) and torch.equal(pool.codes, first)  # filling: handed on as is
    new = torch.tensor([[10.0, 10.0], [11.0, 11.0]])
    out = pool.query(new)
    assert torch.equal(out[0], new[0]) and torch.equal(pool.codes[3], new[0])  # the 4th fills the pool
    stored = set(map(tuple, first.tolist())) | {(10.0, 10.0)}
    old_or_new = tuple(out[1].tolist())
    assert old_or_new == (11.0, 11.0) or old_or_new in stored

    returned_old, n = 0, 2000
    for i in range(n):  # a full pool: half the queries return an old code, which the new one replaces
        before = pool.codes.clone()
        w = torch.full((1, 2), 100.0 + i)
        got = pool.query(w)[0]
        if torch.equal(got, w[0]):
            assert torch.equal(pool.codes, before)
        else:
            returned_old += 1
            changed = (pool.codes != before).any(1)
            assert changed.sum() == 1 and torch.equal(before[changed][0], got)
            assert torch.equal(pool.codes[changed][0], w[0])
    assert abs(returned_old / n - 0.5) < 0.05
    assert len(pool.codes) == 4


def test_pool_picks_one_active_code_per_sample_and_is_seeded():
    codes = torch.arange(2 * 3 * 2.0).reshape(2, 3, 2)  # 2 samples, 3 active codes each
    out = LatentPool(10, 2, seed=0).query(codes)
    assert out.shape == (2, 2)
    for sample, picked in zip(codes, out):
        assert any(torch.equal(picked, c) for c in sample)
    a, b = LatentPool(3, 2, seed=7), LatentPool(3, 2, seed=7)
    batches = [torch.randn(4, 5, 2, generator=torch.Generator().manual_seed(i)) for i in range(5)]
    assert all(torch.equal(a.query(x), b.query(x)) for x in batches)
    c = LatentPool(3, 2)
    c.load_state(a.state())  # a resumed pool continues as the original
    x = torch.randn(4, 5, 2)
    assert torch.equal(a.query(x), c.query(x))


def test_size_zero_is_no_pool_and_bad_sizes_are_refused():
    codes = torch.randn(3, 4, 2)
    assert LatentPool(0, 2).query(codes) is codes
    with pytest.raises(ValueError, match="the pool size must be an int >= 0, got -1"):
        LatentPool(-1, 2)
