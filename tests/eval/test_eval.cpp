// The eval library below the CLI: what a checkpoint must be to be evaluated, WiSE-FT averaging,
// eval-set formats and their rejections, and the batched video pipeline.
#include <filesystem>
#include <nlohmann/json.hpp>

#include "checkpoint/reader.hpp"
#include "checkpoint/writer.hpp"
#include "core/error.hpp"
#include "dataloader/synth.hpp"
#include "eval/embedder.hpp"
#include "eval/eval_set.hpp"
#include "eval/model_file.hpp"
#include "eval/video_embedding.hpp"
#include "eval/wise_ft.hpp"
#include "model/tokenizer/bpe_learner.hpp"
#include "model/tokenizer/gzip_file.hpp"
#include "model/tokenizer/tokenizer.hpp"
#include "worker/checkpoint_state.hpp"
#include "tests/support/run.hpp"
#include "tests/support/torch_catch.hpp"
#include "tests/tokenizer/support.hpp"

using namespace harvest;
using harvest::test::ScratchDir;
using harvest::test::write_file;
namespace ck = harvest::checkpoint;

namespace {

// A small BPE vocabulary learned here (the tests need no outside files), removed at exit.
struct TestVocab {
  ScratchDir dir{"eval-vocab"};
  std::string path = dir.file("vocab.txt.gz");
  TestVocab() {
    tokenizer::BpeLearner learner;
    for (int i = 0; i < 4; ++i)
      for (const char* text : {"a red square moves left", "two blue circles rise slowly",
                               "a green triangle falls on a striped background"})
        learner.add_text(text);
    tokenizer::write_gzip_atomic(path, tokenizer::format_merges(learner.learn(600), "eval tests"));
  }
};

const std::string& test_vocab() {
  static const TestVocab vocab;
  return vocab.path;
}

ModelOptions small_model(uint64_t seed, int64_t width = 64) {
  ModelOptions o = preset_options("tiny");
  o.embed_dim = 32;
  o.vision.width = width;
  o.vision.layers = 1;
  o.vision.heads = 2;
  o.vision.image_size = 32;
  o.vision.frames = 2;
  o.text.width = 64;
  o.text.layers = 1;
  o.text.heads = 2;
  o.text.context_length = 16;
  o.fusion_layers = 1;
  const tokenizer::Tokenizer tok = tokenizer::Tokenizer::load(test_vocab());
  o.vocab = VocabInfo{tok.vocab_size(), tok.sot_id(), tok.eot_id()};
  o.seed = seed;
  return o;
}

// The model file's records, with `drop` left out and `extra` added.
void rewrite(const std::string& from, const std::string& to, const std::string& drop,
             const std::string& extra) {
  const ck::Snapshot all = ck::CheckpointReader(from).read_all();
  ck::Snapshot out;
  out.meta = all.meta;
  for (const ck::Record& r : all.records())
    if (r.path != drop) out.add_copy(r.path, r.dtype, r.shape, r.bytes.data());
  if (!extra.empty()) {
    const float value = 1.0f;
    out.add_copy(extra, ck::DType::F32, {1}, &value);
  }
  ck::write_checkpoint_file(out, to);
}

}  // namespace

TEST_CASE("a checkpoint with a missing or an unexpected tensor is refused", "[eval]") {
  const ScratchDir dir("eval-refuse");
  VideoTextModel model(small_model(1));
  const std::string good = dir.file("model.h5");
  eval::write_model_file(*model, test_vocab(), "", good);
  const eval::LoadedModel loaded = eval::load_model_file(good);
  CHECK(loaded.step == 0);
  CHECK(loaded.file == good);

  rewrite(good, dir.file("extra.h5"), "", "model/visual/extra_head");
  CHECK_THROWS_WITH(
      eval::load_model_file(dir.file("extra.h5")),
      Catch::Contains("unexpected model/visual/extra_head") && Catch::Contains("extra.h5"));
  rewrite(good, dir.file("missing.h5"), "model/visual/proj", "");
  CHECK_THROWS_WITH(eval::load_model_file(dir.file("missing.h5")),
                    Catch::Contains("missing model/visual/proj") && Catch::Contains("missing.h5"));
}

// Initialising from weights trained at another resolution or frame count (model.init): the
// position grid is resampled bicubically (CLS row kept) and the temporal table linearly, compared
// with PyTorch's F.interpolate reading the same file with h5py.
TEST_CASE("weights for another image size or frame count are resampled on load", "[eval]") {
  const ScratchDir dir("eval-resize");
  ModelOptions small = small_model(3);
  small.vision.image_size = 48;  // 3 x 3 patches of 16
  VideoTextModel from(small);
  {
    at::NoGradGuard no_grad;
    from->visual->temporal_embedding.normal_(0, 1);
  }
  const std::string file = dir.file("from.h5");
  eval::write_model_file(*from, test_vocab(), "", file);

  ModelOptions large = small;
  large.vision.image_size = 80;  // 5 x 5
  large.vision.frames = 5;
  large.seed = 4;
  VideoTextModel to(large);
  load_model_weights(file, *to);

  const std::string script = dir.file("resize.py");
  write_file(script, R"(import json, sys
import h5py, torch
import torch.nn.functional as F
with h5py.File(sys.argv[1], "r") as f:
    pos = torch.tensor(f["model/visual/positional_embedding"][()])
    tem = torch.tensor(f["model/visual/temporal_embedding"][()])
w = pos.shape[1]
grid = pos[1:].t().reshape(1, w, 3, 3)
grid = F.interpolate(grid, size=(5, 5), mode="bicubic", align_corners=False).reshape(w, 25).t()
tem = F.interpolate(tem.t().unsqueeze(0), size=5, mode="linear", align_corners=False)[0].t()
print(json.dumps({"pos": torch.cat([pos[:1], grid]).tolist(), "temporal": tem.tolist()}))
)");
  const auto ref = test::run(std::string(HARVEST_PYTHON) + " '" + script + "' '" + file + "'");
  REQUIRE(ref.exit_code == 0);
  const auto golden = nlohmann::json::parse(ref.output.substr(ref.output.find('{')));
  auto tensor_of = [](const nlohmann::json& rows) {
    std::vector<float> flat;
    for (const auto& row : rows)
      for (const auto& v : row) flat.push_back(v.get<float>());
    return torch::tensor(flat).reshape({static_cast<int64_t>(rows.size()), -1});
  };
  const at::Tensor pos = to->visual->positional_embedding.detach();
  REQUIRE(pos.sizes() == at::IntArrayRef({26, 64}));
  CHECK(torch::equal(pos[0], from->visual->positional_embedding.detach()[0]));
  CHECK(torch::allclose(pos, tensor_of(golden["pos"]), 1e-5, 1e-5));
  CHECK(torch::allclose(to->visual->temporal_embedding.detach(), tensor_of(golden["temporal"]),
                        1e-5, 1e-5));
  // Everything else is copied unchanged.
  CHECK(torch::equal(to->visual->conv1->weight, from->visual->conv1->weight));
  CHECK(torch::equal(to->text->token_embedding->weight, from->text->token_embedding->weight));

  // A training checkpoint (exact resume) never resizes: another size is a different model.
  ModelOptions other = small;
  other.vision.image_size = 64;
  VideoTextModel mismatched(other);
  torch::optim::AdamW adamw(mismatched->parameters());
  CHECK_THROWS_WITH(restore_training_state(file, *mismatched, adamw),
                    Catch::Contains("model/visual/positional_embedding: shape [10, 64]"));
}

TEST_CASE("WiSE-FT averages every tensor but the temporal embedding", "[eval]") {
  VideoTextModel trained(small_model(1)), base(small_model(2));
  {
    torch::NoGradGuard no_grad;
    trained->visual->temporal_embedding.fill_(0.5);
  }
  const at::Tensor proj_t = trained->visual->proj.clone(), proj_b = base->visual->proj.clone();
  const at::Tensor temporal = trained->visual->temporal_embedding.clone();
  const at::Tensor scale_t = trained->logit_scale.clone(), scale_b = base->logit_scale.clone();
  eval::wise_ft_average(*trained, *base, 0.25, "base.h5");
  CHECK(torch::allclose(trained->visual->proj, 0.75 * proj_t + 0.25 * proj_b));
  CHECK(torch::allclose(trained->logit_scale, 0.75 * scale_t + 0.25 * scale_b));
  CHECK(torch::equal(trained->visual->temporal_embedding, temporal));

  VideoTextModel wider(small_model(3, 128));
  const at::Tensor before = trained->visual->proj.clone();
  CHECK_THROWS_WITH(eval::wise_ft_average(*trained, *wider, 0.5, "wide.h5"),
                    Catch::Contains("wide.h5") && Catch::Contains("visual.proj: shape"));
  CHECK(torch::equal(trained->visual->proj, before));  // nothing changed
  CHECK_THROWS_WITH(eval::wise_ft_average(*trained, *base, 1.5, "base.h5"),
                    Catch::Contains("[0, 1]"));
}

TEST_CASE("retrieval sets: every caption a query or the first one only", "[eval]") {
  const ScratchDir dir("eval-sets");
  const std::string m = dir.file("test.jsonl");
  write_file(m, R"({"video": "a.mp4", "captions": ["a one", "a two", "a three"]})"
                "\n"
                R"({"video": "b.mp4", "caption": "b one", "start": 1, "end": 3})"
                "\n");
  const eval::RetrievalSet all = eval::load_retrieval_set(m, "", eval::CaptionUse::All);
  CHECK(all.captions == std::vector<std::string>{"a one", "a two", "a three", "b one"});
  CHECK(all.text_to_video == std::vector<int64_t>{0, 0, 0, 1});
  CHECK(all.min_per_video == 1);
  CHECK(all.max_per_video == 3);
  CHECK(all.videos[1].path == (dir.path() / "b.mp4").string());
  CHECK(*all.videos[1].start == 1.0);
  const eval::RetrievalSet first = eval::load_retrieval_set(m, "", eval::CaptionUse::First);
  CHECK(first.captions == std::vector<std::string>{"a one", "b one"});
  CHECK(first.captions_in_manifest == 4);

  // Rows naming the same clip are one video with all their captions.
  write_file(dir.file("rows.jsonl"),
             R"({"video": "a.mp4", "caption": "a one"})"
             "\n"
             R"({"video": "b.mp4", "caption": "b one"})"
             "\n"
             R"({"video": "a.mp4", "caption": "a two"})"
             "\n"
             R"({"video": "a.mp4", "caption": "a later", "start": 4, "end": 6})"
             "\n");
  const eval::RetrievalSet rows =
      eval::load_retrieval_set(dir.file("rows.jsonl"), "", eval::CaptionUse::All);
  CHECK(rows.videos.size() == 3);
  CHECK(rows.merged_rows == 1);
  CHECK(rows.captions == std::vector<std::string>{"a one", "a two", "b one", "a later"});
  CHECK(rows.text_to_video == std::vector<int64_t>{0, 0, 1, 2});

  write_file(dir.file("labels_only.jsonl"), R"({"video": "a.mp4", "label": "x"})"
                                            "\n");
  CHECK_THROWS_WITH(
      eval::load_retrieval_set(dir.file("labels_only.jsonl"), "", eval::CaptionUse::All),
      Catch::Contains("labels_only.jsonl:1:caption"));
}

TEST_CASE("classification sets: class file order and templates", "[eval]") {
  const ScratchDir dir("eval-classes");
  const std::string m = dir.file("k.jsonl");
  write_file(m, R"({"video": "a.mp4", "label": "left"})"
                "\n"
                R"({"video": "b.mp4", "label": "up"})"
                "\n");
  write_file(dir.file("classes.txt"), "up\n\ndown\nleft\r\nright\n");
  write_file(dir.file("templates.txt"), "a video of {}.\nsomething moving {}\n");
  const eval::ClassificationSet set =
      eval::load_classification_set(m, "", dir.file("classes.txt"), dir.file("templates.txt"));
  CHECK(set.classes == std::vector<std::string>{"up", "down", "left", "right"});
  CHECK(set.labels == std::vector<int64_t>{2, 0});
  CHECK(set.templates.size() == 2);

  const eval::ClassificationSet from_manifest = eval::load_classification_set(m, "", "", "");
  CHECK(from_manifest.classes == std::vector<std::string>{"left", "up"});
  CHECK(from_manifest.templates == std::vector<std::string>{"{}"});

  write_file(dir.file("few.txt"), "up\ndown\n");
  CHECK_THROWS_WITH(
      eval::load_classification_set(m, "", dir.file("few.txt"), ""),
      Catch::Contains("k.jsonl:1:label: 'left' is not a class of") && Catch::Contains("few.txt"));
  write_file(dir.file("twice.txt"), "up\nup\n");
  CHECK_THROWS_WITH(eval::load_classification_set(m, "", dir.file("twice.txt"), ""),
                    Catch::Contains("twice.txt:2: class 'up' is listed twice"));
  write_file(dir.file("bad_templates.txt"), "a video of {}\nno placeholder\n");
  CHECK_THROWS_WITH(eval::load_classification_set(m, "", "", dir.file("bad_templates.txt")),
                    Catch::Contains("bad_templates.txt:2: a template needs exactly one {}"));
}

TEST_CASE("multiple-choice manifests: format and rejections", "[eval]") {
  const ScratchDir dir("eval-mcqa");
  const std::string m = dir.file("mc.jsonl");
  write_file(
      m,
      R"({"video": "a.mp4", "candidates": ["x", "y", "z"], "answer": 2})"
      "\n\n"
      R"({"video": "/abs/b.mp4", "candidates": ["p", "q", "r"], "answer": 0, "start": 0.5, "end": 2})"
      "\n");
  const eval::McqaSet set = eval::load_mcqa_set(m, "");
  CHECK(set.answers == std::vector<int64_t>{2, 0});
  CHECK(set.videos[0].path == (dir.path() / "a.mp4").string());
  CHECK(set.videos[1].path == "/abs/b.mp4");
  CHECK(set.videos[1].line == 3);

  auto rejects = [&](const std::string& line, const std::string& message) {
    write_file(dir.file("bad.jsonl"), R"({"video": "a.mp4", "candidates": ["x", "y"], "answer": 0})"
                                      "\n" +
                                          line + "\n");
    CHECK_THROWS_WITH(eval::load_mcqa_set(dir.file("bad.jsonl"), ""), Catch::Contains(message));
  };
  rejects(R"({"video": "b.mp4", "candidates": ["x", "y"], "answer": 2})",
          "bad.jsonl:2:answer: 2 is not an index");
  rejects(R"({"video": "b.mp4", "candidates": ["x", "y", "z"], "answer": 0})",
          "bad.jsonl:2:candidates: 3 candidates");
  rejects(R"({"video": "b.mp4", "candidates": ["x", "y"], "answer": 0, "caption": "c"})",
          "bad.jsonl:2:caption: unknown field");
  rejects(R"({"video": "b.mp4", "candidates": ["x", "y"]})", "bad.jsonl:2:answer: missing");
  rejects(R"({"video": "b.mp4", "candidates": ["x"], "answer": 0})",
          "bad.jsonl:2:candidates: expected an array");
  rejects(R"(["b.mp4"])", "bad.jsonl:2: not a JSON object");
}

TEST_CASE("video embeddings do not depend on batch size or decode threads", "[eval]") {
  const ScratchDir dir("eval-videos");
  data::SynthOptions synth;
  synth.out_dir = dir.path().string();
  synth.clips = 5;
  synth.size = 32;
  synth.frames = 4;
  synth.progress = false;
  synth.held_out_triples = 1;
  std::vector<eval::EvalVideo> videos;
  for (const data::SynthClip& c : data::write_synth_dataset(synth))
    videos.push_back(eval::EvalVideo{(dir.path() / c.video).string(), {}, {}, c.index + 1});
  VideoTextModel model(small_model(1));
  model->eval();
  eval::VideoEmbedOptions o;
  o.frames = 3;
  o.size = 32;
  o.progress = false;
  o.batch_size = 1;
  o.decode_threads = 1;
  eval::VideoEmbedStats stats;
  const at::Tensor one = eval::embed_videos(*model, videos, o, &stats);
  o.batch_size = 2;
  o.decode_threads = 3;
  const at::Tensor batched = eval::embed_videos(*model, videos, o);
  REQUIRE(one.sizes() == std::vector<int64_t>{5, 32});
  CHECK(torch::allclose(one, batched, 1e-5, 1e-6));
  CHECK(torch::allclose(one.norm(2, 1), torch::ones({5}), 1e-5));
  CHECK(stats.clips == 5);

  // A set cancel flag stops the pass before the next batch (a spare worker given a rank).
  std::atomic<bool> cancel{true};
  o.cancel = &cancel;
  CHECK_THROWS_AS(eval::embed_videos(*model, videos, o), eval::Cancelled);
  cancel = false;
  CHECK(torch::allclose(eval::embed_videos(*model, videos, o), one, 1e-5, 1e-6));
  o.cancel = nullptr;

  videos.push_back(eval::EvalVideo{dir.file("nope.mp4"), {}, {}, 9});
  CHECK_THROWS_WITH(eval::embed_videos(*model, videos, o),
                    Catch::Contains("nope.mp4 (manifest line 9): cannot be evaluated"));
}
