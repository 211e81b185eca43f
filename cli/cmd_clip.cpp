// harvest import-clip: a Hugging Face CLIPModel safetensors file -> a harvest model file.
// harvest embed: text / image / video embeddings of a model file, as JSON or a similarity table.
#include <nlohmann/json.hpp>

#include <filesystem>
#include <iomanip>
#include <iostream>
#include <thread>

#include "checkpoint/reader.hpp"
#include "cli/commands.hpp"
#include "core/cpus.hpp"
#include "core/error.hpp"
#include "core/time.hpp"
#include "eval/embedder.hpp"
#include "eval/model_file.hpp"
#include "model/clip_import.hpp"

namespace harvest::cli {
namespace {

struct ImportArgs {
  ClipImportOptions clip;
  std::string vocab, out;
  bool force = false;
};

void run_import(const ImportArgs& args) {
  const Stopwatch clock;
  HARVEST_REQUIRE(args.force || !std::filesystem::exists(args.out), Usage, args.out,
                  " exists; pass --force to replace it");
  const tokenizer::Tokenizer tok = tokenizer::Tokenizer::load(args.vocab);
  ClipImportOptions clip = args.clip;
  clip.vocab = VocabInfo{tok.vocab_size(), tok.sot_id(), tok.eot_id()};
  const ClipArchitecture arch = inspect_hf_clip(clip);
  VideoTextModel model = import_hf_clip(clip);  // throws listing every problem; nothing written
  const std::string vocab_file = std::filesystem::absolute(args.vocab).lexically_normal().string();
  std::string config_toml;
  if (!arch.options.preset.empty()) {
    // A preset's architecture: the config that trains from this file (model.init = the output).
    Config config;
    config.model.preset = arch.options.preset;
    config.model.image_size = arch.options.vision.image_size;
    config.model.frames = arch.options.vision.frames;
    config.model.context_length = arch.options.text.context_length;
    config.model.fusion_layers = arch.options.fusion_layers;
    config.model.activation = arch.options.vision.activation;  // model.activation sets both towers
    config.model.vocab = vocab_file;
    config_toml = to_toml(config);
  }
  eval::write_model_file(*model, vocab_file, config_toml, args.out);
  const ModelOptions& o = arch.options;
  int64_t params = 0;
  for (const at::Tensor& p : model->parameters()) params += p.numel();
  std::cout << "imported " << args.clip.weights << " -> " << args.out << "\n"
            << "  vision: width " << o.vision.width << ", layers " << o.vision.layers << ", heads "
            << o.vision.heads << ", patch " << o.vision.patch_size << ", image " << o.vision.image_size
            << ", " << o.vision.activation << ", temporal embedding " << o.vision.frames << " frames (zeros)\n"
            << "  text: width " << o.text.width << ", layers " << o.text.layers << ", heads " << o.text.heads
            << ", " << o.text.activation << ", context " << o.text.context_length << " of " << o.text.max_positions
            << "\n  names: " << (arch.layout == "openai" ? "OpenAI / open_clip" : "Hugging Face") << "\n"
            << "  embed " << o.embed_dim << ", vocabulary " << o.vocab.size << " (" << args.vocab << ")"
            << ", preset " << (o.preset.empty() ? "none (custom shapes)" : o.preset) << "\n"
            << "  new parts initialised (seed " << clip.seed << "): visual.temporal_embedding, "
            << "text.mask_embedding, fusion.* (" << o.fusion_layers << " layers)\n";
  for (const std::string& name : arch.ignored) std::cout << "  ignored buffer " << name << "\n";
  std::cout << nlohmann::json{{"out", args.out},
                              {"preset", o.preset},
                              {"parameters", params},
                              {"seconds", clock.seconds()}}
                   .dump()
            << std::endl;
}

struct EmbedArgs {
  std::string checkpoint;
  std::vector<std::string> texts, images, videos;
  std::string vocab;
  int64_t frames = 0;
  std::vector<double> mean, std;
  int threads = 0;
  bool json = false;
};

nlohmann::json rows(const at::Tensor& t) {
  nlohmann::json out = nlohmann::json::array();
  const at::Tensor c = t.contiguous();
  for (int64_t i = 0; i < c.size(0); ++i) {
    const float* row = c[i].data_ptr<float>();
    out.push_back(std::vector<float>(row, row + c.size(1)));
  }
  return out;
}

void run_embed(const EmbedArgs& args) {
  const int threads = args.threads > 0 ? args.threads : usable_cpus();
  at::set_num_threads(threads);
  HARVEST_REQUIRE(!args.texts.empty() || !args.images.empty() || !args.videos.empty(), Usage,
                  "embed: nothing to embed (give --text, --image or --video)");
  eval::LoadedModel loaded = eval::load_model_file(
      args.checkpoint, args.vocab.empty() ? std::nullopt : std::optional<std::string>(args.vocab));
  eval::EmbedOptions options;
  options.frames = args.frames;
  for (size_t c = 0; c < 3; ++c) {
    if (!args.mean.empty()) options.norm.mean[c] = args.mean[c];
    if (!args.std.empty()) options.norm.std[c] = args.std[c];
  }
  eval::Embedder embedder(loaded, options);
  const at::Tensor text = embedder.texts(args.texts);
  std::vector<at::Tensor> image_rows, video_rows;
  for (const std::string& path : args.images) image_rows.push_back(embedder.image(path));
  for (const std::string& path : args.videos) video_rows.push_back(embedder.video(path));
  const int64_t dim = loaded.options.embed_dim;
  const at::Tensor images = image_rows.empty() ? at::empty({0, dim}) : at::cat(image_rows);
  const at::Tensor videos = video_rows.empty() ? at::empty({0, dim}) : at::cat(video_rows);
  if (args.json) {
    std::cout << nlohmann::json{{"text", rows(text)}, {"image", rows(images)}, {"video", rows(videos)}}.dump()
              << std::endl;
    return;
  }
  std::cout << args.checkpoint << ": " << dim << "-d embeddings, " << args.texts.size() << " text, "
            << args.images.size() << " image, " << args.videos.size() << " video ("
            << (args.frames > 0 ? args.frames : loaded.options.vision.frames) << " frames per video)\n";
  const at::Tensor media = at::cat({images, videos});
  std::vector<std::string> names = args.images;
  names.insert(names.end(), args.videos.begin(), args.videos.end());
  if (text.size(0) == 0 || media.size(0) == 0) {
    std::cout << "(give both text and images/videos for a cosine similarity table; --json prints the vectors)\n";
    return;
  }
  const at::Tensor sim = at::matmul(text, media.t());
  std::cout << "cosine similarity (rows: text, columns: media)\n";
  for (size_t j = 0; j < names.size(); ++j) std::cout << "  [" << j << "] " << names[j] << "\n";
  for (int64_t i = 0; i < sim.size(0); ++i) {
    for (int64_t j = 0; j < sim.size(1); ++j)
      std::cout << std::setw(9) << std::fixed << std::setprecision(4) << sim[i][j].item<float>();
    std::cout << "  " << args.texts[static_cast<size_t>(i)] << "\n";
  }
}

}  // namespace

void add_clip_commands(CLI::App& app) {
  auto imp = std::make_shared<ImportArgs>();
  auto* cmd = app.add_subcommand(
      "import-clip",
      "Convert a CLIP safetensors file (Hugging Face CLIPModel or OpenAI / open_clip names) into a harvest model "
      "file (model.init)");
  cmd->add_option("--weights", imp->clip.weights, "model.safetensors (F32, F16 or BF16)")->required();
  cmd->add_option("--hf-config", imp->clip.hf_config, "config.json: head counts (else width / 64), activation");
  cmd->add_option("--activation", imp->clip.activation,
                  "MLP activation when no config.json says: quick_gelu (OpenAI) or gelu (most open_clip / LAION)");
  cmd->add_option("--vocab", imp->vocab, "CLIP BPE vocabulary (bpe_simple_vocab_16e6.txt.gz or vocab.json)")
      ->required();
  cmd->add_option("--frames", imp->clip.frames, "Rows of the new temporal embedding")->capture_default_str();
  cmd->add_option("--context-length", imp->clip.context_length, "Text positions used")->capture_default_str();
  cmd->add_option("--fusion-layers", imp->clip.fusion_layers, "Layers of the new MLM head")->capture_default_str();
  cmd->add_option("--seed", imp->clip.seed, "Initialisation of the new parts")->capture_default_str();
  cmd->add_option("--out", imp->out, "Output model file (HDF5)")->required();
  cmd->add_flag("--force", imp->force, "Replace an existing output file");
  cmd->callback([imp] { run_import(*imp); });

  auto emb = std::make_shared<EmbedArgs>();
  auto* e = app.add_subcommand("embed", "L2-normalised text / image / video embeddings of a model file");
  e->add_option("--checkpoint", emb->checkpoint, "Model file or training checkpoint (HDF5)")->required();
  e->add_option("--text", emb->texts, "Text to embed (repeatable)");
  e->add_option("--image", emb->images, "Image file to embed (repeatable)");
  e->add_option("--video", emb->videos, "Video file to embed (repeatable)");
  e->add_option("--frames", emb->frames, "Frames per video (default: the model's)");
  e->add_option("--vocab", emb->vocab, "Vocabulary (default: the one the file names)");
  e->add_option("--mean", emb->mean, "Pixel mean R,G,B on [0, 1] (default CLIP's)")->delimiter(',')->expected(3);
  e->add_option("--std", emb->std, "Pixel std R,G,B (default CLIP's)")->delimiter(',')->expected(3);
  e->add_option("--threads", emb->threads, "LibTorch threads; 0: one per core")->capture_default_str();
  e->add_flag("--json", emb->json, R"(Print {"text": [[...]], "image": [[...]], "video": [[...]]})");
  e->callback([emb] { run_embed(*emb); });
}

}  // namespace harvest::cli
