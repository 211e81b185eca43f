// A loader that misbehaves on purpose, for LoaderSource's reject tests. It takes `harvest
// loader`'s command line and does what HARVEST_FAKE_LOADER says:
//   silent     say hello, then never send a batch
//   garbage    send a 3-part message whose header is not Cap'n Proto
//   gap        send its second batch first
//   greedy     send data.queue_depth + 1 batches at once, without waiting for credit
//   shape      send a batch whose frames tensor has the wrong image size
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <iostream>
#include <map>
#include <string>
#include <thread>

#include "coordinator/zmq_socket.hpp"
#include "core/config/config.hpp"
#include "dataloader/batch_wire.hpp"
#include "dataloader/manifest.hpp"
#include "dataloader/sampler.hpp"

using namespace harvest;
using namespace harvest::data;

int main(int argc, char** argv) {
  std::map<std::string, std::string> args;
  for (int i = 1; i + 1 < argc; ++i)
    if (std::strncmp(argv[i], "--", 2) == 0) args[argv[i] + 2] = argv[i + 1];
  const char* mode_env = std::getenv("HARVEST_FAKE_LOADER");
  const std::string mode = mode_env ? mode_env : "silent";
  const Config config = load_config(args.at("config"), {});
  const uint64_t generation = std::stoull(args.at("generation"));
  const uint32_t index = static_cast<uint32_t>(std::stoul(args.at("index")));
  const uint64_t first = std::stoull(args.at("first-batch"));
  const uint64_t count = std::stoull(args.at("count"));
  BatchShape shape{static_cast<uint64_t>(config.data.batch_size), config.model.frames,
                   config.model.image_size, config.model.image_size, config.model.context_length};

  coord::ZmqContext ctx;
  coord::ZmqSocket socket(ctx, ZMQ_DEALER, args.at("endpoint"));
  socket.connect(args.at("endpoint"));
  ZmqParts hello;
  hello.push_back(encode_control({LoaderControlMsg::Kind::Hello, generation, index, 0, 0, {}}));
  send_parts(socket.get(), hello, -1, "worker");
  if (mode == "silent") {
    for (;;) std::this_thread::sleep_for(std::chrono::seconds(1));
  }
  // Wait for the credit (the greedy one does not).
  uint32_t credit = mode == "greedy" ? static_cast<uint32_t>(config.data.queue_depth) : 0;
  while (credit == 0) {
    coord::ZmqSocket* s = &socket;
    coord::poll_readable({s}, std::chrono::milliseconds(100));
    while (auto parts = recv_parts(socket.get(), "worker"))
      credit += decode_control(*parts->front(), "worker").credit;
  }
  // Well-formed batches carry the right shard positions and sample ids (the worker checks them).
  const Manifest manifest = load_manifest(config.data.train_manifest, config.data.root);
  EpochSampler sampler(manifest.entries.size(), static_cast<uint64_t>(config.train.seed),
                       std::stoi(args.at("world-size")), std::stoi(args.at("rank")),
                       SamplerState{std::stoull(args.at("epoch")), std::stoull(args.at("cursor"))});
  auto batch = [&](uint64_t global_index, const BatchShape& as) {
    OutgoingBatch b;
    b.generation = generation;
    b.global_index = global_index;
    b.loader_index = index;
    EpochSampler at = sampler;
    at.skip((global_index - first) * as.span);
    b.epoch = at.state().epoch;
    b.cursor = at.state().cursor;
    for (uint64_t i = 0; i < as.span; ++i)
      b.slots.push_back({at.next_wrapping(), static_cast<int64_t>(i), ""});
    b.frames = std::calloc(as.span * as.clip_bytes(), 1);
    b.tokens = std::calloc(as.span * static_cast<size_t>(as.context), 4);
    return encode_batch(b, as);
  };
  std::vector<ZmqParts> out;
  if (mode == "garbage") {
    ZmqParts p;
    p.emplace_back("not a capnp header", 18);
    p.emplace_back(4);
    p.emplace_back(4);
    out.push_back(std::move(p));
  } else if (mode == "gap") {
    out.push_back(batch(first + count, shape));
  } else if (mode == "greedy") {
    for (uint32_t i = 0; i <= credit; ++i) out.push_back(batch(first + i * count, shape));
  } else if (mode == "shape") {
    BatchShape wrong = shape;
    wrong.width += 2;
    out.push_back(batch(first, wrong));
  } else {
    std::cerr << "fake_loader: unknown HARVEST_FAKE_LOADER=" << mode << "\n";
    return 2;
  }
  for (auto& parts : out) send_parts(socket.get(), parts, -1, "worker");
  for (;;) std::this_thread::sleep_for(std::chrono::seconds(1));
}
