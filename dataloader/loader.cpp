#include "dataloader/loader.hpp"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <cstring>
#include <deque>

#include "coordinator/zmq_socket.hpp"
#include "core/config/config.hpp"
#include "core/error.hpp"
#include "dataloader/batch_wire.hpp"
#include "dataloader/decode_pool.hpp"
#include "dataloader/sample_decoder.hpp"
#include "model/tokenizer/tokenizer.hpp"

namespace harvest::data {
namespace {

volatile std::sig_atomic_t g_stop = 0;
void on_stop_signal(int) {
  g_stop = 1;
}

// A batch this loader is building: its shard span and the decode of each position.
struct PlannedBatch {
  uint64_t global_index = 0;
  SamplerState start;
  struct Slot {
    uint64_t index = 0, epoch = 0;
    std::shared_ptr<DecodePool::Task> task;
  };
  std::vector<Slot> slots;
  size_t resolved = 0;  // slots [0, resolved) are in the buffers below
  int64_t rows = 0;     // good clips among them
  OutgoingBatch out;
  ~PlannedBatch() {
    std::free(out.frames);
    std::free(out.tokens);
  }
};

}  // namespace

int run_loader(const LoaderOptions& o) {
  const Config config = load_config(o.config_file, {});
  HARVEST_REQUIRE(!config.model.vocab.empty(), Config, o.config_file,
                  ": model.vocab is required (loaders tokenize captions)");
  HARVEST_REQUIRE(o.count >= 1 && o.index >= 0 && o.index < o.count, Usage, "loader index ",
                  o.index, " outside the worker's ", o.count, " loaders");
  const pid_t parent = ::getppid();
  std::signal(SIGTERM, on_stop_signal);
  std::signal(SIGINT, on_stop_signal);

  auto manifest =
      std::make_shared<const Manifest>(load_manifest(config.data.train_manifest, config.data.root));
  auto tokenizer =
      std::make_shared<const tokenizer::Tokenizer>(tokenizer::Tokenizer::load(config.model.vocab));
  auto decoder = std::make_shared<const SampleDecoder>(config, manifest, tokenizer);
  EpochSampler sampler(manifest->entries.size(), static_cast<uint64_t>(config.train.seed),
                       o.world_size, o.rank, o.start);
  // FFmpeg's interrupt callback stops a reader at decode_timeout_s; a decode that ignores it is
  // abandoned one second later.
  DecodePool pool(static_cast<int>(config.data.decode_threads), config.data.decode_timeout_s + 1.0);
  SkipTally skips;
  const BatchShape shape{static_cast<uint64_t>(config.data.batch_size), config.model.frames,
                         config.model.image_size, config.model.image_size,
                         config.model.context_length};
  const uint64_t span = shape.span;

  coord::ZmqContext ctx;
  coord::ZmqSocket socket(ctx, ZMQ_DEALER, o.endpoint);
  socket.set(ZMQ_ROUTING_ID, cat("loader", o.index, ".g", o.generation));
  socket.set(ZMQ_SNDHWM, static_cast<int>(config.data.queue_depth) + 2);
  socket.connect(o.endpoint);
  const std::string peer = cat("worker endpoint ", o.endpoint);
  {
    ZmqParts hello;
    hello.push_back(encode_control(
        {LoaderControlMsg::Kind::Hello, o.generation, static_cast<uint32_t>(o.index), 0}));
    send_parts(socket.get(), hello, -1, peer);
  }
  spdlog::info("loader {}/{} (rank {}, generation {}) from batch {} at epoch {} cursor {}", o.index,
               o.count, o.rank, o.generation, o.first_batch, o.start.epoch, o.start.cursor);

  uint64_t granted = 0, sent = 0, next_global = o.first_batch;
  bool first = true;
  std::deque<PlannedBatch> planned;
  auto plan_batch = [&] {
    if (!first) sampler.skip(span * static_cast<uint64_t>(o.count - 1));
    first = false;
    PlannedBatch& b = planned.emplace_back();
    b.global_index = next_global;
    next_global += static_cast<uint64_t>(o.count);
    b.start = sampler.state();
    b.slots.resize(span);
    for (auto& slot : b.slots) {
      slot.index = sampler.next_wrapping();
      slot.epoch = sampler.state().epoch;
      slot.task = pool.submit([decoder, index = slot.index, epoch = slot.epoch] {
        return decoder->decode(index, epoch);
      });
    }
    b.out.generation = o.generation;
    b.out.global_index = b.global_index;
    b.out.loader_index = static_cast<uint32_t>(o.index);
    b.out.epoch = b.start.epoch;
    b.out.cursor = b.start.cursor;
    b.out.frames = std::malloc(std::max<size_t>(1, span * shape.clip_bytes()));
    b.out.tokens = std::calloc(span * static_cast<size_t>(shape.context), sizeof(int32_t));
    HARVEST_REQUIRE(b.out.frames && b.out.tokens, Runtime, "loader ", o.index,
                    ": out of memory for a batch of ", span * shape.clip_bytes(), " bytes");
  };
  // Moves one decoded sample into the front batch; true when that batch is complete.
  auto resolve = [&](PlannedBatch& b, DecodedSample s) {
    const auto& slot = b.slots[b.resolved];
    SlotOnWire wire;
    wire.sample_id = slot.index;
    if (s.bad) {
      wire.reason = to_string(*s.bad);
      skips.record(slot.index, *s.bad, s.bad_message);
    } else {
      const int64_t row = b.rows++;
      wire.row = row;
      std::memcpy(
          static_cast<uint8_t*>(b.out.frames) + static_cast<size_t>(row) * shape.clip_bytes(),
          s.pixels.data(), shape.clip_bytes());
      std::memcpy(
          static_cast<int32_t*>(b.out.tokens) + row * shape.context, s.ids.data(),
          std::min<size_t>(s.ids.size(), static_cast<size_t>(shape.context)) * sizeof(int32_t));
    }
    b.out.slots.push_back(std::move(wire));
    ++b.resolved;
    return b.resolved == b.slots.size();
  };

  while (!g_stop) {
    if (::getppid() != parent) {
      spdlog::warn("loader {}: worker (pid {}) is gone; exiting", o.index, parent);
      break;
    }
    // Credit from the worker.
    while (auto parts = recv_parts(socket.get(), peer)) {
      HARVEST_REQUIRE(parts->size() == 1, Runtime, peer, ": control message has ", parts->size(),
                      " parts, expected 1");
      const LoaderControlMsg msg = decode_control(*parts->front(), peer);
      HARVEST_REQUIRE(msg.kind == LoaderControlMsg::Kind::Credit, Runtime, peer,
                      ": unexpected hello from the worker");
      granted += msg.credit;
    }
    while (sent + planned.size() < granted) plan_batch();
    if (planned.empty()) {
      coord::ZmqSocket* s = &socket;
      coord::poll_readable({s}, std::chrono::milliseconds(100));
      continue;
    }
    // Resolve the front batch's samples in order; check the socket between waits.
    PlannedBatch& front = planned.front();
    bool complete = false;
    while (!complete && !g_stop) {
      auto sample = pool.wait_for(front.slots[front.resolved].task, std::chrono::milliseconds(5));
      if (!sample) break;
      front.slots[front.resolved].task.reset();
      complete = resolve(front, std::move(*sample));
    }
    if (!complete) continue;
    ZmqParts parts = encode_batch(front.out, shape);
    while (!g_stop && !send_parts(socket.get(), parts, 1000, peer)) {
      if (::getppid() != parent) break;
    }
    planned.pop_front();
    ++sent;
  }
  if (skips.total() > 0) {
    std::string counts;
    for (const auto& [reason, n] : skips.counts())
      counts += cat(counts.empty() ? "" : ", ", reason, " ", n);
    spdlog::info("loader {}: {} bad samples skipped ({})", o.index, skips.total(), counts);
  }
  planned.clear();
  return 0;
}

}  // namespace harvest::data
