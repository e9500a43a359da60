// Marching cubes over label volumes (see mesher.hpp for the conventions).
//
// The case table is derived at static-init time from the cube's topology instead of being typed
// in.  On each cube face, walked counter-clockwise as seen from outside, every maximal run of
// "inside" corners yields one contour segment, from the edge where the walk enters the run to the
// edge where it leaves it.  Ambiguous faces (two diagonal inside corners) therefore always
// separate the inside corners, and since both cells sharing a face derive the same segments,
// meshes are watertight.  Every crossing edge starts exactly one segment and ends exactly one, so
// the segments chain into closed loops; each loop is fan-triangulated (from a vertex none of whose
// diagonals lies on a cube face, so that only contour segments are shared between cells), which
// orients triangles with outward normals (checked on the one-corner case: x-edge -> y-edge -> z-edge).
#include "mesher.hpp"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <type_traits>
#include <unordered_map>

namespace ngshow::mesher {
namespace {

// Corner i is at (x, y, z) = (i & 1, (i >> 1) & 1, (i >> 2) & 1).
// Edges 0-3 run along x at (dy, dz) = (0,0) (1,0) (0,1) (1,1); edges 4-7 along y at
// (dx, dz); edges 8-11 along z at (dx, dy).  Edge e joins corners kEdgeA[e] < kEdgeB[e].
constexpr int kEdgeA[12] = {0, 2, 4, 6, 0, 1, 4, 5, 0, 1, 2, 3};
constexpr int kEdgeB[12] = {1, 3, 5, 7, 2, 3, 6, 7, 4, 5, 6, 7};
// Faces, corners in counter-clockwise order seen from outside the cube.
constexpr int kFaces[6][4] = {{0, 2, 3, 1}, {4, 5, 7, 6}, {0, 4, 6, 2},
                              {1, 3, 7, 5}, {0, 1, 5, 4}, {2, 6, 7, 3}};

int edge_between(int a, int b) {
  if (a > b) std::swap(a, b);
  for (int e = 0; e < 12; ++e)
    if (kEdgeA[e] == a && kEdgeB[e] == b) return e;
  return -1;
}

struct CaseTable {
  std::uint8_t ntri[256];
  std::uint8_t tri[256][36];
  CaseTable() {
    // Bit f set in face_mask[e]: edge e lies on cube face f.
    int face_mask[12] = {};
    for (int f = 0; f < 6; ++f)
      for (int k = 0; k < 4; ++k)
        face_mask[edge_between(kFaces[f][k], kFaces[f][(k + 1) % 4])] |= 1 << f;
    for (int mask = 0; mask < 256; ++mask) {
      int next[12];
      std::fill(next, next + 12, -1);
      auto inside = [mask](int c) { return (mask >> c) & 1; };
      for (const auto& face : kFaces) {
        for (int k = 0; k < 4; ++k) {
          // Entering a run of inside corners at corner face[k+1]?
          int a = face[k], b = face[(k + 1) % 4];
          if (inside(a) || !inside(b)) continue;
          int j = (k + 1) % 4;
          while (inside(face[(j + 1) % 4])) j = (j + 1) % 4;
          next[edge_between(a, b)] = edge_between(face[j], face[(j + 1) % 4]);
        }
      }
      int n = 0;
      bool done[12] = {};
      for (int e0 = 0; e0 < 12; ++e0) {
        if (next[e0] < 0 || done[e0]) continue;
        int loop[12], len = 0;
        for (int e = e0; !done[e]; e = next[e]) {
          done[e] = true;
          loop[len++] = e;
        }
        // Fan from a root none of whose diagonals lies on a cube face: a diagonal on a face
        // can be made by the neighbouring cell too (when both corners of an ambiguous face are
        // connected on each side), giving two coincident opposite triangles and edges shared
        // by four faces.  Every loop of the table has such a root (checked below).
        int root = -1;
        for (int r = 0; r < len && root < 0; ++r) {
          bool ok = true;
          for (int i = 2; i + 1 < len; ++i)
            ok &= (face_mask[loop[r]] & face_mask[loop[(r + i) % len]]) == 0;
          if (ok) root = r;
        }
        if (root < 0) std::abort();  // cannot happen (the table is fixed)
        for (int i = 1; i + 1 < len; ++i) {
          tri[mask][3 * n] = static_cast<std::uint8_t>(loop[root]);
          tri[mask][3 * n + 1] = static_cast<std::uint8_t>(loop[(root + i) % len]);
          tri[mask][3 * n + 2] = static_cast<std::uint8_t>(loop[(root + i + 1) % len]);
          ++n;
        }
      }
      ntri[mask] = static_cast<std::uint8_t>(n);
    }
  }
};

const CaseTable kTable;

// Collects the meshes of all labels met so far.
template <typename L>
class Builders {
 public:
  Mesh& get(L label) {
    if (last_ != nullptr && last_label_ == label) return *last_;
    auto it = index_.find(label);
    std::size_t i;
    if (it == index_.end()) {
      i = meshes_.size();
      index_.emplace(label, i);
      meshes_.emplace_back();
      meshes_.back().label = label;
    } else {
      i = it->second;
    }
    last_label_ = label;
    last_ = &meshes_[i];
    return *last_;
  }
  std::vector<Mesh> take() {
    last_ = nullptr;
    return std::move(meshes_);
  }
  void reserve(std::size_t n) { meshes_.reserve(n); }

 private:
  std::unordered_map<L, std::size_t> index_;
  std::vector<Mesh> meshes_;  // reserved up front: pointers stay valid (see march_planes)
  L last_label_{};
  Mesh* last_ = nullptr;
};

// The plane filler writes interior voxel values of plane z (0 <= z < nz) into a padded
// (ny + 2) x (nx + 2) buffer whose border stays 0.
template <typename P, typename Fill>
std::vector<Mesh> march_planes(std::ptrdiff_t nz, std::ptrdiff_t ny, std::ptrdiff_t nx,
                               const Frame& fr, Fill&& fill) {
  const std::ptrdiff_t W = nx + 2, H = ny + 2;
  std::vector<P> planes[2] = {std::vector<P>(W * H, P{0}), std::vector<P>(W * H, P{0})};
  // Vertex index of each lattice edge, two slots (label of the lower / upper end).
  std::vector<std::uint32_t> xe[2] = {std::vector<std::uint32_t>(W * H * 2),
                                      std::vector<std::uint32_t>(W * H * 2)};
  std::vector<std::uint32_t> ye[2] = {std::vector<std::uint32_t>(W * H * 2),
                                      std::vector<std::uint32_t>(W * H * 2)};
  std::vector<std::uint32_t> ze(W * H * 2);
  std::vector<std::uint8_t> col(W + 8), mixed(W + 8, 0);

  // Builders with stable addresses: an unordered_map of label -> mesh index into a deque-like
  // vector; pointers are refreshed via get() for each label switch, so vector growth is fine.
  Builders<P> builders;

  const float sx = static_cast<float>(fr.scale[0]), sy = static_cast<float>(fr.scale[1]),
              sz = static_cast<float>(fr.scale[2]);
  const float ox = static_cast<float>(fr.origin[0]), oy = static_cast<float>(fr.origin[1]),
              oz = static_cast<float>(fr.origin[2]);

  // Plane index p (padded, 0..nz+1) lives in planes[p & 1].
  if (nz > 0) fill(0, planes[1].data());  // padded plane 1 = voxel plane 0
  for (std::ptrdiff_t pz = 0; pz <= nz; ++pz) {  // cell layer between padded planes pz, pz+1
    const P* lower = planes[pz & 1].data();
    P* upper = planes[(pz + 1) & 1].data();
    if (pz >= 1) {
      // Refill the buffer that held plane pz-1 with plane pz+1.
      if (pz + 1 <= nz)
        fill(pz, upper);
      else
        std::fill(upper, upper + W * H, P{0});
    }
    std::uint32_t* xl = xe[pz & 1].data();
    std::uint32_t* xu = xe[(pz + 1) & 1].data();
    std::uint32_t* yl = ye[pz & 1].data();
    std::uint32_t* yu = ye[(pz + 1) & 1].data();
    std::uint32_t* zz = ze.data();
    const float zc = static_cast<float>(pz) * sz + oz;           // z of z-edge vertices
    const float zh = (static_cast<float>(pz) + 0.5f) * sz + oz;  // z of upper-plane vertices
    for (std::ptrdiff_t py = 0; py <= ny; ++py) {
      const P* r0 = lower + py * W;
      const P* r1 = r0 + W;
      const P* r2 = upper + py * W;
      const P* r3 = r2 + W;
      for (std::ptrdiff_t i = 0; i < W; ++i)
        col[i] = static_cast<std::uint8_t>((r0[i] == r1[i]) & (r0[i] == r2[i]) & (r0[i] == r3[i]));
      for (std::ptrdiff_t i = 0; i + 1 < W; ++i)
        mixed[i] = static_cast<std::uint8_t>(!(col[i] & col[i + 1] & (r0[i] == r0[i + 1])));
      mixed[W - 1] = 0;
      const float yc = static_cast<float>(py) * sy + oy;
      const float yh = (static_cast<float>(py) + 0.5f) * sy + oy;
      const std::ptrdiff_t rowoff = py * W;
      for (std::ptrdiff_t px = 0; px <= nx; ++px) {
        // Skip runs of uniform cells eight at a time.
        if ((px & 7) == 0 && px + 8 <= W) {
          std::uint64_t word;
          std::memcpy(&word, mixed.data() + px, 8);
          if (word == 0) {
            px += 7;
            continue;
          }
        }
        if (!mixed[px]) continue;
        const P c[8] = {r0[px], r0[px + 1], r1[px], r1[px + 1],
                        r2[px], r2[px + 1], r3[px], r3[px + 1]};
        for (int i = 0; i < 8; ++i) {
          const P lab = c[i];
          if (lab == 0) continue;
          bool seen = false;
          for (int j = 0; j < i; ++j) seen |= (c[j] == lab);
          if (seen) continue;
          unsigned mask = 0;
          for (int j = 0; j < 8; ++j) mask |= static_cast<unsigned>(c[j] == lab) << j;
          Mesh& m = builders.get(lab);
          auto add_vertex = [&m](float x, float y, float z, bool border, std::uint8_t ax) {
            const auto n = static_cast<std::uint32_t>(m.vertices.size() / 3);
            m.vertices.push_back(x);
            m.vertices.push_back(y);
            m.vertices.push_back(z);
            m.axis.push_back(border ? 3 : ax);
            return n;
          };
          // Vertices on the three edges this cell owns (first cell to touch them).
          const std::ptrdiff_t o = rowoff + px;
          if (((mask >> 6) ^ (mask >> 7)) & 1)  // edge 3: x-edge at dy=1, dz=1
            xu[(o + W) * 2 + ((mask >> 6) & 1 ? 0 : 1)] =
                add_vertex(static_cast<float>(px) * sx + ox, yh, zh, px == 0 || px == nx, 0);
          if (((mask >> 5) ^ (mask >> 7)) & 1)  // edge 7: y-edge at dx=1, dz=1
            yu[(o + 1) * 2 + ((mask >> 5) & 1 ? 0 : 1)] =
                add_vertex((static_cast<float>(px) + 0.5f) * sx + ox, yc, zh, py == 0 || py == ny, 1);
          if (((mask >> 3) ^ (mask >> 7)) & 1)  // edge 11: z-edge at dx=1, dy=1
            zz[(o + W + 1) * 2 + ((mask >> 3) & 1 ? 0 : 1)] =
                add_vertex((static_cast<float>(px) + 0.5f) * sx + ox, yh, zc, pz == 0 || pz == nz, 2);
          const std::uint8_t* t = kTable.tri[mask];
          const int nt = kTable.ntri[mask];
          for (int k = 0; k < 3 * nt; ++k) {
            const int e = t[k];
            const int slot = ((mask >> kEdgeA[e]) & 1) ? 0 : 1;
            std::uint32_t v;
            switch (e) {
              case 0: v = xl[o * 2 + slot]; break;
              case 1: v = xl[(o + W) * 2 + slot]; break;
              case 2: v = xu[o * 2 + slot]; break;
              case 3: v = xu[(o + W) * 2 + slot]; break;
              case 4: v = yl[o * 2 + slot]; break;
              case 5: v = yl[(o + 1) * 2 + slot]; break;
              case 6: v = yu[o * 2 + slot]; break;
              case 7: v = yu[(o + 1) * 2 + slot]; break;
              case 8: v = zz[o * 2 + slot]; break;
              case 9: v = zz[(o + 1) * 2 + slot]; break;
              case 10: v = zz[(o + W) * 2 + slot]; break;
              default: v = zz[(o + W + 1) * 2 + slot]; break;
            }
            m.faces.push_back(v);
          }
        }
      }
    }
  }
  return builders.take();
}

}  // namespace

template <typename T>
std::vector<Mesh> march(const Volume3<T>& vol, const Frame& frame, const T* target) {
  static_assert(std::is_unsigned_v<T>, "labels are unsigned");
  const std::ptrdiff_t nz = vol.shape[0], ny = vol.shape[1], nx = vol.shape[2];
  const std::ptrdiff_t W = nx + 2;
  const std::ptrdiff_t s0 = vol.strides[0], s1 = vol.strides[1], s2 = vol.strides[2];
  if (nz <= 0 || ny <= 0 || nx <= 0) return {};
  if (target != nullptr) {
    const T want = *target;
    auto fill = [&](std::ptrdiff_t pz, std::uint8_t* dst) {
      const T* base = vol.data + pz * s0;
      for (std::ptrdiff_t y = 0; y < ny; ++y) {
        const T* src = base + y * s1;
        std::uint8_t* d = dst + (y + 1) * W + 1;
        if (s2 == 1)
          for (std::ptrdiff_t x = 0; x < nx; ++x) d[x] = src[x] == want;
        else
          for (std::ptrdiff_t x = 0; x < nx; ++x) d[x] = src[x * s2] == want;
      }
    };
    auto meshes = march_planes<std::uint8_t>(nz, ny, nx, frame, fill);
    for (auto& m : meshes) m.label = want;
    return meshes;
  }
  auto fill = [&](std::ptrdiff_t pz, T* dst) {
    const T* base = vol.data + pz * s0;
    for (std::ptrdiff_t y = 0; y < ny; ++y) {
      const T* src = base + y * s1;
      T* d = dst + (y + 1) * W + 1;
      if (s2 == 1)
        std::memcpy(d, src, static_cast<std::size_t>(nx) * sizeof(T));
      else
        for (std::ptrdiff_t x = 0; x < nx; ++x) d[x] = src[x * s2];
    }
  };
  return march_planes<T>(nz, ny, nx, frame, fill);
}

template std::vector<Mesh> march(const Volume3<std::uint8_t>&, const Frame&, const std::uint8_t*);
template std::vector<Mesh> march(const Volume3<std::uint16_t>&, const Frame&, const std::uint16_t*);
template std::vector<Mesh> march(const Volume3<std::uint32_t>&, const Frame&, const std::uint32_t*);
template std::vector<Mesh> march(const Volume3<std::uint64_t>&, const Frame&, const std::uint64_t*);

}  // namespace ngshow::mesher
