// Manifests (JSONL, CSV) and the dataset importers, on small files written here.
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

#include "core/error.hpp"
#include "dataloader/importers.hpp"
#include "dataloader/manifest.hpp"
#include "tests/dataloader/support.hpp"

using namespace harvest;
using namespace harvest::data;

namespace {

std::string write(const test::TempDir& dir, const std::string& name, const std::string& text) {
  std::ofstream(dir.file(name), std::ios::binary) << text;
  return dir.file(name);
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST_CASE("JSONL manifests", "[dataloader][manifest]") {
  test::TempDir dir;
  SECTION("caption, captions, segments and labels; paths relative to the manifest's folder") {
    const auto path =
        write(dir, "m.jsonl",
              "{\"video\": \"a.mp4\", \"caption\": \"a dog runs\"}\n"
              "\n"
              "{\"video\": \"b/c.mkv\", \"captions\": [\"x\", \"y\"], \"start\": 1.5, \"end\": 4}\n"
              "{\"video\": \"k.mp4\", \"label\": \"archery\"}\n");
    const Manifest m = load_manifest(path);
    REQUIRE(m.entries.size() == 3);
    CHECK(m.entries[0].captions == std::vector<std::string>{"a dog runs"});
    CHECK(m.entries[1].captions == std::vector<std::string>{"x", "y"});
    CHECK(*m.entries[1].start == 1.5);
    CHECK(*m.entries[1].end == 4.0);
    CHECK(m.entries[1].line == 3);
    CHECK(m.entries[2].label == "archery");
    CHECK(m.video_path(m.entries[1]) == dir.file("b/c.mkv"));
    CHECK(load_manifest(path, "/data").video_path(m.entries[0]) == "/data/a.mp4");

    const auto out = dir.file("round.jsonl");
    write_manifest_jsonl(out, m.entries);
    const Manifest again = load_manifest(out);
    REQUIRE(again.entries.size() == 3);
    CHECK(again.entries[1].captions == m.entries[1].captions);
    CHECK(*again.entries[1].end == 4.0);
  }
  SECTION("errors name file:line:field") {
    auto err = [&](const std::string& text) {
      const auto p =
          write(dir, "bad.jsonl", "{\"video\": \"ok.mp4\", \"caption\": \"fine\"}\n" + text + "\n");
      return error_of([&] { load_manifest(p); });
    };
    CHECK_THAT(err("{\"video\": 3, \"caption\": \"c\"}"), Catch::Contains("bad.jsonl:2:video"));
    CHECK_THAT(err("{\"video\": \"v.mp4\"}"), Catch::Contains("bad.jsonl:2:caption"));
    CHECK_THAT(err("{\"video\": \"v.mp4\", \"captions\": []}"),
               Catch::Contains("bad.jsonl:2:captions"));
    CHECK_THAT(err("{\"video\": \"v.mp4\", \"caption\": \"c\", \"start\": -1}"),
               Catch::Contains("bad.jsonl:2:start"));
    CHECK_THAT(err("{\"video\": \"v.mp4\", \"caption\": \"c\", \"start\": 5, \"end\": 2}"),
               Catch::Contains("bad.jsonl:2:end"));
    CHECK_THAT(err("{\"video\": \"v.mp4\", \"caption\": \"c\", \"lable\": \"x\"}"),
               Catch::Contains("bad.jsonl:2:lable: unknown field"));
    CHECK_THAT(err("{\"video\": \"v.mp4\", "), Catch::Contains("bad.jsonl:2: not valid JSON"));
    CHECK_THAT(error_of([&] { load_manifest(dir.file("none.jsonl")); }),
               Catch::Contains("none.jsonl"));
  }
}

TEST_CASE("deeply nested JSON in a manifest row is refused naming the line", "[dataloader][manifest]") {
  test::TempDir dir;
  const std::string deep = std::string(300000, '[') + std::string(300000, ']');
  for (const std::string field : {"video", "captions"}) {
    INFO(field);
    const std::string path = write(dir, field + ".jsonl",
                                   "{\"video\": \"a.mp4\", \"caption\": \"x\"}\n{\"" + field + "\": " + deep +
                                       ", \"caption\": \"x\"}\n");
    try {
      load_manifest(path);
      FAIL("a manifest with a 300000-deep value loaded");
    } catch (const harvest::Error& e) {
      CHECK_THAT(e.what(), Catch::Contains(field + ".jsonl:2") && Catch::Contains("deeper than 64 levels"));
      CHECK(std::string(e.what()).size() < 1000);
    }
  }
}

TEST_CASE("an empty manifest or a directory is refused naming the path", "[dataloader][manifest]") {
  test::TempDir dir;
  CHECK_THROWS_WITH(load_manifest(write(dir, "empty.jsonl", "\n  \n")),
                    Catch::Contains("empty.jsonl: the manifest has no rows"));
  CHECK_THROWS_WITH(load_manifest(write(dir, "empty.csv", "video,caption\n")),
                    Catch::Contains("empty.csv: the manifest has a header but no rows"));
  const std::string folder = dir.path().string();
  CHECK_THROWS_WITH(load_manifest(folder), Catch::Contains(folder + ": is a directory"));
}

TEST_CASE("CSV manifests", "[dataloader][manifest]") {
  test::TempDir dir;
  const auto path = write(dir, "m.csv",
                          "video,caption,start,end\r\n"
                          "a.mp4,\"a cat, sleeping\",,\r\n"
                          "b.mp4,\"says \"\"hi\"\"\nover two lines\",2,3.5\r\n");
  const Manifest m = load_manifest(path);
  REQUIRE(m.entries.size() == 2);
  CHECK(m.entries[0].captions[0] == "a cat, sleeping");
  CHECK_FALSE(m.entries[0].start.has_value());
  CHECK(m.entries[1].captions[0] == "says \"hi\"\nover two lines");
  CHECK(*m.entries[1].start == 2.0);
  const auto bad = write(dir, "bad.csv", "video,caption,end\nv.mp4,c,soon\n");
  CHECK_THAT(error_of([&] { load_manifest(bad); }), Catch::Contains("bad.csv:2:end: not a number"));
  const auto cols = write(dir, "cols.csv", "video,title\nv.mp4,c\n");
  CHECK_THAT(error_of([&] { load_manifest(cols); }),
             Catch::Contains("cols.csv:1:title: unknown column"));
  const auto ragged = write(dir, "ragged.csv", "video,caption\nv.mp4\n");
  CHECK_THAT(error_of([&] { load_manifest(ragged); }), Catch::Contains("ragged.csv:2"));
}

TEST_CASE("importers read the published annotation formats", "[dataloader][manifest]") {
  test::TempDir dir;
  SECTION("WebVid CSV") {
    const auto a = write(
        dir, "webvid.csv",
        "videoid,contentUrl,duration,page_dir,name\n"
        "1001,https://x/1001.mp4,PT00H00M12S,009501_009550,\"Aerial shot of a lake, sunset\"\n"
        "1002,https://x/1002.mp4,PT00H00M08S,009551_009600,Dog running\n");
    const auto e = import_annotations({ImportFormat::WebVid, a, "{page_dir}/{videoid}.mp4", ""});
    REQUIRE(e.size() == 2);
    CHECK(e[0].video == "009501_009550/1001.mp4");
    CHECK(e[0].captions[0] == "Aerial shot of a lake, sunset");
    CHECK_THAT(error_of([&] {
                 import_annotations({ImportFormat::WebVid, a, "{page}/{videoid}.mp4", ""});
               }),
               Catch::Contains("webvid.csv:2: --path-template field {page}"));

    // Invalid UTF-8 is named by line and column, before any output exists.
    const auto bad = write(dir, "bad.csv",
                           "videoid,name\n1,fine\n2,caf\xe9 au lait\n");
    CHECK_THAT(error_of([&] { import_annotations({ImportFormat::WebVid, bad, "{videoid}.mp4", ""}); }),
               Catch::Contains("bad.csv:3:name: not valid UTF-8"));
    ManifestEntry latin1;
    latin1.video = "v.mp4";
    latin1.captions = {"caf\xe9"};
    latin1.line = 7;
    const std::string out = dir.file("out.jsonl");
    CHECK_THAT(error_of([&] { write_manifest_jsonl(out, {latin1}); }), Catch::Contains("input line 7"));
    CHECK_FALSE(std::filesystem::exists(out));
    CHECK_FALSE(std::filesystem::exists(out + ".tmp"));
  }
  SECTION("InternVid JSONL with HH:MM:SS.mmm segments") {
    const auto a = write(
        dir, "internvid.jsonl",
        "{\"YoutubeID\": \"abc\", \"Start_timestamp\": \"00:01:02.500\", "
        "\"End_timestamp\": \"00:01:10.000\", \"Caption\": \"a man cooks\", \"UMT_Score\": 0.4}\n"
        "{\"YoutubeID\": \"abc\", \"Start_timestamp\": \"01:00:00.000\", "
        "\"End_timestamp\": \"01:00:03.250\", \"Caption\": \"he serves\"}\n");
    const auto e = import_annotations({ImportFormat::InternVid, a, "{YoutubeID}.mp4", ""});
    REQUIRE(e.size() == 2);
    CHECK(e[0].video == "abc.mp4");
    CHECK(*e[0].start == Approx(62.5));
    CHECK(*e[0].end == Approx(70.0));
    CHECK(*e[1].start == Approx(3600.0));
    CHECK(*e[1].end == Approx(3603.25));
    const auto bad =
        write(dir, "bad.jsonl",
              "{\"YoutubeID\": \"a\", \"Start_timestamp\": \"1:xx\", \"End_timestamp\": \"2\", "
              "\"Caption\": \"c\"}\n");
    CHECK_THAT(error_of([&] {
                 import_annotations({ImportFormat::InternVid, bad, "{YoutubeID}.mp4", ""});
               }),
               Catch::Contains("bad.jsonl:1:Start_timestamp"));
  }
  SECTION("MSR-VTT JSON: every sentence of a video, optional split") {
    const auto a =
        write(dir, "msrvtt.json",
              "{\"videos\": [{\"video_id\": \"video0\", \"split\": \"train\"},"
              " {\"video_id\": \"video1\", \"split\": \"test\"}],"
              " \"sentences\": [{\"video_id\": \"video0\", \"caption\": \"a car\", \"sen_id\": 0},"
              " {\"video_id\": \"video1\", \"caption\": \"a song\", \"sen_id\": 1},"
              " {\"video_id\": \"video0\", \"caption\": \"a red car\", \"sen_id\": 2}]}");
    const auto all = import_annotations({ImportFormat::MsrVtt, a, "{video_id}.mp4", ""});
    REQUIRE(all.size() == 2);
    CHECK(all[0].captions == std::vector<std::string>{"a car", "a red car"});
    const auto test_only = import_annotations({ImportFormat::MsrVtt, a, "{video_id}.mp4", "test"});
    REQUIRE(test_only.size() == 1);
    CHECK(test_only[0].video == "video1.mp4");
  }
  SECTION("Kinetics CSV: label and the downloader's file naming") {
    const auto a = write(dir, "k.csv",
                         "label,youtube_id,time_start,time_end,split\n"
                         "abseiling,--33Lscn6sk,4,14,train\n"
                         "\"playing cards\",-0DBKh0Bv2A,120,130,val\n");
    const auto e = import_annotations(
        {ImportFormat::Kinetics, a,
         "{split}/{label}/{youtube_id}_{time_start:06}_{time_end:06}.mp4", "val"});
    REQUIRE(e.size() == 1);
    CHECK(e[0].video == "val/playing cards/-0DBKh0Bv2A_000120_000130.mp4");
    CHECK(e[0].label == "playing cards");
    CHECK(e[0].captions.empty());
    const auto missing = write(dir, "k2.csv", "label,youtube_id,time_start\nx,y,1\n");
    CHECK_THAT(error_of([&] {
                 import_annotations({ImportFormat::Kinetics, missing, "{youtube_id}.mp4", ""});
               }),
               Catch::Contains("k2.csv:1:time_end"));
  }
  CHECK_THROWS_AS(parse_import_format("youtube"), Error);
}
