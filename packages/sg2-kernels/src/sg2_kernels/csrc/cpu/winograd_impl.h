// Kernel templates for winograd.h, included once per instruction set by
// winograd_baseline.cpp and winograd_avx2.cpp (internal linkage only, as in
// fir_block_impl.h). Expects SG2_WINOGRAD_ISA to name the namespace, and
// SG2_WINOGRAD_AVX2 for the AVX2 build. 8 channels travel together as one
// GCC/Clang vector (one AVX register, or two SSE ones in the baseline build).

namespace sg2 {
namespace cpu_impl {
namespace SG2_WINOGRAD_ISA {
namespace {

constexpr int V = kWinogradLanes;
typedef float vf __attribute__((vector_size(V * sizeof(float))));
// The same vector at any float address (unaligned, may alias float).
typedef float vf_at __attribute__((vector_size(V * sizeof(float)), aligned(4), may_alias));
#define SG2_LOAD(p) (*reinterpret_cast<const vf_at*>(p))
#define SG2_STORE(p, v) (*reinterpret_cast<vf_at*>(p) = (v))

// out[l] = lane l of rows 0..7: 8 rows of 8 pixels (one row per channel)
// become 8 pixels of 8 channels, and back. Plain code would store single
// floats that the next vector load must wait for, so AVX2 gets shuffles.
#ifdef SG2_WINOGRAD_AVX2
inline void transpose8(const float* const rows[V], vf out[V]) {
  __m256 r[V], t[V];
  for (int k = 0; k < V; ++k) r[k] = _mm256_loadu_ps(rows[k]);
  for (int k = 0; k < V; k += 2) {
    t[k] = _mm256_unpacklo_ps(r[k], r[k + 1]);
    t[k + 1] = _mm256_unpackhi_ps(r[k], r[k + 1]);
  }
  for (int k = 0; k < V; k += 4) {
    r[k] = _mm256_shuffle_ps(t[k], t[k + 2], 0x44);
    r[k + 1] = _mm256_shuffle_ps(t[k], t[k + 2], 0xEE);
    r[k + 2] = _mm256_shuffle_ps(t[k + 1], t[k + 3], 0x44);
    r[k + 3] = _mm256_shuffle_ps(t[k + 1], t[k + 3], 0xEE);
  }
  for (int k = 0; k < 4; ++k) {
    out[k] = (vf)_mm256_permute2f128_ps(r[k], r[k + 4], 0x20);
    out[k + 4] = (vf)_mm256_permute2f128_ps(r[k], r[k + 4], 0x31);
  }
}
#else
inline void transpose8(const float* const rows[V], vf out[V]) {
  for (int l = 0; l < V; ++l)
    for (int j = 0; j < V; ++j) out[l][j] = rows[j][l];
}
#endif

// acc = sum_k m[k] * x[k * stride] over the nonzero m[k] only: with the
// loops unrolled, the tests and products by 1 fold away at compile time.
// (acc is an output argument: returning a vector by value from a baseline
// function draws GCC's ABI warning.)
template <int N, class Row>
inline void dot(const Row& m, const vf* x, int stride, vf& acc) {
  bool first = true;
#pragma GCC unroll 16
  for (int k = 0; k < N; ++k) {
    if (m[k] == 0.f) continue;
    const vf term = m[k] == 1.f ? x[k * stride] : m[k] * x[k * stride];
    acc = first ? term : acc + term;
    first = false;
  }
}

template <class K>
void input_rows(const WinogradInArgs& a, int64_t begin, int64_t end) {
  constexpr int L = K::L, P = K::P;
  const int64_t plane = a.plane;
  for (int64_t row = begin; row < end; ++row) {
    const int64_t n = row / a.tiles_h, ty = row % a.tiles_h;
    const int64_t y0 = ty * a.step - a.pad_top;
    const int64_t i0 = y0 < 0 ? -y0 : 0;
    const int64_t i1 = a.H - y0 < L ? a.H - y0 : L;
    for (int64_t tx = 0; tx < a.tiles_w; ++tx) {
      const int64_t x0 = tx * a.step - a.pad_left;
      const int64_t j0 = x0 < 0 ? -x0 : 0;
      const int64_t j1 = a.W - x0 < L ? a.W - x0 : L;
      // 8-wide loads need 8 columns inside the image, even when L is 7
      const bool inside = i0 == 0 && i1 == L && j0 == 0 && x0 + V <= a.W;
      float* dst = a.v + ((row - a.first_row) * a.tiles_w + tx) * a.C;
      for (int64_t c = 0; c < a.C; c += V) {
        vf s = a.scale ? SG2_LOAD(a.scale + n * a.C + c) : vf{} + 1.f;
        vf d[L][L];
        if (inside) {
          for (int i = 0; i < L; ++i) {
            const float* src[V];
            for (int l = 0; l < V; ++l)
              src[l] = a.x + ((n * a.C + c + l) * a.H + y0 + i) * a.W + x0;
            vf px[V];
            transpose8(src, px);
            for (int j = 0; j < L; ++j) d[i][j] = px[j] * s;
          }
        } else {
          for (int i = 0; i < L; ++i)
            for (int j = 0; j < L; ++j) d[i][j] = vf{};
          for (int l = 0; l < V; ++l) {
            const int64_t plane_in = (n * a.C + c + l) * a.H;
            for (int64_t i = i0; i < i1; ++i) {
              const float* src = a.x + (plane_in + y0 + i) * a.W + x0;
              for (int64_t j = j0; j < j1; ++j) d[i][j][l] = src[j] * s[l];
            }
          }
        }
        vf t[P][L];
#pragma GCC unroll 16
        for (int p = 0; p < P; ++p)
#pragma GCC unroll 16
          for (int j = 0; j < L; ++j) dot<L>(K::B[p], &d[0][j], L, t[p][j]);
#pragma GCC unroll 16
        for (int p = 0; p < P; ++p)
#pragma GCC unroll 16
          for (int q = 0; q < P; ++q) {
            vf v;
            dot<L>(K::B[q], &t[p][0], 1, v);
            SG2_STORE(dst + K::slot(p, q) * plane + c, v);
          }
      }
    }
  }
}

template <class K>
void output_rows(const WinogradOutArgs& a, int64_t begin, int64_t end) {
  constexpr int P = K::P, S = K::S;
  const int64_t plane = a.plane;
  const vf zero = {};
  for (int64_t row = begin; row < end; ++row) {
    const int64_t n = row / a.tiles_h, ty = row % a.tiles_h;
    const int64_t y0 = ty * S;
    const int64_t ih = a.H - y0 < S ? a.H - y0 : S;
    for (int64_t tx = 0; tx < a.tiles_w; ++tx) {
      const int64_t x0 = tx * S;
      const int64_t jw = a.W - x0 < S ? a.W - x0 : S;
      const float* src = a.m + ((row - a.first_row) * a.tiles_w + tx) * a.O;
      for (int64_t o = 0; o < a.O; o += V) {
        const vf s = a.scale ? SG2_LOAD(a.scale + n * a.O + o) : vf{} + 1.f;
        vf m[P][P];
#pragma GCC unroll 16
        for (int p = 0; p < P; ++p)
#pragma GCC unroll 16
          for (int q = 0; q < P; ++q) m[p][q] = SG2_LOAD(src + K::slot(p, q) * plane + o);
        vf t[S][P];
#pragma GCC unroll 16
        for (int i = 0; i < S; ++i)
#pragma GCC unroll 16
          for (int q = 0; q < P; ++q) dot<P>(K::A[i], &m[0][q], P, t[i][q]);
        for (int64_t i = 0; i < ih; ++i) {
          vf r[S];
#pragma GCC unroll 16
          for (int j = 0; j < S; ++j) {
            dot<P>(K::A[j], &t[i][0], 1, r[j]);
            r[j] *= s;
          }
          for (int j0 = 0; j0 < jw; j0 += V) {
            const float* cols[V];
            for (int j = 0; j < V; ++j)
              cols[j] = j0 + j < S ? reinterpret_cast<const float*>(&r[j0 + j])
                                   : reinterpret_cast<const float*>(&zero);
            vf ch[V];
            transpose8(cols, ch);
            const int64_t n_cols = jw - j0 < V ? jw - j0 : V;
            for (int l = 0; l < V; ++l) {
              float* out = a.y + ((n * a.O + o + l) * a.H + y0 + i) * a.W + x0 + j0;
              for (int64_t j = 0; j < n_cols; ++j) out[j] = ch[l][j];
            }
          }
        }
      }
    }
  }
}

#undef SG2_LOAD
#undef SG2_STORE

}  // namespace

WinogradInFn pick_input(int up) {
  return up == 1 ? &input_rows<WinogradF6x3> : &input_rows<WinogradUp6x2>;
}
WinogradOutFn pick_output(int up) {
  return up == 1 ? &output_rows<WinogradF6x3> : &output_rows<WinogradUp6x2>;
}

}  // namespace SG2_WINOGRAD_ISA
}  // namespace cpu_impl
}  // namespace sg2
