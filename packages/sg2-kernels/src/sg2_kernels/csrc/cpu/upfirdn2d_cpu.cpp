// CPU upfirdn2d, computed directly in polyphase form: the zero-inserted signal
// is never built and every multiply hits a real input sample (or a zero of
// the explicit padding margin).
//
// Work is split into (plane, block of output rows) items for at::parallel_for,
// so small batches still use all cores. Each item copies the input rows it
// needs into a zero-padded buffer in the compute type; the inner loops then
// need no bounds checks and half/bfloat16 are converted only once.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <numeric>
#include <type_traits>
#include <vector>

#include "../common/checks.h"
#include "../common/polyphase.h"
#include "../common/sg2_ops.h"
#include "fir_rows.h"

namespace sg2 {
namespace cpu_impl {
namespace {

using Ph = Phase<int64_t>;

struct Params {
  int64_t upx, upy, downx, downy, padx0, pady0;
};

template <typename scalar_t>
void upfirdn2d_kernel(const scalar_t* x, const at::Tensor& f, scalar_t* y,
                      const UpFirDnSize& s, const Params& p) {
  using acc_t = at::opmath_type<scalar_t>;
  const acc_t* fp = f.const_data_ptr<acc_t>();
  const int64_t H = s.H, W = s.W, fh = s.fh, fw = s.fw;
  const int64_t out_h = s.out_h, out_w = s.out_w;

  // Horizontal: output columns r, r + R, r + 2R, ... share one phase, and
  // successive columns of a phase read input columns `is` apart.
  const int64_t gx = std::gcd(p.upx, p.downx);
  const int64_t R = p.upx / gx;
  const int64_t is = p.downx / gx;
  std::vector<Ph> hph(R);
  std::vector<int64_t> hcount(R, 0);
  int64_t col_lo = std::numeric_limits<int64_t>::max();
  int64_t col_hi = std::numeric_limits<int64_t>::min();
  for (int64_t r = 0; r < R; ++r) {
    hph[r] = phase_of<int64_t>(r, p.upx, p.downx, p.padx0, fw);
    hcount[r] = r < out_w ? (out_w - r + R - 1) / R : 0;
    if (hph[r].n > 0 && hcount[r] > 0) {
      col_lo = std::min(col_lo, hph[r].i0);
      col_hi = std::max(col_hi, hph[r].i0 + (hcount[r] - 1) * is + hph[r].n - 1);
    }
  }
  if (col_lo > col_hi) {  // no tap ever hits the input
    std::fill(y, y + s.planes * out_h * out_w, scalar_t(0));
    return;
  }
  const int64_t BW = col_hi - col_lo + 1;  // buffered columns per input row

  // Vertical phase of every output row (depends only on oy).
  std::vector<Ph> vph(out_h);
  for (int64_t oy = 0; oy < out_h; ++oy)
    vph[oy] = phase_of<int64_t>(oy, p.upy, p.downy, p.pady0, fh);

  // Coefficients and row function for each (vertical k0, horizontal phase).
  const int64_t ntab = p.upy * R;
  std::vector<acc_t> coef(ntab * fh * fw, acc_t(0));
  std::vector<FirRowFn<acc_t>> fns(ntab, nullptr);
  for (int64_t ky0 = 0; ky0 < p.upy; ++ky0) {
    const int64_t ny = ky0 < fh ? (fh - ky0 + p.upy - 1) / p.upy : 0;
    for (int64_t r = 0; r < R; ++r) {
      const int64_t t = ky0 * R + r, nx = hph[r].n;
      acc_t* c = coef.data() + t * fh * fw;
      for (int64_t j = 0; j < ny; ++j)
        for (int64_t m = 0; m < nx; ++m)
          c[j * nx + m] = fp[(ky0 + j * p.upy) * fw + hph[r].k0 + m * p.upx];
      fns[t] = pick_fir_row<acc_t>(int(ny), int(nx), is, R);
    }
  }

  // Rows per work item: up to 64, fewer when there are few planes so that
  // every thread gets several items.
  const int64_t nthreads = at::get_num_threads();
  int64_t block = std::min<int64_t>(out_h, 64);
  while (block > 1 && s.planes * ((out_h + block - 1) / block) < 4 * nthreads)
    block = (block + 1) / 2;
  const int64_t nblocks = (out_h + block - 1) / block;
  const int64_t taps = std::max<int64_t>(1, fh * fw / (p.upx * p.upy));
  const int64_t work = block * out_w * taps;
  const int64_t grain = std::max<int64_t>(1, (int64_t(1) << 16) / work);

  at::parallel_for(0, s.planes * nblocks, grain, [&](int64_t begin,
                                                    int64_t end) {
    std::vector<acc_t> buf;
    std::vector<acc_t> tmp(std::is_same_v<acc_t, scalar_t> ? 0 : out_w);
    std::vector<const acc_t*> rows(fh);
    for (int64_t item = begin; item < end; ++item) {
      const int64_t plane = item / nblocks;
      const int64_t oy0 = (item % nblocks) * block;
      const int64_t oy1 = std::min(out_h, oy0 + block);
      const scalar_t* xp = x + plane * H * W;
      scalar_t* yp = y + plane * out_h * out_w;

      // Input rows [row_lo, row_hi] feed this block; copy them, zero-padded.
      int64_t row_lo = std::numeric_limits<int64_t>::max();
      int64_t row_hi = std::numeric_limits<int64_t>::min();
      for (int64_t oy = oy0; oy < oy1; ++oy) {
        if (vph[oy].n == 0) continue;
        row_lo = std::min(row_lo, vph[oy].i0);
        row_hi = std::max(row_hi, vph[oy].i0 + vph[oy].n - 1);
      }
      const int64_t nrows = row_lo <= row_hi ? row_hi - row_lo + 1 : 0;
      buf.assign(nrows * BW, acc_t(0));
      const int64_t c0 = std::max<int64_t>(col_lo, 0);
      const int64_t c1 = std::min<int64_t>(col_hi, W - 1);
      for (int64_t i = 0; i < nrows; ++i) {
        const int64_t iy = row_lo + i;
        if (iy < 0 || iy >= H) continue;
        const scalar_t* src = xp + iy * W;
        acc_t* dst = buf.data() + i * BW - col_lo;
        for (int64_t c = c0; c <= c1; ++c) dst[c] = static_cast<acc_t>(src[c]);
      }

      for (int64_t oy = oy0; oy < oy1; ++oy) {
        acc_t* out;
        if constexpr (std::is_same_v<acc_t, scalar_t>) {
          out = yp + oy * out_w;
        } else {
          out = tmp.data();
        }
        const Ph& v = vph[oy];
        for (int64_t r = 0; r < R; ++r) {
          const int64_t count = hcount[r];
          if (count == 0) continue;
          if (v.n == 0 || hph[r].n == 0) {
            for (int64_t t = 0; t < count; ++t) out[r + t * R] = acc_t(0);
            continue;
          }
          for (int64_t j = 0; j < v.n; ++j)
            rows[j] = buf.data() + (v.i0 + j - row_lo) * BW + (hph[r].i0 - col_lo);
          const int64_t t = v.k0 * R + r;
          fns[t](out + r, count, rows.data(), coef.data() + t * fh * fw,
                 int(v.n), int(hph[r].n), is, R);
        }
        if constexpr (!std::is_same_v<acc_t, scalar_t>) {
          scalar_t* dst = yp + oy * out_w;
          for (int64_t ox = 0; ox < out_w; ++ox)
            dst[ox] = static_cast<scalar_t>(out[ox]);
        }
      }
    }
  });
}

}  // namespace

at::Tensor upfirdn2d(const at::Tensor& x_in, const at::Tensor& f_in,
                     int64_t upx, int64_t upy, int64_t downx, int64_t downy,
                     int64_t padx0, int64_t padx1, int64_t pady0,
                     int64_t pady1) {
  const UpFirDnSize s =
      check_upfirdn2d(x_in, f_in, upx, upy, downx, downy, padx0, padx1, pady0,
                      pady1, at::kCPU);
  const at::Tensor x = x_in.contiguous();
  const at::Tensor f = f_in.contiguous();
  at::Tensor y = at::empty({x.size(0), x.size(1), s.out_h, s.out_w},
                           x.options().memory_format(at::MemoryFormat::Contiguous));
  if (y.numel() == 0) return y;
  const Params p{upx, upy, downx, downy, padx0, pady0};
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, x.scalar_type(), "sg2_upfirdn2d_cpu", [&] {
        upfirdn2d_kernel<scalar_t>(x.const_data_ptr<scalar_t>(), f,
                                   y.mutable_data_ptr<scalar_t>(), s, p);
      });
  return y;
}

}  // namespace cpu_impl
}  // namespace sg2
