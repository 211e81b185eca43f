// harvest tokenize: CLIP BPE ids of texts, one JSON array per text (SOT ... EOT, no padding).
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/commands.hpp"
#include "model/tokenizer/tokenizer.hpp"

namespace harvest::cli {

void add_tokenize_command(CLI::App& app) {
  struct Options {
    std::string vocab;
    size_t context_length = 77;
    std::vector<std::string> texts;
  };
  auto opts = std::make_shared<Options>();
  auto* cmd = app.add_subcommand(
      "tokenize", "Print the CLIP BPE ids of each TEXT as a JSON array, one line per text");
  cmd->add_option("--vocab", opts->vocab,
                  "Vocabulary: CLIP merges file (.txt.gz), Hugging Face vocab.json (merges.txt "
                  "beside it) or a folder with both")
      ->required();
  cmd->add_option("--context-length", opts->context_length,
                  "Truncate to N ids keeping <|endoftext|> last (CLIP's 77); 0: no truncation")
      ->capture_default_str();
  cmd->add_option("texts", opts->texts, "Texts to tokenize")->required();
  cmd->callback([opts] {
    const auto tok = tokenizer::Tokenizer::load(opts->vocab);
    for (const auto& text : opts->texts)
      std::cout << nlohmann::json(tok.encode(text, opts->context_length)).dump() << "\n";
  });
}

}  // namespace harvest::cli
