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

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

namespace ngshow::mesher {

// One label's mesh, positions x,y,z interleaved.
struct Mesh {
  std::uint64_t label = 0;
  std::vector<float> vertices;       // 3 per vertex
  std::vector<std::uint32_t> faces;  // 3 per triangle
  // Lattice axis (0 x, 1 y, 2 z) of the edge each vertex sits on; 3 = on the volume box (the
  // edge joins a voxel and the outside), such vertices must not leave the box plane.
  std::vector<std::uint8_t> axis;
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

// Mesh every nonzero label (target == nullptr) or one label.  Labels are unsigned.  With
// threads > 1 the volume is marched in z-slabs in parallel and the slabs' meshes are welded; the
// output is the same as with one thread (vertex and face order included).
template <typename T>
std::vector<Mesh> march(const Volume3<T>& vol, const Frame& frame, const T* target, int threads = 1);

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
std::vector<float> vertex_normals(const Mesh& mesh);

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
