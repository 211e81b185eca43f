// harvest data frames | synth (the `data` group is shared: other files add their subcommands).
#include <cstdio>
#include <iostream>
#include <memory>

#include "bench/decode/decode_bench.hpp"
#include "cli/commands.hpp"
#include "core/error.hpp"
#include "dataloader/clip_decoder.hpp"
#include "dataloader/importers.hpp"
#include "dataloader/npy.hpp"
#include "dataloader/png.hpp"
#include "dataloader/synth.hpp"

namespace harvest::cli {

namespace {

struct FramesArgs {
  ConfigOptions config;
  std::string video, out, sheet, sampling = "middle";
  int64_t frames = 8;
  int size = 224;
  uint64_t seed = 0;
  double start = -1, end = -1;
  int threads = 1;
};

void run_frames(const FramesArgs& a) {
  const Config config = a.config.load();
  HARVEST_REQUIRE(a.sampling == "middle" || a.sampling == "random", Usage,
                  "--sampling must be middle or random, got '", a.sampling, "'");
  data::ClipOptions o;
  o.frames = a.frames;
  o.out_width = o.out_height = a.size;
  o.sampling = a.sampling == "random" ? data::Sampling::Random : data::Sampling::Middle;
  o.train_augment = o.sampling == data::Sampling::Random;  // what the training loader applies
  o.crop.scale_min = config.data.crop_scale_min;
  o.crop.scale_max = config.data.crop_scale_max;
  o.flip = config.data.flip;
  o.sampling_fps = config.data.sampling_fps;
  o.reader.max_resolution = config.data.max_resolution;
  o.reader.timeout_s = config.data.decode_timeout_s;
  o.reader.threads = a.threads;
  data::SampleRng rng(a.seed);
  const std::optional<double> start = a.start >= 0 ? std::optional<double>(a.start) : std::nullopt;
  const std::optional<double> end = a.end >= 0 ? std::optional<double>(a.end) : std::nullopt;
  const data::Clip clip = data::decode_clip(a.video, o, rng, start, end);
  data::write_npy_u8(a.out, {clip.frames, clip.height, clip.width, 3}, clip.pixels.data());
  if (!a.sheet.empty())
    data::write_contact_sheet(a.sheet, clip.pixels.data(), clip.frames, clip.height, clip.width, 4);
  const auto& i = clip.info;
  std::cout << a.video << ": " << i.container << "/" << i.codec << " " << i.width << "x" << i.height
            << " " << i.pixel_format << " rotation " << i.rotation << ", " << i.duration << " s, "
            << i.frame_count << " frames, " << i.fps << " fps"
            << (i.from_timestamps ? " (from timestamps)" : "") << "\n";
  std::cout << "frame times (s):";
  for (double t : clip.times) std::cout << " " << t;
  std::cout << "\ncrop " << clip.crop.x << "," << clip.crop.y << " " << clip.crop.w << "x"
            << clip.crop.h << (clip.flipped ? " flipped" : "") << "\nwrote " << a.out << " uint8 ["
            << clip.frames << "," << clip.height << "," << clip.width << ",3]"
            << (a.sheet.empty() ? "" : " and " + a.sheet) << "\n";
}

}  // namespace

void add_data_commands(CLI::App& app) {
  auto& data = command_group(app, "data", "Datasets: synthesis, import, frames, vocabulary");

  auto fa = std::make_shared<FramesArgs>();
  auto* frames = data.add_subcommand(
      "frames", "Write the frames the model would see for one video (.npy, PNG sheet)");
  frames->add_option("--video", fa->video, "Video file")->required();
  frames->add_option("--frames", fa->frames, "Frames per clip (T)")
      ->capture_default_str()
      ->check(CLI::Range(1, 1024));
  frames->add_option("--size", fa->size, "Output size S (S x S)")
      ->capture_default_str()
      ->check(CLI::Range(8, 4096));
  frames
      ->add_option("--sampling", fa->sampling,
                   "middle (eval) or random (train: random times, crop, flip)")
      ->capture_default_str();
  frames->add_option("--seed", fa->seed, "Seed for random sampling")->capture_default_str();
  frames->add_option("--start", fa->start, "Segment start (s)");
  frames->add_option("--end", fa->end, "Segment end (s)");
  frames->add_option("--threads", fa->threads, "Decoder threads")
      ->capture_default_str()
      ->check(CLI::Range(1, 64));
  frames->add_option("--out", fa->out, "Output .npy (uint8 [T,S,S,3])")->required();
  frames->add_option("--sheet", fa->sheet, "Also write a PNG contact sheet");
  fa->config.add_to(*frames);
  frames->callback([fa] { run_frames(*fa); });

  struct ImportArgs {
    std::string format, annotations, path_template, out, split;
  };
  auto ia = std::make_shared<ImportArgs>();
  auto* import = data.add_subcommand(
      "import",
      "Convert published annotations (WebVid, InternVid, MSR-VTT, Kinetics) to a manifest");
  import->add_option("--format", ia->format, "webvid | internvid | msrvtt | kinetics")->required();
  import->add_option("--annotations", ia->annotations, "The dataset's annotation file")->required();
  import
      ->add_option("--path-template", ia->path_template,
                   "Video path from the record's fields, e.g. '{page_dir}/{videoid}.mp4', "
                   "'{youtube_id}_{time_start:06}_{time_end:06}.mp4'")
      ->required();
  import->add_option("--split", ia->split, "msrvtt/kinetics: keep only this split");
  import->add_option("--out", ia->out, "Output manifest (.jsonl)")->required();
  import->callback([ia] {
    data::ImportOptions o;
  o.format = data::parse_import_format(ia->format);
  o.annotations = ia->annotations;
  o.path_template = ia->path_template;
  o.split = ia->split;
  const auto entries = data::import_annotations(o);
  data::write_manifest_jsonl(ia->out, entries);
  std::cout << "wrote " << entries.size() << " entries to " << ia->out << "\n";
});

auto so = std::make_shared<data::SynthOptions>();
auto* synth = data.add_subcommand(
    "synth", "Render the synthetic video-text dataset (train/val/test manifests)");
synth->add_option("--out", so->out_dir, "Output folder")->required();
synth->add_option("--clips", so->clips, "Number of clips")
    ->capture_default_str()
    ->check(CLI::Range(1, 10000000));
synth->add_option("--seed", so->seed, "Seed (same seed: same manifests and frames)")
    ->capture_default_str();
synth->add_option("--size", so->size, "Frame size (square)")
    ->capture_default_str()
    ->check(CLI::Range(16, 1024));
synth->add_option("--frames", so->frames, "Frames per clip")
    ->capture_default_str()
    ->check(CLI::Range(2, 1000));
synth->add_option("--fps", so->fps, "Frame rate")->capture_default_str()->check(CLI::Range(1, 120));
synth->add_option("--threads", so->threads, "Encoder threads (0: one per core)")
    ->capture_default_str();
synth->callback([so] {
  const auto plan = data::write_synth_dataset(*so);
  int64_t counts[3] = {0, 0, 0};
  for (const auto& c : plan) ++counts[c.split == "train" ? 0 : c.split == "val" ? 1 : 2];
  std::cout << "wrote " << plan.size() << " clips to " << so->out_dir << ": train " << counts[0]
            << ", val " << counts[1] << ", test " << counts[2] << " (held-out combinations)\n";
});

auto* bench_group = &command_group(app, "bench", "Benchmarks (JSON on the last line)");
auto bo = std::make_shared<bench::DecodeBenchOptions>();
auto* decode = bench_group->add_subcommand(
    "decode", "Decode clips/s vs PyAV with the same sampling (JSON last line)");
decode->add_option("--videos", bo->videos, "Video files (default: generated H.264 640x360 clips)");
decode->add_option("--frames", bo->frames, "Frames per clip")->capture_default_str();
decode->add_option("--size", bo->size, "Output size S")->capture_default_str();
decode
    ->add_option("--threads", bo->threads,
                 "Clip workers (one single-threaded decoder each), same for PyAV")
    ->capture_default_str();
decode->add_option("--reps", bo->reps, "Interleaved repetitions (medians reported)")
    ->capture_default_str();
decode->add_option("--passes", bo->passes, "Passes over the videos per repetition")
    ->capture_default_str();
decode->add_option("--gop", bo->gop, "Keyframe interval of the generated clips (frames)")
    ->capture_default_str();
decode->add_option("--seconds", bo->seconds, "Length of the generated clips")
    ->capture_default_str();
decode->add_flag("!--no-reference", bo->reference, "Skip the PyAV and torchcodec references");
decode->add_flag("--json", "Accepted for symmetry: the last line is always JSON");
decode->callback([bo] { std::cout << bench::run_decode_bench(*bo).dump() << "\n"; });
}  // namespace harvest::cli

}  // namespace harvest::cli
