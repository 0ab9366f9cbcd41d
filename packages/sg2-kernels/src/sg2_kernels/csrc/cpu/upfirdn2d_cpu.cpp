// CPU upfirdn2d, computed directly in polyphase form: the zero-inserted signal
// is never built and (away from the borders) every multiply hits a real input
// sample.
//
// Output rows oy = ry + k * Ry share one vertical phase (taps and filter
// rows), and likewise columns ox = rx + k * Rx; each (ry, rx) branch is a
// small dense FIR evaluated by fir_block.h. Work is split into (plane group,
// block of output rows) items for at::parallel_for, so small batches still
// use all cores. Each item first copies the input rows it needs into a
// zero-padded buffer in the compute type: the kernels need no bounds checks
// and half/bfloat16 are converted once.
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
#include "fir_block.h"

namespace sg2 {
namespace cpu_impl {
namespace {

using Ph = Phase<int64_t>;

// Polyphase structure of one axis: output o = r + k * R has the phase of
// residue r, and its first input index is phase(r).i0 + k * step.
struct Axis {
  int64_t R, step;
  std::vector<Ph> ph;

  Axis(int64_t up, int64_t down, int64_t pad0, int64_t taps) {
    const int64_t g = std::gcd(up, down);
    R = up / g;
    step = down / g;
    for (int64_t r = 0; r < R; ++r)
      ph.push_back(phase_of<int64_t>(r, up, down, pad0, taps));
  }
  int64_t i0(int64_t o) const { return ph[o % R].i0 + (o / R) * step; }
  int64_t n(int64_t o) const { return ph[o % R].n; }
};

// How a block is laid out for the kernels (thresholds measured on AVX2 with
// 4x4 filters at 8..256 pixels; they only affect speed).
enum class Layout {
  kRows,   // one kernel row per output row, written in place
  kFlat,   // the block as one long row through the buffer (the fw - 1 margin
           // columns are computed and dropped): avoids many short rows
  kLanes,  // kFirLanes planes interleaved, SIMD across planes
};

Layout choose_layout(int64_t planes, int64_t out_w, const Axis& ax) {
  if (planes >= kFirLanes && (out_w <= 12 || (ax.step > 1 && out_w <= 64)))
    return Layout::kLanes;  // tiny rows, or strided loads along rows
  if (out_w < 64 && ax.R == 1 && ax.step == 1) return Layout::kFlat;
  return Layout::kRows;
}

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
  const Axis ax(p.upx, p.downx, p.padx0, fw);
  const Axis ay(p.upy, p.downy, p.pady0, fh);

  // Input columns [col_lo, col_hi] are read by some output; buffer them all.
  int64_t col_lo = std::numeric_limits<int64_t>::max();
  int64_t col_hi = std::numeric_limits<int64_t>::min();
  for (int64_t r = 0; r < std::min(ax.R, out_w); ++r) {
    if (ax.n(r) == 0) continue;
    const int64_t last = r + (out_w - 1 - r) / ax.R * ax.R;
    col_lo = std::min(col_lo, ax.i0(r));
    col_hi = std::max(col_hi, ax.i0(last) + ax.n(r) - 1);
  }
  if (col_lo > col_hi) {  // no tap ever hits a sample
    std::fill(y, y + s.planes * out_h * out_w, scalar_t(0));
    return;
  }
  const int64_t BW = col_hi - col_lo + 1;  // buffer row width
  const int64_t c0 = std::max<int64_t>(col_lo, 0);  // copied input columns
  const int64_t c1 = std::min<int64_t>(col_hi, W - 1);

  const Layout layout = choose_layout(s.planes, out_w, ax);
  const int L = layout == Layout::kLanes ? kFirLanes : 1;
  // Rows layout writes float/double results straight into y.
  const bool in_place = layout == Layout::kRows && std::is_same_v<acc_t, scalar_t>;
  const int64_t groups = (s.planes + L - 1) / L;

  // Coefficients and kernel of each (ry, rx) branch.
  const int64_t nbranch = ay.R * ax.R;
  std::vector<acc_t> coef(nbranch * fh * fw, acc_t(0));
  std::vector<FirBlockFn<acc_t>> fns(nbranch, nullptr);
  for (int64_t ry = 0; ry < ay.R; ++ry) {
    for (int64_t rx = 0; rx < ax.R; ++rx) {
      const Ph &py = ay.ph[ry], &px = ax.ph[rx];
      const int64_t b = ry * ax.R + rx;
      acc_t* c = coef.data() + b * fh * fw;
      for (int64_t j = 0; j < py.n; ++j)
        for (int64_t m = 0; m < px.n; ++m)
          c[j * px.n + m] = fp[(py.k0 + j * p.upy) * fw + px.k0 + m * p.upx];
      const int64_t out_col_stride = layout == Layout::kFlat ? 1 : ax.R;
      fns[b] = pick_fir_block<acc_t>(L, int(py.n), int(px.n), ax.step,
                                     out_col_stride);
    }
  }

  // Rows per work item: up to 64, fewer when there are few plane groups so
  // that every thread gets several items.
  const int64_t nthreads = at::get_num_threads();
  int64_t block = std::min<int64_t>(out_h, 64);
  while (block > 1 && groups * ((out_h + block - 1) / block) < 4 * nthreads)
    block = (block + 1) / 2;
  const int64_t nblocks = (out_h + block - 1) / block;
  const int64_t taps = std::max<int64_t>(1, fh * fw / (p.upx * p.upy));
  const int64_t grain =
      std::max<int64_t>(1, (int64_t(1) << 16) / (block * out_w * L * taps));

  at::parallel_for(0, groups * nblocks, grain, [&](int64_t begin, int64_t end) {
    std::vector<acc_t> buf;
    std::vector<acc_t> out_buf(in_place ? 0 : block * out_w * L);
    std::vector<acc_t> flat(layout == Layout::kFlat ? block * ay.step * BW : 0);
    for (int64_t item = begin; item < end; ++item) {
      const int64_t plane0 = item / nblocks * L;
      const int64_t nplanes = std::min<int64_t>(L, s.planes - plane0);
      const int64_t oy0 = (item % nblocks) * block;
      const int64_t oy1 = std::min(out_h, oy0 + block);

      // Input rows [row_lo, row_hi] feed this block. Copy them zero-padded,
      // plane l of the group going to lane l.
      int64_t row_lo = std::numeric_limits<int64_t>::max();
      int64_t row_hi = std::numeric_limits<int64_t>::min();
      for (int64_t oy = oy0; oy < std::min(oy1, oy0 + ay.R); ++oy) {
        if (ay.n(oy) == 0) continue;
        const int64_t last = oy + (oy1 - 1 - oy) / ay.R * ay.R;
        row_lo = std::min(row_lo, ay.i0(oy));
        row_hi = std::max(row_hi, ay.i0(last) + ay.n(oy) - 1);
      }
      const int64_t nrows = row_lo <= row_hi ? row_hi - row_lo + 1 : 0;
      buf.resize(nrows * BW * L);
      for (int64_t i = 0; i < nrows; ++i) {
        const int64_t iy = row_lo + i;
        acc_t* row = buf.data() + i * BW * L;
        const bool has_data = iy >= 0 && iy < H && c0 <= c1;
        if (!has_data || nplanes < L) {
          std::fill(row, row + BW * L, acc_t(0));
          if (!has_data) continue;
        } else {
          std::fill(row, row + (c0 - col_lo) * L, acc_t(0));
          std::fill(row + (c1 + 1 - col_lo) * L, row + BW * L, acc_t(0));
        }
        for (int64_t l = 0; l < nplanes; ++l) {
          const scalar_t* src = x + ((plane0 + l) * H + iy) * W;
          acc_t* dst = row + l - col_lo * L;
          for (int64_t c = c0; c <= c1; ++c)
            dst[c * L] = static_cast<acc_t>(src[c]);
        }
      }

      // Output row oy0 of lane 0; in_place implies acc_t == scalar_t.
      acc_t* out = in_place
          ? reinterpret_cast<acc_t*>(y) + (plane0 * out_h + oy0) * out_w
          : out_buf.data();
      // One kernel call per (ry, rx) branch present in the block.
      for (int64_t oy = oy0; oy < std::min(oy1, oy0 + ay.R); ++oy) {
        const int64_t ry = oy % ay.R;
        for (int64_t rx = 0; rx < std::min(ax.R, out_w); ++rx) {
          const int64_t b = ry * ax.R + rx;
          FirBlockArgs<acc_t> a;
          a.out = out + ((oy - oy0) * out_w + rx) * L;
          a.rows = (oy1 - 1 - oy) / ay.R + 1;
          a.cols = (out_w - 1 - rx) / ax.R + 1;
          a.out_row_stride = ay.R * out_w;
          a.out_col_stride = ax.R;
          if (ay.n(oy) == 0 || ax.n(rx) == 0) {  // no tap hits a sample
            for (int64_t ty = 0; ty < a.rows; ++ty)
              for (int64_t tx = 0; tx < a.cols; ++tx)
                for (int l = 0; l < L; ++l)
                  a.out[(ty * a.out_row_stride + tx * a.out_col_stride) * L + l] = acc_t(0);
            continue;
          }
          a.in = buf.data() + ((ay.i0(oy) - row_lo) * BW + ax.i0(rx) - col_lo) * L;
          a.in_row_stride = ay.step * BW;
          a.in_col_stride = ax.step;
          a.tap_row_stride = BW;
          a.coef = coef.data() + b * fh * fw;
          a.ny = int(ay.n(oy));
          a.nx = int(ax.n(rx));
          if (layout != Layout::kFlat) {
            fns[b](a);
            continue;
          }
          // Flat: consecutive output rows are in_row_stride apart in the
          // buffer, so the whole branch is one row of that pitch.
          FirBlockArgs<acc_t> fa = a;
          fa.out = flat.data();
          fa.rows = 1;
          fa.cols = (a.rows - 1) * a.in_row_stride + a.cols;
          fa.out_col_stride = 1;
          fns[b](fa);
          for (int64_t ty = 0; ty < a.rows; ++ty)
            std::copy_n(flat.data() + ty * a.in_row_stride, a.cols,
                        a.out + ty * a.out_row_stride);
        }
      }

      if (!in_place) {  // de-interleave lanes and convert to scalar_t
        const int64_t n = (oy1 - oy0) * out_w;
        for (int64_t l = 0; l < nplanes; ++l) {
          scalar_t* dst = y + ((plane0 + l) * out_h + oy0) * out_w;
          for (int64_t i = 0; i < n; ++i)
            dst[i] = static_cast<scalar_t>(out[i * L + l]);
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
