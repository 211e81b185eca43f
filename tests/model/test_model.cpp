// Behaviour of the model's parts: presets, patch dropping, text masking, temperature, the
// gathered-gradient contract, input validation.
#include <catch2/catch.hpp>
#include <torch/torch.h>

#include <set>

#include "core/error.hpp"
#include "model/losses.hpp"
#include "model/video_text_model.hpp"

namespace harvest {
namespace {

ModelOptions small_options() {
  ModelOptions o = preset_options("tiny");
  o.vision.width = 32;
  o.vision.heads = 2;
  o.vision.image_size = 32;
  o.vision.frames = 4;
  o.text.width = 32;
  o.text.heads = 2;
  o.text.context_length = 12;
  o.embed_dim = 16;
  o.vocab = VocabInfo{50, 48, 49};
  o.fusion_layers = 1;
  return o;
}

at::Tensor captions(int64_t batch, int64_t length, const VocabInfo& vocab, int64_t words) {
  at::Tensor ids = torch::zeros({batch, length}, torch::kLong);
  ids.select(1, 0).fill_(vocab.sot_id);
  ids.narrow(1, 1, words).copy_(torch::randint(0, vocab.sot_id, {batch, words}, torch::kLong));
  ids.select(1, words + 1).fill_(vocab.eot_id);
  return ids;
}

// A fake two-worker group: this rank holds `rank`'s rows; the other rank's rows are fixed.
class FakePair final : public Collective {
 public:
  FakePair(int rank, at::Tensor other) : rank_(rank), other_(std::move(other)) {}
  int rank() const override { return rank_; }
  int world_size() const override { return 2; }
  at::Tensor all_gather(const at::Tensor& local) override {
    return rank_ == 0 ? at::cat({local, other_}) : at::cat({other_, local});
  }
  void all_reduce_sum(at::Tensor& t) override { t.mul_(2); }
  void broadcast(at::Tensor&, int) override {}
  void barrier() override {}

 private:
  int rank_;
  at::Tensor other_;
};

}  // namespace

TEST_CASE("presets carry CLIP's shapes", "[model]") {
  const ModelOptions b = preset_options("B/16");
  CHECK(b.vision.width == 768);
  CHECK(b.vision.layers == 12);
  CHECK(b.vision.heads == 12);
  CHECK(b.embed_dim == 512);
  CHECK(b.text.width == 512);
  CHECK(b.text.heads == 8);
  const ModelOptions l = preset_options("L/14");
  CHECK(l.vision.width == 1024);
  CHECK(l.vision.layers == 24);
  CHECK(l.vision.patch_size == 14);
  CHECK(l.text.width == 768);
  CHECK_THROWS_WITH(preset_options("H/14"), Catch::Contains("model.preset"));

  SECTION("B/16 at 8x224 with drop 0.9 keeps 157 of 1568 patches") {
    CHECK(8 * b.vision.patches_per_frame() == 1568);
    CHECK(kept_patch_count(1568, 0.9) == 157);
  }
  SECTION("model_options applies the config and rejects inconsistent shapes") {
    ModelConfig config;
    config.preset = "tiny";
    config.image_size = 64;
    config.frames = 4;
    const ModelOptions o = model_options(config, VocabInfo{1000, 998, 999}, 7);
    CHECK(o.vision.image_size == 64);
    CHECK(o.vision.frames == 4);
    CHECK(o.vocab.size == 1000);
    config.image_size = 70;
    CHECK_THROWS_WITH(model_options(config, VocabInfo{}, 7), Catch::Contains("model.image_size"));
    config.image_size = 64;
    CHECK_THROWS_WITH(model_options(config, VocabInfo{1000, 998, 1000}, 7), Catch::Contains("EOT"));
  }
}

TEST_CASE("patch dropping gathers a per-sample random subset", "[model]") {
  PatchDropper dropper(0.75, 3);
  const at::Tensor keep = dropper.draw(64, 40, torch::kCPU);
  REQUIRE(keep.sizes() == (std::vector<int64_t>{64, 10}));

  SECTION("indices are distinct, in range and sorted per sample; samples differ") {
    CHECK(keep.min().item<int64_t>() >= 0);
    CHECK(keep.max().item<int64_t>() < 40);
    CHECK((keep.slice(1, 1) > keep.slice(1, 0, -1)).all().item<bool>());
    std::set<std::vector<int64_t>> rows;
    for (int64_t i = 0; i < 64; ++i) {
      const at::Tensor row = keep[i].contiguous();
      rows.insert(std::vector<int64_t>(row.data_ptr<int64_t>(), row.data_ptr<int64_t>() + row.numel()));
    }
    CHECK(rows.size() > 60);
  }
  SECTION("uniform: every patch kept about equally often") {
    PatchDropper many(0.75, 11);
    const at::Tensor counts = torch::bincount(many.draw(4000, 40, torch::kCPU).flatten(), {}, 40).to(torch::kDouble);
    // Each patch is kept with probability 1/4: 1000 of 4000 expected, sd about 27.
    CHECK(counts.min().item<double>() > 880);
    CHECK(counts.max().item<double>() < 1120);
  }
  SECTION("same seed, same draws; a saved state replays exactly") {
    PatchDropper again(0.75, 3);
    CHECK(torch::equal(again.draw(64, 40, torch::kCPU), keep));
    const at::Tensor state = dropper.state();
    const at::Tensor next = dropper.draw(8, 40, torch::kCPU);
    dropper.set_state(state);
    CHECK(torch::equal(dropper.draw(8, 40, torch::kCPU), next));
    PatchDropper other(0.75, 4);
    CHECK_FALSE(torch::equal(other.draw(64, 40, torch::kCPU), keep));
  }
  SECTION("bad ratios are rejected naming the key") {
    CHECK_THROWS_WITH(PatchDropper(1.0, 0), Catch::Contains("model.drop_ratio"));
  }
}

TEST_CASE("the encoder sees only CLS and the kept tokens", "[model]") {
  ModelOptions o = small_options();
  o.drop_ratio = 0.75;
  VideoTextModel model(o);
  auto single = make_single_worker_collective();
  const int64_t batch = 3, patches = o.vision.frames * o.vision.patches_per_frame();  // 4 x 4
  const at::Tensor video = torch::randint(0, 256, {batch, o.vision.frames, 32, 32, 3}, torch::kByte);
  const at::Tensor text = captions(batch, 12, o.vocab, 6);

  SECTION("training: sequence shrinks to 1 + round(0.25 N)") {
    model->train();
    const LossParts parts = model->forward(video, text, *single);
    CHECK(parts.video_tokens == 1 + kept_patch_count(patches, 0.75));
    CHECK(parts.video_tokens == 5);
    CHECK(std::isfinite(parts.total.item<double>()));
    CHECK(parts.masked_tokens >= 0);
  }
  SECTION("the unmasked phase: set_drop_ratio(0) keeps every patch in training, and back") {
    model->train();
    model->set_drop_ratio(0.0);
    const at::Tensor dropper_state = model->dropper().state();
    const LossParts full = model->forward(video, text, *single);
    CHECK(full.video_tokens == 1 + patches);
    CHECK(full.masked_tokens >= 0);
    // No draw was made: the generator is where it was, so later steps draw what they would have.
    CHECK(torch::equal(model->dropper().state(), dropper_state));
    model->set_drop_ratio(0.75);
    CHECK(model->forward(video, text, *single).video_tokens == 5);
    CHECK_THROWS_WITH(model->set_drop_ratio(1.0), Catch::Contains("model.drop_ratio"));
  }
  SECTION("eval: nothing dropped, nothing masked") {
    model->eval();
    const LossParts parts = model->forward(video, text, *single);
    CHECK(parts.video_tokens == 1 + patches);
    CHECK(parts.masked_tokens == 0);
  }
  SECTION("dropped tokens do not influence the result") {
    torch::NoGradGuard no_grad;
    const at::Tensor pixels = normalize_video(video);
    const at::Tensor keep = torch::tensor({0, 5, 10, 15}, torch::kLong).repeat({batch, 1});
    const at::Tensor before = model->visual->forward(pixels, keep).embedding;
    at::Tensor changed = pixels.clone();
    changed.select(1, 3).fill_(7.0);  // frame 3 holds patches 12..15; patch 15 is kept
    changed.select(1, 2).fill_(-3.0);  // frame 2 holds patches 8..11; patch 10 is kept
    CHECK_FALSE(torch::allclose(model->visual->forward(changed, keep).embedding, before));
    at::Tensor unseen = pixels.clone();
    // Frame 1's patches are 4..7 and only 5 is kept: change pixels of patch 4 (top-left 16x16).
    unseen.select(1, 1).narrow(2, 0, 16).narrow(3, 0, 16).fill_(9.0);
    CHECK(torch::allclose(model->visual->forward(unseen, keep).embedding, before));
  }
}

TEST_CASE("a 1-frame video with zero temporal embedding is the image embedding", "[model]") {
  ModelOptions o = small_options();
  VideoTextModel model(o);
  model->eval();
  torch::NoGradGuard no_grad;
  const at::Tensor images = torch::randn({2, 3, 32, 32});
  const at::Tensor as_video = images.unsqueeze(1);
  CHECK(torch::equal(model->visual->temporal_embedding, torch::zeros_like(model->visual->temporal_embedding)));
  CHECK(torch::allclose(model->visual->forward(as_video).embedding, model->visual->encode_image(images), 1e-6, 1e-6));
  SECTION("a trained (non-zero) temporal embedding makes them differ") {
    model->visual->temporal_embedding.normal_(0, 1);
    CHECK_FALSE(torch::allclose(model->visual->forward(as_video).embedding, model->visual->encode_image(images),
                                1e-4, 1e-4));
  }
}

TEST_CASE("text masking follows the configured statistics", "[model]") {
  const VocabInfo vocab{1000, 998, 999};
  TextMasker masker(0.5, 0.8, 0.1, vocab, 5);
  const int64_t batch = 2000, length = 16, words = 10;
  const at::Tensor ids = captions(batch, length, vocab, words);
  const MaskedText m = masker(ids);
  const at::Tensor selected = m.targets != MaskedText::kIgnore;

  SECTION("never SOT, EOT or padding") {
    CHECK_FALSE(selected.select(1, 0).any().item<bool>());
    CHECK_FALSE(selected.narrow(1, words + 1, length - words - 1).any().item<bool>());
    CHECK(torch::equal(m.ids.narrow(1, words + 1, length - words - 1), ids.narrow(1, words + 1, length - words - 1)));
    CHECK(torch::equal(m.ids.select(1, 0), ids.select(1, 0)));
  }
  SECTION("half of the words selected; 80% [MASK], 10% random, 10% kept") {
    const double n = static_cast<double>(batch * words);
    const double chosen = selected.sum().item<double>();
    CHECK(chosen / n == Approx(0.5).margin(0.01));
    const double masked = m.masked.sum().item<double>();
    const double changed = (selected & ~m.masked & (m.ids != ids)).sum().item<double>();
    const double kept = (selected & ~m.masked & (m.ids == ids)).sum().item<double>();
    CHECK(masked / chosen == Approx(0.8).margin(0.01));
    // A random replacement equals the original with probability 1/998: counted as kept.
    CHECK(changed / chosen == Approx(0.1).margin(0.01));
    CHECK(kept / chosen == Approx(0.1).margin(0.01));
    CHECK(torch::equal(m.targets.index({selected}), ids.index({selected})));
    CHECK_FALSE((m.masked & ~selected).any().item<bool>());
    const at::Tensor random = m.ids.index({selected & ~m.masked});
    CHECK_FALSE(((random == vocab.sot_id) | (random == vocab.eot_id)).any().item<bool>());
  }
  SECTION("configurable ratios and seeded") {
    TextMasker none(0.0, 0.8, 0.1, vocab, 5);
    CHECK_FALSE((none(ids).targets != MaskedText::kIgnore).any().item<bool>());
    TextMasker same(0.5, 0.8, 0.1, vocab, 5);
    CHECK(torch::equal(same(ids).targets, m.targets));
    CHECK_THROWS_WITH(TextMasker(0.5, 0.8, 0.3, vocab, 5), Catch::Contains("model.mask_token_prob"));
  }
  SECTION("captions without EOT are rejected") {
    CHECK_THROWS_WITH(masker(torch::zeros({2, 8}, torch::kLong)), Catch::Contains("EOT"));
  }
}

TEST_CASE("temperature: init 0.01, logit scale clamped at 100 after a step, learnable at the bound", "[model]") {
  ModelOptions o = small_options();
  VideoTextModel model(o);
  CHECK(std::exp(model->logit_scale.item<double>()) == Approx(100.0));
  {
    torch::NoGradGuard no_grad;
    model->logit_scale.fill_(std::log(1000.0));
  }
  model->clamp_logit_scale();  // what the training step does after the optimizer
  CHECK(std::exp(model->logit_scale.item<double>()) == Approx(100.0));

  // At the bound (CLIP's ln(100), a hair above 100 in float32), a loss that prefers a higher
  // temperature must move it: a clamp inside the forward passed zero gradient here.
  {
    torch::NoGradGuard no_grad;
    model->logit_scale.fill_(std::log(100.0));
  }
  model->zero_grad();
  torch::manual_seed(3);
  const at::Tensor video = torch::randn({6, 8}), text = torch::randn({6, 8});  // unrelated pairs
  const auto local = make_single_worker_collective();
  video_text_contrastive_loss(video, text, logit_scale_for_loss(model->logit_scale, 1), *local).backward();
  REQUIRE(model->logit_scale.grad().defined());
  CHECK(model->logit_scale.grad().item<double>() > 0.0);  // descent lowers the scale: a higher temperature
  torch::optim::SGD sgd({model->logit_scale}, torch::optim::SGDOptions(0.1));
  const double before = model->logit_scale.item<double>();
  sgd.step();
  model->clamp_logit_scale();
  CHECK(model->logit_scale.item<double>() < before);
  {
    torch::NoGradGuard no_grad;
    model->logit_scale.fill_(std::log(20.0));
  }
  model->zero_grad();
  const at::Tensor s = logit_scale_for_loss(model->logit_scale, 1);
  CHECK(s.item<double>() == Approx(20.0));
  s.backward();
  CHECK(model->logit_scale.grad().item<double>() == Approx(20.0));  // d exp(x)/dx
}

TEST_CASE("gathered features: gradients flow into the local slice only", "[model]") {
  torch::manual_seed(0);
  const at::Tensor v_all = torch::randn({6, 8}), t_all = torch::randn({6, 8});
  const at::Tensor scale = torch::tensor(10.0);

  // One worker on the global batch.
  at::Tensor v_ref = v_all.clone().requires_grad_(true), t_ref = t_all.clone().requires_grad_(true);
  auto single = make_single_worker_collective();
  const at::Tensor loss_ref = video_text_contrastive_loss(v_ref, t_ref, scale, *single);
  loss_ref.backward();

  for (const int rank : {0, 1}) {
    SECTION("rank " + std::to_string(rank)) {
      const int64_t begin = rank * 3, other_begin = (1 - rank) * 3;
      at::Tensor v = v_all.narrow(0, begin, 3).clone().requires_grad_(true);
      at::Tensor t = t_all.narrow(0, begin, 3).clone().requires_grad_(true);
      namespace F = torch::nn::functional;
      const auto unit = F::NormalizeFuncOptions().dim(1);
      // The fake collective returns the other rank's (normalised) rows as constants.
      FakePair v_group(rank, F::normalize(v_all.narrow(0, other_begin, 3), unit));
      const at::Tensor gathered = v_group.all_gather_with_grad(v);
      CHECK(gathered.size(0) == 6);
      gathered.sum().backward();
      CHECK(torch::allclose(v.grad(), torch::ones_like(v)));

      // The loss on gathered features equals the global loss, and the local gradient equals
      // the global gradient's slice.
      v.mutable_grad() = at::Tensor();
      class Both final : public Collective {
       public:
        Both(int r, at::Tensor ov, at::Tensor ot) : r_(r), ov_(std::move(ov)), ot_(std::move(ot)) {}
        int rank() const override { return r_; }
        int world_size() const override { return 2; }
        at::Tensor all_gather(const at::Tensor& local) override {
          const at::Tensor& other = calls_++ == 0 ? ov_ : ot_;
          return r_ == 0 ? at::cat({local, other}) : at::cat({other, local});
        }
        void all_reduce_sum(at::Tensor&) override {}
        void broadcast(at::Tensor&, int) override {}
        void barrier() override {}

       private:
        int r_;
        at::Tensor ov_, ot_;
        int calls_ = 0;
      } group(rank, F::normalize(v_all.narrow(0, other_begin, 3), unit), F::normalize(t_all.narrow(0, other_begin, 3), unit));
      const at::Tensor loss = video_text_contrastive_loss(v, t, scale, group);
      CHECK(loss.item<double>() == Approx(loss_ref.item<double>()).epsilon(1e-6));
      loss.backward();
      CHECK(torch::allclose(v.grad(), v_ref.grad().narrow(0, begin, 3), 1e-5, 1e-6));
      CHECK(torch::allclose(t.grad(), t_ref.grad().narrow(0, begin, 3), 1e-5, 1e-6));
    }
  }
}

TEST_CASE("frozen text tower gets no gradient but the [MASK] embedding trains; parameter groups", "[model]") {
  ModelOptions o = small_options();
  o.freeze_text = true;
  VideoTextModel model(o);
  model->train();
  auto single = make_single_worker_collective();
  const at::Tensor video = torch::randint(0, 256, {2, 4, 32, 32, 3}, torch::kByte);
  model->forward(video, captions(2, 12, o.vocab, 8), *single).total.backward();
  for (const auto& item : model->named_parameters()) {
    INFO(item.key());
    if (item.key() == "text.mask_embedding") {
      REQUIRE(item.value().grad().defined());  // MLM masks tokens here, so it has a gradient
      CHECK(item.value().grad().abs().sum().item<double>() > 0);
    } else if (item.key().rfind("text.", 0) == 0) {
      CHECK_FALSE(item.value().grad().defined());
    } else if (item.key() != "visual.temporal_embedding") {
      CHECK(item.value().grad().defined());
    }
  }
  const ParamGroups groups = model->param_groups();
  size_t trainable = 0;
  for (const auto& p : model->parameters()) trainable += p.requires_grad() ? 1 : 0;
  CHECK(groups.decay.size() + groups.no_decay.size() == trainable);
  for (const at::Tensor& p : groups.decay) CHECK(p.dim() >= 2);
  bool scale_in_no_decay = false;
  for (const at::Tensor& p : groups.no_decay) scale_in_no_decay |= p.is_same(model->logit_scale);
  CHECK(scale_in_no_decay);
}

TEST_CASE("bad inputs are rejected with the expected shape", "[model]") {
  ModelOptions o = small_options();
  VideoTextModel model(o);
  auto single = make_single_worker_collective();
  CHECK_THROWS_WITH(normalize_video(torch::zeros({2, 4, 32, 32, 3})), Catch::Contains("uint8 [B, T, H, W, 3]"));
  CHECK_THROWS_WITH(model->visual->forward(torch::zeros({2, 4, 3, 48, 48})), Catch::Contains("[B, T, 3, 32, 32]"));
  CHECK_THROWS_WITH(model->text->forward(torch::zeros({2, 40}, torch::kLong)), Catch::Contains("context_length"));
  CHECK_THROWS_WITH(model->text->forward(torch::zeros({2, 8}, torch::kLong)), Catch::Contains("EOT"));
  CHECK_THROWS_WITH(model->forward(torch::zeros({2, 4, 32, 32, 3}, torch::kByte), captions(3, 12, o.vocab, 4), *single),
                    Catch::Contains("B = 2"));
}

TEST_CASE("normalize_video applies CLIP's mean and std per channel", "[model]") {
  at::Tensor video = torch::zeros({1, 1, 2, 2, 3}, torch::kByte);
  video.select(4, 0).fill_(255);
  const at::Tensor x = normalize_video(video);
  REQUIRE(x.sizes() == (std::vector<int64_t>{1, 1, 3, 2, 2}));
  const PixelNorm n;
  CHECK(x[0][0][0][0][0].item<double>() == Approx((1.0 - n.mean[0]) / n.std[0]));
  CHECK(x[0][0][2][1][1].item<double>() == Approx(-n.mean[2] / n.std[2]));
}

}  // namespace harvest
