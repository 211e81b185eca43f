// Rendering a StatusReply for `harvest status`: a table for people, JSON for scripts.
#pragma once

#include <nlohmann/json.hpp>

#include <string>

#include "core/proto/protocol.capnp.h"

namespace harvest::coord {

nlohmann::json status_json(proto::StatusReply::Reader status);
std::string status_text(proto::StatusReply::Reader status);

}  // namespace harvest::coord
