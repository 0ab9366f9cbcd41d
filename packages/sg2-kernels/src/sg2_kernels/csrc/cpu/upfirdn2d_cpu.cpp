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
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
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

// Copies n values into / out of one lane of an L-interleaved buffer. L is a
// template argument so that the L = 1 copies vectorise.
template <int L, typename From, typename To>
void to_lane(const From* src, To* dst, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i * L] = static_cast<To>(src[i]);
}
template <int L, typename From, typename To>
void from_lane(const From* src, To* dst, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i] = static_cast<To>(src[i * L]);
}

// Everything about one call that does not depend on the plane.
template <typename acc_t>
struct Plan {
  Axis ax, ay;
  int64_t planes, H, W, out_h, out_w, fh, fw;
  int64_t col_lo, BW;  // buffered input columns [col_lo, col_lo + BW)
  int64_t c0, c1;      // of which [c0, c1] exist in the input
  Layout layout;
  int L;               // planes per buffer sample
  int64_t block;       // output rows per work item
  std::vector<int64_t> row_lo, nrows;  // buffered input rows of each block
  int64_t max_rows;
  std::vector<acc_t> coef;             // fh * fw per (ry, rx) branch
  std::vector<FirBlockFn<acc_t>> fns;  // kernel per branch

  Plan(const UpFirDnSize& s, const Params& p, const acc_t* f)
      : ax(p.upx, p.downx, p.padx0, s.fw),
        ay(p.upy, p.downy, p.pady0, s.fh),
        planes(s.planes), H(s.H), W(s.W), out_h(s.out_h), out_w(s.out_w),
        fh(s.fh), fw(s.fw) {
    // Input columns read by some output (BW = 0: none at all).
    col_lo = std::numeric_limits<int64_t>::max();
    int64_t col_hi = std::numeric_limits<int64_t>::min();
    for (int64_t r = 0; r < std::min(ax.R, out_w); ++r) {
      if (ax.n(r) == 0) continue;
      const int64_t last = r + (out_w - 1 - r) / ax.R * ax.R;
      col_lo = std::min(col_lo, ax.i0(r));
      col_hi = std::max(col_hi, ax.i0(last) + ax.n(r) - 1);
    }
    if (col_lo > col_hi) {
      col_lo = col_hi = 0;
      BW = 0;
    } else {
      BW = col_hi - col_lo + 1;
    }
    c0 = std::max<int64_t>(col_lo, 0);
    c1 = std::min<int64_t>(col_hi, W - 1);
    layout = choose_layout(planes, out_w, ax);
    L = layout == Layout::kLanes ? kFirLanes : 1;

    // Coefficients and kernel of each (ry, rx) branch.
    coef.assign(ay.R * ax.R * fh * fw, acc_t(0));
    fns.assign(ay.R * ax.R, nullptr);
    for (int64_t ry = 0; ry < ay.R; ++ry) {
      for (int64_t rx = 0; rx < ax.R; ++rx) {
        const Ph &py = ay.ph[ry], &px = ax.ph[rx];
        const int64_t b = ry * ax.R + rx;
        acc_t* c = coef.data() + b * fh * fw;
        for (int64_t j = 0; j < py.n; ++j)
          for (int64_t m = 0; m < px.n; ++m)
            c[j * px.n + m] = f[(py.k0 + j * p.upy) * fw + px.k0 + m * p.upx];
        const int64_t out_col_stride = layout == Layout::kFlat ? 1 : ax.R;
        fns[b] = pick_fir_block<acc_t>(L, int(py.n), int(px.n), ax.step,
                                       out_col_stride);
      }
    }

    // Rows per work item: up to 64, fewer when there are few plane groups
    // so that every thread gets several items.
    const int64_t nthreads = at::get_num_threads();
    block = std::min<int64_t>(out_h, 64);
    while (block > 1 && groups() * nblocks() < 4 * nthreads)
      block = (block + 1) / 2;

    // Input rows [row_lo[k], row_lo[k] + nrows[k]) feed output block k.
    row_lo.resize(nblocks());
    nrows.resize(nblocks());
    for (int64_t k = 0; k < nblocks(); ++k) {
      const int64_t oy0 = k * block, oy1 = std::min(out_h, oy0 + block);
      int64_t lo = std::numeric_limits<int64_t>::max();
      int64_t hi = std::numeric_limits<int64_t>::min();
      for (int64_t oy = oy0; oy < std::min(oy1, oy0 + ay.R); ++oy) {
        if (ay.n(oy) == 0) continue;
        const int64_t last = oy + (oy1 - 1 - oy) / ay.R * ay.R;
        lo = std::min(lo, ay.i0(oy));
        hi = std::max(hi, ay.i0(last) + ay.n(oy) - 1);
      }
      row_lo[k] = lo;
      nrows[k] = lo <= hi ? hi - lo + 1 : 0;
    }
    max_rows = *std::max_element(nrows.begin(), nrows.end());
  }

  bool reads_input() const { return BW > 0; }
  int64_t groups() const { return (planes + L - 1) / L; }
  int64_t nblocks() const { return (out_h + block - 1) / block; }
};

// Copies the input rows of output block `blk` of planes [plane0, plane0 +
// nplanes) into buf, plane l going to lane l. buf's margin columns are zero
// and never written.
template <typename scalar_t, typename acc_t>
void load_block(const Plan<acc_t>& P, const scalar_t* x, int64_t plane0,
                int64_t nplanes, int64_t blk, acc_t* buf) {
  const int L = P.L;
  const int64_t ncols = P.c1 - P.c0 + 1;
  for (int64_t i = 0; i < P.nrows[blk]; ++i) {
    const int64_t iy = P.row_lo[blk] + i;
    acc_t* row = buf + (i * P.BW + P.c0 - P.col_lo) * L;  // at column c0
    const bool inside = iy >= 0 && iy < P.H;
    if ((!inside || nplanes < L) && ncols > 0)  // zero rows or unused lanes
      std::fill(row, row + ncols * L, acc_t(0));
    if (!inside) continue;
    for (int64_t l = 0; l < nplanes && ncols > 0; ++l) {
      const scalar_t* src = x + ((plane0 + l) * P.H + iy) * P.W + P.c0;
      if (L == 1) {
        to_lane<1>(src, row, ncols);
      } else {
        to_lane<kFirLanes>(src, row + l, ncols);
      }
    }
  }
}

// Computes output rows [oy0, oy1) of the buffered planes into out (row oy0,
// lane 0; rows out_w samples apart): one kernel call per (ry, rx) branch.
template <typename acc_t>
void compute_block(const Plan<acc_t>& P, int64_t blk, const acc_t* buf,
                   acc_t* out, acc_t* flat) {
  const Axis &ax = P.ax, &ay = P.ay;
  const int L = P.L;
  const int64_t oy0 = blk * P.block;
  const int64_t oy1 = std::min(P.out_h, oy0 + P.block);
  for (int64_t oy = oy0; oy < std::min(oy1, oy0 + ay.R); ++oy) {
    for (int64_t rx = 0; rx < std::min(ax.R, P.out_w); ++rx) {
      const int64_t b = (oy % ay.R) * ax.R + rx;
      FirBlockArgs<acc_t> a;
      a.out = out + ((oy - oy0) * P.out_w + rx) * L;
      a.rows = (oy1 - 1 - oy) / ay.R + 1;
      a.cols = (P.out_w - 1 - rx) / ax.R + 1;
      a.out_row_stride = ay.R * P.out_w;
      a.out_col_stride = ax.R;
      if (ay.n(oy) == 0 || ax.n(rx) == 0) {  // no tap hits a sample
        for (int64_t ty = 0; ty < a.rows; ++ty)
          for (int64_t tx = 0; tx < a.cols; ++tx)
            for (int l = 0; l < L; ++l)
              a.out[(ty * a.out_row_stride + tx * a.out_col_stride) * L + l] = acc_t(0);
        continue;
      }
      a.in = buf + ((ay.i0(oy) - P.row_lo[blk]) * P.BW + ax.i0(rx) - P.col_lo) * L;
      a.in_row_stride = ay.step * P.BW;
      a.in_col_stride = ax.step;
      a.tap_row_stride = P.BW;
      a.coef = P.coef.data() + b * P.fh * P.fw;
      a.ny = int(ay.n(oy));
      a.nx = int(ax.n(rx));
      if (P.layout != Layout::kFlat) {
        P.fns[b](a);
        continue;
      }
      // Flat: consecutive output rows are in_row_stride apart in the buffer,
      // so the branch is one long row of that pitch; then drop the margins.
      FirBlockArgs<acc_t> fa = a;
      fa.out = flat;
      fa.rows = 1;
      fa.cols = (a.rows - 1) * a.in_row_stride + a.cols;
      fa.out_col_stride = 1;
      P.fns[b](fa);
      for (int64_t ty = 0; ty < a.rows; ++ty)
        to_lane<1>(flat + ty * a.in_row_stride, a.out + ty * a.out_row_stride,
                   a.cols);
    }
  }
}

template <typename scalar_t>
void upfirdn2d_kernel(const scalar_t* x, const at::Tensor& f, scalar_t* y,
                      const UpFirDnSize& s, const Params& p) {
  using acc_t = at::opmath_type<scalar_t>;
  const Plan<acc_t> P(s, p, f.const_data_ptr<acc_t>());
  if (!P.reads_input()) {  // no tap ever hits a sample
    std::fill(y, y + s.planes * s.out_h * s.out_w, scalar_t(0));
    return;
  }
  const int L = P.L;
  const int64_t out_w = P.out_w, out_h = P.out_h, nblocks = P.nblocks();
  // Without lanes, float/double results are written straight into y.
  const bool in_place = L == 1 && std::is_same_v<acc_t, scalar_t>;
  const int64_t taps = std::max<int64_t>(1, s.fh * s.fw / (p.upx * p.upy));
  const int64_t grain =
      std::max<int64_t>(1, (int64_t(1) << 16) / (P.block * out_w * L * taps));

  at::parallel_for(0, P.groups() * nblocks, grain, [&](int64_t begin,
                                                       int64_t end) {
    std::vector<acc_t> buf(P.max_rows * P.BW * L, acc_t(0));
    std::vector<acc_t> out_buf(in_place ? 0 : P.block * out_w * L);
    std::vector<acc_t> flat(P.layout == Layout::kFlat ? P.block * P.ay.step * P.BW : 0);
    for (int64_t item = begin; item < end; ++item) {
      const int64_t plane0 = item / nblocks * L;
      const int64_t nplanes = std::min<int64_t>(L, s.planes - plane0);
      const int64_t blk = item % nblocks;
      const int64_t oy0 = blk * P.block, oy1 = std::min(out_h, oy0 + P.block);
      load_block(P, x, plane0, nplanes, blk, buf.data());
      // in_place implies acc_t == scalar_t.
      acc_t* out = in_place
          ? reinterpret_cast<acc_t*>(y) + (plane0 * out_h + oy0) * out_w
          : out_buf.data();
      compute_block(P, blk, buf.data(), out, flat.data());
      if (in_place) continue;
      const int64_t n = (oy1 - oy0) * out_w;  // de-interleave, convert
      for (int64_t l = 0; l < nplanes; ++l) {
        scalar_t* dst = y + ((plane0 + l) * out_h + oy0) * out_w;
        if (L == 1) {
          from_lane<1>(out + l, dst, n);
        } else {
          from_lane<kFirLanes>(out + l, dst, n);
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
