// Neuroglancer's compressed_segmentation encoding (src/sliceview/compressed_segmentation/README.md in
// the client): per channel, a grid of 64-bit block headers, then for each block its bit-packed indices
// and (unless an identical one was already written) its lookup table of distinct labels.
//
// Labels are spatially coherent, so most blocks hold one to four values: the distinct values are
// found with a short linear scan that starts at the last value seen, and identical tables (the same
// label across neighbouring blocks) are written once and shared.
#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>
#include <nanobind/stl/array.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <unordered_map>
#include <vector>

namespace nb = nanobind;

namespace {

constexpr int kWordsPerValue32 = 1;

template <typename T>
constexpr int words_per_value() {
  return sizeof(T) == 8 ? 2 : kWordsPerValue32;
}

int bits_for(std::size_t distinct) {
  if (distinct <= 1) return 0;
  int bits = 1;
  while ((std::size_t{1} << bits) < distinct) bits *= 2;
  return bits;
}

struct TableKeyHash {
  std::size_t operator()(const std::vector<std::uint32_t>& words) const noexcept {
    std::uint64_t h = 1469598103934665603ull;
    for (std::uint32_t w : words) {
      h ^= w;
      h *= 1099511628211ull;
    }
    return static_cast<std::size_t>(h);
  }
};

// Encode one channel of a C-ordered (z, y, x) volume into `out`, offsets relative to `base`.
template <typename T>
void encode_channel(const T* data, std::array<std::ptrdiff_t, 3> size, std::array<int, 3> block,
                    std::vector<std::uint32_t>& out) {
  const std::ptrdiff_t sx = size[0], sy = size[1], sz = size[2];
  const int bx = block[0], by = block[1], bz = block[2];
  const std::ptrdiff_t gx = (sx + bx - 1) / bx, gy = (sy + by - 1) / by, gz = (sz + bz - 1) / bz;
  const std::size_t base = out.size();
  out.resize(base + static_cast<std::size_t>(gx * gy * gz) * 2, 0);
  const std::size_t block_voxels = static_cast<std::size_t>(bx) * by * bz;

  std::vector<T> table;
  std::vector<std::uint32_t> indices(block_voxels);
  std::vector<std::uint32_t> table_words;
  std::vector<std::uint32_t> order, remap;
  std::vector<T> sorted;
  std::unordered_map<std::vector<std::uint32_t>, std::uint32_t, TableKeyHash> tables;

  for (std::ptrdiff_t z0 = 0; z0 < gz; ++z0) {
    for (std::ptrdiff_t y0 = 0; y0 < gy; ++y0) {
      for (std::ptrdiff_t x0 = 0; x0 < gx; ++x0) {
        table.clear();
        std::uint32_t last = 0;
        const std::ptrdiff_t xe = std::min<std::ptrdiff_t>(bx, sx - x0 * bx);
        const std::ptrdiff_t ye = std::min<std::ptrdiff_t>(by, sy - y0 * by);
        const std::ptrdiff_t ze = std::min<std::ptrdiff_t>(bz, sz - z0 * bz);
        if (xe < bx || ye < by || ze < bz) std::fill(indices.begin(), indices.end(), 0u);
        for (std::ptrdiff_t z = 0; z < ze; ++z) {
          for (std::ptrdiff_t y = 0; y < ye; ++y) {
            const T* row = data + ((z0 * bz + z) * sy + (y0 * by + y)) * sx + x0 * bx;
            std::uint32_t* idx = indices.data() + (z * by + y) * bx;
            if (!table.empty()) {  // fast path: a whole row of the last label (the common case)
              const T current = table[last];
              bool same = true;
              for (std::ptrdiff_t x = 0; x < xe; ++x) same &= row[x] == current;
              if (same) {
                std::fill(idx, idx + xe, last);
                continue;
              }
            }
            for (std::ptrdiff_t x = 0; x < xe; ++x) {
              const T v = row[x];
              if (table.empty() || table[last] != v) {
                std::size_t i = 0;
                while (i < table.size() && table[i] != v) ++i;
                if (i == table.size()) table.push_back(v);
                last = static_cast<std::uint32_t>(i);
              }
              idx[x] = last;
            }
          }
        }
        // Positions outside the volume keep index 0: any value of the block may pad it.
        const int bits = bits_for(table.size());
        const std::size_t header = base + static_cast<std::size_t>((z0 * gy + y0) * gx + x0) * 2;
        const std::size_t values_offset = out.size() - base;
        if (bits > 0) {
          // Sorted tables are shared more often (the same labels seen in another order); remap.
          if (table.size() > 1) {
            order.resize(table.size());
            for (std::size_t i = 0; i < order.size(); ++i) order[i] = static_cast<std::uint32_t>(i);
            std::sort(order.begin(), order.end(), [&](std::uint32_t a, std::uint32_t b) { return table[a] < table[b]; });
            remap.resize(table.size());
            sorted.resize(table.size());
            for (std::size_t i = 0; i < order.size(); ++i) {
              remap[order[i]] = static_cast<std::uint32_t>(i);
              sorted[i] = table[order[i]];
            }
            table.swap(sorted);
          }
          const std::size_t words = (block_voxels * bits + 31) / 32;
          const std::size_t start = out.size();
          out.resize(start + words, 0);
          std::uint32_t* packed = out.data() + start;
          const std::size_t per_word = 32 / bits;
          const std::uint32_t* idx = indices.data();
          for (std::size_t w = 0; w < words; ++w) {
            std::uint32_t word = 0;
            const std::size_t first = w * per_word;
            const std::size_t n = std::min(per_word, block_voxels - first);
            for (std::size_t k = 0; k < n; ++k) word |= remap[idx[first + k]] << (k * bits);
            packed[w] = word;
          }
        }
        table_words.clear();
        for (T v : table) {
          const std::uint64_t value = static_cast<std::uint64_t>(v);
          table_words.push_back(static_cast<std::uint32_t>(value));
          if (words_per_value<T>() == 2) table_words.push_back(static_cast<std::uint32_t>(value >> 32));
        }
        std::uint32_t table_offset;
        auto found = tables.find(table_words);
        if (found != tables.end()) {
          table_offset = found->second;
        } else {
          table_offset = static_cast<std::uint32_t>(out.size() - base);
          out.insert(out.end(), table_words.begin(), table_words.end());
          tables.emplace(table_words, table_offset);
        }
        if (table_offset >= (1u << 24))
          throw std::length_error("compressed_segmentation chunk too large: table offset beyond 24 bits");
        out[header] = table_offset | (static_cast<std::uint32_t>(bits) << 24);
        out[header + 1] = static_cast<std::uint32_t>(values_offset);
      }
    }
  }
}

template <typename T>
using Labels = nb::ndarray<const T, nb::ndim<4>, nb::c_contig, nb::device::cpu>;

// (c, z, y, x) C-ordered labels -> the multi-channel compressed_segmentation bytes.
template <typename T>
nb::bytes encode(Labels<T> labels, std::array<int, 3> block) {
  for (int b : block)
    if (b < 1) throw std::invalid_argument("block sizes must be >= 1");
  const std::ptrdiff_t c = labels.shape(0), z = labels.shape(1), y = labels.shape(2), x = labels.shape(3);
  std::vector<std::uint32_t> out;
  {
    nb::gil_scoped_release release;
    out.resize(static_cast<std::size_t>(c), 0);
    for (std::ptrdiff_t channel = 0; channel < c; ++channel) {
      out[channel] = static_cast<std::uint32_t>(out.size());
      encode_channel<T>(labels.data() + channel * z * y * x, {x, y, z}, block, out);
    }
  }
  return nb::bytes(reinterpret_cast<const char*>(out.data()), out.size() * sizeof(std::uint32_t));
}

}  // namespace

void register_cseg(nb::module_& m) {
  m.def("encode_compressed_segmentation", &encode<std::uint32_t>, nb::arg("labels").noconvert(), nb::arg("block"));
  m.def("encode_compressed_segmentation", &encode<std::uint64_t>, nb::arg("labels").noconvert(), nb::arg("block"),
        "Encode (c, z, y, x) C-ordered uint32/uint64 labels as Neuroglancer's compressed_segmentation.");
}
