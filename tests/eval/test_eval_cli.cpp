// `harvest eval` and `harvest sweep` end to end: synthetic videos, a tiny model trained for four
// steps (checkpoints at steps 2 and 4), every task, the protocol in the JSON, the saved
// embeddings re-scored by an independent reader (h5py + numpy), bad input refused with the file
// named, and a sweep that a second run finds complete.
#include <signal.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "tests/coordinator/process.hpp"
#include "tests/support/run.hpp"
#include "tests/tokenizer/support.hpp"

using harvest::test::run;
using harvest::test::ScratchDir;
using harvest::test::write_file;
namespace fs = std::filesystem;

namespace {

const std::string kHarvest = std::string(HARVEST_EXE) + " --log-level warn";
// Real prompt templates (28 of them) when the shared labels are there.
const std::string kSharedTemplates =
    HARVEST_SOURCE_DIR "/../shared/labels/kinetics700_templates.txt";

// Rewrites the [train] steps line of a run's config.toml (the sweep's "final step").
void set_train_steps(const std::string& config_file, int64_t steps) {
  std::ifstream in(config_file);
  std::string text, line, section;
  while (std::getline(in, line)) {
    if (!line.empty() && line[0] == '[') section = line;
    if (section == "[train]" && line.rfind("steps = ", 0) == 0)
      line = "steps = " + std::to_string(steps);
    text += line + "\n";
  }
  in.close();
  std::ofstream(config_file) << text;
}

// Records in a sweep's results.json (0 while it does not exist yet or is being replaced).
size_t sweep_records(const std::string& results_json) {
  try {
    std::ifstream in(results_json);
    if (!in) return 0;
    return nlohmann::json::parse(in)["records"].size();
  } catch (const std::exception&) {
    return 0;
  }
}

bool wait_until(const std::function<bool()>& done, std::chrono::seconds limit) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() > end) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return true;
}

nlohmann::json last_json_line(const std::string& output) {
  const size_t end = output.find_last_not_of('\n');
  const size_t begin = output.rfind('\n', end);
  return nlohmann::json::parse(output.substr(begin == std::string::npos ? 0 : begin + 1, end + 1));
}

nlohmann::json run_json(const std::string& command) {
  const auto r = run(command);
  INFO(command);
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  return last_json_line(r.output);
}

// Multiple-choice questions from a retrieval manifest: each video's first caption among the first
// captions of the next two videos, the right one at position (i mod 3).
void write_mcqa_manifest(const std::string& from, const std::string& to) {
  std::ifstream in(from);
  std::vector<nlohmann::json> rows;
  for (std::string line; std::getline(in, line);) rows.push_back(nlohmann::json::parse(line));
  REQUIRE(rows.size() >= 3);
  std::ofstream out(to);
  for (size_t i = 0; i < rows.size(); ++i) {
    std::vector<std::string> c = {rows[(i + 1) % rows.size()]["captions"][0],
                                  rows[(i + 2) % rows.size()]["captions"][0]};
    c.insert(c.begin() + static_cast<long>(i % 3), rows[i]["captions"][0].get<std::string>());
    out << nlohmann::json{{"video", rows[i]["video"]}, {"candidates", c}, {"answer", i % 3}}.dump()
        << "\n";
  }
}

// The metrics again from saved embeddings, by h5py and numpy alone, with the pessimistic tie rule:
// retrieval "t2v R@1, t2v mean rank, videos, texts"; classification "top-1, top-5, videos,
// classes"; mcqa "accuracy, questions".
std::vector<double> recompute(const std::string& task, const std::string& h5) {
  const std::string script = fs::path(h5).replace_extension(".py").string();
  write_file(script, R"(import sys, h5py, numpy as np
task, f = sys.argv[1], h5py.File(sys.argv[2], "r")
video, text = f["video"][()], f["text"][()]
assert video.dtype == np.float32 and text.shape[1] == video.shape[1]
assert np.allclose(np.linalg.norm(video, axis=1), 1, atol=1e-5)
assert np.allclose(np.linalg.norm(text, axis=1), 1, atol=1e-5)
def rank(row, right):  # 1 + wrong candidates scoring >= the right one
    return 1 + int((np.delete(row, right) >= row[right]).sum())
if task == "retrieval":
    owner = f["text_to_video"][()]
    sim = text @ video.T
    ranks = np.array([rank(sim[t], owner[t]) for t in range(len(owner))])
    out = [100.0 * (ranks <= 1).mean(), ranks.mean(), len(video), len(text)]
elif task == "classification":
    labels = f["labels"][()]
    sim = video @ text.T
    ranks = np.array([rank(sim[n], labels[n]) for n in range(len(labels))])
    out = [100.0 * (ranks <= 1).mean(), 100.0 * (ranks <= 5).mean(), len(video), len(text)]
else:
    owner, answer = f["text_to_video"][()], f["answer"][()]
    k = len(owner) // len(video)
    assert (owner == np.repeat(np.arange(len(video)), k)).all()
    scores = (text.reshape(len(video), k, -1) * video[:, None, :]).sum(-1)
    out = [100.0 * np.mean([rank(scores[n], answer[n]) == 1 for n in range(len(video))]), len(video)]
print(" ".join("%.6f" % v for v in out))
)");
  const auto r = run(harvest::test::kPython + " " + script + " " + task + " " + h5);
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  std::istringstream in(r.output);
  std::vector<double> values;
  for (double v = 0; in >> v;) values.push_back(v);
  return values;
}

}  // namespace

TEST_CASE("harvest eval and sweep: tasks protocol embeddings and a resumable sweep",
          "[eval][cli]") {
  const ScratchDir dir("eval-cli");
  const std::string d = dir.path().string();
  REQUIRE(
      run(kHarvest + " data synth --out " + d + "/data --clips 40 --seed 3 --size 32 --frames 4")
          .exit_code == 0);
  REQUIRE(run(kHarvest + " data vocab --manifest " + d + "/data/train.jsonl --size 700 --out " + d +
              "/vocab.txt.gz")
              .exit_code == 0);
  const auto trained = run(
      kHarvest + " train --set data.train_manifest=" + d +
      "/data/train.jsonl --set model.vocab=" + d +
      "/vocab.txt.gz --set model.image_size=32 --set model.frames=4 --set model.context_length=16 "
      "--set data.batch_size=4 --set checkpoint.every_steps=2 --set train.device=cpu --set "
      "train.steps=4 "
      "--set eval.manifest=" +
      d + "/data/test.jsonl --set logging.run_dir=" + d + "/run");
  INFO(trained.output);
  REQUIRE(trained.exit_code == 0);
  const std::string test = d + "/data/test.jsonl";
  const std::string eval =
      kHarvest + " eval --checkpoint " + d + "/run/checkpoints --threads 2 --no-progress ";

  {  // retrieval: metrics, protocol and embeddings an independent reader re-scores
    const auto r = run(eval + "--task retrieval --manifest " + test + " --dsl --save-embeddings " +
                       d + "/emb/retrieval.h5 --json");
    INFO(r.output);
    REQUIRE(r.exit_code == 0);
    CHECK_THAT(r.output, Catch::Contains("harvest eval: retrieval on") && Catch::Contains("R@1") &&
                             Catch::Contains("dual-softmax") &&
                             Catch::Contains("ties        pessimistic"));
    const nlohmann::json j = last_json_line(r.output);
    for (const char* dir_name : {"t2v", "v2t"}) {
      for (const char* k : {"r1", "r5", "r10", "medr", "meanr"}) {
        CHECK(j[dir_name].contains(k));
        CHECK(j["dsl"][dir_name].contains(k));
      }
    }
    const nlohmann::json& p = j["protocol"];
    const int64_t videos = p["dataset"]["videos"];
    CHECK(videos >= 3);
    CHECK(p["dataset"]["split"] == "test");
    CHECK(p["captions"]["per_video_max"] == 3);
    CHECK(p["captions"]["use"] == "all");
    CHECK(p["dataset"]["texts"] == 3 * videos);
    CHECK(p["frames"] == 4);
    CHECK(p["input"]["size"] == 32);
    CHECK(p["scoring"] == nlohmann::json::array({"cosine", "dual-softmax"}));
    CHECK(p["wise_ft"]["alpha"] == 0.0);
    CHECK(p["checkpoint"]["step"] == 4);
    CHECK_THAT(p["ties"].get<std::string>(), Catch::Contains("pessimistic"));
    CHECK(j["timing"]["clips_per_s"].get<double>() > 0);
    // Chance for 3 captions per video: R@1 about 100 / videos; a 4-step model is not far from it.
    CHECK(j["t2v"]["medr"].get<double>() >= 1.0);

    const std::vector<double> again = recompute("retrieval", d + "/emb/retrieval.h5");
    REQUIRE(again.size() == 4);
    CHECK(again[0] == Approx(j["t2v"]["r1"].get<double>()).margin(1e-4));
    CHECK(again[1] == Approx(j["t2v"]["meanr"].get<double>()).margin(1e-4));
    CHECK(again[2] == videos);
    CHECK(again[3] == 3 * videos);

    // The run folder means its newest committed checkpoint too.
    const auto from_run = run_json(kHarvest + " eval --checkpoint " + d + "/run --threads 2 " +
                                   "--no-progress --task retrieval --manifest " + test + " --json");
    CHECK(from_run["protocol"]["checkpoint"]["step"] == 4);
    CHECK(from_run["t2v"] == j["t2v"]);

    const auto first = run_json(eval + "--task retrieval --manifest " + test +
                                " --captions first --frames 2 --json");
    CHECK(first["protocol"]["captions"]["use"] == "first");
    CHECK(first["protocol"]["dataset"]["texts"] == videos);
    CHECK(first["protocol"]["frames"] == 2);
    CHECK_FALSE(first.contains("dsl"));
  }

  {  // classification with a template ensemble and multiple-choice QA
    write_file(d + "/motions.txt", "up\ndown\nleft\nright\n");
    std::string templates = kSharedTemplates;
    int64_t template_count = 28;
    if (!fs::exists(templates)) {
      templates = d + "/templates.txt";
      write_file(templates, "a video of something moving {}.\nshapes going {}\n{}\n");
      template_count = 3;
    }
    const auto c = run_json(eval + "--task classification --manifest " + test + " --labels " + d +
                            "/motions.txt --templates " + templates + " --save-embeddings " + d +
                            "/emb/classes.h5 --json");
    for (const char* k : {"top1", "top5", "mean_class_top1"}) {
      CHECK(c[k].get<double>() >= 0.0);
      CHECK(c[k].get<double>() <= 100.0);
    }
    CHECK(c["top5"] == 100.0);  // 4 classes
    CHECK(c["protocol"]["classes"]["count"] == 4);
    CHECK(c["protocol"]["classes"]["templates"] == template_count);
    const std::vector<double> classes = recompute("classification", d + "/emb/classes.h5");
    REQUIRE(classes.size() == 4);
    CHECK(classes[0] == Approx(c["top1"].get<double>()).margin(1e-4));
    CHECK(classes[1] == Approx(c["top5"].get<double>()).margin(1e-4));
    CHECK(classes[3] == 4);  // one ensembled embedding per class

    write_mcqa_manifest(test, d + "/data/mc.jsonl");
    const auto m = run_json(eval + "--task mcqa --manifest " + d +
                            "/data/mc.jsonl --save-embeddings " + d + "/emb/mc.h5 --json");
    CHECK(m["accuracy"].get<double>() >= 0.0);
    CHECK(m["protocol"]["candidates"]["per_question"] == 3);
    CHECK(m["protocol"]["dataset"]["texts"] == 3 * m["questions"].get<int64_t>());
    const std::vector<double> mc = recompute("mcqa", d + "/emb/mc.h5");
    REQUIRE(mc.size() == 2);
    CHECK(mc[0] == Approx(m["accuracy"].get<double>()).margin(1e-4));
    CHECK(mc[1] == m["questions"].get<double>());

    // WiSE-FT with the step-2 checkpoint as the base.
    const auto w =
        run_json(eval + "--task mcqa --manifest " + d + "/data/mc.jsonl --wise-ft-alpha 0.5 " +
                 "--base-checkpoint " + d + "/run/checkpoints/step-000000000002 --json");
    CHECK(w["protocol"]["wise_ft"]["alpha"] == 0.5);
    CHECK(w["protocol"]["wise_ft"]["base_step"] == 2);
  }

  {  // bad input is refused naming the flag or the file
    auto refused = [&](const std::string& args, int code, const std::string& message) {
      const auto r = run(eval + args);
      INFO(r.output);
      CHECK(r.exit_code == code);
      CHECK_THAT(r.output, Catch::Contains(message));
    };
    refused("--task ranking --manifest " + test, 2, "unknown task 'ranking'");
    refused("--task retrieval --manifest " + test + " --size 64", 2, "takes 32 px input");
    refused("--task mcqa --manifest " + test, 2, "test.jsonl:1:captions: unknown field");
    write_file(d + "/few.txt", "up\n");
    refused("--task classification --manifest " + test + " --labels " + d + "/few.txt", 2,
            "is not a class of");
    refused("--task retrieval --manifest " + test + " --wise-ft-alpha 0.5", 2,
            "needs --base-checkpoint");
    refused("--task retrieval --manifest " + test + " --device tpu", 2, "--device 'tpu'");
    refused("--task retrieval --manifest " + test + " --labels " + d + "/few.txt", 2,
            "--labels/--templates apply to --task classification only");
    write_file(d + "/data/missing.jsonl", R"({"video": "videos/none.mp4", "caption": "x"})"
                                          "\n");
    refused("--task retrieval --manifest " + d + "/data/missing.jsonl", 1,
            "none.mp4 (manifest line 1)");
  }

  {  // sweep: every committed checkpoint once, resumable
    const std::string sweep = kHarvest + " sweep " + d +
                              "/run --threads 2 --no-progress --dsl --task retrieval --task mcqa " +
                              "--manifest " + test + " --manifest " + d + "/data/mc.jsonl";
    const auto first = run_json(sweep);
    CHECK(first["evaluated_steps"] == nlohmann::json::array({2, 2, 4, 4}));
    CHECK(first["already_done"] == 0);
    const auto second = run_json(sweep);
    CHECK(second["evaluated_steps"].empty());
    CHECK(second["already_done"] == 4);

    std::ifstream csv(d + "/run/eval/results.csv");
    std::vector<std::string> lines;
    for (std::string line; std::getline(csv, line);) lines.push_back(line);
    REQUIRE(lines.size() == 5);
    CHECK_THAT(lines[0], Catch::StartsWith("step,checkpoint,task,label,t2v_r1"));
    CHECK(fs::exists(d + "/run/eval/plots/t2v_r1.svg"));
    CHECK(fs::exists(d + "/run/eval/plots/accuracy.svg"));
    CHECK(fs::exists(d + "/run/eval/plots/dsl_t2v_r1.svg"));  // --dsl went to retrieval only
    std::ifstream results(d + "/run/eval/results.json");
    const nlohmann::json all = nlohmann::json::parse(results);
    REQUIRE(all["records"].size() == 4);
    CHECK(all["records"][0]["result"]["protocol"]["checkpoint"]["step"] ==
          all["records"][0]["step"]);

    // Defaults from the run's [eval] section (eval.manifest, tasks = ["retrieval"]).
    const auto defaults =
        run_json(kHarvest + " sweep " + d + "/run --threads 2 --no-progress --out " + d + "/eval2");
    CHECK(defaults["evaluated_steps"] == nlohmann::json::array({2, 4}));

    {  // two sweeps writing one folder at once (say an eval member and a spare worker): both
       // end well and each result is recorded once (the lock is held only to merge a record)
      const std::vector<std::string> argv{HARVEST_EXE, "sweep",         d + "/run", "--threads",
                                          "1",         "--no-progress", "--out",    d + "/shared"};
      harvest::test::ChildProcess a(argv, d + "/concurrent-a.log");
      harvest::test::ChildProcess b(argv, d + "/concurrent-b.log");
      const auto a_exit = a.wait(std::chrono::seconds(300));
      const auto b_exit = b.wait(std::chrono::seconds(300));
      INFO(a.output() << b.output());
      CHECK(a_exit == std::optional<int>(0));
      CHECK(b_exit == std::optional<int>(0));
      CHECK(sweep_records(d + "/shared/results.json") == 2);
    }

    {  // sweep --watch: checkpoints evaluated as they are committed, done after the final step
      const std::string w = d + "/watched";
      fs::copy(d + "/run", w, fs::copy_options::recursive);
      fs::remove_all(w + "/eval");
      set_train_steps(w + "/config.toml", 6);  // steps 2 and 4 committed, 6 still to come
      const std::vector<std::string> watch_argv{HARVEST_EXE, "--log-level", "warn",         "sweep",
                                                w,           "--watch",     "--poll-s",     "0.2",
                                                "--threads", "2",           "--no-progress"};
      harvest::test::ChildProcess watch(watch_argv, d + "/watch.log");
      const std::string results = w + "/eval/results.json";
      REQUIRE(wait_until([&] { return sweep_records(results) == 2; }, std::chrono::seconds(180)));
      CHECK(!watch.wait(std::chrono::milliseconds(500)));  // still watching: step 6 is not there
      const auto more =
          run(kHarvest + " train --config " + w + "/config.toml --set logging.run_dir=" + w);
      INFO(more.output);
      REQUIRE(more.exit_code == 0);
      const auto code = watch.wait(std::chrono::seconds(180));
      INFO(watch.output());
      REQUIRE(code.has_value());
      CHECK(*code == 0);
      CHECK(sweep_records(results) == 3);
      CHECK_THAT(watch.output(), Catch::Contains("\"evaluated_steps\":[6]"));

      // Nothing left to come but no final step either: SIGTERM ends the watch after its pass.
      set_train_steps(w + "/config.toml", 8);
      harvest::test::ChildProcess idle(watch_argv, d + "/idle.log");
      REQUIRE(wait_until([&] { return idle.output().find("watching") != std::string::npos; },
                         std::chrono::seconds(120)));
      idle.kill(SIGTERM);
      const auto stopped = idle.wait(std::chrono::seconds(30));
      INFO(idle.output());
      REQUIRE(stopped.has_value());
      CHECK(*stopped == 0);
      CHECK_THAT(idle.output(),
                 Catch::Contains("stopped by signal 15") && Catch::Contains("3 already done"));
    }

    // A committed checkpoint that no longer verifies is listed as failed; the others still run.
    const fs::path part = dir.path() / "run/checkpoints/step-000000000002/part-00000-of-00001.h5";
    fs::resize_file(part, fs::file_size(part) / 2);
    const auto broken =
        run(kHarvest + " sweep " + d + "/run --threads 2 --no-progress --out " + d + "/eval3");
    INFO(broken.output);
    CHECK(broken.exit_code == 1);
    CHECK_THAT(broken.output, Catch::Contains("failed: step-000000000002"));
    const nlohmann::json partial = nlohmann::json::parse(std::ifstream(d + "/eval3/results.json"));
    REQUIRE(partial["records"].size() == 1);
    CHECK(partial["records"][0]["step"] == 4);
  }
}
