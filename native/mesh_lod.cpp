// Python binding of the simplifier for meshes that already exist (levels of detail of a welded,
// closed object mesh): mesh_simplify.cpp's quadric-error edge collapses, bounded by max_error.
#include "mesher.hpp"

#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>
#include <nanobind/stl/array.h>
#include <nanobind/stl/optional.h>

#include <array>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <utility>

namespace nb = nanobind;
using namespace ngshow::mesher;

namespace {

using Vertices = nb::ndarray<const float, nb::ndim<2>, nb::c_contig, nb::device::cpu>;
using Faces = nb::ndarray<const std::uint32_t, nb::ndim<2>, nb::c_contig, nb::device::cpu>;

template <typename T>
nb::object owned_array(Buf<T>&& data) {
  auto* heap = new Buf<T>(std::move(data));
  nb::capsule owner(heap, [](void* p) noexcept { delete static_cast<Buf<T>*>(p); });
  const std::size_t shape[2] = {heap->size() / 3, 3};
  return nb::cast(nb::ndarray<nb::numpy, T, nb::ndim<2>>(heap->data(), 2, shape, owner));
}

nb::tuple simplify_mesh(Vertices vertices, Faces faces, double max_error, double min_normal_dot,
                        std::optional<std::array<double, 6>> box) {
  if (vertices.shape(1) != 3 || faces.shape(1) != 3)
    throw std::invalid_argument("vertices and faces must be (n, 3) arrays");
  const std::size_t nv = vertices.shape(0), nf = faces.shape(0);
  const std::uint32_t* f = faces.data();
  for (std::size_t i = 0; i < 3 * nf; ++i)
    if (f[i] >= nv) throw std::invalid_argument("a face indexes a vertex that does not exist");
  Mesh m;
  {
    nb::gil_scoped_release release;
    m.vertices.assign(vertices.data(), vertices.data() + 3 * nv);
    m.faces.assign(f, f + 3 * nf);
    SimplifyOptions opt;
    opt.max_error = max_error;
    opt.min_normal_dot = min_normal_dot;
    if (box) {
      opt.lock_box = true;
      opt.box = *box;
    }
    simplify(m, opt);
  }
  return nb::make_tuple(owned_array(std::move(m.vertices)), owned_array(std::move(m.faces)));
}

}  // namespace

void register_mesh_lod(nb::module_& m) {
  m.def("simplify_mesh", &simplify_mesh, nb::arg("vertices"), nb::arg("faces"),
        nb::arg("max_error"), nb::arg("min_normal_dot"), nb::arg("box").none(),
        "Quadric-error edge collapses of a closed mesh, each merged plane within max_error: "
        "(vertices float32 (n, 3), faces uint32 (m, 3)).");
}
