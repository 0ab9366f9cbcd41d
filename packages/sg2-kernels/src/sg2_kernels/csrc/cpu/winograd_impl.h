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

template <int L, int P>
void input_rows(const WinogradInArgs& a, int64_t begin, int64_t end) {
  float B[P][L];
  for (int p = 0; p < P; ++p)
    for (int i = 0; i < L; ++i) B[p][i] = a.b[p * L + i];
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
        for (int p = 0; p < P; ++p)
          for (int j = 0; j < L; ++j) {
            vf acc = {};
            for (int i = 0; i < L; ++i) acc += B[p][i] * d[i][j];
            t[p][j] = acc;
          }
        for (int p = 0; p < P; ++p)
          for (int q = 0; q < P; ++q) {
            vf acc = {};
            for (int j = 0; j < L; ++j) acc += B[q][j] * t[p][j];
            SG2_STORE(dst + (p * P + q) * plane + c, acc);
          }
      }
    }
  }
}

template <int P, int S>
void output_rows(const WinogradOutArgs& a, int64_t begin, int64_t end) {
  float A[S][P];
  for (int i = 0; i < S; ++i)
    for (int p = 0; p < P; ++p) A[i][p] = a.a[i * P + p];
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
        vf t[S][P];
        for (int i = 0; i < S; ++i)
          for (int q = 0; q < P; ++q) t[i][q] = vf{};
        for (int p = 0; p < P; ++p)
          for (int q = 0; q < P; ++q) {
            const vf m = SG2_LOAD(src + (p * P + q) * plane + o);
            for (int i = 0; i < S; ++i) t[i][q] += A[i][p] * m;
          }
        for (int64_t i = 0; i < ih; ++i) {
          vf r[S];
          for (int j = 0; j < S; ++j) {
            vf acc = {};
            for (int q = 0; q < P; ++q) acc += A[j][q] * t[i][q];
            r[j] = acc * s;
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

// F(6x6, 3x3): 8 x 8 tiles; the stride-2 transposed 3x3: 7 x 7 input tiles,
// 13 x 13 points, 12 x 12 output pixels.
WinogradInFn pick_input(int L, int P) {
  if (L == 8 && P == 8) return &input_rows<8, 8>;
  if (L == 7 && P == 13) return &input_rows<7, 13>;
  return nullptr;
}
WinogradOutFn pick_output(int P, int S) {
  if (P == 8 && S == 6) return &output_rows<8, 6>;
  if (P == 13 && S == 12) return &output_rows<13, 12>;
  return nullptr;
}

}  // namespace SG2_WINOGRAD_ISA
}  // namespace cpu_impl
}  // namespace sg2
