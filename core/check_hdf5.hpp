// HDF5 return-code wrapper (header-only: only targets that link HDF5 include it).
#pragma once

#include <hdf5.h>

#include <string>

#include "core/error.hpp"

namespace harvest {

namespace detail {
inline herr_t collect_h5_error(unsigned n, const H5E_error2_t* e, void* out) {
  auto* text = static_cast<std::string*>(out);
  if (n == 0 && e->desc) *text = e->desc;  // innermost frame: the most specific reason
  return 0;
}
}  // namespace detail

// check_h5(id_or_status, "H5Dopen", file, "/model/x"): negative ids/status throw Runtime naming
// the call, the file, the object and HDF5's innermost error description.
template <class T>
T check_h5(T rc, const char* call, const std::string& file, const std::string& object) {
  if (rc < 0) {
    std::string reason = "unknown HDF5 error";
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, detail::collect_h5_error, &reason);
    H5Eclear2(H5E_DEFAULT);
    fail(ErrorKind::Runtime, file, ": ", call, "(", object, ") failed: ", reason);
  }
  return rc;
}

}  // namespace harvest
