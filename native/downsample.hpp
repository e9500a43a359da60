// Block downsampling of 4-D arrays (c, z, y, x), any integer factor per axis.
//
// Output voxel j along an axis covers input indices [j*f, (j+1)*f), clipped to the input
// extent, so edge blocks may be partial.  Inputs may have any strides; outputs are C-contiguous.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <vector>

namespace ngshow {

using Shape4 = std::array<std::ptrdiff_t, 4>;

template <typename T>
struct StridedView4 {
  const T* data;
  Shape4 shape;
  Shape4 strides;  // in elements
  const T* row(std::ptrdiff_t c, std::ptrdiff_t z, std::ptrdiff_t y) const {
    return data + c * strides[0] + z * strides[1] + y * strides[2];
  }
};

inline std::ptrdiff_t ceil_div(std::ptrdiff_t a, std::ptrdiff_t b) { return (a + b - 1) / b; }

// Accumulator wide enough that summing a whole block cannot overflow.
template <typename T>
using MeanAccumulator = std::conditional_t<
    std::is_floating_point_v<T>, double,
    std::conditional_t<(sizeof(T) < 8), std::int64_t,
                       std::conditional_t<std::is_signed_v<T>, __int128, unsigned __int128>>>;

template <typename T>
T rounded_mean(MeanAccumulator<T> sum, std::int64_t count) {
  if constexpr (std::is_floating_point_v<T>) {
    return static_cast<T>(sum / static_cast<double>(count));
  } else {
    // Round half away from zero, in integer arithmetic so 64-bit values stay exact.
    using A = MeanAccumulator<T>;
    A n = static_cast<A>(count);
    A q = sum >= 0 ? (sum + n / 2) / n : -((-sum + n / 2) / n);
    return static_cast<T>(q);
  }
}

// Mean of each block (images).  Streams input rows, accumulating into one output row.
template <typename T>
void downsample_mean(const StridedView4<T>& in, const Shape4& f, T* out) {
  const Shape4 os = {ceil_div(in.shape[0], f[0]), ceil_div(in.shape[1], f[1]),
                     ceil_div(in.shape[2], f[2]), ceil_div(in.shape[3], f[3])};
  std::vector<MeanAccumulator<T>> acc(os[3]);
  std::vector<std::int64_t> count(os[3]);
  const std::ptrdiff_t sx = in.strides[3];
  for (std::ptrdiff_t oc = 0; oc < os[0]; ++oc)
    for (std::ptrdiff_t oz = 0; oz < os[1]; ++oz)
      for (std::ptrdiff_t oy = 0; oy < os[2]; ++oy) {
        std::fill(acc.begin(), acc.end(), 0);
        std::fill(count.begin(), count.end(), 0);
        const std::ptrdiff_t c1 = std::min(in.shape[0], (oc + 1) * f[0]);
        const std::ptrdiff_t z1 = std::min(in.shape[1], (oz + 1) * f[1]);
        const std::ptrdiff_t y1 = std::min(in.shape[2], (oy + 1) * f[2]);
        for (std::ptrdiff_t c = oc * f[0]; c < c1; ++c)
          for (std::ptrdiff_t z = oz * f[1]; z < z1; ++z)
            for (std::ptrdiff_t y = oy * f[2]; y < y1; ++y) {
              const T* row = in.row(c, z, y);
              for (std::ptrdiff_t ox = 0, x = 0; ox < os[3]; ++ox) {
                const std::ptrdiff_t x1 = std::min(in.shape[3], x + f[3]);
                MeanAccumulator<T> s = 0;
                for (; x < x1; ++x) s += row[x * sx];
                acc[ox] += s;
                count[ox] += x1 - ox * f[3];
              }
            }
        T* o = out + ((oc * os[1] + oz) * os[2] + oy) * os[3];
        for (std::ptrdiff_t ox = 0; ox < os[3]; ++ox) o[ox] = rounded_mean<T>(acc[ox], count[ox]);
      }
}

// Most frequent value of each block (segmentations): a label that exists in the block is kept,
// never an average of labels.  Ties go to the smallest label, so the result is deterministic.
template <typename T>
void downsample_mode(const StridedView4<T>& in, const Shape4& f, T* out) {
  const Shape4 os = {ceil_div(in.shape[0], f[0]), ceil_div(in.shape[1], f[1]),
                     ceil_div(in.shape[2], f[2]), ceil_div(in.shape[3], f[3])};
  std::vector<T> block;
  block.reserve(static_cast<std::size_t>(f[0] * f[1] * f[2] * f[3]));
  const std::ptrdiff_t sx = in.strides[3];
  T* o = out;
  for (std::ptrdiff_t oc = 0; oc < os[0]; ++oc)
    for (std::ptrdiff_t oz = 0; oz < os[1]; ++oz)
      for (std::ptrdiff_t oy = 0; oy < os[2]; ++oy)
        for (std::ptrdiff_t ox = 0; ox < os[3]; ++ox) {
          block.clear();
          bool uniform = true;
          const std::ptrdiff_t c1 = std::min(in.shape[0], (oc + 1) * f[0]);
          const std::ptrdiff_t z1 = std::min(in.shape[1], (oz + 1) * f[1]);
          const std::ptrdiff_t y1 = std::min(in.shape[2], (oy + 1) * f[2]);
          const std::ptrdiff_t x1 = std::min(in.shape[3], (ox + 1) * f[3]);
          const T first = in.row(oc * f[0], oz * f[1], oy * f[2])[ox * f[3] * sx];
          for (std::ptrdiff_t c = oc * f[0]; c < c1; ++c)
            for (std::ptrdiff_t z = oz * f[1]; z < z1; ++z)
              for (std::ptrdiff_t y = oy * f[2]; y < y1; ++y) {
                const T* row = in.row(c, z, y);
                for (std::ptrdiff_t x = ox * f[3]; x < x1; ++x) {
                  const T v = row[x * sx];
                  uniform &= (v == first);
                  block.push_back(v);
                }
              }
          if (uniform) {
            *o++ = first;
            continue;
          }
          std::sort(block.begin(), block.end());
          T best = block[0];
          std::size_t best_count = 0;
          for (std::size_t i = 0; i < block.size();) {
            std::size_t j = i;
            while (j < block.size() && block[j] == block[i]) ++j;
            if (j - i > best_count) {
              best_count = j - i;
              best = block[i];
            }
            i = j;
          }
          *o++ = best;
        }
}

}  // namespace ngshow
