// Checkpoints are plain HDF5: h5py (from the project's .venv, an independent reader) reads them.
#include <catch2/catch.hpp>
#include <fstream>

#include "checkpoint/writer.hpp"
#include "tests/checkpoint/helpers.hpp"
#include "tests/support/run.hpp"

using namespace harvest::checkpoint;
using harvest::checkpoint::test::ScratchDir;

TEST_CASE("h5py reads a harvest checkpoint: values, dtypes, metadata, checksums",
          "[checkpoint][h5py]") {
  ScratchDir dir("h5py");
  Snapshot s;
  s.meta.step = 4242;
  s.meta.epoch = 3;
  s.meta.world_size = 1;
  s.meta.torch_version = "2.11.0";
  s.meta.config_toml = "[train]\nlr = 0.0002\n";
  const float f32[6] = {0, 1, 2, 3, 4, 5.5f};
  s.add_copy("model/visual/proj", DType::F32, {2, 3}, f32);
  const uint16_t f16[3] = {0x3800, 0xC000, 0x7BFF};  // 0.5, -2, 65504
  s.add_copy("model/text/half", DType::F16, {3}, f16);
  const uint16_t bf16[2] = {0x3F80, 0xC040};  // 1.0, -3.0
  s.add_copy("model/visual/ln.weight", DType::BF16, {2}, bf16);
  const int64_t step = 4242;
  s.add_copy("optimizer/step", DType::I64, {}, &step);
  s.add_blob("data/sampler", "{\"position\":17}");
  for (const auto compression : {Compression::None, Compression::Gzip}) {
    const auto file = dir.path() / (compression == Compression::Gzip ? "gz.h5" : "plain.h5");
    write_checkpoint_file(s, file, WriteOptions{compression});
    const auto script = dir.path() / "read.py";
    std::ofstream(script) << R"(import sys, h5py, numpy as np
f = h5py.File(sys.argv[1], "r")
assert f.attrs["step"] == 4242 and f.attrs["epoch"] == 3 and f.attrs["format_version"] == 1, dict(f.attrs)
cfg = f.attrs["config_toml"]
cfg = cfg.decode() if isinstance(cfg, bytes) else cfg
assert cfg == "[train]\nlr = 0.0002\n", cfg
p = f["model/visual/proj"]
assert p.dtype == np.float32 and p.shape == (2, 3)
assert np.array_equal(p[()], np.array([[0, 1, 2], [3, 4, 5.5]], np.float32))
h = f["model/text/half"]
assert h.dtype == np.float16, h.dtype
assert np.array_equal(h[()], np.array([0.5, -2, 65504], np.float16))
b = f["model/visual/ln.weight"]
assert b.dtype == np.uint16 and b.attrs["dtype"] in ("bf16", b"bf16")
as_f32 = (b[()].astype(np.uint32) << 16).view(np.float32)
assert np.array_equal(as_f32, np.array([1.0, -3.0], np.float32)), as_f32
assert f["optimizer/step"][()] == 4242 and f["optimizer/step"].shape == ()
assert bytes(f["data/sampler"][()]) == b'{"position":17}'
# Checksums recomputed by the xxhash package, an independent XXH3 implementation.
import xxhash
names = []
f.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
assert len(names) == 5, names
for n in names:
    raw = np.ascontiguousarray(f[n][()]).tobytes()
    assert xxhash.xxh3_64_intdigest(raw) == int(f[n].attrs["xxh3_64"]), n
print("h5py ok")
)";
    const auto r = harvest::test::run(std::string(HARVEST_PYTHON) + " " + script.string() + " " + file.string());
    INFO(r.output);
    CHECK(r.exit_code == 0);
    CHECK_THAT(r.output, Catch::Contains("h5py ok"));
  }
}
