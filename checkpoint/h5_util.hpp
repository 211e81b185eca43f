// Internal to checkpoint/: RAII for HDF5 ids, quiet error stacks, the file types of each DType,
// and typed attribute helpers. Only writer.cpp and reader.cpp include it.
#pragma once

#include <hdf5.h>

#include <cstdint>
#include <string>
#include <utility>

#include "checkpoint/dtype.hpp"

namespace harvest::checkpoint::h5 {

// Checksums and file types are defined over little-endian bytes; memory = file layout keeps
// H5Dread/H5Dwrite conversion-free (a straight pread/pwrite of the caller's buffer).
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "harvest checkpoints assume a little-endian host");

// Owns one HDF5 id and closes it with the matching H5?close.
class Id {
 public:
  using Closer = herr_t (*)(hid_t);
  Id() = default;
  Id(hid_t id, Closer closer) : id_(id), closer_(closer) {}
  ~Id() { reset(); }
  Id(Id&& o) noexcept : id_(std::exchange(o.id_, -1)), closer_(o.closer_) {}
  Id& operator=(Id&& o) noexcept {
    if (this != &o) {
      reset();
      id_ = std::exchange(o.id_, -1);
      closer_ = o.closer_;
    }
    return *this;
  }
  Id(const Id&) = delete;
  Id& operator=(const Id&) = delete;
  hid_t get() const { return id_; }
  // Gives up ownership (for closes whose status must be checked).
  hid_t release() { return std::exchange(id_, -1); }
  void reset() {
    if (id_ >= 0 && closer_) closer_(id_);
    id_ = -1;
  }

 private:
  hid_t id_ = -1;
  Closer closer_ = nullptr;
};

// HDF5 prints its error stack to stderr by default; harvest reports errors itself (check_h5).
// The setting is per thread in the thread-safe library, so each entry point installs this guard.
class QuietErrors {
 public:
  QuietErrors() {
    H5Eget_auto2(H5E_DEFAULT, &func_, &data_);
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  }
  ~QuietErrors() { H5Eset_auto2(H5E_DEFAULT, func_, data_); }
  QuietErrors(const QuietErrors&) = delete;
  QuietErrors& operator=(const QuietErrors&) = delete;

 private:
  H5E_auto2_t func_ = nullptr;
  void* data_ = nullptr;
};

// The HDF5 type a DType is stored as (and read into): LE integers and IEEE floats, bf16 as u16,
// bool as u8, f16 as the IEEE half layout h5py maps to numpy float16.
Id file_type(DType dtype);

// The variable-length UTF-8 string type, for reading text attributes other tools wrote that way.
Id string_type();

void write_attr_string(hid_t obj, const char* name, const std::string& value,
                       const std::string& file, const std::string& object);
void write_attr_i64(hid_t obj, const char* name, int64_t value, const std::string& file,
                    const std::string& object);
void write_attr_u64(hid_t obj, const char* name, uint64_t value, const std::string& file,
                    const std::string& object);
// Creates a u64 attribute now (so the object header has room for it) to be overwritten later.
Id create_attr_u64(hid_t obj, const char* name, const std::string& file, const std::string& object);

bool has_attr(hid_t obj, const char* name);
std::string read_attr_string(hid_t obj, const char* name, const std::string& file,
                             const std::string& object);
int64_t read_attr_i64(hid_t obj, const char* name, const std::string& file,
                      const std::string& object);
uint64_t read_attr_u64(hid_t obj, const char* name, const std::string& file,
                       const std::string& object);

}  // namespace harvest::checkpoint::h5
