#include <catch2/catch.hpp>

#include <fstream>

#include "core/config/config.hpp"
#include "core/error.hpp"

using namespace harvest;

namespace {
// Returns the Config error text for a TOML document (empty when it loads).
std::string config_error(const std::string& text, const std::vector<std::string>& overrides = {}) {
  try {
    parse_config(text, "test.toml", overrides);
  } catch (const Error& e) {
    REQUIRE(e.kind() == ErrorKind::Config);
    return e.what();
  }
  return "";
}
}  // namespace

TEST_CASE("defaults follow the recipe", "[core][config]") {
  const Config c = parse_config("", "empty.toml");
  CHECK(c.model.drop_ratio == 0.9);
  CHECK(c.model.text_mask_ratio == 0.5);
  CHECK(c.model.temperature_init == 0.01);
  CHECK(c.model.context_length == 32);
  CHECK(c.train.beta2 == 0.98);
  CHECK(c.train.weight_decay == 0.2);
  CHECK(c.train.min_lr_ratio == 0.01);
  CHECK(c.dist.bucket_mb == 25.0);
  CHECK(c.coordinator.heartbeat_ms == 100);
  // Failure detection under one second by default.
  CHECK(c.coordinator.heartbeat_ms * c.coordinator.miss_limit < 1000);
}

TEST_CASE("valid file sets typed values", "[core][config]") {
  const Config c = parse_config(R"(
[model]
preset = "B/16"
frames = 4
drop_ratio = 0.75
[train]
lr = 1      # integers are accepted for floats
deterministic = true
[eval]
tasks = ["retrieval", "mcqa"]
)",
                                "ok.toml");
  CHECK(c.model.preset == "B/16");
  CHECK(c.model.frames == 4);
  CHECK(c.model.drop_ratio == 0.75);
  CHECK(c.train.lr == 1.0);
  CHECK(c.train.deterministic);
  CHECK(c.eval.tasks == std::vector<std::string>{"retrieval", "mcqa"});
}

TEST_CASE("subnormal numbers round-trip through the resolved config", "[core][config]") {
  // 1e-310 is below DBL_MIN: std::stod refuses to read it back (out_of_range), so printing the
  // resolved config (config show, checkpoints' stored config) threw a bare "stod".
  const Config c = parse_config("[model]\ndrop_ratio = 1e-310\n", "tiny.toml");
  CHECK(c.model.drop_ratio == 1e-310);
  const std::string text = to_toml(c);
  CHECK_THAT(text, Catch::Contains("drop_ratio = 1e-310"));
  CHECK(parse_config(text, "again.toml").model.drop_ratio == 1e-310);
}

TEST_CASE("unknown keys and sections are rejected with a suggestion and position", "[core][config]") {
  SECTION("misspelt key") {
    const auto err = config_error("[model]\ndrop_raito = 0.5\n");
    CHECK_THAT(err, Catch::Contains("test.toml:2:14: model.drop_raito: unknown key 'drop_raito'"));
    CHECK_THAT(err, Catch::Contains("did you mean 'drop_ratio'?"));
  }
  SECTION("misspelt section") {
    const auto err = config_error("[trian]\nlr = 0.1\n");
    CHECK_THAT(err, Catch::Contains("unknown section 'trian'; did you mean 'train'?"));
  }
  SECTION("nothing close") {
    const auto err = config_error("[model]\nzzzzzzzzzzzz = 1\n");
    CHECK_THAT(err, Catch::Contains("unknown key 'zzzzzzzzzzzz'"));
    CHECK_THAT(err, !Catch::Contains("did you mean"));
  }
  SECTION("a key outside any section") {
    CHECK_THAT(config_error("lr = 0.1\n"), Catch::Contains("test.toml:1:6: lr: keys belong in a section; did you mean 'lr' under [train]?"));
  }
}

TEST_CASE("wrong types and ranges name the key and position", "[core][config]") {
  CHECK_THAT(config_error("[model]\nframes = \"eight\"\n"),
             Catch::Contains("test.toml:2:10: model.frames: expected an integer, got a string"));
  CHECK_THAT(config_error("[model]\ndrop_ratio = 1.0\n"),
             Catch::Contains("model.drop_ratio: must be in [0, 1) (got 1)"));
  CHECK_THAT(config_error("[train]\nlr = -0.1\n"), Catch::Contains("train.lr: must be in (0, 1] (got -0.1)"));
  CHECK_THAT(config_error("[train]\ndeterministic = 1\n"),
             Catch::Contains("train.deterministic: expected true or false, got an integer"));
  CHECK_THAT(config_error("[model]\npreset = \"B/61\"\n"),
             Catch::Contains("model.preset: must be one of: tiny, S/16, B/16, L/14 (got 'B/61'); did you mean 'B/16'?"));
  CHECK_THAT(config_error("[eval]\ntasks = [\"retrieval\", 3]\n"),
             Catch::Contains("eval.tasks: expected an array of strings, found an integer"));
}

TEST_CASE("every problem is reported at once", "[core][config]") {
  const auto err = config_error("[model]\nframes = 0\n[train]\nsteps = 0\n[dist]\nbackend = \"mpi\"\n");
  CHECK_THAT(err, Catch::StartsWith("3 problems in config test.toml:"));
  CHECK_THAT(err, Catch::Contains("model.frames"));
  CHECK_THAT(err, Catch::Contains("train.steps"));
  CHECK_THAT(err, Catch::Contains("dist.backend"));
}

TEST_CASE("invalid TOML names file, line and column", "[core][config]") {
  CHECK_THAT(config_error("[model]\nframes = = 3\n"), Catch::Contains("test.toml:2:"));
  CHECK_THAT(config_error("[model]\nframes = = 3\n"), Catch::Contains("invalid TOML"));
}

TEST_CASE("cross-field rules", "[core][config]") {
  CHECK_THAT(config_error("[model]\nimage_size = 100\n"),
             Catch::Contains("model.image_size: must be a multiple of the tiny patch size 16 (got 100)"));
  CHECK(config_error("[model]\npreset = \"L/14\"\nimage_size = 224\n").empty());
  CHECK_THAT(config_error("[model]\nmask_token_prob = 0.95\nrandom_token_prob = 0.1\n"),
             Catch::Contains("must not exceed 1"));
  CHECK_THAT(config_error("[data]\ncrop_scale_min = 0.9\ncrop_scale_max = 0.5\n"),
             Catch::Contains("data.crop_scale_min: must not exceed data.crop_scale_max"));
  CHECK_THAT(config_error("[train]\nsteps = 10\nunmasked_steps = 11\n"),
             Catch::Contains("train.unmasked_steps: must not exceed train.steps (11 > 10)"));
  CHECK(config_error("[train]\nsteps = 10\nunmasked_steps = 10\n").empty());
  CHECK_THAT(config_error("[checkpoint]\nevery_steps = 4\n[eval]\nevery_steps = 6\n"),
             Catch::Contains("eval.every_steps: must be a multiple of checkpoint.every_steps") &&
                 Catch::Contains("6 is not a multiple of 4"));
  CHECK(config_error("[checkpoint]\nevery_steps = 4\n[eval]\nevery_steps = 8\n").empty());
  CHECK_THAT(config_error("[data]\nloader_placement = \"coordinator\"\nloaders_per_worker = 0\n"),
             Catch::Contains("data.loader_placement: coordinator places loader processes"));
  CHECK_THAT(config_error("[dist]\nworld_size = 4\nmin_workers = 5\n"),
             Catch::Contains("dist.min_workers: must not exceed dist.world_size (5 > 4)"));
  CHECK_THAT(config_error("[dist]\nworld_size = 4\nmax_workers = 2\n"),
             Catch::Contains("dist.max_workers: must be at least dist.world_size (2 < 4)"));
  CHECK_THAT(config_error("[dist]\nworld_size = 2\nbackend = \"inproc\"\n"),
             Catch::Contains("inproc runs one worker"));
  CHECK_THAT(config_error("[train]\ndevice = \"cpu\"\nprecision = \"bf16\"\n"),
             Catch::Contains("train.precision"));
  CHECK_THAT(config_error("[train]\ndevice = \"cpu\"\n[dist]\nbackend = \"nccl\"\n"),
             Catch::Contains("nccl needs train.device"));
  // CURVE: the coordinator's config has only the server pair; a peer's client keys come in pairs
  // and only with the server's public key.
  CHECK(config_error("[coordinator]\ncurve_server_public = \"s.public\"\n"
                     "curve_server_secret = \"s.secret\"\n")
            .empty());
  CHECK_THAT(config_error("[coordinator]\ncurve_server_public = \"s.public\"\n"
                          "curve_client_public = \"w.public\"\n"),
             Catch::Contains("coordinator.curve_client_*: curve_client_public and "
                             "curve_client_secret come together"));
  CHECK_THAT(config_error("[coordinator]\ncurve_client_public = \"w.public\"\n"
                          "curve_client_secret = \"w.secret\"\n"),
             Catch::Contains("coordinator.curve_server_public: client keys are set"));
}

TEST_CASE("set overrides beat the file and are validated", "[core][config]") {
  const Config c = parse_config("[train]\nlr = 0.1\n", "f.toml",
                                {"train.lr=0.5", "model.preset=B/16", "data.root=/videos/x",
                                 "eval.tasks=[\"mcqa\"]", "train.deterministic=true"});
  CHECK(c.train.lr == 0.5);
  CHECK(c.model.preset == "B/16");
  CHECK(c.data.root == "/videos/x");
  CHECK(c.eval.tasks == std::vector<std::string>{"mcqa"});
  CHECK(c.train.deterministic);
  CHECK_THAT(config_error("", {"train.lr=abc"}), Catch::Contains("--set train.lr: train.lr: expected a number"));
  CHECK_THAT(config_error("", {"train.lr"}), Catch::Contains("expected section.key=value"));
  CHECK_THAT(config_error("", {"lr=3"}), Catch::Contains("the key needs its section"));
  CHECK_THAT(config_error("", {"trian.lr=3"}), Catch::Contains("did you mean 'train'?"));
  CHECK_THAT(config_error("", {"train.lrr=3"}), Catch::Contains("did you mean 'lr'?"));
  // A cross-field error caused by an override names the override.
  CHECK_THAT(config_error("", {"model.image_size=200"}), Catch::Contains("--set model.image_size: model.image_size"));
}

TEST_CASE("resolved config round-trips through TOML", "[core][config]") {
  const Config c = parse_config("", "x", {"train.lr=0.00012345", "model.preset=S/16", "eval.tasks=[]",
                                          "train.eps=1e-9", "model.drop_ratio=0.1"});
  const std::string text = to_toml(c);
  const Config back = parse_config(text, "resolved.toml");
  CHECK(to_toml(back) == text);
  CHECK(back.train.lr == 0.00012345);
  CHECK(back.train.eps == 1e-9);
  CHECK(back.model.drop_ratio == 0.1);
  CHECK(back.eval.tasks.empty());
  CHECK_THAT(text, Catch::Contains("[model]\npreset = \"S/16\""));
  CHECK_THAT(text, Catch::Contains("drop_ratio = 0.1\n"));
  CHECK_THAT(text, Catch::Contains("lr = 0.00012345\n"));
}

TEST_CASE("docs/config.md is the generated reference", "[core][config]") {
  std::ifstream in(std::string(HARVEST_SOURCE_DIR) + "/docs/config.md");
  REQUIRE(in);
  const std::string on_disk((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // If this fails: harvest config docs > docs/config.md
  CHECK(on_disk == config_reference_markdown());
}

TEST_CASE("missing config file is a config error naming it", "[core][config]") {
  try {
    load_config(std::string("/nonexistent/harvest.toml"), {});
    FAIL("expected an error");
  } catch (const Error& e) {
    CHECK(e.kind() == ErrorKind::Config);
    CHECK_THAT(e.what(), Catch::Contains("/nonexistent/harvest.toml"));
  }
}
