// The C++ model against an independent PyTorch reference (reference_model.py) on the same small
// random weights: embeddings, losses and every parameter's gradient.
#include <catch2/catch.hpp>
#include <torch/torch.h>

#include <unistd.h>

#include "model/video_text_model.hpp"
#include "tests/model/golden_data.hpp"

namespace harvest {
namespace {

ModelOptions golden_options(const nlohmann::json& c) {
  ModelOptions o;
  o.preset = "golden";
  o.embed_dim = c.at("embed_dim");
  o.vision.width = c.at("vision_width");
  o.vision.layers = c.at("vision_layers");
  o.vision.heads = c.at("vision_heads");
  o.vision.patch_size = c.at("patch_size");
  o.vision.image_size = c.at("image_size");
  o.vision.frames = c.at("frames");
  o.text.width = c.at("text_width");
  o.text.layers = c.at("text_layers");
  o.text.heads = c.at("text_heads");
  o.text.context_length = c.at("context_length");
  o.vocab.size = c.at("vocab_size");
  o.vocab.sot_id = c.at("sot_id");
  o.vocab.eot_id = c.at("eot_id");
  o.fusion_layers = c.at("fusion_layers");
  o.temperature_init = c.at("temperature_init");
  o.freeze_text = false;
  return o;
}

// Generated once per test process: the reference takes seconds and Catch2 re-enters a test case
// for every SECTION.
const test::GoldenData& golden() {
  static const test::GoldenData data =
      test::GoldenData::generate(std::string(HARVEST_BINARY_DIR) + "/tests/model/golden-" + std::to_string(::getpid()));
  return data;
}

VideoTextModel load_model(const test::GoldenData& g, bool checkpointing) {
  ModelOptions o = golden_options(g.config());
  o.grad_checkpointing = checkpointing;
  VideoTextModel model(o);
  torch::NoGradGuard no_grad;
  const auto params = model->named_parameters();
  const std::vector<std::string> golden_names = g.names_with_prefix("param/");
  REQUIRE(golden_names.size() == params.size());
  for (const auto& item : params) {
    INFO("parameter " << item.key());
    REQUIRE(g.has("param/" + item.key()));
    const at::Tensor value = g.get("param/" + item.key());
    REQUIRE(value.sizes() == item.value().sizes());
    item.value().copy_(value);
  }
  return model;
}

void require_close(const at::Tensor& actual, const at::Tensor& expected, double tol, const std::string& what) {
  INFO(what << ": max |diff| " << (actual - expected).abs().max().item<double>() << " (scale "
            << expected.abs().max().item<double>() << ")");
  REQUIRE(actual.sizes() == expected.sizes());
  REQUIRE(torch::allclose(actual, expected, /*rtol=*/tol, /*atol=*/tol));
}

}  // namespace

TEST_CASE("model matches the PyTorch reference: embeddings, losses, gradients", "[model][golden]") {
  const test::GoldenData& g = golden();
  auto single = make_single_worker_collective();
  const at::Tensor video = g.get("input/video");
  const at::Tensor ids = g.get("input/ids");
  StepRandomness randomness;
  randomness.keep = g.get("input/keep");
  randomness.masked = MaskedText{g.get("input/masked_ids"), g.get("input/masked").to(torch::kBool),
                                 g.get("input/targets")};
  const LossWeights weights{1.0, 0.5};

  for (const bool checkpointing : {false, true}) {
    SECTION(checkpointing ? "with gradient checkpointing" : "without gradient checkpointing") {
      VideoTextModel model = load_model(g, checkpointing);
      model->train();
      const LossParts parts = model->forward_with(video, ids, *single, weights, randomness);
      require_close(parts.vtc, g.get("out/vtc"), 1e-5, "vtc");
      require_close(parts.mlm, g.get("out/mlm"), 1e-5, "mlm");
      require_close(parts.total.detach(), g.get("out/total"), 1e-5, "total");
      CHECK(parts.video_tokens == 1 + randomness.keep.size(1));
      parts.total.backward();
      for (const auto& item : model->named_parameters()) {
        const at::Tensor grad = item.value().grad().defined() ? item.value().grad() : torch::zeros_like(item.value());
        require_close(grad, g.get("grad/" + item.key()), 1e-5, "gradient of " + item.key());
      }
    }
  }
}

TEST_CASE("video, text and image embeddings match the reference", "[model][golden]") {
  const test::GoldenData& g = golden();
  VideoTextModel model = load_model(g, false);
  model->eval();
  torch::NoGradGuard no_grad;
  const at::Tensor video = g.get("input/video");

  SECTION("all patches kept") {
    require_close(model->visual->forward(video).embedding, g.get("out/video_embedding"), 1e-5, "video");
  }
  SECTION("kept patches gathered") {
    const VideoEncoding v = model->visual->forward(video, g.get("input/keep"));
    require_close(v.embedding, g.get("out/video_embedding_dropped"), 1e-5, "dropped video");
  }
  SECTION("fewer frames than trained: temporal embedding interpolated") {
    require_close(model->visual->forward(g.get("input/video_2frames")).embedding,
                  g.get("out/video_embedding_2frames"), 1e-5, "2-frame video");
  }
  SECTION("image path") {
    require_close(model->visual->encode_image(video.select(1, 0)), g.get("out/image_embedding"), 1e-5, "image");
  }
  SECTION("text") {
    require_close(model->text->forward(g.get("input/ids")).embedding, g.get("out/text_embedding"), 1e-5, "text");
  }
}

}  // namespace harvest
