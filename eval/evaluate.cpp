#include "eval/evaluate.hpp"

#include <torch/cuda.h>

#include <cstdio>
#include <filesystem>
#include <sstream>

#include "core/error.hpp"
#include "core/time.hpp"
#include "eval/embedder.hpp"
#include "eval/embedding_file.hpp"
#include "eval/metrics.hpp"
#include "eval/video_embedding.hpp"
#include "eval/wise_ft.hpp"

namespace harvest::eval {

const char* const kTieRule =
    "pessimistic: a candidate scoring equal to the right one ranks ahead of it (a tie counts "
    "against the query)";

using ojson = nlohmann::ordered_json;

at::Device parse_device(const std::string& text) {
  if (text == "auto")
    return torch::cuda::is_available() ? at::Device(at::kCUDA, 0) : at::Device(at::kCPU);
  if (text == "cpu") return at::Device(at::kCPU);
  HARVEST_REQUIRE(text.rfind("cuda", 0) == 0, Usage, "--device '", text,
                  "': expected cpu, cuda, cuda:N or auto");
  std::optional<at::Device> device;
  try {
    device.emplace(text);
  } catch (const std::exception&) {
    fail(ErrorKind::Usage, "--device '", text, "': expected cpu, cuda, cuda:N or auto");
  }
  if (!device->has_index()) device->set_index(0);
  const int64_t visible = static_cast<int64_t>(torch::cuda::device_count());
  HARVEST_REQUIRE(device->index() < visible, Usage, "--device ", text, ": ", visible,
                  " CUDA device(s) visible to this LibTorch");
  return *device;
}

EvalModel load_eval_model(const ModelSpec& spec) {
  const std::optional<std::string> vocab =
      spec.vocab.empty() ? std::nullopt : std::optional<std::string>(spec.vocab);
  const at::Device device = parse_device(spec.device);
  EvalModel m{load_model_file(spec.checkpoint, vocab), spec, 0, device.str()};
  if (spec.wise_ft_alpha > 0) {
    HARVEST_REQUIRE(!spec.base_checkpoint.empty(), Usage, "--wise-ft-alpha ", spec.wise_ft_alpha,
                    " needs --base-checkpoint (the imported CLIP)");
    LoadedModel base = load_model_file(spec.base_checkpoint, vocab);
    HARVEST_REQUIRE(base.options.vision.image_size == m.loaded.options.vision.image_size, Usage,
                    spec.base_checkpoint, ": WiSE-FT base takes ", base.options.vision.image_size,
                    " px input, the trained model ", m.loaded.options.vision.image_size);
    wise_ft_average(*m.loaded.model, *base.model, spec.wise_ft_alpha, base.file.string());
    m.base_step = base.step;
  }
  m.loaded.model->to(device);
  return m;
}

void check_options(const EvalOptions& o) {
  HARVEST_REQUIRE(!o.manifest.empty(), Usage, "--manifest is required");
  HARVEST_REQUIRE(o.frames >= 0 && o.frames <= 64, Usage, "--frames ", o.frames,
                  ": must be in [0, 64]");
  HARVEST_REQUIRE(o.batch_size >= 1, Usage, "--batch-size ", o.batch_size, ": must be >= 1");
  HARVEST_REQUIRE(o.threads >= 1, Usage, "--threads ", o.threads, ": must be >= 1");
  HARVEST_REQUIRE(!o.dsl || o.dsl_scale > 0, Usage, "--dsl-scale ", o.dsl_scale, ": must be > 0");
  if (o.task != Task::Classification)
    HARVEST_REQUIRE(o.classes_file.empty() && o.templates_file.empty(), Usage,
                    "--labels/--templates apply to --task classification only");
  if (o.task != Task::Retrieval)
    HARVEST_REQUIRE(!o.dsl, Usage, "--dsl applies to --task retrieval only");
}

namespace {

Scores to_scores(const at::Tensor& m) {
  const at::Tensor c = m.to(at::kFloat).contiguous();
  Scores s{c.size(0), c.size(1), {}};
  s.values.assign(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
  return s;
}

ojson rank_json(const RankMetrics& m) {
  return ojson{{"r1", m.r1},     {"r5", m.r5},       {"r10", m.r10},
               {"medr", m.medr}, {"meanr", m.meanr}, {"queries", m.queries}};
}

std::string split_name(const std::string& manifest) {
  return std::filesystem::path(manifest).stem().string();
}

// What the model was given: protocol fields shared by every task.
void describe_inputs(ojson& protocol, const EvalModel& model, int64_t frames, int64_t size) {
  protocol["frames"] = frames;
  protocol["sampling"] =
      cat("middle frame of each of ", frames,
          " equal segments of the video (or its start/end span); videos with fewer "
          "frames repeat the last one");
  protocol["input"] = ojson{{"size", size},
                            {"resize", cat("whole frame resized to ", size, "x", size,
                                           " (bicubic, aspect ratio not kept)")},
                            {"normalisation", "CLIP mean/std"}};
  const ModelSpec& spec = model.spec;
  if (spec.wise_ft_alpha > 0)
    protocol["wise_ft"] = ojson{{"alpha", spec.wise_ft_alpha},
                                {"rule", "(1 - alpha) * trained + alpha * base"},
                                {"base", spec.base_checkpoint},
                                {"base_step", model.base_step},
                                {"excluded", ojson::array({kWiseFtExcluded})}};
  else
    protocol["wise_ft"] = ojson{{"alpha", 0.0}};
  protocol["checkpoint"] = ojson{{"path", spec.checkpoint},
                                 {"file", model.loaded.file.string()},
                                 {"step", model.loaded.step},
                                 {"preset", model.loaded.options.preset}};
}

struct Embedded {
  at::Tensor video, text;
  VideoEmbedStats video_stats;
  double text_s = 0;
};

Embedded embed_all(EvalModel& model, const std::vector<EvalVideo>& videos,
                   const std::vector<std::string>& texts, const EvalOptions& o, int64_t frames,
                   int64_t size) {
  Embedded e;
  throw_if_cancelled(o.cancel, "before the text embeddings");
  const Stopwatch text_clock;
  Embedder embedder(model.loaded, EmbedOptions{PixelNorm{}, frames, 1});
  e.text = embedder.texts(texts);
  e.text_s = text_clock.seconds();
  VideoEmbedOptions v;
  v.frames = frames;
  v.size = size;
  v.batch_size = o.batch_size;
  v.decode_threads = o.threads;
  v.progress = o.progress;
  v.label = cat("eval ", task_name(o.task), " step ", model.loaded.step);
  v.cancel = o.cancel;
  e.video = embed_videos(*model.loaded.model, videos, v, &e.video_stats);
  // A diverged checkpoint embeds to NaN/inf; ranking those would report nonsense (NaN ranks first).
  for (const auto& [kind, t] : {std::pair<const char*, const at::Tensor&>{"text", e.text}, {"video", e.video}}) {
    if (t.numel() == 0 || at::isfinite(t).all().item<bool>()) continue;
    const int64_t rows = (~at::isfinite(t)).any(1).sum().item<int64_t>();
    fail(ErrorKind::Runtime, model.loaded.file.string(), ": ", rows, " of ", t.size(0), " ", kind,
         " embeddings are not finite (NaN or infinity): the checkpoint has diverged");
  }
  return e;
}

ojson timing_json(const Embedded& e, const Stopwatch& total, int threads,
                  const std::string& device) {
  return ojson{{"seconds", total.seconds()},
               {"videos", e.video_stats.clips},
               {"video_seconds", e.video_stats.seconds},
               {"clips_per_s", e.video_stats.clips_per_s()},
               {"decode_wait_s", e.video_stats.decode_wait_s},
               {"forward_s", e.video_stats.forward_s},
               {"text_s", e.text_s},
               {"threads", threads},
               {"device", device}};
}

struct Geometry {
  int64_t frames, size;
};

// What one task produces: the record's metrics and protocol, the embeddings, what to save.
struct TaskRun {
  ojson result, protocol;
  Embedded e;
  SavedEmbeddings saved;
};

// Captions against videos: cosine (and dual-softmax) ranks both ways.
void run_retrieval(EvalModel& model, const EvalOptions& o, const Geometry& g, TaskRun& run) {
  const RetrievalSet set = load_retrieval_set(o.manifest, o.root, o.captions);
  run.protocol["dataset"]["videos"] = set.videos.size();
  run.protocol["dataset"]["texts"] = set.captions.size();
  run.protocol["captions"] = ojson{
      {"in_manifest", set.captions_in_manifest},
      {"per_video_min", set.min_per_video},
      {"per_video_max", set.max_per_video},
      {"use", caption_use_name(o.captions)},
      {"rows_merged", set.merged_rows},
      {"queries", set.captions.size()},
      {"rule",
       o.captions == CaptionUse::All
           ? "every caption is a text-to-video query; a video's video-to-text rank is the best "
             "rank among its captions"
           : "only each video's first caption is used (one text query per video)"}};
  run.e = embed_all(model, set.videos, set.captions, o, g.frames, g.size);
  const Scores s = to_scores(at::matmul(run.e.text, run.e.video.t()));
  const RetrievalMetrics cosine = retrieval_metrics(s, set.text_to_video);
  run.result["t2v"] = rank_json(cosine.t2v);
  run.result["v2t"] = rank_json(cosine.v2t);
  ojson scoring = ojson::array({"cosine"});
  if (o.dsl) {
    const RetrievalMetrics t2v =
        retrieval_metrics(dual_softmax_for_t2v(s, o.dsl_scale), set.text_to_video);
    const RetrievalMetrics v2t =
        retrieval_metrics(dual_softmax_for_v2t(s, o.dsl_scale), set.text_to_video);
    run.result["dsl"] = ojson{{"t2v", rank_json(t2v.t2v)}, {"v2t", rank_json(v2t.v2t)}};
    scoring.push_back("dual-softmax");
    run.protocol["dsl_scale"] = o.dsl_scale;
  }
  run.protocol["scoring"] = scoring;
  run.saved.indices["text_to_video"] = set.text_to_video;
}

// Videos against one template-ensembled embedding per class.
void run_classification(EvalModel& model, const EvalOptions& o, const Geometry& g, TaskRun& run) {
  const ClassificationSet set =
      load_classification_set(o.manifest, o.root, o.classes_file, o.templates_file);
  std::vector<std::string> prompts;
  for (const std::string& name : set.classes)
    for (const std::string& t : set.templates) {
      const size_t at = t.find("{}");
      prompts.push_back(t.substr(0, at) + name + t.substr(at + 2));
    }
  run.protocol["dataset"]["videos"] = set.videos.size();
  run.protocol["classes"] =
      ojson{{"count", set.classes.size()},
            {"from", set.classes_file.empty() ? "the manifest's labels, sorted" : set.classes_file},
            {"templates", set.templates.size()},
            {"templates_from",
             set.templates_file.empty() ? "the class name alone ({})" : set.templates_file},
            {"rule",
             "a class's embedding is the mean of its L2-normalised prompt embeddings, "
             "re-normalised; the class with the highest cosine is predicted"}};
  run.e = embed_all(model, set.videos, prompts, o, g.frames, g.size);
  const int64_t c = static_cast<int64_t>(set.classes.size());
  const int64_t k = static_cast<int64_t>(set.templates.size());
  run.e.text =
      torch::nn::functional::normalize(run.e.text.reshape({c, k, -1}).mean(1),
                                       torch::nn::functional::NormalizeFuncOptions().dim(-1));
  const ClassificationMetrics m =
      classification_metrics(to_scores(at::matmul(run.e.video, run.e.text.t())), set.labels);
  run.result["top1"] = m.top1;
  run.result["top5"] = m.top5;
  run.result["mean_class_top1"] = m.mean_class_top1;
  run.result["samples"] = m.samples;
  run.protocol["scoring"] = ojson::array({"cosine"});
  run.saved.indices["labels"] = set.labels;
}

// Each video against its own candidates.
void run_mcqa(EvalModel& model, const EvalOptions& o, const Geometry& g, TaskRun& run) {
  const McqaSet set = load_mcqa_set(o.manifest, o.root);
  const int64_t n = static_cast<int64_t>(set.videos.size());
  const int64_t k = static_cast<int64_t>(set.candidates.front().size());
  std::vector<std::string> texts;
  std::vector<int64_t> owner;
  for (int64_t q = 0; q < n; ++q)
    for (const std::string& c : set.candidates[static_cast<size_t>(q)]) {
      texts.push_back(c);
      owner.push_back(q);
    }
  run.protocol["dataset"]["videos"] = n;
  run.protocol["dataset"]["texts"] = texts.size();
  run.protocol["candidates"] =
      ojson{{"per_question", k},
            {"rule",
             "the candidate with the highest cosine to the video is the answer; a tie with the "
             "right candidate counts as wrong"}};
  run.e = embed_all(model, set.videos, texts, o, g.frames, g.size);
  const at::Tensor per_question =
      (run.e.text.reshape({n, k, -1}) * run.e.video.unsqueeze(1)).sum(-1);
  run.result["accuracy"] = multiple_choice_accuracy(to_scores(per_question), set.answers);
  run.result["questions"] = n;
  run.protocol["scoring"] = ojson::array({"cosine"});
  run.saved.indices["text_to_video"] = owner;
  run.saved.indices["answer"] = set.answers;
}

}  // namespace

ojson evaluate(EvalModel& model, const EvalOptions& o) {
  check_options(o);
  const Stopwatch total;
  const ModelOptions& arch = model.loaded.options;
  const int64_t frames = o.frames > 0 ? o.frames : arch.vision.frames;
  const int64_t size = o.size > 0 ? o.size : arch.vision.image_size;
  HARVEST_REQUIRE(size == arch.vision.image_size, Usage, "--size ", size, ": ",
                  model.spec.checkpoint, " takes ", arch.vision.image_size,
                  " px input (its position embedding is fixed)");

  TaskRun run;
  run.result["task"] = task_name(o.task);
  run.protocol["dataset"] = ojson{{"manifest", o.manifest}, {"split", split_name(o.manifest)}};
  const Geometry g{frames, size};
  if (o.task == Task::Retrieval)
    run_retrieval(model, o, g, run);
  else if (o.task == Task::Classification)
    run_classification(model, o, g, run);
  else
    run_mcqa(model, o, g, run);
  ojson& result = run.result;
  ojson& protocol = run.protocol;
  protocol["ties"] = kTieRule;
  describe_inputs(protocol, model, frames, size);
  result["protocol"] = protocol;
  result["timing"] = timing_json(run.e, total, o.threads, model.device);
  if (!o.save_embeddings.empty()) {
    run.saved.video = run.e.video;
    run.saved.text = run.e.text;
    run.saved.protocol_json = protocol.dump();
    write_embedding_file(run.saved, o.save_embeddings);
    result["embeddings"] = o.save_embeddings;
  }
  return result;
}

namespace {

std::string fixed(double v, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

std::string pad(const std::string& s, size_t width) {
  return s.size() >= width ? s : std::string(width - s.size(), ' ') + s;
}

std::string rank_row(const std::string& scoring, const std::string& direction, const ojson& m) {
  return cat("  ", scoring, std::string(14 - std::min<size_t>(scoring.size(), 13), ' '), direction,
             "  ", pad(fixed(m["r1"].get<double>(), 1), 6), pad(fixed(m["r5"].get<double>(), 1), 7),
             pad(fixed(m["r10"].get<double>(), 1), 7), pad(fixed(m["medr"].get<double>(), 1), 8),
             pad(fixed(m["meanr"].get<double>(), 1), 8), "\n");
}

}  // namespace

std::string format_result(const ojson& r) {
  const ojson& p = r["protocol"];
  const ojson& d = p["dataset"];
  std::ostringstream out;
  out << "harvest eval: " << r["task"].get<std::string>() << " on "
      << d["manifest"].get<std::string>() << " (split " << d["split"].get<std::string>()
      << "): " << d["videos"] << " videos";
  if (d.contains("texts")) out << ", " << d["texts"] << " texts";
  out << "\n";
  const ojson& ck = p["checkpoint"];
  out << "  checkpoint  " << ck["path"].get<std::string>() << " (step " << ck["step"] << ", file "
      << ck["file"].get<std::string>() << ")\n";
  if (p.contains("captions")) {
    const ojson& c = p["captions"];
    const int64_t lo = c["per_video_min"], hi = c["per_video_max"];
    if (c["rows_merged"].get<int64_t>() > 0)
      out << "  rows        " << c["rows_merged"]
          << " manifest rows named an earlier row's clip: merged\n";
    out << "  captions    " << c["in_manifest"] << " in the manifest, "
        << (lo == hi ? std::to_string(lo) : cat(lo, "-", hi)) << " per video; use "
        << c["use"].get<std::string>() << ": " << c["rule"].get<std::string>() << "\n";
  }
  if (p.contains("classes")) {
    const ojson& c = p["classes"];
    out << "  classes     " << c["count"] << " from " << c["from"].get<std::string>() << "; "
        << c["templates"] << " templates from " << c["templates_from"].get<std::string>() << "\n";
  }
  if (p.contains("candidates"))
    out << "  candidates  " << p["candidates"]["per_question"] << " per question; "
        << p["candidates"]["rule"].get<std::string>() << "\n";
  out << "  frames      " << p["frames"] << ": " << p["sampling"].get<std::string>() << "\n";
  out << "  input       " << p["input"]["resize"].get<std::string>() << ", "
      << p["input"]["normalisation"].get<std::string>() << "\n";
  std::string scoring;
  for (const auto& s : p["scoring"])
    scoring += (scoring.empty() ? "" : ", ") + s.get<std::string>();
  if (p.contains("dsl_scale")) scoring += cat(" (scale ", p["dsl_scale"].get<double>(), ")");
  out << "  scoring     " << scoring << "\n";
  const ojson& w = p["wise_ft"];
  if (w["alpha"].get<double>() > 0)
    out << "  WiSE-FT     alpha " << w["alpha"].get<double>() << " with "
        << w["base"].get<std::string>() << " (" << w["rule"].get<std::string>()
        << "; visual.temporal_embedding kept)\n";
  else
    out << "  WiSE-FT     off\n";
  out << "  ties        " << p["ties"].get<std::string>() << "\n\n";

  if (r.contains("t2v")) {
    out << "  scoring       dir     R@1    R@5   R@10    MedR   MeanR\n";
    out << rank_row("cosine", "t2v", r["t2v"]) << rank_row("cosine", "v2t", r["v2t"]);
    if (r.contains("dsl"))
      out << rank_row("dual-softmax", "t2v", r["dsl"]["t2v"])
          << rank_row("dual-softmax", "v2t", r["dsl"]["v2t"]);
  } else if (r.contains("top1")) {
    out << "  top-1 " << fixed(r["top1"].get<double>(), 2) << " %   top-5 "
        << fixed(r["top5"].get<double>(), 2) << " %   mean per-class top-1 "
        << fixed(r["mean_class_top1"].get<double>(), 2) << " %\n";
  } else {
    out << "  accuracy " << fixed(r["accuracy"].get<double>(), 2) << " % over " << r["questions"]
        << " questions\n";
  }
  const ojson& t = r["timing"];
  out << "\n  " << t["videos"] << " videos in " << fixed(t["video_seconds"].get<double>(), 1)
      << " s (" << fixed(t["clips_per_s"].get<double>(), 1) << " clips/s, waiting for decode "
      << fixed(t["decode_wait_s"].get<double>(), 1) << " s), texts "
      << fixed(t["text_s"].get<double>(), 1) << " s, total " << fixed(t["seconds"].get<double>(), 1)
      << " s\n";
  if (r.contains("embeddings"))
    out << "  embeddings  " << r["embeddings"].get<std::string>() << "\n";
  return out.str();
}

}  // namespace harvest::eval
