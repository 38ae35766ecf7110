"""Fast paths against the simple ones they replace."""

import pytest
import torch

from stylegan.layers import upfirdn2d


@pytest.mark.parametrize("up, down, padding, taps", [
    (2, 1, (11, 10, 11, 10), 12), (4, 1, (-2, -5, -2, -5), 24), (1, 2, (0, 0, 0, 0), 12),
    (2, 1, (-9, -10, -9, -10), 12), (2, 1, (2, 1, 2, 1), 4), (1, 1, (1, 1, 1, 1), 4), (2, 2, (3, 0, 1, 2), 6),
])
def test_separable_upfirdn2d_equals_the_2d_filter(up, down, padding, taps):
    torch.manual_seed(0)
    x = torch.randn(2, 3, 24, 24)
    f = torch.rand(taps)
    fast = upfirdn2d(x, f, up=up, down=down, padding=padding, gain=up ** 2)
    simple = upfirdn2d(x, torch.outer(f, f), up=up, down=down, padding=padding, gain=up ** 2)
    assert fast.shape == simple.shape
    assert torch.allclose(fast, simple, atol=1e-5)
