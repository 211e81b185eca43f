#include "coordinator/journal.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <array>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "core/check_sys.hpp"

namespace harvest::coord {
namespace {

std::array<uint32_t, 256> make_crc_table() {
  std::array<uint32_t, 256> table{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    table[i] = c;
  }
  return table;
}

void put_u32(std::string& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

uint32_t get_u32(const std::string& in, size_t at) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= static_cast<uint32_t>(static_cast<unsigned char>(in[at + i])) << (8 * i);
  return v;
}

JournalMember member_from(proto::MemberEvent::Reader e) {
  JournalMember m;
  m.member_id = e.getMemberId();
  m.role = e.getRole();
  m.host = e.getHost();
  m.pid = e.getPid();
  m.device = e.getDevice();
  m.desired_rank = e.getDesiredRank();
  m.data_endpoint = e.getDataEndpoint();
  m.data_curve_key = e.getDataCurveKey();
  m.routing_id = routing_id_of(e);
  return m;
}

// Journal records are written by this build; a record larger than this is corruption.
constexpr uint32_t kMaxRecord = 64u << 20;

}  // namespace

uint32_t crc32(const void* data, size_t size) {
  static const std::array<uint32_t, 256> table = make_crc_table();
  uint32_t c = 0xFFFFFFFFu;
  const auto* p = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < size; ++i) c = table[(c ^ p[i]) & 0xff] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

JobState replay_journal(const std::string& path) {
  JobState state;
  std::ifstream in(path, std::ios::binary);
  if (!in) return state;
  const std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  size_t at = 0;
  while (at + 8 <= data.size()) {
    const uint32_t len = get_u32(data, at);
    const uint32_t crc = get_u32(data, at + 4);
    if (len > kMaxRecord || at + 8 + len > data.size()) break;
    const std::string bytes = data.substr(at + 8, len);
    if (crc32(bytes.data(), bytes.size()) != crc) break;
    auto decoded = decode(bytes, kMaxRecord);
    if (std::holds_alternative<WireError>(decoded)) break;
    const InMessage& msg = *std::get<std::unique_ptr<InMessage>>(decoded);
    switch (msg.which()) {
      case Body::MEMBER_JOINED: {
        JournalMember m = member_from(msg.body().getMemberJoined());
        state.next_member_id = std::max(state.next_member_id, m.member_id + 1);
        state.members[m.member_id] = m;
        break;
      }
      case Body::MEMBER_LOST:
        state.members.erase(msg.body().getMemberLost().getMemberId());
        break;
      case Body::GENERATION_FORMED: {
        const auto g = msg.body().getGenerationFormed();
        state.generation = g.getGeneration();
        state.ranks = to_vector(g.getMemberIds());
        break;
      }
      case Body::ABORT:
        state.generation = std::max(state.generation, msg.body().getAbort().getGeneration());
        state.ranks.clear();
        break;
      case Body::CHECKPOINT_COMMIT: {
        const auto c = msg.body().getCheckpointCommit();
        state.last_commit = JournalCommit{c.getGeneration(), c.getStep(), c.getPath(), c.getEpoch(), c.getDataCursor()};
        break;
      }
      default:
        spdlog::warn("journal {}: record {} ({}) ignored", path, state.records, body_name(msg.which()));
    }
    ++state.records;
    at += 8 + len;
  }
  if (at != data.size()) {
    spdlog::warn("journal {}: corrupt or torn tail after {} records ({} of {} bytes kept); truncating", path,
                 state.records, at, data.size());
    check_sys(::truncate(path.c_str(), static_cast<off_t>(at)), "truncate", path);
  }
  return state;
}

void append_journal_record(int fd, const std::string& path, const std::string& bytes) {
  std::string record;
  record.reserve(8 + bytes.size());
  put_u32(record, static_cast<uint32_t>(bytes.size()));
  put_u32(record, crc32(bytes.data(), bytes.size()));
  record += bytes;
  size_t done = 0;
  while (done < record.size()) {
    const ssize_t n = ::write(fd, record.data() + done, record.size() - done);
    if (n < 0 && errno == EINTR) continue;
    check_sys(n, "write", path);
    done += static_cast<size_t>(n);
  }
  check_sys(::fdatasync(fd), "fdatasync", path);
}

JournalActor::JournalActor(ZmqContext& ctx, std::chrono::milliseconds tick, const std::string& path)
    : Actor(ctx, actors::kJournal, tick, {actors::kCommitter}), path_(path) {
  const auto parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent);
  fd_ = check_sys(::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644), "open", path);
}

JournalActor::~JournalActor() {
  stop();
  if (fd_ >= 0) ::close(fd_);
}

void JournalActor::handle(const std::string& from, const InMessage& message) {
  append_journal_record(fd_, path_, encode(message.root()));
  ++sequence_;
  if (message.which() == Body::CHECKPOINT_COMMIT && from == std::string("@") + actors::kCommitter) {
    OutMessage done;
    done.body().initJournalWritten().setSequence(sequence_);
    send_to(actors::kCommitter, done.bytes());
  }
}

}  // namespace harvest::coord
