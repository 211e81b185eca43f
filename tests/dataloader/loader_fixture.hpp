// A tiny synthetic training set for loader tests: synth clips (32 px, 4 frames) plus a missing
// and a zero-byte video row, so the skip rule runs; and a Config that reads it with CLIP's
// vocabulary.
#pragma once

#include <fstream>
#include <string>
#include <vector>

#include "core/config/config.hpp"
#include "dataloader/synth.hpp"
#include "tests/dataloader/support.hpp"

namespace harvest::test {

struct LoaderFixture {
  TempDir dir;
  std::string manifest;
  size_t rows = 0;

  explicit LoaderFixture(int clips = 24) {
    data::SynthOptions synth;
    synth.out_dir = dir.file("data");
    synth.clips = clips;
    synth.seed = 5;
    synth.size = 32;
    synth.frames = 4;
    synth.threads = 2;
    synth.progress = false;
    data::write_synth_dataset(synth);
    std::ofstream(dir.file("data/empty.mp4")).flush();
    manifest = dir.file("data/m.jsonl");
    std::ifstream in(dir.file("data/train.jsonl"));
    std::ofstream out(manifest);
    std::string line;
    while (std::getline(in, line)) {
      if (rows == 3) out << "{\"video\": \"missing.mp4\", \"caption\": \"nothing\"}\n";
      if (rows == 9) out << "{\"video\": \"empty.mp4\", \"caption\": \"zero bytes\"}\n";
      out << line << "\n";
      ++rows;
    }
    rows += 2;
  }

  Config config(const std::vector<std::string>& extra = {}) const {
    std::vector<std::string> sets = {
        "model.frames=4",
        "model.image_size=32",
        "model.context_length=16",
        "model.vocab=" HARVEST_SOURCE_DIR "/../shared/clip/bpe_simple_vocab_16e6.txt.gz",
        "data.train_manifest=" + manifest,
        "data.batch_size=4",
        "data.decode_threads=2",
        "data.queue_depth=2",
        "data.loaders_per_worker=1",
        "train.seed=11",
        "logging.run_dir=" + dir.file("run"),
    };
    sets.insert(sets.end(), extra.begin(), extra.end());
    return load_config(std::nullopt, sets);
  }
};

}  // namespace harvest::test
