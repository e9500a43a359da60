// ngshow._native: the package's C++ kernels.  Each kernel file registers its own functions.
#include <nanobind/nanobind.h>

namespace nb = nanobind;

void register_downsample(nb::module_& m);
void register_mesher(nb::module_& m);
void register_cseg(nb::module_& m);
void register_mesh_lod(nb::module_& m);

NB_MODULE(_native, m) {
  m.doc() = "ngshow's C++ kernels (downsampling, meshing, compressed_segmentation); heavy calls release the GIL.";
  register_downsample(m);
  register_mesher(m);
  register_cseg(m);
  register_mesh_lod(m);
}
