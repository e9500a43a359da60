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
#include <mutex>
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
  // tri[mask][k] * 2 + (slot of that edge's vertex: 0 if the edge's lower corner is inside).
  std::uint8_t tri_slot[256][36];
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
      for (int k = 0; k < 3 * n; ++k) {
        const int e = tri[mask][k];
        tri_slot[mask][k] = static_cast<std::uint8_t>(2 * e + (inside(kEdgeA[e]) ? 0 : 1));
      }
    }
  }
};

const CaseTable kTable;

// Lattice-edge slots per node of march_slab's edge index.
constexpr std::ptrdiff_t kNode = 10;

// The meshes of one z-slab of cell layers, and what merging slabs needs.
template <typename L>
struct Slab {
  std::vector<Mesh> meshes;  // first-seen order
  std::unordered_map<L, std::size_t> index;
  // Per mesh: how many vertices it took over from the slab below (those on its lowest lattice
  // plane; they come first), and the vertex indices on its top plane in the same order (that of
  // plane_edges), for the slab above.
  std::vector<std::size_t> seam;
  std::vector<std::vector<std::uint32_t>> top;
};

// Calls fn(label, node offset of the edge slot, x, y, on the box, axis) for every x- and y-edge
// slot of padded plane pl that has a vertex (the edge joins two labels; slot of each nonzero
// one), in a fixed order.  Coordinates are in voxels.
template <typename P, typename Fn>
void plane_edges(const P* pl, std::ptrdiff_t ny, std::ptrdiff_t nx, Fn&& fn) {
  const std::ptrdiff_t W = nx + 2;
  for (std::ptrdiff_t r = 1; r <= ny; ++r)  // x-edges (rows 1..ny)
    for (std::ptrdiff_t px = 0; px <= nx; ++px) {
      const std::ptrdiff_t o = r * W + px;
      const P a = pl[o], b = pl[o + 1];
      if (a == b) continue;
      const float x = static_cast<float>(px), y = static_cast<float>(r - 1) + 0.5f;
      const bool border = px == 0 || px == nx;
      if (a != 0) fn(a, o * kNode, x, y, border, 0);
      if (b != 0) fn(b, o * kNode + 1, x, y, border, 0);
    }
  for (std::ptrdiff_t py = 0; py <= ny; ++py)  // y-edges (columns 1..nx)
    for (std::ptrdiff_t c = 1; c <= nx; ++c) {
      const std::ptrdiff_t o = py * W + c;
      const P a = pl[o], b = pl[o + W];
      if (a == b) continue;
      const float x = static_cast<float>(c - 1) + 0.5f, y = static_cast<float>(py);
      const bool border = py == 0 || py == ny;
      if (a != 0) fn(a, o * kNode + 4, x, y, border, 1);
      if (b != 0) fn(b, o * kNode + 5, x, y, border, 1);
    }
}

// Edge-node buffers of finished slabs, reused by later slabs and calls (allocating and faulting
// in megabytes per slab costs more than marching a thin slab).  At most a few are kept.
class NodePool {
 public:
  Buf<std::uint32_t> take() {
    std::lock_guard<std::mutex> lock(mu_);
    if (free_.empty()) return {};
    Buf<std::uint32_t> b = std::move(free_.back());
    free_.pop_back();
    return b;
  }
  void give(Buf<std::uint32_t>&& b) {
    std::lock_guard<std::mutex> lock(mu_);
    if (free_.size() < 4 && b.size() <= (std::size_t{64} << 20)) free_.push_back(std::move(b));
  }

 private:
  std::mutex mu_;
  std::vector<Buf<std::uint32_t>> free_;
};
NodePool node_pool;

// Collects the meshes of all labels met so far in a slab.
template <typename L>
class Builders {
 public:
  explicit Builders(Slab<L>& out) : out_(out) {}
  std::size_t get(L label) {
    // A small direct-mapped cache in front of the hash map: cells alternate between a few labels.
    Line& line = cache_[(static_cast<std::uint64_t>(label) * 0x9E3779B97F4A7C15ull) >> 58];
    if (line.used && line.label == label) return line.index;
    auto it = out_.index.find(label);
    std::size_t i;
    if (it == out_.index.end()) {
      i = out_.meshes.size();
      out_.index.emplace(label, i);
      out_.meshes.emplace_back();
      out_.meshes.back().label = label;
      out_.seam.push_back(0);
      out_.top.emplace_back();
    } else {
      i = it->second;
    }
    line = Line{label, i, true};
    return i;
  }

 private:
  struct Line {
    L label{};
    std::size_t index = 0;
    bool used = false;
  };
  Slab<L>& out_;
  Line cache_[64];
};

// Marching cubes over cell layers [z0, z1) (layer pz lies between padded planes pz and pz+1;
// padded plane p is voxel plane p - 1, planes 0 and nz + 1 are background).  The loader writes
// the interior voxel values of voxel plane z (0 <= z < nz) into a padded (ny + 2) x (nx + 2)
// buffer whose border stays 0.  A slab that does not start at layer 0 first creates the vertices
// of its lowest plane (made by the slab below too; merge() welds them).
template <typename P, typename Fill>
void march_slab(std::ptrdiff_t nz, std::ptrdiff_t ny, std::ptrdiff_t nx, std::ptrdiff_t z0,
                std::ptrdiff_t z1, const Frame& fr, Fill& fill, Slab<P>& out) {
  const std::ptrdiff_t W = nx + 2, H = ny + 2;
  std::vector<P> planes[2] = {std::vector<P>(W * H, P{0}), std::vector<P>(W * H, P{0})};
  // Vertex index of each lattice edge, two slots (label of the lower / upper end).
  // Vertex index of each lattice edge slot (slot 0 / 1: vertex of the label of the edge's lower
  // / upper end), interleaved per lattice column (y, x) so that a cell finds all its edges in a
  // few cache lines: at kNode * o + (x-edge of plane parity p, slot s) 2 p + s, (y-edge)
  // 4 + 2 p + s, (z-edge of the current layer) 8 + s.  Never initialised: only slots written
  // (by the cell owning the edge, or as seam vertices) are read.
  Buf<std::uint32_t> nodes = node_pool.take();
  nodes.resize(static_cast<std::size_t>(W * H * kNode));
  std::uint32_t* const E = nodes.data();
  std::vector<std::uint8_t> col(W + 8), mixed(W + 8, 0);  // zero past W - 1
  std::vector<std::uint32_t> list(W + 8);
  Builders<P> builders(out);
  std::vector<Mesh>& meshes = out.meshes;

  const float sx = static_cast<float>(fr.scale[0]), sy = static_cast<float>(fr.scale[1]),
              sz = static_cast<float>(fr.scale[2]);
  const float ox = static_cast<float>(fr.origin[0]), oy = static_cast<float>(fr.origin[1]),
              oz = static_cast<float>(fr.origin[2]);
  auto load = [&](std::ptrdiff_t p, P* dst) {
    if (p >= 1 && p <= nz)
      fill(p - 1, dst);
    else
      std::fill(dst, dst + W * H, P{0});
  };
  auto add_vertex = [](Mesh& m, float x, float y, float z, bool border, std::uint8_t ax) {
    const auto n = static_cast<std::uint32_t>(m.axis.size());
    float* v = m.vertices.extend(3);
    v[0] = x, v[1] = y, v[2] = z;
    m.axis.push_back(border ? 3 : ax);
    return n;
  };

  // Padded plane p lives in planes[p & 1], its edges at parity p & 1 of the nodes.
  load(z0, planes[z0 & 1].data());
  if (z0 > 0) {
    // Vertices of the lowest plane (made by the slab below too: merge() welds them).
    const float zh = (static_cast<float>(z0 - 1) + 0.5f) * sz + oz;
    std::uint32_t* const at = E + 2 * (z0 & 1);
    plane_edges(planes[z0 & 1].data(), ny, nx,
                [&](P lab, std::ptrdiff_t node, float x, float y, bool border, std::uint8_t ax) {
                  const std::size_t i = builders.get(lab);
                  at[node] = add_vertex(meshes[i], x * sx + ox, y * sy + oy, zh, border, ax);
                  ++out.seam[i];
                });
  }
  for (std::ptrdiff_t pz = z0; pz < z1; ++pz) {  // cell layer between padded planes pz, pz+1
    const P* lower = planes[pz & 1].data();
    P* upper = planes[(pz + 1) & 1].data();
    load(pz + 1, upper);
    std::uint32_t* xl = E + 2 * (pz & 1);
    std::uint32_t* xu = E + 2 * ((pz + 1) & 1);
    std::uint32_t* yl = E + 4 + 2 * (pz & 1);
    std::uint32_t* yu = E + 4 + 2 * ((pz + 1) & 1);
    std::uint32_t* zz = E + 8;
    // Where the vertex of (edge e, slot s) of the cell at offset o is: at[2 * e + s][kNode * o].
    const std::uint32_t* at[24];
    {
      const std::ptrdiff_t R = kNode * W, C = kNode;
      const std::uint32_t* base[12] = {xl, xl + R, xu, xu + R, yl, yl + C, yu, yu + C,
                                       zz, zz + C, zz + R, zz + R + C};
      for (int e = 0; e < 12; ++e) at[2 * e] = base[e], at[2 * e + 1] = base[e] + 1;
    }
    const float zc = static_cast<float>(pz) * sz + oz;           // z of z-edge vertices
    const float zh = (static_cast<float>(pz) + 0.5f) * sz + oz;  // z of upper-plane vertices
    for (std::ptrdiff_t py = 0; py <= ny; ++py) {
      const P* r0 = lower + py * W;
      const P* r1 = r0 + W;
      const P* r2 = upper + py * W;
      const P* r3 = r2 + W;
      // Whole row of cells uniform (one label in all four voxel rows)?  memcmp is vectorised.
      const std::size_t rb = static_cast<std::size_t>(W) * sizeof(P);
      if (std::memcmp(r0, r0 + 1, rb - sizeof(P)) == 0 && std::memcmp(r0, r1, rb) == 0 &&
          std::memcmp(r0, r2, rb) == 0 && std::memcmp(r2, r3, rb) == 0)
        continue;
      for (std::ptrdiff_t i = 0; i < W; ++i)
        col[i] = static_cast<std::uint8_t>((r0[i] == r1[i]) & (r0[i] == r2[i]) & (r0[i] == r3[i]));
      for (std::ptrdiff_t i = 0; i + 1 < W; ++i)
        mixed[i] = static_cast<std::uint8_t>(!(col[i] & col[i + 1] & (r0[i] == r0[i + 1])));
      mixed[W - 1] = 0;
      const float yc = static_cast<float>(py) * sy + oy;
      const float yh = (static_cast<float>(py) + 0.5f) * sy + oy;
      const std::ptrdiff_t rowoff = py * W;
      // The row's mixed cells (skipping uniform runs eight at a time), then a prefetch of their
      // edge nodes: the lower plane's were written a layer ago and are mostly out of L2.
      std::ptrdiff_t nmix = 0;
      for (std::ptrdiff_t px = 0; px < W; px += 8) {
        std::uint64_t word;
        std::memcpy(&word, mixed.data() + px, 8);
        if (word == 0) continue;
        for (std::ptrdiff_t k = px; k < px + 8; ++k) {
          list[nmix] = static_cast<std::uint32_t>(k);
          nmix += mixed[k];
        }
      }
      for (std::ptrdiff_t j = 0; j < nmix; ++j) {
        const char* a = reinterpret_cast<const char*>(E + kNode * (rowoff + list[j]));
        const char* b = a + kNode * W * sizeof(std::uint32_t);
        __builtin_prefetch(a);
        __builtin_prefetch(a + 2 * kNode * sizeof(std::uint32_t) - 1);
        __builtin_prefetch(b);
        __builtin_prefetch(b + 2 * kNode * sizeof(std::uint32_t) - 1);
      }
      for (std::ptrdiff_t j = 0; j < nmix; ++j) {
        const std::ptrdiff_t px = list[j];
        const P c[8] = {r0[px], r0[px + 1], r1[px], r1[px + 1],
                        r2[px], r2[px + 1], r3[px], r3[px + 1]};
        // Each distinct label once, by its lowest corner; `left` holds the corners not yet seen.
        for (unsigned left = 0xff; left != 0;) {
          const P lab = c[__builtin_ctz(left)];
          unsigned mask = 0;
          for (int j = 0; j < 8; ++j) mask |= static_cast<unsigned>(c[j] == lab) << j;
          left &= ~mask;
          if (lab == 0) continue;
          Mesh& m = meshes[builders.get(lab)];
          // Vertices on the three edges this cell owns (first cell to touch them).
          const std::ptrdiff_t o = rowoff + px;
          if (((mask >> 6) ^ (mask >> 7)) & 1)  // edge 3: x-edge at dy=1, dz=1
            xu[(o + W) * kNode + ((mask >> 6) & 1 ? 0 : 1)] =
                add_vertex(m, static_cast<float>(px) * sx + ox, yh, zh, px == 0 || px == nx, 0);
          if (((mask >> 5) ^ (mask >> 7)) & 1)  // edge 7: y-edge at dx=1, dz=1
            yu[(o + 1) * kNode + ((mask >> 5) & 1 ? 0 : 1)] = add_vertex(
                m, (static_cast<float>(px) + 0.5f) * sx + ox, yc, zh, py == 0 || py == ny, 1);
          if (((mask >> 3) ^ (mask >> 7)) & 1)  // edge 11: z-edge at dx=1, dy=1
            zz[(o + W + 1) * kNode + ((mask >> 3) & 1 ? 0 : 1)] = add_vertex(
                m, (static_cast<float>(px) + 0.5f) * sx + ox, yh, zc, pz == 0 || pz == nz, 2);
          const std::uint8_t* t = kTable.tri_slot[mask];
          const int nt = 3 * kTable.ntri[mask];
          std::uint32_t* fo = m.faces.extend(static_cast<std::size_t>(nt));
          for (int k = 0; k < nt; ++k) fo[k] = at[t[k]][kNode * o];
        }
      }
    }
  }
  if (z1 <= nz) {  // not the last slab: the top plane's vertices, for the slab above
    const std::uint32_t* const at = E + 2 * (z1 & 1);
    plane_edges(planes[z1 & 1].data(), ny, nx,
                [&](P lab, std::ptrdiff_t node, float, float, bool, std::uint8_t) {
                  out.top[builders.get(lab)].push_back(at[node]);
                });
  }
  node_pool.give(std::move(nodes));
}

// One label's mesh from the slabs: vertices and faces concatenated in slab order (exactly the
// single-slab output), vertices a slab took over from the one below replaced by the originals.
template <typename L>
Mesh merge(std::vector<Slab<L>>& slabs, L label) {
  Mesh out;
  out.label = label;
  std::size_t nv = 0, nf = 0;
  std::vector<std::ptrdiff_t> local(slabs.size(), -1);
  for (std::size_t k = 0; k < slabs.size(); ++k) {
    auto it = slabs[k].index.find(label);
    if (it == slabs[k].index.end()) continue;
    local[k] = static_cast<std::ptrdiff_t>(it->second);
    const Mesh& m = slabs[k].meshes[it->second];
    nv += m.axis.size() - slabs[k].seam[it->second];
    nf += m.faces.size();
  }
  std::vector<std::uint32_t> remap;
  std::uint32_t base = 0, prev_base = 0;  // first own vertex of this slab / of the slab below
  std::size_t prev_skip = 0;
  for (std::size_t k = 0; k < slabs.size(); ++k) {
    if (local[k] < 0) continue;
    Mesh& m = slabs[k].meshes[local[k]];
    const std::size_t skip = slabs[k].seam[local[k]];
    if (out.axis.empty() && out.faces.empty()) {
      // The lowest slab with this label has no seam vertices: its arrays are the start of the
      // result as they are (taken over, not copied; Buf grows large arrays with mremap).
      if (skip != 0) std::abort();
      out.vertices = std::move(m.vertices);
      out.axis = std::move(m.axis);
      out.faces = std::move(m.faces);
      out.vertices.reserve(3 * nv);
      out.axis.reserve(nv);
      out.faces.reserve(nf);
      base = static_cast<std::uint32_t>(out.axis.size());
      continue;
    }
    remap.resize(skip);
    if (skip > 0) {
      // Seam vertices exist only if this label crosses the plane, so the slab below has it.
      if (k == 0 || local[k - 1] < 0) std::abort();
      // Both slabs list the plane's vertices of this label in plane_edges order.
      const std::vector<std::uint32_t>& top = slabs[k - 1].top[local[k - 1]];
      if (top.size() != skip) std::abort();
      for (std::size_t j = 0; j < skip; ++j) {
        remap[j] = prev_base + (top[j] - static_cast<std::uint32_t>(prev_skip));
      }
    }
    out.vertices.append(m.vertices.begin() + 3 * skip, m.vertices.end());
    out.axis.append(m.axis.begin() + skip, m.axis.end());
    const std::uint32_t shift = base - static_cast<std::uint32_t>(skip);
    std::uint32_t* fo = out.faces.extend(m.faces.size());
    const std::uint32_t* fi = m.faces.data();
    for (std::size_t i = 0, n = m.faces.size(); i < n; ++i) {
      const std::uint32_t v = fi[i];
      fo[i] = v < skip ? remap[v] : v + shift;
    }
    m.vertices.free_memory();  // free as we go
    m.faces.free_memory();
    m.axis.free_memory();
    prev_base = base;
    prev_skip = skip;
    base = static_cast<std::uint32_t>(out.axis.size());
  }
  return out;
}

// Buffers grow by doubling while marching: give back what is left over.
void shrink(Mesh& m) {
  m.vertices.shrink_to_fit();
  m.faces.shrink_to_fit();
  m.axis.shrink_to_fit();
}

// Shrinks every mesh and runs finish (if any) on it, largest first, on up to `threads` threads.
void finish_all(std::vector<Mesh>& meshes, int threads, const Finish* finish) {
  std::vector<std::size_t> order(meshes.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    return meshes[a].faces.size() > meshes[b].faces.size();
  });
  parallel_for(order.size(), threads, [&](std::size_t k) {
    Mesh& m = meshes[order[k]];
    shrink(m);
    if (finish) (*finish)(m);
  });
}

template <typename P, typename Fill>
std::vector<Mesh> march_planes(std::ptrdiff_t nz, std::ptrdiff_t ny, std::ptrdiff_t nx,
                               const Frame& fr, Fill&& fill, int threads, const Finish* finish) {
  // Slabs of at least 8 cell layers, a few per thread (dynamic scheduling evens out load), a
  // multiple of the thread count when there are enough layers.
  const std::ptrdiff_t layers = nz + 1;
  std::ptrdiff_t nslabs = threads <= 1 ? 1 : std::min<std::ptrdiff_t>(4 * threads, layers / 8);
  if (threads > 1 && nslabs > threads) nslabs -= nslabs % threads;
  nslabs = std::max<std::ptrdiff_t>(1, nslabs);
  std::vector<Slab<P>> slabs(static_cast<std::size_t>(nslabs));
  parallel_for(slabs.size(), threads, [&](std::size_t k) {
    const std::ptrdiff_t a = layers * static_cast<std::ptrdiff_t>(k) / nslabs;
    const std::ptrdiff_t b = layers * static_cast<std::ptrdiff_t>(k + 1) / nslabs;
    march_slab<P>(nz, ny, nx, a, b, fr, fill, slabs[k]);
  });
  if (nslabs == 1) {
    std::vector<Mesh> out = std::move(slabs[0].meshes);
    finish_all(out, threads, finish);
    return out;
  }
  // Labels by size (faces over all slabs), largest first so that the pool stays busy; each is
  // merged and finished on one thread while its arrays are still in cache.
  std::unordered_map<P, std::size_t> size;
  for (const auto& s : slabs)
    for (const auto& m : s.meshes) size[static_cast<P>(m.label)] += m.faces.size();
  std::vector<std::pair<P, std::size_t>> labels(size.begin(), size.end());
  std::sort(labels.begin(), labels.end());
  std::vector<std::size_t> order(labels.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    return labels[a].second > labels[b].second;
  });
  std::vector<Mesh> out(labels.size());
  parallel_for(labels.size(), threads, [&](std::size_t k) {
    const std::size_t i = order[k];
    out[i] = merge(slabs, labels[i].first);
    shrink(out[i]);
    if (finish) (*finish)(out[i]);
  });
  return out;
}

}  // namespace

template <typename T>
std::vector<Mesh> march(const Volume3<T>& vol, const Frame& frame, const T* target, int threads,
                        const Finish* finish) {
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
    auto meshes = march_planes<std::uint8_t>(nz, ny, nx, frame, fill, threads, finish);
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
  return march_planes<T>(nz, ny, nx, frame, fill, threads, finish);
}

template std::vector<Mesh> march(const Volume3<std::uint8_t>&, const Frame&, const std::uint8_t*, int,
                                 const Finish*);
template std::vector<Mesh> march(const Volume3<std::uint16_t>&, const Frame&, const std::uint16_t*, int,
                                 const Finish*);
template std::vector<Mesh> march(const Volume3<std::uint32_t>&, const Frame&, const std::uint32_t*, int,
                                 const Finish*);
template std::vector<Mesh> march(const Volume3<std::uint64_t>&, const Frame&, const std::uint64_t*, int,
                                 const Finish*);

}  // namespace ngshow::mesher
