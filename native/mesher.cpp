// Python bindings for the mesher (mesher.hpp).  Every heavy call releases the GIL.
#include "mesher.hpp"

#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>
#include <nanobind/stl/array.h>
#include <nanobind/stl/optional.h>

#include <algorithm>
#include <optional>
#include <stdexcept>
#include <type_traits>
#include <utility>
#include <vector>

namespace nb = nanobind;
using namespace ngshow::mesher;

namespace {

template <typename T>
using Labels = nb::ndarray<const T, nb::ndim<3>, nb::device::cpu>;

template <typename T>
Volume3<T> view_of(const Labels<T>& a) {
  Volume3<T> v{a.data(), {}, {}};
  for (int i = 0; i < 3; ++i) {
    v.shape[i] = static_cast<std::ptrdiff_t>(a.shape(i));
    v.strides[i] = static_cast<std::ptrdiff_t>(a.stride(i));
  }
  return v;
}

// Hand a std::vector's or Buf's buffer to NumPy without copying.
template <typename Vec>
nb::object to_numpy(Vec&& data, std::size_t cols) {
  using C = std::remove_reference_t<Vec>;
  using V = std::remove_const_t<std::remove_pointer_t<decltype(data.data())>>;
  auto* heap = new C(std::move(data));
  nb::capsule owner(heap, [](void* p) noexcept { delete static_cast<C*>(p); });
  const std::size_t shape[2] = {heap->size() / cols, cols};
  return nb::cast(nb::ndarray<nb::numpy, V, nb::ndim<2>>(heap->data(), 2, shape, owner));
}

template <typename T>
nb::list mesh_labels(Labels<T> labels, std::array<double, 3> scale, std::array<double, 3> origin,
                     std::optional<std::uint64_t> target, double max_error,
                     double min_normal_dot, std::optional<std::array<double, 6>> box,
                     bool normals, int threads, int smooth_iterations) {
  const Volume3<T> vol = view_of(labels);
  std::vector<Mesh> meshes;
  T want{};
  if (target) {
    if (*target == 0 || *target > static_cast<std::uint64_t>(static_cast<T>(~T{0})))
      return nb::list();  // background or out of the dtype's range: no object
    want = static_cast<T>(*target);
  }
  {
    nb::gil_scoped_release release;
    Frame frame{scale, origin};
    SimplifyOptions opt;
    opt.max_error = max_error;
    opt.min_normal_dot = min_normal_dot;
    if (box) {
      opt.lock_box = true;
      opt.box = *box;
    }
    const Finish finish = [&](Mesh& m) {
      smooth(m, frame, smooth_iterations);
      simplify(m, opt);
      if (normals) m.normals = vertex_normals(m);
    };
    const bool work = max_error > 0 || normals || smooth_iterations > 0;
    meshes = march(vol, frame, target ? &want : nullptr, threads, work ? &finish : nullptr);
    std::sort(meshes.begin(), meshes.end(),
              [](const Mesh& a, const Mesh& b) { return a.label < b.label; });
  }
  nb::list out;
  for (std::size_t i = 0; i < meshes.size(); ++i) {
    Mesh& m = meshes[i];
    nb::object n = normals ? to_numpy(std::move(m.normals), 3) : nb::none();
    out.append(nb::make_tuple(m.label, to_numpy(std::move(m.vertices), 3),
                              to_numpy(std::move(m.faces), 3), n));
  }
  return out;
}

template <typename T>
void box_add(BoxAccumulator& acc, Labels<T> slab, std::int64_t z0) {
  const Volume3<T> v = view_of(slab);
  nb::gil_scoped_release release;
  acc.add(v, z0);
}

nb::tuple box_result(const BoxAccumulator& acc) {
  std::vector<std::uint64_t> labels;
  std::vector<BoxAccumulator::Box> boxes;
  acc.result(labels, boxes);
  std::vector<std::int64_t> flat;
  flat.reserve(boxes.size() * 6);
  for (const auto& b : boxes) {
    flat.insert(flat.end(), b.lo, b.lo + 3);
    flat.insert(flat.end(), b.hi, b.hi + 3);
  }
  return nb::make_tuple(to_numpy(std::move(labels), 1), to_numpy(std::move(flat), 6));
}

template <typename T>
void bind_for(nb::module_& m, nb::class_<BoxAccumulator>& acc) {
  // noconvert: one overload per label dtype, and nanobind's second (converting) overload pass
  // would otherwise cast e.g. a uint32 volume to uint8 when another argument needs a conversion
  // (ints for the float box), silently truncating labels.
  m.def("mesh_labels", &mesh_labels<T>, nb::arg("labels").noconvert(), nb::arg("scale"), nb::arg("origin"),
        nb::arg("target").none(), nb::arg("max_error"), nb::arg("min_normal_dot"),
        nb::arg("box").none(), nb::arg("normals"), nb::arg("threads"), nb::arg("smooth_iterations"));
  acc.def("add", &box_add<T>, nb::arg("slab").noconvert(), nb::arg("z0"));
}

}  // namespace

void register_mesher(nb::module_& m) {
  nb::class_<BoxAccumulator> acc(m, "BoxAccumulator",
                                 "Bounding boxes of every nonzero label, accumulated slab by slab.");
  acc.def(nb::init<>());
  bind_for<std::uint8_t>(m, acc);
  bind_for<std::uint16_t>(m, acc);
  bind_for<std::uint32_t>(m, acc);
  bind_for<std::uint64_t>(m, acc);
  acc.def("result", &box_result,
          "(labels uint64 (n,), boxes int64 (n, 6): z0 y0 x0 z1 y1 x1, end exclusive)");
}
