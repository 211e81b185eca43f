// harvest version: the versions users need in bug reports.
#include <H5public.h>
#include <capnp/common.h>
#include <torch/cuda.h>
#include <torch/version.h>
#include <zmq.h>

extern "C" {
#include <libavutil/avutil.h>
}

#include <iostream>

#include "cli/commands.hpp"
#include "core/error.hpp"
#include "core/version.hpp"
#include "worker/comm_group.hpp"

namespace harvest::cli {

std::string version_text() {
  unsigned h5_major = 0, h5_minor = 0, h5_release = 0;
  H5get_libversion(&h5_major, &h5_minor, &h5_release);
  int zmq_major = 0, zmq_minor = 0, zmq_patch = 0;
  zmq_version(&zmq_major, &zmq_minor, &zmq_patch);
  return cat("harvest ", HARVEST_VERSION, " (", HARVEST_GIT_DESCRIBE, ")\n",
             "LibTorch ", TORCH_VERSION, " (CUDA ", torch::cuda::is_available() ? "available: " : "not available: ",
             static_cast<int>(torch::cuda::device_count()), " device(s) visible)\n",
             nccl_version_text(), "\n",
             "FFmpeg ", av_version_info(), "\n",
             "HDF5 ", h5_major, ".", h5_minor, ".", h5_release, "\n",
             "ZeroMQ ", zmq_major, ".", zmq_minor, ".", zmq_patch, "\n",
             "Cap'n Proto ", CAPNP_VERSION_MAJOR, ".", CAPNP_VERSION_MINOR, ".", CAPNP_VERSION_MICRO);
}

void add_version_command(CLI::App& app) {
  auto* version = app.add_subcommand("version", "Print harvest and library versions");
  version->callback([] { std::cout << version_text() << "\n"; });
}

}  // namespace harvest::cli
