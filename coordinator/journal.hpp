// The job journal: an append-only file of fsync'd records so a restarted coordinator takes the
// job back. Record = [u32 length][u32 crc32 of the bytes][Envelope bytes], little-endian.
// Journalled envelopes: memberJoined, memberLost (membership), generationFormed (rendezvous),
// checkpointCommit (committer). A torn or corrupt tail (a crash mid-write) is cut off on replay.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "coordinator/actor.hpp"

namespace harvest::coord {

struct JournalMember {
  uint64_t member_id = 0;
  proto::Role role = proto::Role::WORKER;
  std::string host;
  uint32_t pid = 0;
  std::string device;
  int32_t desired_rank = -1;
  std::string data_endpoint;
  std::string data_curve_key;  // public key the data endpoint serves CURVE with; empty: none
  std::string routing_id;
};

struct JournalCommit {
  uint64_t generation = 0;
  uint64_t step = 0;
  std::string path;
  uint64_t epoch = 0;
  uint64_t data_cursor = 0;
};

// What a journal says about the job: the members still alive at its end, the last generation
// and its ranks, the last committed checkpoint.
struct JobState {
  std::map<uint64_t, JournalMember> members;  // live ones only
  uint64_t next_member_id = 1;
  uint64_t generation = 0;
  std::vector<uint64_t> ranks;  // member id per rank of `generation`
  JournalCommit last_commit;
  size_t records = 0;
};

uint32_t crc32(const void* data, size_t size);

// Reads the journal at `path` (a missing file is an empty job), truncating a corrupt tail.
JobState replay_journal(const std::string& path);

// The journal actor: appends every envelope it receives; when `from` is "@<actor>" and the
// record is a checkpointCommit it answers that actor with journalWritten after the fsync.
class JournalActor : public Actor {
 public:
  JournalActor(ZmqContext& ctx, std::chrono::milliseconds tick, const std::string& path);
  ~JournalActor() override;

 protected:
  void handle(const std::string& from, const InMessage& message) override;

 private:
  std::string path_;
  int fd_ = -1;
  uint64_t sequence_ = 0;
};

// Appends one record with fsync (used by the actor, and by tests that craft journals).
void append_journal_record(int fd, const std::string& path, const std::string& bytes);

}  // namespace harvest::coord
