"""Fast paths against the simple ones they replace."""

import pytest
import torch

from stylegan.layers import _upfirdn2d_dense, fir_filter_2d, symmetric_separable_taps, upfirdn2d


@pytest.mark.parametrize("up, down, padding, taps", [
    (2, 1, (11, 10, 11, 10), 12), (4, 1, (-2, -5, -2, -5), 24), (1, 2, (0, 0, 0, 0), 12),
    (2, 1, (-9, -10, -9, -10), 12), (2, 1, (2, 1, 2, 1), 4), (1, 1, (1, 1, 1, 1), 4), (2, 2, (3, 0, 1, 2), 6),
])
def test_separable_upfirdn2d_equals_the_2d_filter(up, down, padding, taps):
    torch.manual_seed(0)
    x = torch.randn(2, 3, 24, 24)
    f = torch.rand(taps)
    fast = upfirdn2d(x, f, up=up, down=down, padding=padding, gain=up ** 2)
    simple = _upfirdn2d_dense(x, torch.outer(f, f), up, down, padding, up ** 2)
    assert fast.shape == simple.shape
    assert torch.allclose(fast, simple, atol=1e-5)


def test_separable_2d_filters_take_the_fast_path():
    f = fir_filter_2d([1, 3, 3, 1])  # StyleGAN2's resampling filter, stored 2-D in checkpoints
    taps = symmetric_separable_taps(f)
    assert taps.shape == (4,) and torch.allclose(taps, torch.tensor([1.0, 3, 3, 1]) / 8)
    x = torch.randn(1, 2, 8, 8)
    assert torch.allclose(upfirdn2d(x, f, up=2, padding=(2, 1, 2, 1), gain=4),
                          _upfirdn2d_dense(x, f, 2, 1, (2, 1, 2, 1), 4), atol=1e-6)
    not_separable = torch.tensor([[1.0, 2], [3, 4]])
    assert symmetric_separable_taps(not_separable) is not_separable
