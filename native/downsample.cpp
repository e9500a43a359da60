// Python bindings for the block downsamplers in downsample.hpp.
#include "downsample.hpp"

#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>
#include <nanobind/stl/array.h>

#include <stdexcept>
#include <string>

namespace nb = nanobind;

namespace {

template <typename T>
using InArray = nb::ndarray<const T, nb::ndim<4>, nb::device::cpu>;
template <typename T>
using OutArray = nb::ndarray<T, nb::ndim<4>, nb::c_contig, nb::device::cpu>;

template <typename T>
ngshow::StridedView4<T> view_of(const InArray<T>& a) {
  ngshow::StridedView4<T> v{a.data(), {}, {}};
  for (int i = 0; i < 4; ++i) {
    v.shape[i] = static_cast<std::ptrdiff_t>(a.shape(i));
    v.strides[i] = static_cast<std::ptrdiff_t>(a.stride(i));
  }
  return v;
}

template <typename T>
void check_shapes(const ngshow::StridedView4<T>& in, const ngshow::Shape4& f, const OutArray<T>& out) {
  for (int i = 0; i < 4; ++i) {
    if (f[i] < 1) throw std::invalid_argument("downsampling factors must be >= 1");
    if (in.shape[i] < 1) throw std::invalid_argument("cannot downsample an empty array");
    if (static_cast<std::ptrdiff_t>(out.shape(i)) != ngshow::ceil_div(in.shape[i], f[i]))
      throw std::invalid_argument("output shape must be ceil(input shape / factors) on axis " +
                                  std::to_string(i));
  }
}

template <typename T, bool Mode>
void run(InArray<T> in, ngshow::Shape4 f, OutArray<T> out) {
  auto view = view_of(in);
  check_shapes(view, f, out);
  if constexpr (Mode)
    ngshow::downsample_mode(view, f, out.data());
  else
    ngshow::downsample_mean(view, f, out.data());
}

template <typename T>
void bind_for(nb::module_& m) {
  m.def("downsample_mean", &run<T, false>, nb::arg("input"), nb::arg("factors"), nb::arg("out"),
        nb::call_guard<nb::gil_scoped_release>());
  m.def("downsample_mode", &run<T, true>, nb::arg("input"), nb::arg("factors"), nb::arg("out"),
        nb::call_guard<nb::gil_scoped_release>());
}

}  // namespace

void register_downsample(nb::module_& m) {
  bind_for<std::uint8_t>(m);
  bind_for<std::int8_t>(m);
  bind_for<std::uint16_t>(m);
  bind_for<std::int16_t>(m);
  bind_for<std::uint32_t>(m);
  bind_for<std::int32_t>(m);
  bind_for<std::uint64_t>(m);
  bind_for<std::int64_t>(m);
  bind_for<float>(m);
  bind_for<double>(m);
}
