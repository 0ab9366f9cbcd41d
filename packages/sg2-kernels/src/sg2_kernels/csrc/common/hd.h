// Marks small helpers that both the C++ compiler and nvcc (host and device)
// compile from the same source.
#pragma once

#if defined(__CUDACC__)
#define SG2_HD __host__ __device__ __forceinline__
#else
#define SG2_HD inline
#endif
