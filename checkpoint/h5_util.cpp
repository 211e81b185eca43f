#include "checkpoint/h5_util.hpp"

#include <algorithm>

#include "core/check_hdf5.hpp"

namespace harvest::checkpoint::h5 {

namespace {
Id copy_type(hid_t predefined) {
  return Id(check_h5(H5Tcopy(predefined), "H5Tcopy", "", "type"), H5Tclose);
}

Id scalar_space() {
  return Id(check_h5(H5Screate(H5S_SCALAR), "H5Screate", "", "scalar"), H5Sclose);
}

Id create_attr(hid_t obj, const char* name, hid_t type, const std::string& file,
               const std::string& object) {
  Id space = scalar_space();
  return Id(check_h5(H5Acreate2(obj, name, type, space.get(), H5P_DEFAULT, H5P_DEFAULT),
                     "H5Acreate2", file, object + "@" + name),
            H5Aclose);
}

Id open_attr(hid_t obj, const char* name, const std::string& file, const std::string& object) {
  return Id(check_h5(H5Aopen(obj, name, H5P_DEFAULT), "H5Aopen", file, object + "@" + name),
            H5Aclose);
}

// Attributes are read into one scalar, so anything but one element of the expected class is
// refused before H5Aread: a file that stored an array there would have HDF5 write past the
// scalar (an attacker-chosen stack overwrite). Returns the stored type.
Id checked_scalar_attr(const Id& attr, H5T_class_t expected, const char* expected_name, const std::string& file,
                       const std::string& object, const char* name) {
  const std::string where = object + "@" + name;
  Id space(check_h5(H5Aget_space(attr.get()), "H5Aget_space", file, where), H5Sclose);
  const hssize_t points = H5Sget_simple_extent_npoints(space.get());
  HARVEST_REQUIRE(points == 1, Runtime, file, ": attribute ", where, " holds ", points,
                  " elements; harvest stores one ", expected_name, " there (a damaged or foreign file)");
  Id stored(check_h5(H5Aget_type(attr.get()), "H5Aget_type", file, where), H5Tclose);
  HARVEST_REQUIRE(H5Tget_class(stored.get()) == expected, Runtime, file, ": attribute ", where, " is not ",
                  expected_name == std::string("string") ? "a string" : "an integer",
                  " (a damaged or foreign file)");
  return stored;
}

// Fixed-length string attributes larger than this are refused before allocating for them.
constexpr std::size_t kMaxAttrStringBytes = std::size_t{64} << 20;
}  // namespace

Id file_type(DType dtype) {
  switch (dtype) {
    case DType::F64:
      return copy_type(H5T_IEEE_F64LE);
    case DType::F32:
      return copy_type(H5T_IEEE_F32LE);
    case DType::F16: {
      // IEEE binary16: sign bit 15, exponent bits 10..14 (bias 15), mantissa bits 0..9.
      Id t = copy_type(H5T_IEEE_F32LE);
      check_h5(H5Tset_fields(t.get(), 15, 10, 5, 0, 10), "H5Tset_fields", "", "f16");
      check_h5(H5Tset_size(t.get(), 2), "H5Tset_size", "", "f16");
      check_h5(H5Tset_ebias(t.get(), 15), "H5Tset_ebias", "", "f16");
      return t;
    }
    case DType::BF16:
      return copy_type(H5T_STD_U16LE);
    case DType::I64:
      return copy_type(H5T_STD_I64LE);
    case DType::I32:
      return copy_type(H5T_STD_I32LE);
    case DType::I16:
      return copy_type(H5T_STD_I16LE);
    case DType::I8:
      return copy_type(H5T_STD_I8LE);
    case DType::U8:
      return copy_type(H5T_STD_U8LE);
    case DType::Bool:
      return copy_type(H5T_STD_U8LE);
  }
  return copy_type(H5T_STD_U8LE);
}

Id string_type() {
  Id t = copy_type(H5T_C_S1);
  check_h5(H5Tset_size(t.get(), H5T_VARIABLE), "H5Tset_size", "", "string");
  check_h5(H5Tset_cset(t.get(), H5T_CSET_UTF8), "H5Tset_cset", "", "string");
  return t;
}

void write_attr_string(hid_t obj, const char* name, const std::string& value,
                       const std::string& file, const std::string& object) {
  // Fixed-length, so the text lives in the (checksummed) object header or dense attribute storage;
  // variable-length strings would sit in the global heap, which has no checksum, and a corrupted
  // heap entry can crash HDF5 itself.
  Id type = copy_type(H5T_C_S1);
  check_h5(H5Tset_size(type.get(), std::max<std::size_t>(value.size(), 1)), "H5Tset_size", file,
           object + "@" + name);
  check_h5(H5Tset_strpad(type.get(), H5T_STR_NULLPAD), "H5Tset_strpad", file, object + "@" + name);
  check_h5(H5Tset_cset(type.get(), H5T_CSET_UTF8), "H5Tset_cset", file, object + "@" + name);
  Id attr = create_attr(obj, name, type.get(), file, object);
  std::string padded = value;
  padded.resize(std::max<std::size_t>(value.size(), 1), '\0');
  check_h5(H5Awrite(attr.get(), type.get(), padded.data()), "H5Awrite", file, object + "@" + name);
}

void write_attr_i64(hid_t obj, const char* name, int64_t value, const std::string& file,
                    const std::string& object) {
  Id attr = create_attr(obj, name, H5T_STD_I64LE, file, object);
  check_h5(H5Awrite(attr.get(), H5T_NATIVE_INT64, &value), "H5Awrite", file, object + "@" + name);
}

void write_attr_u64(hid_t obj, const char* name, uint64_t value, const std::string& file,
                    const std::string& object) {
  Id attr = create_attr(obj, name, H5T_STD_U64LE, file, object);
  check_h5(H5Awrite(attr.get(), H5T_NATIVE_UINT64, &value), "H5Awrite", file, object + "@" + name);
}

Id create_attr_u64(hid_t obj, const char* name, const std::string& file,
                   const std::string& object) {
  return create_attr(obj, name, H5T_STD_U64LE, file, object);
}

bool has_attr(hid_t obj, const char* name) {
  return H5Aexists(obj, name) > 0;
}

std::string read_attr_string(hid_t obj, const char* name, const std::string& file,
                             const std::string& object) {
  Id attr = open_attr(obj, name, file, object);
  Id stored = checked_scalar_attr(attr, H5T_STRING, "string", file, object, name);
  if (H5Tis_variable_str(stored.get()) > 0) {
    Id type = string_type();
    char* ptr = nullptr;
    check_h5(H5Aread(attr.get(), type.get(), &ptr), "H5Aread", file, object + "@" + name);
    std::string value = ptr ? ptr : "";
    H5free_memory(ptr);
    return value;
  }
  // Fixed-length strings (written by other tools, e.g. h5py with numpy bytes).
  const std::size_t size = H5Tget_size(stored.get());
  HARVEST_REQUIRE(size <= kMaxAttrStringBytes, Runtime, file, ": attribute ", object, "@", name, " is a ", size,
                  "-byte string; harvest writes at most ", kMaxAttrStringBytes, " bytes there");
  std::string value(size, '\0');
  check_h5(H5Aread(attr.get(), stored.get(), value.data()), "H5Aread", file, object + "@" + name);
  value.resize(value.find('\0') == std::string::npos ? size : value.find('\0'));
  return value;
}

int64_t read_attr_i64(hid_t obj, const char* name, const std::string& file,
                      const std::string& object) {
  Id attr = open_attr(obj, name, file, object);
  checked_scalar_attr(attr, H5T_INTEGER, "integer", file, object, name);
  int64_t value = 0;
  check_h5(H5Aread(attr.get(), H5T_NATIVE_INT64, &value), "H5Aread", file, object + "@" + name);
  return value;
}

uint64_t read_attr_u64(hid_t obj, const char* name, const std::string& file,
                       const std::string& object) {
  Id attr = open_attr(obj, name, file, object);
  checked_scalar_attr(attr, H5T_INTEGER, "integer", file, object, name);
  uint64_t value = 0;
  check_h5(H5Aread(attr.get(), H5T_NATIVE_UINT64, &value), "H5Aread", file, object + "@" + name);
  return value;
}

}  // namespace harvest::checkpoint::h5
