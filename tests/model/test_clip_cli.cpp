// `harvest import-clip` and `harvest embed` end to end against transformers' CLIPModel
// (hf_clip_reference.py) on small random weights: every embedding must match the reference to
// cosine >= 0.99999, for F32, F16 and BF16 files, quick_gelu and gelu towers, Hugging Face and
// OpenAI / open_clip names; broken files are refused with every problem named and nothing written.
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include <cmath>
#include <filesystem>

#include "tests/support/run.hpp"
#include "tests/tokenizer/support.hpp"

using harvest::test::run;
using harvest::test::ScratchDir;

namespace {

const std::string kHarvest = std::string(HARVEST_EXE) + " --log-level warn";
const std::string kHfReference = HARVEST_SOURCE_DIR "/tests/model/hf_clip_reference.py";

nlohmann::json read_json(const std::string& path) {
  std::ifstream in(path);
  REQUIRE(in);
  return nlohmann::json::parse(in);
}

nlohmann::json last_json_line(const std::string& output) {
  const size_t end = output.find_last_not_of('\n');
  const size_t begin = output.rfind('\n', end);
  return nlohmann::json::parse(output.substr(begin == std::string::npos ? 0 : begin + 1, end + 1));
}

std::string quoted(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

double cosine(const nlohmann::json& a, const nlohmann::json& b) {
  REQUIRE(a.size() == b.size());
  double dot = 0, na = 0, nb = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const double x = a[i].get<double>(), y = b[i].get<double>();
    dot += x * y;
    na += x * x;
    nb += y * y;
  }
  return dot / std::sqrt(na * nb);
}

std::string reference(const ScratchDir& dir, const std::string& extra) {
  const auto r = run(harvest::test::kPython + " " + kHfReference + " " + dir.path().string() + " --vocab " +
                     harvest::test::kClipVocab + " " + extra);
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  return dir.path().string();
}

std::string import_command(const std::string& d, const std::string& extra = "") {
  return kHarvest + " import-clip --weights " + d + "/model.safetensors --vocab " + harvest::test::kClipVocab +
         " --out " + d + "/model.h5 " + extra;
}

// Imports the reference's weights (`import_extra`: --hf-config / --activation ...) and checks
// every embedding against it: the texts, the square and wide images, the 8-frame video. Returns
// the import's output and the embeddings for further checks.
struct Imported {
  std::string import_output;
  nlohmann::json got;
};

Imported check_embeddings(const std::string& d, const std::string& import_extra) {
  const nlohmann::json expected = read_json(d + "/expected.json");
  const auto imp = run(import_command(d, import_extra));
  INFO(imp.output);
  REQUIRE(imp.exit_code == 0);
  std::string cmd = kHarvest + " embed --json --checkpoint " + d + "/model.h5";
  for (const auto& t : expected["texts"]) cmd += " --text " + quoted(t.get<std::string>());
  cmd += " --image " + d + "/square.png --image " + d + "/wide.png --video " + d + "/static.mkv --frames 8";
  const auto emb = run(cmd);
  INFO(emb.output);
  REQUIRE(emb.exit_code == 0);
  const nlohmann::json got = last_json_line(emb.output);
  REQUIRE(got["text"].size() == expected["text"].size());
  for (size_t i = 0; i < got["text"].size(); ++i) {
    INFO("text " << i << ": " << expected["texts"][i]);
    CHECK(cosine(got["text"][i], expected["text"][i]) >= 0.99999);
  }
  REQUIRE(got["image"].size() == 2);
  CHECK(cosine(got["image"][0], expected["square"]) >= 0.99999);  // 224x224: CLIP's exact input
  CHECK(cosine(got["image"][1], expected["wide"]) >= 0.99999);    // resize shorter side + centre crop
  REQUIRE(got["video"].size() == 1);
  CHECK(cosine(got["video"][0], expected["static8"]) >= 0.99999);
  return {imp.output, got};
}

}  // namespace

TEST_CASE("imported CLIP embeds text, images and videos exactly as the reference", "[model][clip]") {
  const ScratchDir dir("clip-f32");
  const std::string d = reference(dir, "--dtype F32");
  const Imported imported = check_embeddings(d, "--hf-config " + d + "/config.json --frames 8");
  CHECK(imported.import_output.find("heads 4") != std::string::npos);
  CHECK(imported.import_output.find("ignored buffer text_model.embeddings.position_ids") != std::string::npos);
  const nlohmann::json& got = imported.got;
  for (const auto& text : got["text"]) CHECK(text.size() == 48);
  // Embeddings are unit vectors, and distinct inputs give distinct embeddings.
  double norm = 0;
  for (const auto& v : got["image"][0]) norm += v.get<double>() * v.get<double>();
  CHECK(std::abs(norm - 1.0) < 1e-5);
  CHECK(cosine(got["image"][0], got["image"][1]) < 0.999);

  SECTION("the output is not replaced without --force") {
    const auto again = run(import_command(d, "--hf-config " + d + "/config.json"));
    CHECK(again.exit_code == 2);
    CHECK(again.output.find("model.h5 exists") != std::string::npos);
  }
  SECTION("without config.json heads are width / 64 and the activation must be named") {
    std::filesystem::remove(d + "/model.h5");
    const auto refused = run(import_command(d));
    INFO(refused.output);
    CHECK(refused.exit_code == 2);
    CHECK(refused.output.find("--activation quick_gelu|gelu") != std::string::npos);
    CHECK_FALSE(std::filesystem::exists(d + "/model.h5"));
    const auto r = run(import_command(d, "--activation quick_gelu"));
    INFO(r.output);
    CHECK(r.exit_code == 0);
    CHECK(r.output.find("heads 1") != std::string::npos);
  }
  SECTION("--activation that disagrees with config.json is refused") {
    std::filesystem::remove(d + "/model.h5");
    const auto r = run(import_command(d, "--hf-config " + d + "/config.json --activation gelu"));
    INFO(r.output);
    CHECK(r.exit_code == 2);
    CHECK(r.output.find("--activation gelu disagrees with") != std::string::npos);
    CHECK(r.output.find("vision_config.hidden_act is quick_gelu") != std::string::npos);
  }
  SECTION("a file that cannot be decoded is named") {
    const auto r = run(kHarvest + " embed --checkpoint " + d + "/model.h5 --image " + d + "/config.json");
    CHECK(r.exit_code == 1);
    CHECK(r.output.find("config.json") != std::string::npos);
  }
}

TEST_CASE("F16 and BF16 CLIP files import exactly", "[model][clip]") {
  const std::string dtype = GENERATE(std::string("F16"), std::string("BF16"));
  INFO(dtype);
  const ScratchDir dir("clip-" + dtype);
  const std::string d = reference(dir, "--dtype " + dtype);
  const nlohmann::json expected = read_json(d + "/expected.json");
  const auto imp = run(import_command(d, "--hf-config " + d + "/config.json"));
  INFO(imp.output);
  REQUIRE(imp.exit_code == 0);
  const auto emb = run(kHarvest + " embed --json --checkpoint " + d + "/model.h5 --text '" +
                       expected["texts"][1].get<std::string>() + "' --image " + d + "/square.png");
  INFO(emb.output);
  REQUIRE(emb.exit_code == 0);
  const nlohmann::json got = last_json_line(emb.output);
  CHECK(cosine(got["text"][0], expected["text"][1]) >= 0.99999);
  CHECK(cosine(got["image"][0], expected["square"]) >= 0.99999);
}

TEST_CASE("a gelu CLIP imports exactly and trains only with model.activation = gelu", "[model][clip]") {
  const ScratchDir dir("clip-gelu");
  const std::string d = reference(dir, "--act gelu");
  check_embeddings(d, "--hf-config " + d + "/config.json");
  const auto imp = run(import_command(d, "--hf-config " + d + "/config.json --force"));
  CHECK(imp.output.find("gelu, temporal embedding") != std::string::npos);
  // quick_gelu in its place gives other embeddings: the activation is not a detail.
  std::filesystem::remove(d + "/model.h5");
  const auto wrong = run(import_command(d, "--activation quick_gelu"));
  INFO(wrong.output);
  REQUIRE(wrong.exit_code == 0);
  const nlohmann::json expected = read_json(d + "/expected.json");
  const auto emb = run(kHarvest + " embed --json --checkpoint " + d + "/model.h5 --image " + d + "/square.png");
  REQUIRE(emb.exit_code == 0);
  CHECK(cosine(last_json_line(emb.output)["image"][0], expected["square"]) < 0.99999);
}

TEST_CASE("OpenAI / open_clip state-dict names import exactly", "[model][clip]") {
  const std::string act = GENERATE(std::string("quick_gelu"), std::string("gelu"));
  INFO(act);
  const ScratchDir dir("clip-openai-" + act);
  const std::string d = reference(dir, "--layout openai --act " + act);
  check_embeddings(d, "--hf-config " + d + "/config.json");
  const auto imp = run(import_command(d, "--hf-config " + d + "/config.json --force"));
  CHECK(imp.output.find("names: OpenAI / open_clip") != std::string::npos);

  SECTION("a fused projection of the wrong size is named by its own key") {
    const auto r = run(harvest::test::kPython + " -c \"import sys; from safetensors.torch import load_file, save_file; "
                       "w = load_file(sys.argv[1]); w['visual.transformer.resblocks.0.attn.in_proj_weight'] = "
                       "w['visual.transformer.resblocks.0.attn.in_proj_weight'][:100]; "
                       "w['visual.attnpool.weight'] = w['logit_scale'].clone(); save_file(w, sys.argv[1])\" " +
                       d + "/model.safetensors");
    INFO(r.output);
    REQUIRE(r.exit_code == 0);
    const auto c = run(import_command(d, "--hf-config " + d + "/config.json --force"));
    INFO(c.output);
    CHECK(c.exit_code == 2);
    CHECK(c.output.find("visual.transformer.resblocks.0.attn.in_proj_weight is [100, 64]; a fused q/k/v") !=
          std::string::npos);
    CHECK(c.output.find("unexpected tensor visual.attnpool.weight") != std::string::npos);
  }
}

TEST_CASE("a broken CLIP file is refused with every problem named and nothing written", "[model][clip]") {
  const ScratchDir dir("clip-broken");
  const std::string d = reference(dir, "--broken");
  const auto r = run(import_command(d, "--hf-config " + d + "/config.json"));
  INFO(r.output);
  CHECK(r.exit_code == 2);
  CHECK(r.output.find("missing tensor vision_model.encoder.layers.1.mlp.fc2.bias") != std::string::npos);
  CHECK(r.output.find("unexpected tensor vision_model.extra_head.weight") != std::string::npos);
  CHECK(r.output.find("text_projection.weight is [48, 65], expected [48, 64]") != std::string::npos);
  CHECK(r.output.find("model.safetensors") != std::string::npos);
  CHECK_FALSE(std::filesystem::exists(d + "/model.h5"));
  CHECK_FALSE(std::filesystem::exists(d + "/model.h5.tmp"));

  SECTION("config.json that disagrees with the weights") {
    harvest::test::write_file(d + "/bad.json",
                              R"({"vision_config": {"hidden_size": 80, "num_attention_heads": 3, "hidden_act": "gelu_new"}})");
    const auto c = run(import_command(d, "--hf-config " + d + "/bad.json"));
    CHECK(c.exit_code == 2);
    CHECK(c.output.find("vision_config.hidden_size is 80") != std::string::npos);
    CHECK(c.output.find("num_attention_heads = 3 does not divide") != std::string::npos);
    CHECK(c.output.find("vision_config.hidden_act is \"gelu_new\"; harvest implements quick_gelu and gelu") !=
          std::string::npos);
  }
  SECTION("a huge layer index is one problem, not millions") {
    const auto w = run(harvest::test::kPython + " -c \"import sys, torch; from safetensors.torch import save_file; "
                       "save_file({'vision_model.encoder.layers.99999.mlp.fc1.weight': torch.zeros(1)}, sys.argv[1])\" " +
                       d + "/huge.safetensors");
    REQUIRE(w.exit_code == 0);
    const auto c = run(kHarvest + " import-clip --activation gelu --weights " + d + "/huge.safetensors --vocab " +
                       harvest::test::kClipVocab + " --out " + d + "/huge.h5");
    INFO(c.output.substr(0, 4000));
    CHECK(c.exit_code == 2);
    CHECK(c.output.find("vision_model.encoder.layers.99999 implies 100000 layers") != std::string::npos);
    CHECK(c.output.size() < 20000);
    CHECK_FALSE(std::filesystem::exists(d + "/huge.h5"));
  }
  SECTION("a file that is not safetensors") {
    harvest::test::write_file(d + "/junk.safetensors", "not a safetensors file");
    const auto c = run(kHarvest + " import-clip --weights " + d + "/junk.safetensors --vocab " +
                       harvest::test::kClipVocab + " --out " + d + "/x.h5");
    CHECK(c.exit_code != 0);
    CHECK(c.output.find("junk.safetensors") != std::string::npos);
    CHECK_FALSE(std::filesystem::exists(d + "/x.h5"));
  }
}
