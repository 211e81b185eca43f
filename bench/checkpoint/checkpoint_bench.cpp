#include "bench/checkpoint/checkpoint_bench.hpp"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <memory>
#include <random>
#include <vector>

#include "checkpoint/commit.hpp"
#include "checkpoint/reader.hpp"
#include "checkpoint/saver.hpp"
#include "checkpoint/writer.hpp"
#include "core/check_sys.hpp"
#include "core/error.hpp"
#include "core/time.hpp"

namespace harvest::bench {

namespace fs = std::filesystem;
using checkpoint::DType;
using checkpoint::HostBuffer;
using checkpoint::Snapshot;

namespace {

// "Model" tensors the benchmark snapshots from: a ViT-like mix of a few large and many small
// float32 tensors with incompressible (random) content.
struct FakeModel {
  std::vector<std::string> names;
  std::vector<std::vector<int64_t>> shapes;
  std::vector<HostBuffer> tensors;
  std::size_t bytes = 0;
};

FakeModel make_model(int64_t size_mb) {
  FakeModel m;
  const std::size_t total = static_cast<std::size_t>(size_mb) << 20;
  std::mt19937_64 rng(5);
  int index = 0;
  while (m.bytes < total) {
    // Alternate a big matrix (~1/24 of the total) with a handful of small vectors (norms, biases).
    const bool big = index % 6 == 0;
    std::size_t n = big ? std::max<std::size_t>(total / 24, 4096) : 4096 * (1 + index % 5);
    n = std::min(n, total - m.bytes);
    n -= n % 4;
    if (n == 0) break;
    m.names.push_back("model/blocks/" + std::to_string(index / 6) + "/param" +
                      std::to_string(index % 6));
    m.shapes.push_back({static_cast<int64_t>(n / 4)});
    HostBuffer b(n);
    for (std::size_t i = 0; i + 8 <= n; i += 8) {
      const uint64_t v = rng();
      std::memcpy(b.data() + i, &v, 8);
    }
    m.tensors.push_back(std::move(b));
    m.bytes += n;
    ++index;
  }
  return m;
}

// The blocking part of a save, as the worker does it (worker/checkpoint_state.cpp): every tensor
// queued for copying into host memory owned by the snapshot; the copy itself runs in parallel in
// CheckpointSaver::save() (or copy_pending()).
Snapshot snapshot_of(const FakeModel& m, int64_t step, Snapshot s = Snapshot()) {
  s.meta.step = step;
  s.meta.torch_version = "bench";
  for (std::size_t i = 0; i < m.tensors.size(); ++i)
    s.add_deferred(m.names[i], DType::F32, m.shapes[i], m.tensors[i].data());
  return s;
}

double raw_write(const FakeModel& m, const fs::path& file) {
  const Stopwatch watch;
  const int fd = check_sys(::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644),
                           "open", file.string());
  for (const auto& t : m.tensors) {
    std::size_t done = 0;
    while (done < t.size()) {
      const ssize_t n = ::write(fd, t.data() + done, t.size() - done);
      check_sys(n, "write", file.string());
      done += static_cast<std::size_t>(n);
    }
  }
  check_sys(::fsync(fd), "fsync", file.string());
  ::close(fd);
  return watch.seconds();
}

// Drops the file's (clean, fsync'd) pages from the page cache so the load reads the disk.
void evict(const fs::path& file) {
  const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  ::close(fd);
}

// Before each timed write: flush every dirty page in the system and pause, so a measurement does
// not pay for the previous one's writeback (or another process's).
void settle() {
  ::sync();
  ::usleep(300 * 1000);
}

// The h5py reference as a long-lived child (checkpoint_h5py.py --serve): it builds its tensors
// once, then times one fsync'd h5py write per request, so it can be interleaved with our writes.
class H5pyReference {
 public:
  H5pyReference(const fs::path& script, int64_t size_mb) {
    HARVEST_REQUIRE(fs::exists(script), Usage, "h5py reference: no script at ", script.string());
    int to_child[2], from_child[2];
    check_sys(::pipe2(to_child, O_CLOEXEC), "pipe2", "h5py reference");
    check_sys(::pipe2(from_child, O_CLOEXEC), "pipe2", "h5py reference");
    pid_ = check_sys(::fork(), "fork", "h5py reference");
    if (pid_ == 0) {
      ::dup2(to_child[0], 0);
      ::dup2(from_child[1], 1);
      const std::string size = std::to_string(size_mb);
      ::execl(HARVEST_PYTHON, "python3", script.c_str(), "--serve", size.c_str(), nullptr);
      ::_exit(127);
    }
    ::close(to_child[0]);
    ::close(from_child[1]);
    in_ = ::fdopen(to_child[1], "w");
    out_ = ::fdopen(from_child[0], "r");
    const std::string hello = read_line();
    HARVEST_REQUIRE(hello == "ready", Runtime, "h5py reference (", script.string(),
                    ") did not start: '", hello, "'");
  }
  ~H5pyReference() {
    if (in_) std::fclose(in_);
    if (out_) std::fclose(out_);
    int status = 0;
    if (pid_ > 0) ::waitpid(pid_, &status, 0);
  }
  H5pyReference(const H5pyReference&) = delete;
  H5pyReference& operator=(const H5pyReference&) = delete;

  // Seconds one h5py write of every tensor to `file` (then fsync) took.
  double write(const fs::path& file) {
    std::fprintf(in_, "h5py %s\n", file.c_str());
    std::fflush(in_);
    const std::string line = read_line();
    try {
      return std::stod(line);
    } catch (const std::exception&) {
      fail(ErrorKind::Runtime, "h5py reference: unexpected answer '", line, "'");
    }
  }

 private:
  std::string read_line() {
    char buf[256];
    if (!std::fgets(buf, sizeof buf, out_)) return "";
    std::string line(buf);
    while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
    return line;
  }
  pid_t pid_ = -1;
  FILE* in_ = nullptr;
  FILE* out_ = nullptr;
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n == 0 ? 0.0 : (n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]));
}

}  // namespace

nlohmann::json run_checkpoint_bench(const CheckpointBenchOptions& options) {
  HARVEST_REQUIRE(options.size_mb >= 1 && options.size_mb <= (1 << 20), Usage,
                  "--size-mb must be in [1, 1048576]");
  HARVEST_REQUIRE(options.reps >= 1 && options.reps <= 100, Usage, "--reps must be in [1, 100]");
  const fs::path dir = (options.dir.empty() ? fs::temp_directory_path() : options.dir) /
                       ("harvest-bench-checkpoint-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  checkpoint::WriteOptions write;
  write.compression = checkpoint::parse_compression(options.compression);

  const FakeModel model = make_model(options.size_mb);
  std::unique_ptr<H5pyReference> h5py;
  if (options.h5py)
    h5py = std::make_unique<H5pyReference>(
        options.reference_script.empty()
            ? fs::path(HARVEST_SOURCE_DIR) / "bench/reference/checkpoint_h5py.py"
            : options.reference_script,
        options.size_mb);
  // Savers as a training run has them: long-lived, so from the second save on the snapshot copy
  // lands in the previous save's (recycled) buffers. The first save of each is a warm-up whose
  // blocking time is reported separately (cold: fresh memory).
  auto make_saver = [&](bool async) {
    checkpoint::SaverOptions saver_options;
    saver_options.dir = dir / (async ? "async" : "sync");
    saver_options.async = async;
    saver_options.write = write;
    saver_options.retention = {1, 0};
    return std::make_unique<checkpoint::CheckpointSaver>(saver_options);
  };
  const auto sync_saver = make_saver(false);
  const auto async_saver = make_saver(true);
  double async_block_cold = 0.0;
  for (const bool async : {false, true}) {
    checkpoint::CheckpointSaver& saver = async ? *async_saver : *sync_saver;
    const Stopwatch watch;
    saver.save(snapshot_of(model, 0, saver.snapshot()));
    if (async) async_block_cold = watch.seconds();
    saver.wait();
  }
  const double gb = static_cast<double>(model.bytes) / 1e9;
  std::vector<double> raw_s, save_s, ratio, load_s, sync_block_s, async_block_s, async_total_s;
  std::vector<double> h5py_s, h5py_ratio;
  for (int64_t rep = 0; rep < options.reps; ++rep) {
    // Interleaved, and the raw write and the save swap order every repetition (ABBA) so that
    // drift in the disk's state (writeback, other tenants) does not favour either.
    const fs::path raw_file = dir / "raw.bin";
    const fs::path file = dir / "bench.h5";
    Snapshot s = snapshot_of(model, rep);
    s.copy_pending();
    // Order rotates every repetition: raw, save, h5py / save, h5py, raw / h5py, raw, save ...
    const int turns = h5py ? 3 : 2;
    for (int turn = 0; turn < turns; ++turn) {
      settle();
      const int what = static_cast<int>((turn + rep) % turns);
      if (what == 0) {
        raw_s.push_back(raw_write(model, raw_file));
        fs::remove(raw_file);
      } else if (what == 1) {
        const Stopwatch watch;
        checkpoint::write_checkpoint_file(s, file, write);
        save_s.push_back(watch.seconds());
      } else {
        h5py_s.push_back(h5py->write(dir / "h5py.h5"));
      }
    }
    ratio.push_back(raw_s.back() / save_s.back());
    if (h5py) h5py_ratio.push_back(raw_s.back() / h5py_s.back());
    evict(file);
    {
      const Stopwatch watch;
      const checkpoint::CheckpointReader reader(file);
      const Snapshot back = reader.read_all();
      load_s.push_back(watch.seconds());
      HARVEST_ASSERT(back.total_bytes() == model.bytes, "loaded ", back.total_bytes(), " of ",
                     model.bytes, " bytes");
    }
    fs::remove(file);

    for (const bool async : {false, true}) {
      checkpoint::CheckpointSaver& saver = async ? *async_saver : *sync_saver;
      settle();
      const Stopwatch watch;
      saver.save(snapshot_of(model, rep + 1, saver.snapshot()));  // what a training step waits for
      const double blocked = watch.seconds();
      const auto status = saver.wait();
      HARVEST_REQUIRE(status && status->ok, Runtime,
                      "checkpoint save failed: ", status ? status->error : "no status");
      (async ? async_block_s : sync_block_s).push_back(blocked);
      if (async) async_total_s.push_back(watch.seconds());
    }
    std::fprintf(
        stderr,
        "rep %lld: raw write %.3f s (%.2f GB/s), save %.3f s (%.2f GB/s), %sload %.3f s "
        "(%.2f GB/s), sync save blocks %.3f s, async save blocks %.3f s (done after %.3f s)\n",
        static_cast<long long>(rep), raw_s.back(), gb / raw_s.back(), save_s.back(),
        gb / save_s.back(), h5py ? ("h5py " + std::to_string(h5py_s.back()) + " s, ").c_str() : "",
        load_s.back(), gb / load_s.back(), sync_block_s.back(), async_block_s.back(),
        async_total_s.back());
  }
  fs::remove_all(dir);

  const double raw = median(raw_s), save = median(save_s), load = median(load_s);
  const double sync_block = median(sync_block_s), async_block = median(async_block_s);
  nlohmann::json out{{"bench", "checkpoint"},
                     {"size_mb", options.size_mb},
                     {"bytes", model.bytes},
                     {"tensors", model.tensors.size()},
                     {"reps", options.reps},
                     {"compression", options.compression},
                     {"raw_write_gbps", gb / raw},
                     {"save_gbps", gb / save},
                     {"save_vs_raw", median(ratio)},  // median of per-repetition ratios
                     {"save_vs_raw_best", *std::min_element(raw_s.begin(), raw_s.end()) /
                                              *std::min_element(save_s.begin(), save_s.end())},
                     {"load_gbps", gb / load},
                     // Fastest repetition of each: on a shared disk whose speed swings
                     // several-fold between runs, the best case is the steadier comparison.
                     {"raw_write_best_gbps", gb / *std::min_element(raw_s.begin(), raw_s.end())},
                     {"save_best_gbps", gb / *std::min_element(save_s.begin(), save_s.end())},
                     {"sync_save_s", sync_block},
                     {"async_block_s", async_block},
                     {"async_total_s", median(async_total_s)},
                     {"async_block_cold_s", async_block_cold},
                     {"async_block_ratio", async_block / sync_block}};
  if (h5py) {
    out["h5py_gbps"] = gb / median(h5py_s);
    out["h5py_vs_raw"] = median(h5py_ratio);
    out["save_vs_h5py"] = median(h5py_s) / save;
  }
  return out;
}

}  // namespace harvest::bench
