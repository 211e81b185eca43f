// The journal: replay of what membership/rendezvous/committer wrote; torn and corrupt tails.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "coordinator/journal.hpp"

using namespace harvest;
using namespace harvest::coord;

namespace {

struct TempJournal {
  std::string path;
  int fd = -1;
  TempJournal() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "harvest-journal-XXXXXX").string();
    fd = ::mkstemp(tmpl.data());
    path = tmpl;
  }
  ~TempJournal() {
    ::close(fd);
    std::filesystem::remove(path);
  }
  void member(Body::Which kind, uint64_t id, proto::Role role) {
    OutMessage m;
    auto e = kind == Body::MEMBER_JOINED ? m.body().initMemberJoined() : m.body().initMemberLost();
    e.setMemberId(id);
    e.setRole(role);
    e.setHost("h");
    e.setRoutingId(kj::arrayPtr(reinterpret_cast<const kj::byte*>("rid"), 3));
    append_journal_record(fd, path, m.bytes());
  }
  void formed(uint64_t generation, std::vector<uint64_t> ids) {
    OutMessage m;
    auto g = m.body().initGenerationFormed();
    g.setGeneration(generation);
    g.setWorldSize(static_cast<uint32_t>(ids.size()));
    auto list = g.initMemberIds(static_cast<unsigned>(ids.size()));
    for (size_t i = 0; i < ids.size(); ++i) list.set(static_cast<unsigned>(i), ids[i]);
    append_journal_record(fd, path, m.bytes());
  }
  void commit(uint64_t step) {
    OutMessage m;
    auto c = m.body().initCheckpointCommit();
    c.setStep(step);
    c.setPath("ckpt/" + std::to_string(step));
    c.setDataCursor(step * 8);
    append_journal_record(fd, path, m.bytes());
  }
};

}  // namespace

TEST_CASE("crc32 matches the standard check value", "[coordinator]") {
  CHECK(crc32("123456789", 9) == 0xCBF43926u);  // the CRC-32/ISO-HDLC check value
}

TEST_CASE("journal replay rebuilds the job", "[coordinator]") {
  TempJournal j;
  j.member(Body::MEMBER_JOINED, 1, proto::Role::WORKER);
  j.member(Body::MEMBER_JOINED, 2, proto::Role::WORKER);
  j.member(Body::MEMBER_JOINED, 3, proto::Role::LOADER);
  j.formed(1, {1, 2});
  j.commit(100);
  j.member(Body::MEMBER_LOST, 2, proto::Role::WORKER);
  j.member(Body::MEMBER_JOINED, 4, proto::Role::WORKER);
  j.formed(2, {4, 1});
  const JobState s = replay_journal(j.path);
  CHECK(s.records == 8);
  CHECK(s.members.size() == 3);
  CHECK(s.members.count(2) == 0);
  CHECK(s.members.at(3).role == proto::Role::LOADER);
  CHECK(s.members.at(1).routing_id == "rid");
  CHECK(s.next_member_id == 5);
  CHECK(s.generation == 2);
  CHECK(s.ranks == std::vector<uint64_t>{4, 1});
  CHECK(s.last_commit.step == 100);
  CHECK(s.last_commit.data_cursor == 800);

  SECTION("a torn tail (crash mid-write) is cut off and the file truncated to the good records") {
    const auto good_size = std::filesystem::file_size(j.path);
    { std::ofstream(j.path, std::ios::app | std::ios::binary) << std::string("\x40\x00\x00\x00garbage", 11); }
    const JobState t = replay_journal(j.path);
    CHECK(t.records == 8);
    CHECK(std::filesystem::file_size(j.path) == good_size);
  }
  SECTION("a corrupt record ends the replay there") {
    std::fstream f(j.path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(20);
    f.put('\x55');
    f.close();
    const JobState t = replay_journal(j.path);
    CHECK(t.records == 0);
    CHECK(t.members.empty());
  }
}

TEST_CASE("a missing journal is an empty job", "[coordinator]") {
  const JobState s = replay_journal("/nonexistent/harvest/journal.log");
  CHECK(s.records == 0);
  CHECK(s.next_member_id == 1);
}
