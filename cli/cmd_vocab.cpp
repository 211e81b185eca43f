// harvest data vocab: learn a BPE vocabulary (CLIP's merges format) from a manifest's captions.
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/commands.hpp"
#include "core/error.hpp"
#include "core/log.hpp"
#include "core/time.hpp"
#include "model/tokenizer/bpe_learner.hpp"
#include "model/tokenizer/caption_reader.hpp"
#include "model/tokenizer/gzip_file.hpp"

namespace harvest::cli {

void add_vocab_command(CLI::App& app) {
  struct Options {
    std::vector<std::string> manifests;
    size_t size = 0;
    std::string out;
  };
  auto opts = std::make_shared<Options>();
  auto& data = command_group(app, "data", "Datasets: synthesis, import, frames, vocabulary");
  auto* cmd = data.add_subcommand(
      "vocab", "Learn a BPE vocabulary from manifest captions, written in CLIP's merges format");
  cmd->add_option("--manifest", opts->manifests,
                  "Manifest: JSON Lines with \"caption\" or \"captions\", or CSV with a caption "
                  "column (repeatable)")
      ->required();
  cmd->add_option("--size", opts->size,
                  "Vocabulary size: 256 bytes + 256 bytes</w> + merges + 2 special tokens "
                  "(CLIP: 49408), in [514, 49408]")
      ->required();
  cmd->add_option("--out", opts->out, "Output file, gzip (e.g. vocab.txt.gz)")->required();
  cmd->callback([opts] {
    tokenizer::check_vocab_size(opts->size);  // before minutes of reading
    Stopwatch clock;
    tokenizer::BpeLearner learner;
    for (const auto& manifest : opts->manifests) {
      const size_t n = tokenizer::read_captions(
          manifest, [&learner](std::string_view caption) { learner.add_text(caption); });
      spdlog::info("vocab: {} captions from {}", n, manifest);
    }
    const auto merges = learner.learn(opts->size);
    const auto& stats = learner.stats();
    const size_t vocab_size = 512 + merges.size() + 2;
    if (stats.stopped_early)
      spdlog::warn("vocab: only {} merges occur at least twice; vocabulary size {} instead of {}",
                   merges.size(), vocab_size, opts->size);
    tokenizer::write_gzip_atomic(
        opts->out, tokenizer::format_merges(
                       merges, cat("harvest data vocab: ", vocab_size, " tokens = 512 byte tokens + ",
                                   merges.size(), " merges + 2 special")));
    const double seconds = clock.seconds();
    spdlog::info("vocab: {} merges from {} captions ({} distinct words) in {:.1f} s -> {}",
                 merges.size(), stats.texts, stats.unique_words, seconds, opts->out);
    std::cout << nlohmann::json{{"out", opts->out},
                                {"vocab_size", vocab_size},
                                {"merges", merges.size()},
                                {"captions", stats.texts},
                                {"words", stats.words},
                                {"unique_words", stats.unique_words},
                                {"seconds", seconds}}
                     .dump()
              << "\n";
  });
}

}  // namespace harvest::cli
