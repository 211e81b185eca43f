// One checkpoint file: bit-exact round trip, dtypes, metadata, bad input, corruption, truncation.
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <hdf5.h>
#include <cstring>
#include <filesystem>

#include "checkpoint/reader.hpp"
#include "checkpoint/writer.hpp"
#include "core/error.hpp"
#include "tests/checkpoint/helpers.hpp"

using namespace harvest::checkpoint;
using harvest::Error;
using harvest::checkpoint::test::ScratchDir;
namespace fs = std::filesystem;

TEST_CASE("a checkpoint file round-trips bit-exactly", "[checkpoint]") {
  ScratchDir dir("file");
  Snapshot s = test::make_snapshot(1234, 0, 1);
  // Every dtype, a scalar, an empty tensor and a NaN payload must come back byte for byte.
  const std::vector<DType> all = {DType::F64, DType::F32, DType::F16, DType::BF16, DType::I64,
                                  DType::I32, DType::I16, DType::I8,  DType::U8,   DType::Bool};
  for (std::size_t i = 0; i < all.size(); ++i)
    test::fill_random(s.add(std::string("extra/") + dtype_name(all[i]), all[i], {3, 5}),
                      15 * dtype_size(all[i]), i);
  s.add("extra/empty", DType::F32, {0, 7});
  const uint32_t nan_bits = 0x7fc01234u;
  s.add_copy("extra/nan", DType::F32, {1}, &nan_bits);
  s.meta.created_utc = "2026-11-28T00:00:00Z";
  s.meta.harvest_version = "0.1.0-test";

  for (const auto compression : {Compression::None, Compression::Gzip}) {
    SECTION(compression == Compression::None ? "contiguous" : "gzip") {
      const fs::path file = dir.path() / "a.h5";
      write_checkpoint_file(s, file, WriteOptions{compression});
      CHECK_FALSE(fs::exists(dir.path() / "a.h5.tmp"));
      const CheckpointReader reader(file);
      CHECK(reader.meta() == s.meta);
      CHECK(reader.records().size() == s.records().size());
      const Snapshot back = reader.read_all();
      CHECK(test::same_records(s, back));
      CHECK(back.blob("data/sampler") == "{\"epoch\":123,\"position\":1234}");
      CHECK(reader.verify().empty());
      const RecordInfo* info = reader.find("model/visual/ln_post.bias");
      REQUIRE(info != nullptr);
      CHECK(info->dtype == DType::BF16);
      CHECK(info->shape == std::vector<int64_t>{16});
      CHECK(info->nbytes == 32);
      CHECK(reader.find("optimizer/step")->shape.empty());
      if (compression == Compression::Gzip)
        CHECK_THAT(reader.find("model/visual/conv1.weight")->layout, Catch::Contains("gzip"));
    }
  }
}

TEST_CASE("metadata defaults are filled in by the writer", "[checkpoint]") {
  ScratchDir dir("meta");
  Snapshot s = test::make_snapshot(5);
  write_checkpoint_file(s, dir.path() / "m.h5");
  const CheckpointReader reader(dir.path() / "m.h5");
  CHECK(reader.meta().harvest_version.rfind("0.", 0) == 0);
  CHECK(reader.meta().created_utc.size() == 20);
  CHECK(reader.meta().format_version == kFormatVersion);
  CHECK(reader.meta().config_toml == "[train]\nsteps = 5\n");
}

TEST_CASE("a config larger than HDF5's 64 KiB object-header limit is stored", "[checkpoint]") {
  ScratchDir dir("bigconfig");
  Snapshot s = test::make_snapshot(6);
  for (int i = 0; s.meta.config_toml.size() < 200000; ++i)
    s.meta.config_toml += "# line " + std::to_string(i) + "\n";
  write_checkpoint_file(s, dir.path() / "big.h5");
  const CheckpointReader reader(dir.path() / "big.h5");
  CHECK(reader.meta().config_toml == s.meta.config_toml);
}

TEST_CASE("snapshots reject bad record paths and sizes, naming the record", "[checkpoint]") {
  Snapshot s;
  s.add("model/a/b", DType::F32, {2});
  auto message = [&](auto&& f) {
    try {
      f();
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  CHECK_THAT(message([&] { s.add("model/a/b", DType::F32, {2}); }),
             Catch::Contains("'model/a/b' added twice"));
  CHECK_THAT(message([&] { s.add("model/a", DType::F32, {2}); }),
             Catch::Contains("clashes with a group"));
  CHECK_THAT(message([&] { s.add("model/a/b/c", DType::F32, {2}); }),
             Catch::Contains("lies under record 'model/a/b'"));
  CHECK_THAT(message([&] { s.add("/abs", DType::F32, {2}); }),
             Catch::Contains("must not start or end"));
  CHECK_THAT(message([&] { s.add("a//b", DType::F32, {2}); }),
             Catch::Contains("empty, '.' or '..'"));
  CHECK_THAT(message([&] { s.add("a/../b", DType::F32, {2}); }),
             Catch::Contains("empty, '.' or '..'"));
  CHECK_THAT(message([&] { s.add("neg", DType::F32, {-1}); }),
             Catch::Contains("'neg': negative dimension -1"));
  CHECK_THAT(message([&] {
               s.add_record(Record{"short", DType::F32, {4}, HostBuffer(3)});
             }),
             Catch::Contains("'short': 3 bytes"));
  CHECK_THAT(message([&] { (void)s.blob("model/a/b"); }), Catch::Contains("not a u8 blob"));
  CHECK(parse_dtype("bf16") == DType::BF16);
  CHECK_FALSE(parse_dtype("float8").has_value());
  CHECK_THROWS_WITH(parse_compression("lz4"), Catch::Contains("checkpoint.compression"));
}

TEST_CASE("reading names the file and dataset on every failure", "[checkpoint]") {
  ScratchDir dir("bad");
  CHECK_THROWS_WITH(CheckpointReader(dir.path() / "none.h5"),
                    Catch::Contains("none.h5 does not exist"));
  const fs::path junk = dir.path() / "junk.h5";
  std::ofstream(junk) << "not hdf5 at all";
  CHECK_THROWS_WITH(CheckpointReader(junk), Catch::Contains("junk.h5"));

  const fs::path file = dir.path() / "c.h5";
  write_checkpoint_file(test::make_snapshot(7), file);
  const CheckpointReader reader(file);
  CHECK_THROWS_WITH(reader.read("model/nope"), Catch::Contains("no dataset 'model/nope'"));
  std::vector<std::byte> small(3);
  CHECK_THROWS_WITH(reader.read_into("optimizer/step", small.data(), small.size()),
                    Catch::Contains("'optimizer/step' holds 8 bytes"));
}

namespace {
// Replaces the root attribute `name` of `file` with one of `count` elements of `type` (array
// attributes where harvest stores scalars: what a crafted file does).
void replace_root_attribute(const fs::path& file, const char* name, hid_t type, hsize_t count, const void* data) {
  const hid_t f = H5Fopen(file.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  REQUIRE(f >= 0);
  REQUIRE(H5Adelete(f, name) >= 0);
  const hid_t space = H5Screate_simple(1, &count, nullptr);
  const hid_t attr = H5Acreate2(f, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
  REQUIRE(attr >= 0);
  REQUIRE(H5Awrite(attr, type, data) >= 0);
  H5Aclose(attr);
  H5Sclose(space);
  H5Fclose(f);
}
}  // namespace

TEST_CASE("root attributes stored as arrays or of the wrong type are refused before they are read",
          "[checkpoint]") {
  ScratchDir dir("attrs");
  const fs::path file = dir.path() / "c.h5";
  const int64_t numbers[4] = {0x4141414141414141, 0x4141414141414141, 0x4141414141414141, 0x4141414141414141};
  for (const char* name : {"step", "rank", "world_size", "format_version"}) {
    INFO(name);
    write_checkpoint_file(test::make_snapshot(7), file);
    replace_root_attribute(file, name, H5T_NATIVE_INT64, 4, numbers);
    CHECK_THROWS_WITH(CheckpointReader(file), Catch::Contains(std::string(name) + " holds 4 elements") &&
                                                  Catch::Contains("c.h5"));
  }
  SECTION("variable-length strings") {
    write_checkpoint_file(test::make_snapshot(7), file);
    const hid_t vlen = H5Tcopy(H5T_C_S1);
    H5Tset_size(vlen, H5T_VARIABLE);
    const char* texts[3] = {"AAAA", "BBBB", "CCCC"};
    replace_root_attribute(file, "harvest_version", vlen, 3, texts);
    H5Tclose(vlen);
    CHECK_THROWS_WITH(CheckpointReader(file), Catch::Contains("harvest_version holds 3 elements"));
  }
  SECTION("a string where an integer belongs") {
    write_checkpoint_file(test::make_snapshot(7), file);
    const hid_t fixed = H5Tcopy(H5T_C_S1);
    H5Tset_size(fixed, 8);
    replace_root_attribute(file, "step", fixed, 1, "AAAAAAAA");
    H5Tclose(fixed);
    CHECK_THROWS_WITH(CheckpointReader(file), Catch::Contains("step is not an integer"));
  }
}

TEST_CASE("a flipped byte in a dataset is reported naming that dataset", "[checkpoint]") {
  ScratchDir dir("flip");
  const fs::path file = dir.path() / "f.h5";
  write_checkpoint_file(test::make_snapshot(9), file);
  uint64_t offset = 0;
  {
    const CheckpointReader reader(file);
    const RecordInfo* info = reader.find("optimizer/exp_avg/model.visual.conv1.weight");
    REQUIRE(info != nullptr);
    REQUIRE(info->file_offset.has_value());
    offset = *info->file_offset + info->nbytes / 2;
  }
  test::flip_byte(file, offset);
  const CheckpointReader reader(file);
  CHECK_NOTHROW(reader.read("model/visual/conv1.weight"));
  CHECK_THROWS_WITH(
      reader.read("optimizer/exp_avg/model.visual.conv1.weight"),
      Catch::Contains(
          "f.h5: dataset 'optimizer/exp_avg/model.visual.conv1.weight' is corrupt: checksum"));
  const auto problems = reader.verify();
  REQUIRE(problems.size() == 1);
  CHECK_THROWS_WITH(verify_checkpoint_file(file),
                    Catch::Contains("optimizer/exp_avg/model.visual.conv1.weight"));
}

TEST_CASE("any single flipped byte makes verification fail or leaves the data intact",
          "[checkpoint]") {
  // Metadata is checksummed by HDF5 (1.8 format), data by harvest: a flip anywhere is caught, or
  // hits bytes that carry no information (unused metadata space), in which case every record
  // still reads back exactly. Each trial runs in a child process: HDF5 keeps internal state
  // alive after failing to open a corrupt file, which must not leak into the test process.
  ScratchDir dir("anyflip");
  const fs::path file = dir.path() / "g.h5";
  const Snapshot s = test::make_snapshot(11, 0, 1, 32);  // data outweighs the metadata block
  write_checkpoint_file(s, file);
  const auto size = fs::file_size(file);
  std::mt19937_64 rng(42);
  int detected = 0, intact = 0;
  for (int trial = 0; trial < 40; ++trial) {
    const fs::path copy = dir.path() / "copy.h5";
    fs::copy_file(file, copy, fs::copy_options::overwrite_existing);
    const uint64_t offset = rng() % size;
    test::flip_byte(copy, offset);
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
      int code = 2;  // undetected corruption
      try {
        verify_checkpoint_file(copy);
        const CheckpointReader reader(copy);
        code = test::same_records(s, reader.read_all()) ? 0 : 2;
      } catch (const Error&) {
        code = 1;
      }
      ::_exit(code);
    }
    int status = 0;
    REQUIRE(::waitpid(child, &status, 0) == child);
    INFO("flipped byte " << offset << " of " << size);
    REQUIRE(WIFEXITED(status));  // HDF5 must not crash on a corrupt file
    REQUIRE(WEXITSTATUS(status) != 2);
    (WEXITSTATUS(status) == 1 ? detected : intact)++;
  }
  CHECK(detected > 10);
}

TEST_CASE("a truncated file is reported naming the first dataset cut", "[checkpoint]") {
  ScratchDir dir("trunc");
  const fs::path file = dir.path() / "t.h5";
  write_checkpoint_file(test::make_snapshot(3, 0, 1, 64), file);
  uint64_t cut = 0;
  std::string victim;
  {
    const CheckpointReader reader(file);
    const RecordInfo* info = reader.find("model/visual/conv1.weight");
    REQUIRE(info->file_offset.has_value());
    cut = *info->file_offset + 100;
    victim = info->path;
  }
  fs::resize_file(file, cut);
  try {
    const CheckpointReader reader(file);
    FAIL("truncated file opened");
  } catch (const Error& e) {
    const std::string what = e.what();
    CHECK_THAT(what, Catch::Contains("t.h5: checkpoint file is truncated: " + std::to_string(cut) +
                                     " bytes on disk"));
    CHECK_THAT(what, Catch::Contains("dataset '" + victim + "' is cut"));
  }
}
