// Label-volume mesher: per-label binary marching cubes with a watertight case table, vertex
// welding through per-edge index planes, and quadric-error edge-collapse simplification.
//
// Conventions
// -----------
// * Volumes are indexed (z, y, x) with arbitrary element strides (C or Fortran order, views);
//   they are never copied whole: two padded z-planes are kept at a time.
// * Voxel i covers [i, i+1) along each axis, so its centre is at i + 0.5 and marching-cubes
//   vertices (edge midpoints between voxel centres) lie on voxel faces: the mesh of a label
//   encloses exactly the voxels' union, up to the corner chamfers of marching cubes.
// * Everything outside the array is background (label 0), so objects on the border are capped.
// * Output positions are (x, y, z) = (coordinate * scale + origin), faces are counter-clockwise
//   seen from outside (outward normals by the right-hand rule).
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <initializer_list>
#include <new>
#include <type_traits>
#include <utility>
#include <vector>

#include <sys/mman.h>

namespace ngshow::mesher {

// A growable array of trivially copyable values without value-initialisation, whose large
// buffers are private anonymous mappings grown with mremap: growing moves page tables instead of
// copying, and the pages are backed by transparent huge pages where the kernel allows (one fault
// per 2 MiB instead of per 4 KiB).  Meshes of whole volumes are hundreds of MB of such arrays.
template <typename T>
class Buf {
  static_assert(std::is_trivially_copyable_v<T>, "Buf holds plain values");

 public:
  Buf() = default;
  Buf(const Buf& o) { assign(o.p_, o.p_ + o.n_); }
  Buf(Buf&& o) noexcept : p_(o.p_), n_(o.n_), cap_(o.cap_), mapped_(o.mapped_) { o.forget(); }
  Buf(std::initializer_list<T> v) { assign(v.begin(), v.end()); }
  Buf& operator=(const Buf& o) {
    if (this != &o) assign(o.p_, o.p_ + o.n_);
    return *this;
  }
  Buf& operator=(Buf&& o) noexcept {
    if (this != &o) {
      release();
      p_ = o.p_, n_ = o.n_, cap_ = o.cap_, mapped_ = o.mapped_;
      o.forget();
    }
    return *this;
  }
  ~Buf() { release(); }

  std::size_t size() const { return n_; }
  bool empty() const { return n_ == 0; }
  T* data() { return p_; }
  const T* data() const { return p_; }
  T* begin() { return p_; }
  T* end() { return p_ + n_; }
  const T* begin() const { return p_; }
  const T* end() const { return p_ + n_; }
  T& operator[](std::size_t i) { return p_[i]; }
  const T& operator[](std::size_t i) const { return p_[i]; }
  T& back() { return p_[n_ - 1]; }

  void clear() { n_ = 0; }
  void reserve(std::size_t n) {
    if (n > cap_) regrow(n);
  }
  // New elements are left uninitialised.
  void resize(std::size_t n) {
    reserve_growing(n);
    n_ = n;
  }
  // Room for k more elements; returns where they go (the caller writes them all).
  T* extend(std::size_t k) {
    reserve_growing(n_ + k);
    T* out = p_ + n_;
    n_ += k;
    return out;
  }
  void push_back(const T& v) { *extend(1) = v; }
  template <typename It>
  void append(It first, It last) {
    const auto k = static_cast<std::size_t>(last - first);
    if (k) std::memcpy(extend(k), &*first, k * sizeof(T));
  }
  template <typename It>
  void assign(It first, It last) {
    n_ = 0;
    append(first, last);
  }
  void free_memory() {
    release();
    forget();
  }
  // Gives back the spare capacity (in place: shrinking a mapping or a malloc block never copies).
  void shrink_to_fit() {
    if (n_ == 0) {
      free_memory();
      return;
    }
    if (mapped_) {
      const std::size_t bytes = (n_ * sizeof(T) + 4095) & ~std::size_t{4095};
      if (bytes >= cap_ * sizeof(T)) return;
      if (mremap(p_, cap_ * sizeof(T), bytes, 0) == MAP_FAILED) return;  // keep it as it is
      cap_ = bytes / sizeof(T);
    } else if (n_ < cap_) {
      void* q = std::realloc(p_, n_ * sizeof(T));
      if (!q) return;
      p_ = static_cast<T*>(q);
      cap_ = n_;
    }
  }

 private:
  static constexpr std::size_t kMapBytes = std::size_t{1} << 20;  // map buffers from 1 MiB up
  void forget() { p_ = nullptr, n_ = cap_ = 0, mapped_ = false; }
  void release() {
    if (!p_) return;
    if (mapped_)
      munmap(p_, cap_ * sizeof(T));
    else
      std::free(p_);
  }
  void reserve_growing(std::size_t n) {
    if (n > cap_) regrow(std::max(n, 2 * cap_ + 16));
  }
  void regrow(std::size_t cap) {
    std::size_t bytes = cap * sizeof(T);
    if (bytes >= kMapBytes) {
      bytes = (bytes + 4095) & ~std::size_t{4095};
      cap = bytes / sizeof(T);
      void* q;
      if (mapped_) {
        q = mremap(p_, cap_ * sizeof(T), bytes, MREMAP_MAYMOVE);
      } else {
        q = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (q != MAP_FAILED && n_) std::memcpy(q, p_, n_ * sizeof(T));
      }
      if (q == MAP_FAILED) throw std::bad_alloc();
#ifdef MADV_HUGEPAGE
      madvise(q, bytes, MADV_HUGEPAGE);
#endif
      if (!mapped_) std::free(p_);
      p_ = static_cast<T*>(q);
      mapped_ = true;
    } else {
      void* q = std::realloc(p_, bytes ? bytes : 1);
      if (!q) throw std::bad_alloc();
      p_ = static_cast<T*>(q);
    }
    cap_ = cap;
  }
  T* p_ = nullptr;
  std::size_t n_ = 0, cap_ = 0;
  bool mapped_ = false;
};

// One label's mesh, positions x,y,z interleaved.
struct Mesh {
  std::uint64_t label = 0;
  Buf<float> vertices;       // 3 per vertex
  Buf<std::uint32_t> faces;  // 3 per triangle
  // Lattice axis (0 x, 1 y, 2 z) of the edge each vertex sits on; 3 = on the volume box (the
  // edge joins a voxel and the outside), such vertices must not leave the box plane.
  Buf<std::uint8_t> axis;
  Buf<float> normals;  // 3 per vertex, if asked for
};

template <typename T>
struct Volume3 {
  const T* data;
  std::array<std::ptrdiff_t, 3> shape;    // z, y, x
  std::array<std::ptrdiff_t, 3> strides;  // in elements
};

struct Frame {
  std::array<double, 3> scale{1, 1, 1};   // x, y, z: physical size of one voxel
  std::array<double, 3> origin{0, 0, 0};  // x, y, z: physical position of voxel (0,0,0)'s corner
};

struct SimplifyOptions {
  double max_error = 0;  // bound on the distance to each plane merged into a vertex; <= 0: off
  double min_normal_dot = 0.0;  // reject collapses that turn a face by more than acos(this)
  // Faces on these planes (physical coordinates, x,y,z lo then hi) are the volume box: their
  // vertices may only slide within the plane(s) they lie on.
  bool lock_box = false;
  std::array<double, 6> box{0, 0, 0, 0, 0, 0};
};

// Work done on each finished mesh (smoothing, simplification, normals), on the marching threads.
using Finish = std::function<void(Mesh&)>;

// Mesh every nonzero label (target == nullptr) or one label.  Labels are unsigned.  With
// threads > 1 the volume is marched in z-slabs in parallel and the slabs' meshes are welded; the
// output is the same as with one thread (vertex and face order included).  If finish is given,
// it runs once on every mesh (in parallel, largest first; with several slabs right after the
// mesh is welded, while it is in cache).
template <typename T>
std::vector<Mesh> march(const Volume3<T>& vol, const Frame& frame, const T* target, int threads = 1,
                        const Finish* finish = nullptr);

// Run fn(0) ... fn(n - 1) on up to `threads` threads (dynamic scheduling); rethrows the first
// exception.
void parallel_for(std::size_t n, int threads, const std::function<void(std::size_t)>& fn);

// Constrained smoothing: each vertex moves only along its lattice edge, towards the mean of its
// neighbours, and stays within +-limit voxels of the edge midpoint (limit < 0.5, so the mesh never
// crosses a voxel centre and still voxelises to the same labels).  Box vertices stay put.
void smooth(Mesh& mesh, const Frame& frame, int iterations, double limit = 0.4);

// Simplify a closed mesh in place (quadric-error edge collapse, link-condition checked).
void simplify(Mesh& mesh, const SimplifyOptions& opt);

// Per-vertex unit normals (area-weighted face normals).
Buf<float> vertex_normals(const Mesh& mesh);

// Bounding boxes of all labels: accumulates slab by slab.
class BoxAccumulator {
 public:
  struct Box {
    std::int64_t lo[3];  // z, y, x inclusive
    std::int64_t hi[3];  // z, y, x exclusive
  };
  template <typename T>
  void add(const Volume3<T>& slab, std::int64_t z0);
  // Sorted labels and their boxes.
  void result(std::vector<std::uint64_t>& labels, std::vector<Box>& boxes) const;

 private:
  void grow();
  Box& slot(std::uint64_t label);
  std::vector<std::uint64_t> keys_;
  std::vector<Box> boxes_;
  std::vector<std::uint8_t> used_;
  std::size_t count_ = 0;
};

}  // namespace ngshow::mesher
