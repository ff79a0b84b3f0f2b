"""The elementwise stages of the background-skipping pass (sparse.py) over its large tensors, as autograd
functions with their backward written out.

Why by hand: autograd's graph for these few lines makes ~2x as many passes over the crops' tensors as the
forward and backward below, and those passes were most of a training step's time besides the convolutions
(measured). The algebra is nn.BatchNorm2d's in training mode, a sigmoid and sums; tests/test_fast_path.py
checks z, every gradient and the running statistics against the dense pass. With `kernels` (encoder.kernels=native)
and rpm's CPU kernels built (native.py), each stage is one or two passes of native.c instead, the same algebra
(SigmoidClassDifferenceSums for the last stage, which reads the background by border class).
"""
import torch

from rpm_cli.models import native


def _channel(v: torch.Tensor) -> torch.Tensor:
    return v.view(1, -1, 1, 1)


class BatchNormReLU(torch.autograd.Function):
    """relu(batchnorm(y)) where the batch is y at `own` (1 or 0, (n, 1, h, w)) plus zeros up to `count`
    pixels per channel; 0 where `outside` (1 or 0, (n, 1, h, w)) is 1.

    Returns (a, shift, mean, var): the activations, the per-channel shift (a = relu(y * scale + shift), so a
    zero pixel's value is relu(shift)), and the batch mean and (biased) variance for the running statistics.
    """

    @staticmethod
    def forward(ctx, y, weight, bias, own, outside, count: int, eps: float, kernels: bool):
        lib = native.usable(kernels, y, own, outside)
        if lib:
            own = own.contiguous()
            total, squares = native.masked_moments(lib, y, own, y.new_zeros(y.shape[1]))
            mean64 = total / count
            mean, var = mean64.float(), (squares / count - mean64 * mean64).float()
        else:
            owned = y * own
            mean = owned.sum((0, 2, 3)) / count
            var = (owned * owned).sum((0, 2, 3)) / count - mean * mean  # own is 0 or 1: owned² = own * y²
        rstd = torch.rsqrt(var + eps)
        scale = weight * rstd
        shift = bias - mean * scale
        if lib:
            a = native.scale_shift_relu(lib, y, scale, shift, outside)
        else:
            a = (y * _channel(scale)).add_(_channel(shift)).relu_().masked_fill_(outside.bool(), 0.0)
        ctx.save_for_backward(y, a, own, weight, mean, rstd, scale)
        ctx.count, ctx.lib = count, lib  # backward takes the same path as forward
        ctx.mark_non_differentiable(mean, var)
        return a, shift, mean, var

    @staticmethod
    def backward(ctx, grad_a, grad_shift, _grad_mean, _grad_var):
        y, a, own, weight, mean, rstd, scale = ctx.saved_tensors
        lib = ctx.lib
        if lib:
            sum_g, sum_gy = (s.float() for s in native.relu_grad_sums(lib, grad_a, a, y))
        else:
            g = torch.where(a > 0, grad_a.contiguous(), 0.0)  # through the ReLU and the zeroed pixels
            sum_g, sum_gy = g.sum((0, 2, 3)), (g * y).sum((0, 2, 3))
        grad_bias = sum_g + grad_shift   # shift = bias - mean * scale
        grad_scale = sum_gy - mean * grad_bias
        grad_weight = grad_scale * rstd            # scale = weight * rstd
        grad_var = grad_scale * weight * -0.5 * rstd ** 3
        grad_mean = -scale * grad_bias - 2 * mean * grad_var  # var = E[own y²] - mean²
        # mean = Σ own y / count, var's first term = Σ own y² / count
        if lib:
            grad_y = native.batchnorm_relu_grad(lib, grad_a, a, y, own, 2 * grad_var / ctx.count,
                                                grad_mean / ctx.count, scale)
        else:
            grad_y = (y * _channel(2 * grad_var / ctx.count)).add_(_channel(grad_mean / ctx.count)).mul_(own)
            grad_y.addcmul_(g, _channel(scale))
        return grad_y, grad_weight, grad_bias, None, None, None, None, None


class MaskedMoments(torch.autograd.Function):
    """Per channel: Σ own * (y - shift) and Σ own * (y - shift)² over (n, C, h, w); own is 0 or 1, shift a
    constant."""

    @staticmethod
    def forward(ctx, y, own, shift, kernels: bool):
        lib = ctx.lib = native.usable(kernels, y, own, shift)
        if lib:
            own = own.contiguous()
            ctx.save_for_backward(y, own, shift)
            return tuple(s.float() for s in native.masked_moments(lib, y, own, shift))
        d = (y - _channel(shift)).mul_(own)
        ctx.save_for_backward(d, own)
        return d.sum((0, 2, 3)), (d * d).sum((0, 2, 3))

    @staticmethod
    def backward(ctx, grad_total, grad_squares):
        if ctx.lib:
            y, own, shift = ctx.saved_tensors
            return native.masked_moments_grad(ctx.lib, y, own, shift, grad_total, grad_squares), None, None, None
        d, own = ctx.saved_tensors
        grad_y = (d * _channel(2 * grad_squares)).add_(own * _channel(grad_total))
        return grad_y, None, None, None


class SigmoidDifferenceSums(torch.autograd.Function):
    """d = own * (sigmoid(y * scale + shift) - background) over crops (n, M, s, s): its column and row sums,
    (n, M, s) each. Torch's operations (encoder.kernels=torch); SigmoidClassDifferenceSums is rpm's kernels'."""

    @staticmethod
    def forward(ctx, y, scale, shift, background, own):
        maps = (y * _channel(scale)).add_(_channel(shift)).sigmoid_()
        d = (maps - background).mul_(own)
        ctx.save_for_backward(y, maps, own, scale)
        return d.sum(2), d.sum(3)

    @staticmethod
    def backward(ctx, grad_cols, grad_rows):
        y, maps, own, scale = ctx.saved_tensors
        grad_d = (grad_cols[:, :, None, :] + grad_rows[:, :, :, None]).mul_(own)
        grad_pre = grad_d * maps * (1 - maps)
        return grad_pre * _channel(scale), (grad_pre * y).sum((0, 2, 3)), grad_pre.sum((0, 2, 3)), -grad_d, None


class SigmoidClassDifferenceSums(torch.autograd.Function):
    """SigmoidDifferenceSums by rpm's kernels, with the background given by border class rather than per pixel:
    values (M, 3, 3) and each crop's row and column classes, uint8 (n, s) (sparse.Background). Its gradient,
    -grad_d summed per class, is (grad_cols, grad_rows) against each crop's owned pixels per class along each
    column and row, col_weights and row_weights (n, s, 9): no pixel-sized background or gradient is made."""

    @staticmethod
    def forward(ctx, y, scale, shift, values, row_class, col_class, col_weights, row_weights, own):
        lib = ctx.lib = native.library()
        maps = native.scale_shift(lib, y, scale, shift).sigmoid_()  # torch's vectorised sigmoid
        ctx.save_for_backward(y, maps, own, scale, col_weights, row_weights)
        ctx.values_shape = values.shape
        return native.difference_sums(lib, maps, values, row_class, col_class, own)

    @staticmethod
    def backward(ctx, grad_cols, grad_rows):
        y, maps, own, scale, col_weights, row_weights = ctx.saved_tensors
        grad_y, sum_pre, sum_pre_y = native.sigmoid_difference_grad(ctx.lib, grad_cols, grad_rows, maps, y, own, scale)
        # In double, like every other sum over the crops here: these sums largely cancel the background's (the
        # float32 product moved the shift's gradient by ~1e-3 relative on fully lit frames, measured).
        grad_values = -(torch.einsum("nsq,ncs->cq", col_weights.double(), grad_cols.double())
                        + torch.einsum("nsq,ncs->cq", row_weights.double(), grad_rows.double()))
        return (grad_y, sum_pre_y.float(), sum_pre.float(), grad_values.float().view(ctx.values_shape),
                None, None, None, None, None)
