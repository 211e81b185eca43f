// Where a worker's batches come from: loader processes over ZeroMQ in a run, an in-process
// decoder or generator in tests and quick experiments. Batches arrive on the host as uint8
// video and int64 token ids; the worker moves them to its device and normalises there.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

namespace harvest {

struct HostBatch {
  at::Tensor video;                 // uint8 [B, T, H, W, 3]
  at::Tensor text;                  // int64 [B, L]: SOT ... EOT, padding
  std::vector<int64_t> sample_ids;  // dataset indices, for exactly-once accounting
  int64_t bad_samples = 0;          // skipped (by rule) while assembling this batch
};

class BatchSource {
 public:
  virtual ~BatchSource() = default;
  // The next batch in this rank's deterministic order; blocks until it is ready. Throws Runtime
  // naming the loader when none can be had within the source's deadline.
  virtual HostBatch next() = 0;
};

}  // namespace harvest
