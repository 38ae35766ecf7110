"""Fast paths against the simple ones they replace."""

import pytest
import torch

from stylegan.layers import _upfirdn2d_dense, bias_act, fir_filter_2d, scale_add, symmetric_separable_taps, upfirdn2d


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


def _conv_output():
    torch.manual_seed(1)
    return torch.randn(2, 5, 7, 7).contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize("kwargs", [dict(), dict(lrelu_slope=0.2, gain=2 ** 0.5, clamp=0.5),
                                    dict(lrelu_slope=0.2, gain=0.7), dict(clamp=1.0)])
def test_in_place_bias_act_without_autograd_equals_the_simple_path(kwargs):
    x, b = _conv_output(), torch.randn(5)
    with torch.enable_grad():
        simple = bias_act(x, b, **kwargs)
    assert simple.data_ptr() != x.data_ptr()  # the simple path leaves its input alone
    with torch.no_grad():
        fast = bias_act(x, b, **kwargs)
    assert fast.data_ptr() == x.data_ptr()  # the fast path ran, in place
    assert torch.allclose(fast, simple, atol=1e-6)


def test_in_place_scale_add_without_autograd_equals_the_simple_path():
    x, scale, addend = _conv_output(), torch.rand(2, 5, 1, 1), torch.randn(2, 1, 7, 7)
    with torch.enable_grad():
        simple = scale_add(x, scale, addend)
    with torch.inference_mode():
        fast = scale_add(x, scale, addend)
    assert fast.data_ptr() == x.data_ptr()
    assert torch.allclose(fast, simple, atol=1e-6)


def test_training_gets_gradients_through_the_simple_path():
    x = _conv_output().requires_grad_(True)
    bias_act(scale_add(x * 1, torch.full((1, 5, 1, 1), 2.0)), torch.zeros(5), lrelu_slope=0.2).sum().backward()
    assert torch.allclose(x.grad, torch.where(x > 0, 2.0, 0.4))  # d/dx lrelu(2x)
